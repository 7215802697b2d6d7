"""Many photos: shape groups, batches over devices, errors per photo, folders on the command
line, several processes."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import many
from jaxdream.cli import main
from jaxdream.config import DreamConfig, Level
from jaxdream.dreaming import dream, dream_many
from jaxdream.errors import ConfigError, ImageError, JaxdreamError, ResourceError
from jaxdream.imageio import load_photo, photo_shape
from jaxdream.many import MAX_BATCH, dream_photos
from jaxdream.photos import damaged_output, find_photos, output_paths
from tests.helpers import (
    REPO,
    SMALL_DREAM_FLAGS,
    TINY_DREAM_FLAGS,
    jaxdream_process,
    refused,
    two_processes,
    write_photo,
)

CFG = DreamConfig(size=48, iterations=1, steps=2, levels=(Level(0), Level(1)))
CFG_FLAGS = [*SMALL_DREAM_FLAGS, "--levels", "0", "1"]  # CFG on the command line
TINY_CFG = DreamConfig(size=16, iterations=1, steps=1, map=1)
PHOTO = np.random.default_rng(0).random((30, 30))
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
    argv = [
        "dream",
        str(folder),
        str(folder / "p1.png"),
        "-o",
        f"{out}/",
        "--recursive",
        *CFG_FLAGS,
    ]
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
    assert main(["dream", str(folder / "p2.png"), "-o", str(single), *CFG_FLAGS]) == 0
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
    assert main(["dream", str(folder), "-o", str(tmp_path / output), *CFG_FLAGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: ") and pattern in err[0], err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


USER_NETWORK = ["--network", f"{REPO / 'tests' / 'networks' / 'linen_cnn.py'}:NET"]


@pytest.mark.slow
@pytest.mark.parametrize("network", [[], USER_NETWORK], ids=["bundled", "user-linen"])
def test_four_devices_and_two_processes_write_the_single_device_bytes(tmp_path, folder, network):
    from jaxdream.runtime import DEVICE_FLAGS, cpu_flags

    (folder / "broken.jpg").unlink()
    args = ["dream", str(folder), *CFG_FLAGS, *network]
    one_device = f"{DEVICE_FLAGS.format(n=1)} {cpu_flags(1)}"
    one = jaxdream_process([*args, "-o", str(tmp_path / "one")], tmp_path, one_device)
    four = jaxdream_process([*args, "-o", str(tmp_path / "four")], tmp_path, cpu_flags(4))
    errors = [p.communicate(timeout=300)[1] for p in (one, four)]  # both, before asserting
    for p, err in zip((one, four), errors, strict=True):
        assert p.returncode == 0, err
    assert _files(tmp_path / "one") == _files(tmp_path / "four")
    assert len(_files(tmp_path / "one")) == len(SHAPES)

    hosts = two_processes([*args, "-o", str(tmp_path / "two")], tmp_path)
    said = []
    for out, err in [p.communicate(timeout=300) for p in hosts]:
        assert not err or "Traceback" not in err, err
        said.append(out)
    assert [p.returncode for p in hosts] == [0, 0]
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
    assert "process 0 of 2" in said[0] and "process 1 of 2" in said[1]
    counts = [int(s.split("dreamed ")[1].split()[0]) for s in said]
    assert sorted(counts) == [3, 3]  # each process dreamt its own share


def test_an_empty_list_of_photos_dreams_nothing(bundled):
    assert dream_many([], params=bundled[1]) == []


def test_folder_outputs_never_collide_and_reruns_skip_their_own_outputs(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_photo(photos / "b.png", seed=1)
    write_photo(photos / "b-stages.png", seed=2)
    out = photos / "dreams"  # inside the input folder
    argv = [
        "dream",
        str(photos),
        "-o",
        str(out),
        "--figure",
        str(out),
        "--recursive",
        *TINY_DREAM_FLAGS,
    ]
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
        write_photo(photos / f"p{i}.png", seed=i)
    out = tmp_path / "out"
    argv = ["dream", str(photos), "-o", str(out), *TINY_DREAM_FLAGS]
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
    write_photo(photos / "a.png")
    write_photo(photos / "locked" / "b.png")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(many.os, "scandir", scandir)
    argv = ["dream", str(photos), "-o", str(tmp_path / "out"), "--recursive", *TINY_DREAM_FLAGS]
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
    write_photo(photos / "a.png")
    out = tmp_path / "out"
    assert (
        main(["dream", str(photos), "-o", str(out), "--batch-size", "65536", *TINY_DREAM_FLAGS])
        == 0
    )
    assert os.listdir(out) == ["a.png"]
    err = refused(
        capsys,
        ["dream", str(photos), "-o", str(out), "--batch-size", "1000000000", *TINY_DREAM_FLAGS],
        out,
    )
    assert "--batch-size must be in 1..65,536" in err


# -------------------------------------------------------------------- bad arguments to dream_photos


@pytest.mark.parametrize(
    "batch, says",
    [(2.5, "whole number"), ("2", "whole number"), (True, "whole number"), (0, "1..")],
)
def test_batch_sizes_must_be_whole_positive_numbers(tiny, batch, says):
    model, params = tiny
    with pytest.raises(ConfigError, match=f"batch size must be .*{says}"):
        dream_photos([PHOTO], TINY_CFG, model=model, params=params, batch_size=batch)


def test_a_huge_batch_size_is_refused_and_a_large_one_is_bounded_by_the_photos(tiny):
    model, params = tiny
    with pytest.raises(ConfigError, match=f"1..{MAX_BATCH:,}"):
        dream_photos([PHOTO], TINY_CFG, model=model, params=params, batch_size=10**9)
    run = dream_photos([PHOTO, PHOTO], TINY_CFG, model=model, params=params, batch_size=MAX_BATCH)
    assert [o.error for o in run] == [None, None]
    assert [program.batch for program in run._programs.values()] == [2]  # not 65,536


@pytest.mark.parametrize("config", [None, {}, "vivid", DreamConfig])
def test_config_must_be_a_dream_config(tiny, config):
    model, params = tiny
    with pytest.raises(ConfigError, match="config must be a DreamConfig"):
        dream_photos([PHOTO], config, model=model, params=params)


@pytest.mark.parametrize("photos", ["a.png", b"a.png", PHOTO])
def test_one_photo_alone_is_refused_saying_how(tiny, tmp_path, photos):
    model, params = tiny
    with pytest.raises(ImageError, match=r"dream_photos\(\[photo\]\)"):
        dream_photos(photos, TINY_CFG, model=model, params=params)


def test_a_folder_name_alone_is_refused_too(tiny, tmp_path):
    model, params = tiny
    with pytest.raises(ImageError, match=r"not one PosixPath|not one str"):
        dream_photos(tmp_path, TINY_CFG, model=model, params=params)


@pytest.mark.parametrize("photos", [None, 5, 2.5])
def test_photos_must_be_a_list(tiny, photos):
    model, params = tiny
    with pytest.raises(ImageError, match="takes a list of photos"):
        dream_photos(photos, TINY_CFG, model=model, params=params)


BAD_PHOTOS = [
    None,
    5,
    {},
    np.full((30, 30), np.nan),
    np.zeros((30, 30, 7)),
    np.array([["a"]]),
    np.zeros((0, 30)),
    np.zeros((30, 30), complex),
    np.array([[None]]),
    "/nonexistent/photo.png",
]


@pytest.mark.parametrize("bad", BAD_PHOTOS, ids=range(len(BAD_PHOTOS)))
def test_a_bad_photo_fails_only_its_own_outcome(tiny, bad):
    model, params = tiny
    outcomes = list(dream_photos([PHOTO, bad, PHOTO], TINY_CFG, model=model, params=params))
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert isinstance(outcomes[1].error, JaxdreamError) and outcomes[1].result is None
    assert outcomes[0].error is None and outcomes[2].error is None
    np.testing.assert_array_equal(outcomes[0].result.image, outcomes[2].result.image)


# ---------------------------------------------- the walk of folders, output names, finished outputs


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "out").mkdir()
    for name in ("b.png", "a.jpg", ".h.png", "notes.txt", "sub/c.png", "sub/deeper/d.png"):
        write_photo(root / name) if name.endswith((".png", ".jpg")) else (root / name).write_text(
            "x"
        )
    write_photo(root / ".hidden" / "e.png")
    write_photo(root / "out" / "a.png")  # a dream of an earlier run
    os.symlink(root / "nowhere.png", root / "broken.png")
    os.symlink(root / "sub", root / "loop")  # a symlinked folder: not followed
    return root


def test_the_walk_finds_photos_and_says_what_it_could_not(tree):
    found, problems = find_photos([tree], recursive=True, exclude=[tree / "out"])
    names = [os.path.relpath(p, tree) for p in found]
    assert names == ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.png"]
    assert problems == [(str(tree / "broken.png"), "it is a broken link")]


def test_without_recursive_only_the_top_folder(tree):
    found, _ = find_photos([tree])
    assert [os.path.basename(p) for p in found] == ["a.jpg", "b.png"]


def test_output_folders_inside_inputs_are_not_walked_however_named(tree):
    found, _ = find_photos([tree], recursive=True, exclude=[str(tree / "sub" / ".." / "out")])
    assert all("out" not in os.path.relpath(p, tree).split(os.sep) for p in found)
    found, _ = find_photos([tree], recursive=True)
    assert str(tree / "out" / "a.png") in found  # only the run's own folders are left out


def test_unlistable_folders_are_reported_with_the_systems_reason(tree, monkeypatch):
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(many.os, "scandir", scandir)
    found, problems = find_photos([tree], recursive=True, exclude=[tree / "out"])
    assert [os.path.basename(p) for p in found] == ["a.jpg", "b.png"]
    assert (str(tree / "sub"), "cannot list the folder: Permission denied") in problems


def test_missing_inputs_are_reported(tmp_path):
    found, problems = find_photos([tmp_path / "nope.png", tmp_path / "nope"])
    assert found == []
    assert [why for _, why in problems] == ["it does not exist"] * 2


def test_outputs_of_one_run_never_collide(tmp_path):
    photos = ["x/b.jpg", "y/b.png", "b-stages.jpg", "b-2.png", "b-stages-2.gif"]
    jobs = output_paths(photos, "out", gif="out", figure="out")
    every = [p for job in jobs for p in job.values()]
    assert len(set(every)) == len(every) == 3 * len(photos)
    assert jobs[0] == {"output": "out/b.png", "gif": "out/b.gif", "figure": "out/b-stages.png"}
    assert output_paths(photos, "out") == output_paths(photos, "out")  # the same names again


def test_an_output_that_is_an_input_is_refused(tmp_path):
    photo = str(write_photo(tmp_path / "a.png"))
    with pytest.raises(ImageError, match="would overwrite an input photo"):
        output_paths([photo], str(tmp_path))
    figure = str(write_photo(tmp_path / "b-stages.png"))
    with pytest.raises(ImageError, match="would overwrite an input photo"):
        output_paths([str(tmp_path / "x" / "b.jpg"), figure], "elsewhere", figure=str(tmp_path))


def test_what_counts_as_a_finished_output(tmp_path):
    good = tmp_path / "good.png"
    write_photo(good)
    data = good.read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "flipped.png").write_bytes(data[:-20] + bytes(20))
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "dir.png").mkdir()
    assert damaged_output(good) is None
    assert damaged_output(tmp_path / "missing.png") == "it is missing"
    assert damaged_output(tmp_path / "empty.png") == "it is empty"
    assert damaged_output(tmp_path / "dir.png") == "it is not a file"
    for name in ("half.png", "flipped.png", "text.png"):
        assert damaged_output(tmp_path / name) == "it is not a whole image", name


def test_unreadable_photos_are_reported_with_the_systems_reason(tree, monkeypatch):
    real = os.open

    def fake_open(path, flags, *args, **kwargs):
        if os.fspath(path).endswith("b.png"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(many.os, "open", fake_open)
    found, problems = find_photos([tree, tree / "sub" / "c.png"], exclude=[tree / "out"])
    assert [os.path.basename(p) for p in found] == ["a.jpg", "c.png"]
    assert (str(tree / "b.png"), "cannot read it: Permission denied") in problems


def test_an_unreadable_single_photo_says_so(tmp_path, monkeypatch):
    from jaxdream import _files

    photo = str(write_photo(tmp_path / "a.png"))
    real = os.open
    monkeypatch.setattr(
        _files.os,
        "open",
        lambda p, *a, **k: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if os.fspath(p) == photo
            else real(p, *a, **k)
        ),
    )
    with pytest.raises(ImageError, match=f"cannot read {photo}: Permission denied"):
        _files.check_regular_file(photo, 10**6)
