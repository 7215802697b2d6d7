"""The library beneath ``jaxdream dream``, from Python: the photos of folders and their output
names (``jaxdream.photos``), the checks made before any work, a folder run planned and dreamed
with its files written (``jaxdream.folders``), and one photo's files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream.config import DreamConfig, Level
from jaxdream.display import Display
from jaxdream.dreaming import dream
from jaxdream.errors import ImageError
from jaxdream.folders import (
    check_dream_files,
    dream_folder_run,
    plan_folder_run,
    unchanged_maps,
    write_dream,
)
from jaxdream.photos import (
    OutputFolders,
    check_distinct,
    damaged_output,
    is_folder_run,
    output_folder,
    output_paths,
    plan_folder,
    plan_output_folders,
)

CFG = DreamConfig(size=32, map=5, iterations=1, steps=1, levels=(Level(0),))


def _photo(path, shape=(20, 30)) -> str:
    rng = np.random.default_rng(len(str(path)))
    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def photos(tmp_path):
    """``photos/`` with two photos and a file that is no image, ``photos/sub/`` with one."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    _photo(root / "a.png")
    _photo(root / "b.jpg", (24, 24))
    _photo(root / "sub" / "c.png")
    (root / "broken.png").write_text("not an image")
    return root


# --------------------------------------------------------------------------- jaxdream.photos


def test_a_folder_run_is_several_photos_or_a_folder(tmp_path, photos):
    assert not is_folder_run([str(photos / "a.png")], str(tmp_path / "dream.png"))
    assert not is_folder_run([], "dream.png")
    assert is_folder_run([str(photos)], "dream.png")
    assert is_folder_run([str(photos / "a.png"), str(photos / "b.jpg")], "out")
    assert is_folder_run([str(photos / "a.png")], str(tmp_path))  # an existing folder out
    assert is_folder_run([str(photos / "a.png")], "new/")


def test_output_names_never_collide_and_never_overwrite_a_photo(tmp_path):
    jobs = output_paths(["x/cat.jpg", "y/cat.png", "z/cat.gif"], "out", gif="out")
    assert [p["output"] for p in jobs] == ["out/cat.png", "out/cat-2.png", "out/cat-3.png"]
    assert [p["gif"] for p in jobs] == ["out/cat.gif", "out/cat-2.gif", "out/cat-3.gif"]
    assert [p["figure"] for p in jobs] == [None, None, None]
    photo = _photo(tmp_path / "a.png")
    with pytest.raises(ImageError, match="would overwrite an input photo"):
        output_paths([photo], str(tmp_path))


def test_a_damaged_output_is_told_from_a_whole_one(tmp_path):
    whole = _photo(tmp_path / "whole.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(Path(whole).read_bytes()[:-20])
    assert damaged_output(whole) is None
    assert damaged_output(cut) == "it is not a whole image"
    assert damaged_output(tmp_path / "none.png") == "it is missing"


def test_outputs_that_overwrite_the_photo_or_one_another_are_refused(tmp_path):
    photo = _photo(tmp_path / "a.png")
    check_distinct(photo, [str(tmp_path / "b.png"), str(tmp_path / "c.gif")])
    with pytest.raises(ImageError, match="is the input photo"):
        check_distinct(photo, [str(tmp_path / "sub" / ".." / "a.png")])
    with pytest.raises(ImageError, match="is named for two outputs"):
        check_distinct(photo, [str(tmp_path / "b.png"), str(tmp_path / "b.png")])


def test_output_folders_are_checked_before_they_are_made(tmp_path, photos):
    assert plan_folder(None, "output") is None
    assert plan_folder(tmp_path / "new", "output") == tmp_path / "new"
    assert not (tmp_path / "new").exists()  # planned, not made
    with pytest.raises(ImageError, match="names an image file"):
        plan_folder(tmp_path / "out.png", "output")
    with pytest.raises(ImageError, match="does not exist"):
        plan_folder(tmp_path / "no" / "out", "--gif")
    with pytest.raises(ImageError, match="must be a folder"):
        plan_folder(photos / "a.png", "output")
    assert output_folder(tmp_path / "made", "output") == tmp_path / "made"
    assert (tmp_path / "made").is_dir()


def test_an_input_folder_is_no_output_folder(tmp_path, photos):
    with pytest.raises(ImageError, match=r"--gif folder .* is an input folder"):
        plan_output_folders([photos], tmp_path / "out", photos, names=("output", "--gif", "-f"))
    folders = plan_output_folders([photos], photos / "out", figure=tmp_path / "figures")
    assert folders == OutputFolders(photos / "out", None, tmp_path / "figures")
    assert folders.named() == [(photos / "out", "output"), (tmp_path / "figures", "figure")]
    assert not (photos / "out").exists()
    folders.make()
    assert (photos / "out").is_dir() and (tmp_path / "figures").is_dir()


# --------------------------------------------------------------------------- jaxdream.folders


def test_a_folder_run_planned_from_python(tmp_path, photos):
    folders = plan_output_folders([photos], photos / "out")
    plan = plan_folder_run([photos, tmp_path / "nope.png"], folders, recursive=True)
    assert (photos / "out").is_dir()  # made once every check passed
    names = [Path(photo).name for photo, _ in plan.jobs]
    assert names == ["a.png", "b.jpg", "broken.png", "c.png"]
    assert plan.jobs[0][1] == {"output": str(photos / "out" / "a.png"), "gif": None, "figure": None}
    assert plan.missing == [(str(tmp_path / "nope.png"), "it does not exist")]
    assert (plan.skipped, plan.redone) == (0, [])


def test_a_rerun_skips_whole_outputs_and_redoes_damaged_ones(photos):
    out = photos / "out"
    folders = plan_output_folders([photos], out)
    plan_folder_run([photos], folders)  # makes the folder
    _photo(out / "a.png")  # whole: done
    (out / "b.png").write_bytes(b"")  # an interrupted copy
    plan = plan_folder_run([photos], folders, skip_existing=True)
    assert [Path(photo).name for photo, _ in plan.jobs] == ["b.jpg", "broken.png"]
    assert plan.skipped == 1
    assert plan.redone == [(str(photos / "b.jpg"), str(out / "b.png"), "it is empty")]


def test_a_folder_run_dreams_writes_and_reports_each_photo(tiny, photos, tmp_path):
    model, params = tiny
    folders = plan_output_folders([photos], tmp_path / "out", gif=tmp_path / "gifs")
    plan = plan_folder_run([photos], folders)
    run = dream_folder_run(plan, CFG, model=model, params=params, batch_size=2)
    reports = {Path(photo).name: error for photo, error in run}
    assert set(reports) == {"a.png", "b.jpg", "broken.png"}
    assert reports["a.png"] is None and reports["b.jpg"] is None
    assert isinstance(reports["broken.png"], ImageError)
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]
    assert sorted(os.listdir(tmp_path / "gifs")) == ["a.gif", "b.gif"]
    assert damaged_output(tmp_path / "out" / "a.png") is None
    assert run.dreams.compiled >= 1 and run.dreams.shapes
    # the same bytes as one photo dreamt alone and written by write_dream
    alone = dream(photos / "a.png", CFG, model=model, params=params, return_frames=True)
    paths = {"output": str(tmp_path / "alone.png"), "gif": None, "figure": None}
    assert write_dream(alone, alone.photo, paths, Display(), False, "photo") == [paths["output"]]
    got = (tmp_path / "out" / "a.png").read_bytes()
    assert got == (tmp_path / "alone.png").read_bytes()


def test_one_photos_files_are_checked_before_any_work(tmp_path):
    photo = _photo(tmp_path / "a.png")
    check_dream_files(photo, str(tmp_path / "d.png"), str(tmp_path / "d.gif"))
    with pytest.raises(ImageError, match=r"must be written as \.gif"):
        check_dream_files(photo, str(tmp_path / "d.png"), str(tmp_path / "d.png"))
    with pytest.raises(ImageError, match="is the input photo"):
        check_dream_files(photo, photo)
    with pytest.raises(ImageError, match="is named for two outputs"):
        check_dream_files(photo, str(tmp_path / "d.png"), figure=str(tmp_path / "d.png"))


def test_a_dream_that_left_the_photo_unchanged_names_maps_to_try(tiny, tmp_path):
    model, params = tiny
    photo = _photo(tmp_path / "a.png")
    result = dream(photo, CFG, model=model, params=params)
    unchanged = result._replace(image=result.gray)  # as a dream with no gradient leaves it
    assert unchanged_maps(unchanged, CFG.replace(steps=0), model, params) is None  # no steps
    maps = unchanged_maps(unchanged, CFG, model, params)
    assert isinstance(maps, list) and all(0 <= m < model.widths[2] for m in maps)
    assert unchanged_maps(unchanged, CFG.replace(objective="conv3:1"), model, params) == []
