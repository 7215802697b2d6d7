"""The explorer's work bounded as a whole: map lists (huge ranges, duplicates), the contact
sheet's size, and many maps each just under one dream's limit, through the API and on the
command line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxdream.config import MAX_SIDE, MAX_TILE_STEPS, DreamConfig, Level
from jaxdream.errors import ConfigError
from jaxdream.exploring import MAX_CELL, check_sheet, check_work, explore, parse_maps
from tests.helpers import refused, write_photo


@pytest.mark.parametrize(
    "text, says",
    [
        ("0-100000000", "maps must be in 0..63; map 100,000,000 is not"),
        ("0-" + "9" * 400, "400 digits"),
        (",".join(["1"] * 5000), "map 1 is listed twice"),
        ("9-2", "empty range"),
        ("-3", "--maps takes"),
        ("1,,2", "--maps takes"),
        ("1.5", "--maps takes"),
        ("\u0661", "--maps takes"),
        ("", "--maps takes"),
        ("1" * 200_000, "characters"),
    ],
)
def test_map_lists_are_refused_saying_why(text, says):
    with pytest.raises(ConfigError, match=says):
        parse_maps(text, 64)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789-,al ", max_size=20))
def test_any_map_text_gives_distinct_maps_in_range_or_our_error(text):
    try:
        maps = parse_maps(text, 64)
    except ConfigError:
        return
    assert maps and len(set(maps)) == len(maps) and all(0 <= m < 64 for m in maps)


def test_many_maps_each_under_one_dreams_limit_are_refused_together():
    # Each dream: 1000 iterations x 1000 steps x 2 tiles = 2,000,000 tile steps, well under
    # one dream's limit; 50 of them are the limit.
    config = DreamConfig(iterations=1000, steps=1000)
    assert config.tile_steps() * 50 == MAX_TILE_STEPS
    check_work(50, config, (28, 28))
    with pytest.raises(ConfigError, match="tile steps is more than one call may take"):
        check_work(51, config, (28, 28))


def test_the_pixels_of_all_the_maps_are_bounded():
    check_work(64, DreamConfig(), (1024, 1024))
    with pytest.raises(ConfigError, match="pixels is more than one call may hold"):
        check_work(65, DreamConfig(), (1024, 1024))
    assert MAX_SIDE**2 == 64 * 1024 * 1024


@pytest.mark.parametrize(
    "count, columns, cell, says",
    [
        (64, 8, MAX_CELL + 1, "--cell must be in"),
        (64, 8, 0, "--cell must be in"),
        (64, 0, 200, "--columns must be in"),
        (64, 1, 2048, "a smaller --cell"),
    ],
)
def test_the_sheet_is_bounded(count, columns, cell, says):
    with pytest.raises(ConfigError, match=says):
        check_sheet(count, columns, cell, (280, 280))


def test_the_sheet_bound_counts_the_photos_aspect():
    check_sheet(8, 8, 2048, (280, 280))
    with pytest.raises(ConfigError, match="a smaller --cell"):
        check_sheet(8, 8, 2048, (280 * 40, 280))


@pytest.mark.parametrize(
    "maps, says",
    [([1, 1], "listed once"), ([], "non-empty"), ("1,2", "non-empty"), ([1.5], "whole")],
)
def test_explore_refuses_map_lists_through_the_api(tiny, maps, says):
    model, params = tiny
    photo = np.random.default_rng(0).random((20, 20))
    with pytest.raises(ConfigError, match=says):
        explore(photo, "conv3", maps, DreamConfig(size=16), model=model, params=params)


def test_explore_refuses_work_beyond_one_call(tiny):
    model, params = tiny
    photo = np.random.default_rng(0).random((20, 20))
    # Each dream: 1000 x 4000 x 5 tiles = 20 million tile steps (under one dream's limit); 8
    # maps: 160 million, refused before any work.
    config = DreamConfig(size=16, iterations=1000, steps=4000, levels=(Level(0), Level(1)))
    config.replace(map=1).check(model)
    with pytest.raises(ConfigError, match="tile steps"):
        explore(photo, "conv3", list(range(8)), config, model=model, params=params)
    with pytest.raises(ConfigError, match="config must be a DreamConfig"):
        explore(photo, "conv3", [1], None, model=model, params=params)


# --------------------------------------------------------------------------- on the command line


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
    photo = write_photo(tmp_path / "a.png")
    argv = ["explore", str(photo), "-o", str(tmp_path / "s.png"), "--layer", "conv3", "-q"]
    assert says in refused(capsys, [*argv, *flags], tmp_path)
