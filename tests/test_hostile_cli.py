"""The command line's new surfaces tried as a hostile user would (issue 21): outputs, folders,
several processes, the explorer's work, presets and negated objectives. A refusal is one line
``jaxdream: error: ...``, exit 2, before any work, with nothing made; a folder run reports each
bad photo with its true reason, finishes the rest and exits 1."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxdream.cli import build_parser, main, parse_args
from jaxdream.cli._core import dream_config, join_option_values
from jaxdream.objectives import parse_objective

FAST = ["--size", "32", "--iterations", "1", "--steps", "1", "--levels", "0", "-q"]


def _photo(path, h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _refused(capsys, argv, *folders):
    """One line, code 2, and every folder in ``folders`` as it was."""
    before = [sorted(os.listdir(f)) for f in folders]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: "), err
    assert [sorted(os.listdir(f)) for f in folders] == before
    return err[0]


def _args(argv):
    return parse_args(argv)


# --------------------------------------------------------------------------- objectives, presets


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
    err = _refused(
        capsys,
        ["dream", "--objective", "conv2", "--map", "5", "-o", str(tmp_path / "o.png"), *FAST],
        tmp_path,
    )
    assert "--objective replaces --map" in err


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    "output, says", [("/proc/self/x.png", "not writable"), ("/sys/x.png", "cannot be written")]
)
def test_outputs_the_kernel_refuses_are_refused_before_work(tmp_path, capsys, output, says):
    photo = _photo(tmp_path / "a.png")
    for argv in (
        ["dream", str(photo), "-o", output, *FAST],
        ["dream", str(photo), "-o", str(tmp_path / "o.png"), "--figure", output, *FAST],
        ["explore", str(photo), "-o", output, "--maps", "1", "--size", "32"],
        ["oip", "-o", output, "--steps", "1"],
    ):
        assert says in _refused(capsys, argv, tmp_path)


def test_no_command_writes_over_its_own_input(tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    data = photo.read_bytes()
    for argv in (
        ["explore", str(photo), "-o", str(photo), "--maps", "1", "--size", "32", "-q"],
        ["oip", "--start", str(photo), "-o", str(photo), "--steps", "1", "-q"],
        ["oip", "--start", str(tmp_path / "." / "a.png"), "-o", str(photo), "--steps", "1"],
    ):
        assert "is the input photo" in _refused(capsys, argv, tmp_path)
    assert photo.read_bytes() == data


def test_no_folder_is_made_before_a_refusal(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    err = _refused(
        capsys,
        ["dream", str(photos), "-o", str(tmp_path / "out"), "--figure", "/sys/figures", *FAST],
        tmp_path,
        photos,
    )
    assert "--figure" in err and not (tmp_path / "out").exists()
    err = _refused(
        capsys,
        ["dream", str(photos), "-o", str(tmp_path / "out"), *FAST, "--steps", "-1"],
        tmp_path,
    )
    assert "steps" in err and not (tmp_path / "out").exists()


def test_the_output_folder_may_not_be_an_input_folder(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.jpg")
    err = _refused(capsys, ["dream", str(photos), "-o", str(photos), *FAST], photos)
    assert "is an input folder" in err


# --------------------------------------------------------------------------- folders


def test_folder_outputs_never_collide_and_reruns_skip_their_own_outputs(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "b.png", seed=1)
    _photo(photos / "b-stages.png", seed=2)
    out = photos / "dreams"  # inside the input folder
    argv = ["dream", str(photos), "-o", str(out), "--figure", str(out), "--recursive", *FAST]
    assert main(argv) == 0
    names = sorted(os.listdir(out))
    # Sorted, b-stages.png comes first and takes b-stages.png (and b-stages-stages.png); b's
    # figure would be b-stages.png too, so b becomes b-2: four different files.
    assert names == ["b-2-stages.png", "b-2.png", "b-stages-stages.png", "b-stages.png"]
    with Image.open(out / "b-2.png") as dreamt:
        assert dreamt.size == (40, 30)
    capsys.readouterr()
    assert main(argv) == 0  # the rerun walks photos/ but not its output folder
    said = capsys.readouterr().out
    assert "dreamed 2 photos" in said
    assert sorted(os.listdir(out)) == names


def test_skip_existing_redoes_a_damaged_output(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        _photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    argv = ["dream", str(photos), "-o", str(out), *FAST]
    assert main(argv) == 0
    good = (out / "p1.png").read_bytes()
    (out / "p1.png").write_bytes(good[: len(good) // 2])  # an interrupted copy
    (out / "p2.png").write_text("not an image")
    capsys.readouterr()
    assert main([*argv, "--skip-existing"]) == 0
    captured = capsys.readouterr()
    assert "(1 skipped as done, 0 failed)" in captured.out
    assert f"redoing {photos / 'p1.png'}: {out / 'p1.png'} it is not a whole image" in captured.err
    assert f"redoing {photos / 'p2.png'}: {out / 'p2.png'}" in captured.err
    assert (out / "p1.png").read_bytes() == good


def test_an_unlistable_subfolder_is_reported_with_its_reason(tmp_path, capsys, monkeypatch):
    import jaxdream.many as many

    photos = tmp_path / "photos"
    (photos / "locked").mkdir(parents=True)
    _photo(photos / "a.png")
    _photo(photos / "locked" / "b.png")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(many.os, "scandir", scandir)
    argv = ["dream", str(photos), "-o", str(tmp_path / "out"), "--recursive", *FAST]
    assert main(argv) == 1  # one problem, the rest dreamt
    captured = capsys.readouterr()
    assert (
        f"jaxdream: skipped {photos / 'locked'}: cannot list the folder: Permission denied"
        in captured.err
    )
    assert os.listdir(tmp_path / "out") == ["a.png"]


def test_a_batch_larger_than_the_photos_is_bounded(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png")
    out = tmp_path / "out"
    assert main(["dream", str(photos), "-o", str(out), "--batch-size", "65536", *FAST]) == 0
    assert os.listdir(out) == ["a.png"]
    err = _refused(
        capsys, ["dream", str(photos), "-o", str(out), "--batch-size", "1000000000", *FAST], out
    )
    assert "--batch-size must be in 1..65,536" in err


# --------------------------------------------------------------------------- the explorer


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--maps", "0-100000000"], "maps must be in 0..63"),
        (["--maps", ",".join(["1"] * 5000)], "map 1 is listed twice"),
        (["--maps", "9-2"], "empty range"),
        (["--maps", "1,x"], "--maps takes"),
        (["--cell", "100000"], "--cell must be in 8..2,048"),
        (["--columns", "0"], "--columns must be in 1..1,024"),
        (["--maps", "all", "--cell", "2048", "--columns", "1"], "a smaller --cell"),
        (["--maps", "all", "--iterations", "1000", "--steps", "100"], "tile steps"),
        (["--maps", "all", "--size", "4096"], "pixels"),
    ],
)
def test_the_explorers_work_is_bounded_as_a_whole(tmp_path, capsys, flags, says):
    photo = _photo(tmp_path / "a.png")
    argv = ["explore", str(photo), "-o", str(tmp_path / "s.png"), "--layer", "conv3", "-q"]
    assert says in _refused(capsys, [*argv, *flags], tmp_path)


# --------------------------------------------------------------------------- several processes


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--num-processes", "2", "--process-id", "1"], "without --coordinator-address"),
        (["--process-id", "0"], "--process-id without"),
        (["--coordinator-address", "localhost"], "without --num-processes and --process-id"),
        (["--coordinator-address", "h", "--num-processes", "2", "--process-id", "0"], "no port"),
        (["--coordinator-address", "h:1", "--num-processes", "2", "--process-id", "2"], "0..1"),
        (["--coordinator-address", "::1:80", "--num-processes", "2", "--process-id", "0"], "IPv6"),
        (["--coordinator-address", "h:70000", "--num-processes", "2", "--process-id", "0"], "1.."),
    ],
)
def test_multi_process_flags_that_do_not_fit_are_refused(tmp_path, capsys, flags, says):
    photo = _photo(tmp_path / "a.png")
    argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *FAST, *flags]
    assert says in _refused(capsys, argv, tmp_path)


def test_a_coordinator_port_in_use_is_one_line_not_a_crash(tmp_path, capsys):
    photo = _photo(tmp_path / "a.png")
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        argv = ["dream", str(photo), "-o", str(tmp_path / "o.png"), *FAST]
        argv += ["--coordinator-address", f"localhost:{port}"]
        argv += ["--num-processes", "2", "--process-id", "0"]
        assert f"port {port}: it is in use" in _refused(capsys, argv, tmp_path)


def test_distributed_outside_a_cluster_is_one_line(tmp_path):
    photo = _photo(tmp_path / "a.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "OMPI", "PMI"))}
    p = subprocess.run(
        [sys.executable, "-m", "jaxdream", "dream", str(photo), "-o", "o.png", "--distributed"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": os.getcwd(), "JAXDREAM_NO_CACHE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = [line for line in p.stderr.splitlines() if "Warning" not in line and line.strip()]
    assert p.returncode == 2, p.stderr
    assert len(err) == 1 and "--distributed found no cluster" in err[0], err
    assert os.listdir(tmp_path) == ["a.png"]
