"""Folders tried as a hostile user would (issue 21, class 3), at the library's level: the walk
(hidden files, broken links, unlistable folders with the system's reason, the run's own output
folders left out), collision-free output names, and what counts as a finished output."""

import os

import numpy as np
import pytest
from PIL import Image

import jaxdream.many as many
from jaxdream.errors import ImageError
from jaxdream.photos import damaged_output, find_photos, output_paths


def _photo(path):
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(path)
    return str(path)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "out").mkdir()
    for name in ("b.png", "a.jpg", ".h.png", "notes.txt", "sub/c.png", "sub/deeper/d.png"):
        _photo(root / name) if name.endswith((".png", ".jpg")) else (root / name).write_text("x")
    _photo(root / ".hidden" / "e.png")
    _photo(root / "out" / "a.png")  # a dream of an earlier run
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
    photo = _photo(tmp_path / "a.png")
    with pytest.raises(ImageError, match="would overwrite an input photo"):
        output_paths([photo], str(tmp_path))
    figure = _photo(tmp_path / "b-stages.png")
    with pytest.raises(ImageError, match="would overwrite an input photo"):
        output_paths([str(tmp_path / "x" / "b.jpg"), figure], "elsewhere", figure=str(tmp_path))


def test_what_counts_as_a_finished_output(tmp_path):
    good = tmp_path / "good.png"
    _photo(good)
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

    photo = _photo(tmp_path / "a.png")
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
