"""Every value, file and signal a user can throw at it: one line, exit code 2, before any work,
nothing partial written; the Python API raises the project's own errors; no NaN is written."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flax import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxdream import imageio
from jaxdream.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint
from jaxdream.cli import main
from jaxdream.config import DreamConfig, Level, parse_level
from jaxdream.display import Display, to_uint8
from jaxdream.dreaming import dream, dream_many
from jaxdream.errors import JaxdreamError, NumericalError
from jaxdream.imageio import load_photo, save_image
from jaxdream.objectives import parse_objective
from jaxdream.patterns import noise_images, oip

FAST = ["--size", "48", "--iterations", "1", "--steps", "2", "-q"]


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(path)
    return path


def _one_line_code_2(capsys, argv, folder):
    before = sorted(os.listdir(folder))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: "), err
    assert sorted(os.listdir(folder)) == before  # nothing written, nothing left
    return err[0]


# --------------------------------------------------------------------------- 1. numbers


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--seed", "123456789012345678901"], "seed"),
        (["--steps", "2147483648"], "steps"),
        (["--steps", "100000", "--iterations", "1000"], "tile steps"),
        (["--epsilon", "1e30"], "epsilon"),
        (["--levels", "0*1e40"], "weights"),
        (["--fact", "nan"], "fact"),
        (["--centre-move", "inf"], "centre_move"),
        (["--objective", "nan*conv3:56"], "finite"),
        (["--overlap", "nan"], "overlap"),
        (["--conv-criterion", "-1"], "conv_criterion"),
        (["--size", "0"], "size"),
    ],
)
def test_numbers_at_their_limits(tmp_path, photo, capsys, flags, says):
    argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *FAST, *flags]
    assert says in _one_line_code_2(capsys, argv, tmp_path)


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--amplitude", "nan"], "amplitude"),
        (["--seed", "99999999999999999999"], "seed"),
        (["--steps", "2147483648"], "steps"),
        (["--epsilon", "1e30"], "epsilon"),
        (["--scale", "0"], "scale"),
    ],
)
def test_oip_numbers_at_their_limits(tmp_path, capsys, flags, says):
    argv = ["oip", "-o", str(tmp_path / "p.png"), *flags]
    assert says in _one_line_code_2(capsys, argv, tmp_path)


@pytest.mark.parametrize(
    "flags",
    [["--epochs", "99999999999999999999"], ["--batch-size", "1000000000"], ["--seed", "-1"]],
)
def test_train_numbers_at_their_limits(tmp_path, capsys, flags):
    _one_line_code_2(capsys, ["train", "-o", str(tmp_path / "w.msgpack"), *flags], tmp_path)


# --------------------------------------------------------------------------- 2. not numbers


def test_extreme_finite_images_dream_to_finite_results(bundled):
    _, params = bundled
    wild = np.linspace(-3e38, 3e38, 40 * 60, dtype=np.float32).reshape(40, 60)
    result = dream(wild, DreamConfig(size=48, iterations=1, steps=2), params=params)
    assert np.all(np.isfinite(result.image))


def test_oip_refuses_non_finite_starts(bundled):
    _, params = bundled
    from jaxdream.objectives import channel

    start = np.asarray(noise_images(__import__("jax").random.key(0), 2)).copy()
    start[0, 3, 3] = np.nan
    with pytest.raises(JaxdreamError, match="NaN"):
        oip(params, channel("conv3", 1), start, steps=2)


def test_no_nan_reaches_an_image(tmp_path):
    x = np.ones((4, 4), np.float32)
    x[1, 1] = np.nan
    with pytest.raises(NumericalError):
        to_uint8(x)
    from jaxdream.dreaming import check_finite

    with pytest.raises(NumericalError, match="lower"):
        check_finite(x, DreamConfig())


# --------------------------------------------------------------------------- 3. special files


def test_a_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    for argv in (
        ["dream", str(fifo), "-o", str(tmp_path / "o.png")],
        ["dream", "-o", str(tmp_path / "o.png"), "--weights", str(fifo)],
    ):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "jaxdream", *argv, *FAST],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr
        assert time.perf_counter() - start < 100  # refused, not blocked on the pipe forever


@pytest.mark.parametrize("kind", ["device", "loop", "long name", "folder as weights"])
def test_files_that_are_not_photos(tmp_path, capsys, kind):
    out = str(tmp_path / "o.png")
    if kind == "device":
        argv = ["dream", "/dev/zero", "-o", out]
    elif kind == "loop":
        (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
        (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
        argv = ["dream", str(tmp_path / "a.png"), "-o", out]
    elif kind == "long name":
        argv = ["dream", str(tmp_path / ("x" * 300 + ".png")), "-o", out]
    else:
        argv = ["dream", "-o", out, "--weights", str(tmp_path)]
    _one_line_code_2(capsys, [*argv, *FAST], tmp_path)


# --------------------------------------------------------------------------- 4. checkpoints


def _checkpoint(path, model_spec, params):
    state = {"format": FORMAT, "version": FORMAT_VERSION, "model": model_spec, "params": params}
    path.write_bytes(serialization.msgpack_serialize(state))


def test_checkpoints_that_lie(tmp_path, tiny):
    from jaxdream.errors import CheckpointError

    model, params = tiny
    spec = {"widths": [-4, 6, 8], "hidden": 12, "num_classes": 10}
    _checkpoint(tmp_path / "neg.msgpack", spec, {k: dict(v) for k, v in params.items()})
    with pytest.raises(CheckpointError, match="model description"):
        load_checkpoint(tmp_path / "neg.msgpack")
    good = {"widths": list(model.widths), "hidden": model.hidden, "num_classes": 10}
    weird = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in params.items()}
    weird["conv1"]["kernel"] = weird["conv1"]["kernel"].astype(np.complex64)
    _checkpoint(tmp_path / "complex.msgpack", good, weird)
    with pytest.raises(CheckpointError, match="complex64 values"):
        load_checkpoint(tmp_path / "complex.msgpack")


# --------------------------------------------------------------------------- 5. outputs


@pytest.mark.parametrize("name", ["o.h5", "o.xbm", "o.blp", "o.psd"])
def test_outputs_pillow_cannot_write_are_refused_before_the_dream(tmp_path, photo, capsys, name):
    argv = ["dream", str(photo), "-o", str(tmp_path / name), *FAST]
    assert "write" in _one_line_code_2(capsys, argv, tmp_path)


@pytest.mark.parametrize("flag", ["--gif", "--figure"])
def test_every_output_is_checked_before_any_is_written(tmp_path, photo, capsys, flag):
    bad = "anim.png" if flag == "--gif" else "fig.xbm"
    argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), flag, str(tmp_path / bad), *FAST]
    _one_line_code_2(capsys, argv, tmp_path)


def test_a_file_size_limit_gives_one_line_and_leaves_nothing(tmp_path, photo):
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "jaxdream", "dream", str(photo), "-o", str(out / "o.png")]
    command += ["--size", "160", "--iterations", "1", "--steps", "1", "-q"]
    done = subprocess.run(  # files of at most 2 KiB (ulimit -f counts KiB)
        ["bash", "-c", 'ulimit -f 2 && exec "$@"', "bash", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, JAXDREAM_NO_CACHE="1"),
    )
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and err[-1].startswith("jaxdream: error: cannot write"), err
    assert "Traceback" not in done.stderr and os.listdir(out) == []


def test_a_closed_standard_output_prints_no_traceback():
    done = subprocess.run(
        f"{sys.executable} -m jaxdream info | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert len(done.stdout) == 10 and "Traceback" not in done.stderr, done.stderr


# --------------------------------------------------------------------------- 6. signals


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_long_dream_within_a_second(tmp_path, photo, sig, code):
    out = tmp_path / "o.png"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jaxdream",
            "dream",
            str(photo),
            "-o",
            str(out),
            "--size",
            "96",
            "--steps",
            "20000",
            "--iterations",
            "20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JAXDREAM_NO_CACHE="1", PYTHONFAULTHANDLER="1"),
    )
    try:
        time.sleep(8)  # imports and compile take 2-4 s here: well inside the compiled program
        early = proc.poll()
        if early is not None:  # (it runs for minutes)
            pytest.fail(f"ended early with {early}: {proc.communicate()}")
        sent = time.perf_counter()
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: where it hangs
            pytest.fail(f"no exit 60 s after the signal: {proc.communicate()[1][-3000:]}")
    finally:
        if proc.poll() is None:  # never leave a dream running behind a failed test
            proc.kill()
            proc.communicate()
    took = time.perf_counter() - sent
    assert proc.returncode == code, err
    # Interruptible, not a speed test: the dream would run for minutes; it stopped at once
    # (0.1-0.3 s measured), and anything under half a minute shows the signal was answered.
    assert took < 30, took
    assert os.listdir(tmp_path) == ["photo.png"]


def test_a_termination_while_writing_leaves_no_temporary_file(tmp_path):
    script = f"""
import os, signal, time
from jaxdream import cli
from jaxdream._files import atomic_open
signal.signal(signal.SIGTERM, cli._core.on_sigterm)
with atomic_open({str(tmp_path / "o.png")!r}) as f:
    f.write(b"half an image")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 143 and os.listdir(tmp_path) == []


def test_a_stop_removes_what_another_thread_is_writing(tmp_path):
    script = f"""
import threading, time
from jaxdream import cli
from jaxdream._files import atomic_open
started = threading.Event()
def write():
    with atomic_open({str(tmp_path / "o.png")!r}) as f:
        f.write(b"x")
        started.set()
        time.sleep(30)
threading.Thread(target=write, daemon=True).start()
started.wait()
cli._core.stop(130, "interrupted")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 130 and os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- 7. limits


def test_the_pixel_limit_is_the_documented_one(tmp_path, monkeypatch):
    docs = Path(__file__).parents[1] / "docs" / "carving.md"
    text = " ".join(docs.read_text().split())
    assert imageio.MAX_PIXELS == 100_000_000
    assert "images over 100 million pixels are refused" in text
    monkeypatch.setattr(imageio, "MAX_PIXELS", 100 * 100)
    Image.new("L", (100, 100)).save(tmp_path / "at.png")
    Image.new("L", (100, 101)).save(tmp_path / "over.png")
    assert load_photo(tmp_path / "at.png").gray.shape == (100, 100)
    assert imageio.photo_shape(tmp_path / "at.png") == (100, 100)
    for reader in (load_photo, imageio.photo_shape):
        with pytest.raises(JaxdreamError, match="too large"):
            reader(tmp_path / "over.png")


# --------------------------------------------------------------------------- 8. parser errors


@pytest.mark.parametrize(
    "argv",
    [[], ["nonsense"], ["dream", "--steps", "x"], ["oip", "--no-such-flag"], ["dream", "--size"]],
)
def test_argument_errors_are_one_line(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: "), err


# --------------------------------------------------------------------------- 9. API types


@pytest.mark.parametrize(
    "call",
    [
        lambda p: dream([[0.1, 0.2], [0.3, 0.4]], params=p),
        lambda p: dream(b"\x89PNG\r\n\x1a\n....", params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(size=(48, 48, 3)), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(size=48.5), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(levels=[1]), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(steps="30"), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(levels=(Level(1, tiles=(0.5,)),)), params=p),
        lambda p: dream(np.zeros((4, 4)), "article", params=p),
        lambda p: dream_many("photo.jpg", params=p),
        lambda p: save_image("x.png", np.zeros((4, 4), np.float64)),
        lambda p: save_image("x.png", np.zeros((0, 4), np.uint8)),
        lambda p: Display(fact=float("nan")),
    ],
)
def test_the_python_api_raises_its_own_errors(bundled, call):
    _, params = bundled
    with pytest.raises(JaxdreamError):
        call(params)


def test_an_empty_list_of_photos_dreams_nothing(bundled):
    assert dream_many([], params=bundled[1]) == []


# --------------------------------------------------------------------------- properties

PROPERTIES = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LEVEL_ALPHABET = "0123456789:/*,=;-+.e abclogitconv_squarenan"


@PROPERTIES
@given(st.text(alphabet=LEVEL_ALPHABET, max_size=30))
def test_any_level_text_parses_or_raises_our_error(text):
    try:
        level = parse_level(text)
    except JaxdreamError:
        return
    assert isinstance(level, Level)


@PROPERTIES
@given(
    st.text(max_size=40) | st.text(alphabet="conv123:logit*+-. 0.5e9nanmean_square", max_size=40)
)
def test_any_objective_text_parses_or_raises_our_error(text):
    try:
        objective = parse_objective(text)
    except JaxdreamError:
        return
    assert objective.name


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
    st.booleans(),
)


@PROPERTIES
@given(
    size=NUMBERS | st.tuples(NUMBERS, NUMBERS),
    iterations=NUMBERS,
    steps=NUMBERS,
    epsilon=NUMBERS,
    seed=NUMBERS,
    overlap=NUMBERS,
    weight=NUMBERS,
    level=NUMBERS,
    map_=NUMBERS,
)
def test_any_numbers_give_a_valid_config_or_our_error(
    bundled, size, iterations, steps, epsilon, seed, overlap, weight, level, map_
):
    model, _ = bundled
    config = DreamConfig(
        size=size,
        iterations=iterations,
        steps=steps,
        epsilon=epsilon,
        seed=seed,
        overlap=overlap,
        map=map_,
        levels=(Level(level, weight=weight),),
    )
    try:
        config.check(model)
        h, w = config.working_shape((40, 60))
        config.knobs()
    except JaxdreamError:
        return
    assert 1 <= h <= 8192 and 1 <= w <= 8192 and config.tile_count() >= 1
