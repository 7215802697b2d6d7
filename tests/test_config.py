"""Settings: presets, flags and ``DreamConfig`` values of the wrong type or out of range raise
the project's own errors, saying which setting and why; any text a level may be parsed from,
and any numbers given to a config, give a valid config or such an error."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxdream.config import DreamConfig, Level, parse_level
from jaxdream.errors import ConfigError, JaxdreamError, ObjectiveError
from jaxdream.presets import ARTICLE_FLAGS, config_from_flags, preset_config


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


def test_a_later_setting_leaves_a_renders_resume_text_alone_at_its_default():
    import argparse

    from jaxdream.cli._core import run_settings

    plain, fitted = DreamConfig(), DreamConfig(tile_aspect="network")
    assert "tile_aspect" not in plain.resume_text()
    assert "tile_aspect='network'" in fitted.resume_text()  # another render: no resume
    args = argparse.Namespace(size=[64], tile_aspect="image", typed=set())
    assert "tile_aspect" not in run_settings(args, ())
    args.tile_aspect = "network"
    assert run_settings(args, ())["tile_aspect"] == "network"
