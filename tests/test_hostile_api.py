"""Wrong types through the Python API (issue 21, class 6): presets, configs and
``dream_photos`` raise the project's own errors, and in ``dream_photos`` a bad photo fails only
its own ``Outcome``."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxdream.config import DreamConfig, Level, parse_level
from jaxdream.errors import ConfigError, ImageError, JaxdreamError, ObjectiveError
from jaxdream.many import MAX_BATCH, dream_photos
from jaxdream.presets import ARTICLE_FLAGS, config_from_flags, preset_config

FAST = DreamConfig(size=16, iterations=1, steps=1, map=1)
PHOTO = np.random.default_rng(0).random((30, 30))


@pytest.mark.parametrize("name", [["vivid"], None, {}, 3, b"vivid", "VIVID"])
def test_preset_names_must_be_names(name):
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config(name)


@pytest.mark.parametrize(
    "changes, error, says",
    [
        ({"overlap": "0.5"}, ConfigError, "overlap must be a number, got '0.5'"),
        ({"overlap": None}, ConfigError, "overlap must be a number"),
        ({"overlap": 1.0}, ConfigError, r"overlap must be in \[0, 1\)"),
        ({"shift_tiles": "no"}, ConfigError, "shift_tiles must be True or False"),
        ({"conv": ["fast"]}, ConfigError, "conv must be one of"),
        ({"conv": None}, ConfigError, "conv must be one of"),
        ({"precision": ["highest"]}, ConfigError, "precision must be one of"),
        ({"layer": 5}, ConfigError, "layer must be a layer's name"),
        ({"map": "5"}, ConfigError, "map must be a whole number, got '5'"),
        ({"map": 5.0}, ConfigError, "map must be a whole number, got 5.0"),
        ({"map": 10**400}, ConfigError, r"401 digits"),
        ({"seed": 10**400}, ConfigError, r"seed must be in .*401 digits"),
        ({"epsilon": 10**400}, ConfigError, r"epsilon must be in .*401 digits"),
        ({"iterations": 2.5}, ConfigError, "iterations must be a whole number"),
        ({"levels": Level(0)}, ConfigError, "levels must be a tuple of Level"),
        ({"levels": (Level(0, weight="1"),)}, ConfigError, "must be a number, got '1'"),
        ({"objective": 5}, ObjectiveError, "an objective is an Objective or its text"),
        ({"objective": "-conv3:1e3"}, ObjectiveError, "whole number"),
    ],
)
def test_wrong_types_in_a_config_are_refused(bundled, changes, error, says):
    model, _ = bundled
    with pytest.raises(error, match=says):
        DreamConfig().replace(**changes).check(model)


def test_replace_names_its_fields():
    with pytest.raises(ConfigError, match="no field 'colour'; fields: size, layer"):
        DreamConfig().replace(colour=True)


@pytest.mark.parametrize(
    "values, says",
    [
        (None, "a dict"),
        ({"colour": 1}, "no dream setting 'colour'"),
        ({"levels": "0 1"}, "levels are a list of texts"),
        ({"levels": [0, 1]}, "levels are a list of texts"),
        ({"size": 56}, "--size takes one number"),
    ],
)
def test_flag_values_of_the_wrong_shape_are_refused(values, says):
    with pytest.raises(ConfigError, match=says):
        config_from_flags(values)


def test_flag_values_left_out_are_the_articles():
    assert config_from_flags({"map": 3}) == DreamConfig(map=3)
    assert set(ARTICLE_FLAGS) >= {"map", "levels", "size"}


@pytest.mark.parametrize("text", [5, None, ["1:3"], b"1:3"])
def test_a_level_is_text(text):
    with pytest.raises(ConfigError, match="a level is text"):
        parse_level(text)


def test_a_huge_level_is_refused_in_one_short_line(bundled):
    model, _ = bundled
    with pytest.raises(ConfigError) as e:
        DreamConfig(levels=(parse_level("9" * 4000),)).check(model)
    assert len(str(e.value)) < 200


@pytest.mark.parametrize(
    "batch, says",
    [(2.5, "whole number"), ("2", "whole number"), (True, "whole number"), (0, "1..")],
)
def test_batch_sizes_must_be_whole_positive_numbers(tiny, batch, says):
    model, params = tiny
    with pytest.raises(ConfigError, match=f"batch size must be .*{says}"):
        dream_photos([PHOTO], FAST, model=model, params=params, batch_size=batch)


def test_a_huge_batch_size_is_refused_and_a_large_one_is_bounded_by_the_photos(tiny):
    model, params = tiny
    with pytest.raises(ConfigError, match=f"1..{MAX_BATCH:,}"):
        dream_photos([PHOTO], FAST, model=model, params=params, batch_size=10**9)
    run = dream_photos([PHOTO, PHOTO], FAST, model=model, params=params, batch_size=MAX_BATCH)
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
        dream_photos(photos, FAST, model=model, params=params)


def test_a_folder_name_alone_is_refused_too(tiny, tmp_path):
    model, params = tiny
    with pytest.raises(ImageError, match=r"not one PosixPath|not one str"):
        dream_photos(tmp_path, FAST, model=model, params=params)


@pytest.mark.parametrize("photos", [None, 5, 2.5])
def test_photos_must_be_a_list(tiny, photos):
    model, params = tiny
    with pytest.raises(ImageError, match="takes a list of photos"):
        dream_photos(photos, FAST, model=model, params=params)


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
    outcomes = list(dream_photos([PHOTO, bad, PHOTO], FAST, model=model, params=params))
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert isinstance(outcomes[1].error, JaxdreamError) and outcomes[1].result is None
    assert outcomes[0].error is None and outcomes[2].error is None
    np.testing.assert_array_equal(outcomes[0].result.image, outcomes[2].result.image)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.none(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.text(max_size=4),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
    )
)
def test_any_value_of_any_setting_gives_a_config_or_our_error(bundled, value):
    model, _ = bundled
    for field in ("overlap", "shift_tiles", "conv", "precision", "layer", "map", "schedule"):
        try:
            DreamConfig().replace(**{field: value}).check(model)
        except JaxdreamError:
            continue
