"""Many photos: shape groups, batches over devices, errors per photo, folders on the command
line, several processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import many
from jaxdream.cli import main
from jaxdream.config import DreamConfig, Level
from jaxdream.dreaming import dream, dream_many
from jaxdream.errors import ImageError, ResourceError
from jaxdream.imageio import load_photo, photo_shape
from jaxdream.many import dream_photos
from jaxdream.photos import find_photos, output_paths

CFG = DreamConfig(size=48, iterations=1, steps=2, levels=(Level(0), Level(1)))
FAST = ["--size", "48", "--iterations", "1", "--steps", "2", "--levels", "0", "1", "-q"]
SHAPES = [(60, 80), (80, 60), (45, 80), (60, 80), (50, 50), (61, 80)]


@pytest.fixture
def folder(tmp_path):
    """Photos of mixed sizes (two of one stem), a broken file and a hidden one."""
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i, (h, w) in enumerate(SHAPES):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(photos / "sub" / "p0.jpg")
    (photos / "broken.jpg").write_text("not an image")
    (photos / ".hidden.png").write_bytes((photos / "p0.png").read_bytes())
    return photos


def test_photo_shape_reads_headers_as_load_photo_sees_them(tmp_path):
    img = Image.fromarray(np.zeros((30, 50), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif)
    assert photo_shape(tmp_path / "r.jpg") == load_photo(tmp_path / "r.jpg").gray.shape == (50, 30)
    with pytest.raises(ImageError, match="not an image"):
        (tmp_path / "x.png").write_text("x")
        photo_shape(tmp_path / "x.png")


def test_dream_photos_in_order_with_errors_and_one_program_per_shape(bundled, folder):
    _, params = bundled
    paths = sorted(str(p) for p in folder.glob("*.*") if not p.name.startswith("."))
    run = dream_photos(paths, CFG, params=params)
    outcomes = list(run)
    assert [o.index for o in outcomes] == list(range(len(paths)))
    bad = [o for o in outcomes if o.error is not None]
    assert [Path(o.source).name for o in bad] == ["broken.jpg"]
    assert isinstance(bad[0].error, ImageError)
    shapes = {o.result.image.shape for o in outcomes if o.result is not None}
    assert run.compiled == len(run.shapes) == len(shapes) < len(paths) - 1
    for o in outcomes:
        if o.result is not None:
            alone = dream(o.source, CFG, params=params)
            np.testing.assert_array_equal(o.result.to_uint8(), alone.to_uint8())


def test_batches_smaller_than_the_group_and_memory_limits(bundled, folder, monkeypatch):
    _, params = bundled
    paths = [str(folder / "p0.png"), str(folder / "p3.png"), str(folder / "p0.png")]
    big = list(dream_photos(paths, CFG, params=params, batch_size=2))
    monkeypatch.setattr(many, "device_memory", lambda device: 1)  # nothing fits: batch 1
    run = dream_photos(paths, CFG, params=params)
    small = list(run)
    assert {key[1] for key in run._programs} == {1}
    for a, b in zip(big, small, strict=True):
        np.testing.assert_array_equal(a.result.image, b.result.image)


def test_out_of_memory_says_what_to_lower(bundled, folder, monkeypatch):
    _, params = bundled
    real = many.PhotoDreams._program

    def failing(self, shape, batch):
        program = real(self, shape, batch)

        def boom(*args):
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 123 bytes")

        program.compiled = boom
        return program

    monkeypatch.setattr(many.PhotoDreams, "_program", failing)
    with pytest.raises(ResourceError, match="lower --batch-size"):
        list(dream_photos([str(folder / "p0.png")], CFG, params=params))


def test_dream_many_squeezes_no_photo_to_another_shape(bundled):
    _, params = bundled
    rng = np.random.default_rng(1)
    photos = [rng.random((40, 60)), rng.random((60, 40)), rng.random((40, 60))]
    results = dream_many(photos, CFG, params=params)
    assert [r.image.shape for r in results] == [(32, 48), (48, 32), (32, 48)]
    for i in (0, 1):  # image i's key is fold_in(seed, i): the lone dream's for i = 0
        np.testing.assert_allclose(
            results[i].image,
            dream_many([photos[i]] * (i + 1), CFG, params=params)[i].image,
            atol=1e-5,
        )


def test_find_photos_and_output_names(folder):
    found, missing = find_photos([folder, folder / "nope.png"])
    names = [Path(p).name for p in found]
    assert ".hidden.png" not in names and "broken.jpg" in names and "p0.jpg" not in names
    assert missing == [(str(folder / "nope.png"), "it does not exist")]
    deep, _ = find_photos([folder], recursive=True)
    assert str(folder / "sub" / "p0.jpg") in deep
    names = [Path(p["output"]).stem for p in output_paths(deep, "out")]
    assert names.count("p0") == 1 and "p0-2" in names


def test_folder_on_the_command_line(tmp_path, folder, capsys):
    out = tmp_path / "out"
    argv = ["dream", str(folder), str(folder / "p1.png"), "-o", f"{out}/", "--recursive", *FAST]
    assert main([*argv, "--gif", str(tmp_path / "gifs")]) == 1  # broken.jpg failed
    err = capsys.readouterr()
    assert [ln for ln in err.err.splitlines() if ln.startswith("jaxdream: skipped")] == [
        f"jaxdream: skipped {folder / 'broken.jpg'}: {folder / 'broken.jpg'} is not an image "
        "that Pillow can read"
    ]
    assert "1 failed" in err.out and "compiled, " in err.out and "from the cache)" in err.out
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "p0-2.png",
        "p0.png",
        "p1-2.png",
        "p1.png",
        *[f"p{i}.png" for i in range(2, 6)],
    ]
    assert len(list((tmp_path / "gifs").iterdir())) == len(written)
    with Image.open(out / "p1.png") as a, Image.open(out / "p1-2.png") as b:
        assert a.tobytes() == b.tobytes()  # the same photo twice, the same dream
    single = tmp_path / "single.png"
    assert main(["dream", str(folder / "p2.png"), "-o", str(single), *FAST]) == 0
    assert single.read_bytes() == (out / "p2.png").read_bytes()

    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "p3.png").unlink()
    assert main([*argv, "--skip-existing"]) == 1
    said = capsys.readouterr().out
    assert "dreamed 1 photos (7 skipped as done, 1 failed)" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "p3.png"} == {
        k: v for k, v in stamps.items() if k != "p3.png"
    }


@pytest.mark.parametrize(
    "output, pattern",
    [
        ("photos", "overwrite an input photo"),
        ("file.png", "must be a folder"),
        ("no/out", "does not exist"),
    ],
)
def test_bad_output_folders_are_refused_before_any_work(tmp_path, folder, capsys, output, pattern):
    (tmp_path / "file.png").write_bytes(b"x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["dream", str(folder), "-o", str(tmp_path / output), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: ") and pattern in err[0], err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def _cli(args, env_flags, cwd, extra_env=None):
    env = dict(os.environ, XLA_FLAGS=env_flags, JAXDREAM_NO_CACHE="1", **(extra_env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "jaxdream", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_four_devices_and_two_processes_write_the_single_device_bytes(tmp_path, folder):
    from jaxdream.runtime import DEVICE_FLAGS, cpu_flags

    (folder / "broken.jpg").unlink()
    args = ["dream", str(folder), *FAST]
    one_device = f"{DEVICE_FLAGS.format(n=1)} {cpu_flags(1)}"
    one = _cli([*args, "-o", str(tmp_path / "one")], one_device, tmp_path)
    four = _cli([*args, "-o", str(tmp_path / "four")], cpu_flags(4), tmp_path)
    errors = [p.communicate(timeout=300)[1] for p in (one, four)]  # both, before asserting
    for p, err in zip((one, four), errors, strict=True):
        assert p.returncode == 0, err
    assert _files(tmp_path / "one") == _files(tmp_path / "four")
    assert len(_files(tmp_path / "one")) == len(SHAPES)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hosts = [
        _cli(
            [
                *args,
                "-o",
                str(tmp_path / "two"),
                "--coordinator-address",
                f"127.0.0.1:{port}",
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ],
            cpu_flags(2),
            tmp_path,
        )
        for i in range(2)
    ]
    said = []
    for out, err in [p.communicate(timeout=300) for p in hosts]:
        assert not err or "Traceback" not in err, err
        said.append(out)
    assert [p.returncode for p in hosts] == [0, 0]
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
    assert "process 0 of 2" in said[0] and "process 1 of 2" in said[1]
    counts = [int(s.split("dreamed ")[1].split()[0]) for s in said]
    assert sorted(counts) == [3, 3]  # each process dreamt its own share
