"""The command line's refusals: every value, file, output and signal a user can throw at it
gives one line ``jaxdream: error: ...`` and exit code 2, before any work, with nothing made or
left half written; parsed objectives and presets mean what they say."""

import os
import signal
import subprocess
import sys
import time

import pytest

from jaxdream.cli import build_parser, main, parse_args
from jaxdream.cli._core import dream_config, join_option_values
from jaxdream.objectives import parse_objective
from tests.helpers import SMALL_DREAM_FLAGS, TINY_DREAM_FLAGS, refused, write_photo

# --------------------------------------------------------------------------- numbers


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
    argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *SMALL_DREAM_FLAGS, *flags]
    assert says in refused(capsys, argv, tmp_path)


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
    assert says in refused(capsys, argv, tmp_path)


@pytest.mark.parametrize(
    "flags",
    [["--epochs", "99999999999999999999"], ["--batch-size", "1000000000"], ["--seed", "-1"]],
)
def test_train_numbers_at_their_limits(tmp_path, capsys, flags):
    refused(capsys, ["train", "-o", str(tmp_path / "w.msgpack"), *flags], tmp_path)


# --------------------------------------------------------------------------- special files


def test_a_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    for argv in (
        ["dream", str(fifo), "-o", str(tmp_path / "o.png")],
        ["dream", "-o", str(tmp_path / "o.png"), "--weights", str(fifo)],
    ):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "jaxdream", *argv, *SMALL_DREAM_FLAGS],
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
    refused(capsys, [*argv, *SMALL_DREAM_FLAGS], tmp_path)


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("name", ["o.h5", "o.xbm", "o.blp", "o.psd"])
def test_outputs_pillow_cannot_write_are_refused_before_the_dream(tmp_path, photo, capsys, name):
    argv = ["dream", str(photo), "-o", str(tmp_path / name), *SMALL_DREAM_FLAGS]
    assert "write" in refused(capsys, argv, tmp_path)


@pytest.mark.parametrize("flag", ["--gif", "--figure"])
def test_every_output_is_checked_before_any_is_written(tmp_path, photo, capsys, flag):
    bad = "anim.png" if flag == "--gif" else "fig.xbm"
    argv = [
        "dream",
        str(photo),
        "-o",
        str(tmp_path / "o.png"),
        flag,
        str(tmp_path / bad),
        *SMALL_DREAM_FLAGS,
    ]
    refused(capsys, argv, tmp_path)


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


# --------------------------------------------------------------------------- signals


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


# --------------------------------------------------------------------------- parser errors


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


# --------------------------------------------------------------------------- objectives and presets


def _args(argv):
    return parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["dream", "--objective", "-conv3:56"],
        ["dream", "--objective=-conv3:56"],
        ["dream", "--objective", "- conv3:56"],
    ],
)
def test_a_negated_objective_is_a_flag_value(argv):
    config = dream_config(_args(argv))
    assert config.default_objective().name == parse_objective("0 - conv3:56").name


def test_an_objective_flag_without_a_value_is_still_refused(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser(None).parse_args(join_option_values(["dream", "--objective", "-q"]))
    assert e.value.code == 2
    assert "expected one argument" in capsys.readouterr().err


def test_preset_twice_is_the_last_as_argparse_takes_it():
    twice = _args(["dream", "--preset", "article", "--preset", "emboss"])
    once = _args(["dream", "--preset", "emboss"])
    assert twice.preset == "emboss" and twice.color == once.color
    assert dream_config(twice) == dream_config(once)


def test_layer_and_map_typed_beside_a_preset_objective_win_over_it():
    config = dream_config(_args(["dream", "--preset", "emboss", "--map", "5"]))
    assert config.objective is None and config.default_objective().name == "channel(conv3, 5)"
    config = dream_config(_args(["dream", "--preset", "emboss"]))
    assert config.default_objective().name == "mean_square(conv2)"


def test_objective_typed_with_map_is_refused(tmp_path, capsys):
    err = refused(
        capsys,
        [
            "dream",
            "--objective",
            "conv2",
            "--map",
            "5",
            "-o",
            str(tmp_path / "o.png"),
            *TINY_DREAM_FLAGS,
        ],
        tmp_path,
    )
    assert "--objective replaces --map" in err


# --------------------------------------------------------------------------- outputs and folders


@pytest.mark.parametrize(
    "output, says", [("/proc/self/x.png", "not writable"), ("/sys/x.png", "cannot be written")]
)
def test_outputs_the_kernel_refuses_are_refused_before_work(tmp_path, capsys, output, says):
    photo = write_photo(tmp_path / "a.png")
    for argv in (
        ["dream", str(photo), "-o", output, *TINY_DREAM_FLAGS],
        ["dream", str(photo), "-o", str(tmp_path / "o.png"), "--figure", output, *TINY_DREAM_FLAGS],
        ["explore", str(photo), "-o", output, "--maps", "1", "--size", "32"],
        ["oip", "-o", output, "--steps", "1"],
    ):
        assert says in refused(capsys, argv, tmp_path)


def test_no_command_writes_over_its_own_input(tmp_path, capsys):
    photo = write_photo(tmp_path / "a.png")
    data = photo.read_bytes()
    for argv in (
        ["explore", str(photo), "-o", str(photo), "--maps", "1", "--size", "32", "-q"],
        ["oip", "--start", str(photo), "-o", str(photo), "--steps", "1", "-q"],
        ["oip", "--start", str(tmp_path / "." / "a.png"), "-o", str(photo), "--steps", "1"],
    ):
        assert "is the input photo" in refused(capsys, argv, tmp_path)
    assert photo.read_bytes() == data


def test_no_folder_is_made_before_a_refusal(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "a.png")
    err = refused(
        capsys,
        [
            "dream",
            str(photos),
            "-o",
            str(tmp_path / "out"),
            "--figure",
            "/sys/figures",
            *TINY_DREAM_FLAGS,
        ],
        tmp_path,
        photos,
    )
    assert "--figure" in err and not (tmp_path / "out").exists()
    err = refused(
        capsys,
        ["dream", str(photos), "-o", str(tmp_path / "out"), *TINY_DREAM_FLAGS, "--steps", "-1"],
        tmp_path,
    )
    assert "steps" in err and not (tmp_path / "out").exists()


def test_the_output_folder_may_not_be_an_input_folder(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "a.jpg")
    err = refused(capsys, ["dream", str(photos), "-o", str(photos), *TINY_DREAM_FLAGS], photos)
    assert "is an input folder" in err
