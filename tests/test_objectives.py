"""Objectives: each one rises under the ascent on a random and on the bundled CNN, their names,
arithmetic and text; bad text and weights (signs, lone operators, look-alike characters, numbers
no map or weight can be, non-text, very long sums) raise ``ObjectiveError`` saying why."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxdream.config import DreamConfig
from jaxdream.dreaming import dream
from jaxdream.errors import JaxdreamError, ObjectiveError
from jaxdream.model import CNN, activation_shapes
from jaxdream.objectives import (
    _LOOK_ALIKES,
    MAX_OBJECTIVE_CHARS,
    MAX_OBJECTIVE_WEIGHT,
    MAX_TERMS,
    MIN_LARGEST_WEIGHT,
    broadcast_objective,
    channel,
    layer,
    logit,
    mean_square,
    neuron,
    parse_objective,
)
from jaxdream.patterns import noise_image, oip

OBJECTIVES = {
    "channel": lambda: channel("conv2", 1),
    "whole layer via channel -1": lambda: channel("conv2", -1),
    "layer": lambda: layer("conv2"),
    "neuron": lambda: neuron("conv2_pre", 1, 4, 5),
    "logit": lambda: logit(3),
    "mean_square": lambda: mean_square("conv3_pre"),
    "weighted sum": lambda: 0.7 * channel("conv2", 1) + 0.3 * channel("conv2", 2),
    "difference": lambda: logit(3) - logit(5),
    "negation": lambda: -logit(4),
}


def _rises(model, params, objective, seed=0, steps=5):
    start = noise_image(jax.random.key(seed), amplitude=1.0)
    out = oip(params, objective, start, steps=steps, epsilon=0.05, model=model)
    acts = jax.vmap(lambda x: model.apply({"params": params}, x))(jnp.stack([start, out.images]))
    before, after = (float(objective(jax.tree.map(lambda a, i=i: a[i], acts))) for i in (0, 1))
    return before, after


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_rises_on_a_random_cnn(tiny, name):
    model, params = tiny
    before, after = _rises(model, params, OBJECTIVES[name]())
    assert after > before, (before, after)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_rises_on_the_bundled_cnn(bundled, name):
    model, params = bundled
    objective = OBJECTIVES[name]()
    before, after = _rises(model, params, objective)
    assert after > before, (before, after)


def test_names_are_readable():
    assert (0.7 * channel("conv3", 56) + 0.3 * channel("conv3", 12)).name == (
        "0.7*channel(conv3, 56) + 0.3*channel(conv3, 12)"
    )
    assert (-layer("conv2")).name == "-1*layer(conv2)"
    assert (logit(3) - logit(5)).name == "logit(3) + -1*logit(5)"
    assert channel("conv3", jnp.arange(3)).name == "channel(conv3, [0,1,2])"


def test_arithmetic_evaluates_to_weighted_sum():
    acts = {"conv3": jnp.arange(2 * 2 * 3, dtype=jnp.float32).reshape(2, 2, 3)}
    a, b = channel("conv3", 0), channel("conv3", 2)
    np.testing.assert_allclose((2 * a - b / 4)(acts), 2 * a(acts) - b(acts) / 4)
    assert float(channel("conv3", -1)(acts)) == pytest.approx(float(acts["conv3"].mean()))


def test_unknown_layer_lists_the_valid_ones(tiny):
    model, _ = tiny
    with pytest.raises(ObjectiveError, match="valid layers: conv1_pre, conv1, pool1, conv2_pre"):
        channel("conv9", 0).validate(activation_shapes(model))


@pytest.mark.parametrize(
    "objective, pattern",
    [
        (channel("conv3", 8), r"valid 0\.\.7"),
        (channel("conv3", -2), "out of range"),
        (neuron("conv1", 0, 26, 0), r"y of conv1 26 is out of range: valid 0\.\.25"),
        (neuron("dense", 0, 0, 0), "convolutional"),
        (logit(10), r"valid 0\.\.9"),
        (channel("conv3", jnp.array([1, 2, 99])), "99"),
        (0.5 * channel("conv3", 1) + layer("nope"), "unknown layer 'nope'"),
    ],
)
def test_out_of_range_is_refused(tiny, objective, pattern):
    model, _ = tiny
    with pytest.raises(ObjectiveError, match=pattern):
        objective.validate(activation_shapes(model))


def test_broadcast_objective():
    obj = broadcast_objective(0.5 * channel("conv3", jnp.array([1, 2, 3])) + logit(2), 3)
    leaves = jax.tree.leaves(obj)
    assert all(leaf.shape == (3,) for leaf in leaves)
    with pytest.raises(ObjectiveError, match="expected \\(4,\\)"):
        broadcast_objective(channel("conv3", jnp.array([1, 2, 3])), 4)


def test_parse_objective():
    assert parse_objective("conv3:56").name == "channel(conv3, 56)"
    assert parse_objective("conv2").name == "layer(conv2)"
    assert parse_objective("logit:7").name == "logit(7)"
    assert parse_objective("conv3:1:2:0").name == "neuron(conv3, 1, 2, 0)"
    assert parse_objective("0.5*conv3:56 + mean_square:conv2").name == (
        "0.5*channel(conv3, 56) + mean_square(conv2)"
    )
    for bad in ("conv3:x", "a:b:c", "x*conv3", ""):
        with pytest.raises(ObjectiveError):
            parse_objective(bad)


def test_channel_knows_when_no_map_is_the_whole_layer():
    assert channel("conv3", 5).may_be_whole is False
    assert channel("conv3", jnp.array([5, 0])).may_be_whole is False
    assert channel("conv3", jnp.array([5, -1])).may_be_whole is True
    traced = jax.jit(lambda m: jnp.float32(channel("conv3", m).may_be_whole))(jnp.int32(5))
    assert bool(traced)  # unknown when traced: the general path
    # The flag is static: it survives broadcasting and vmapping.
    assert broadcast_objective(channel("conv3", 5), 3).may_be_whole is False


@pytest.mark.parametrize("layer_name", ["conv3", "conv2_pre", "conv1"])
def test_one_map_path_equals_the_general_one(tiny, layer_name):
    from jaxdream.model import Features
    from jaxdream.objectives import Channel

    model, params = tiny
    image = noise_image(jax.random.key(3), amplitude=1.0)

    def value_and_grad(objective):
        return jax.jit(jax.value_and_grad(lambda x: objective(Features(model, params, x))))(image)

    fast = value_and_grad(Channel(layer_name, 2, may_be_whole=False))
    general = value_and_grad(Channel(layer_name, 2, may_be_whole=True))
    assert float(jnp.abs(general[1]).max()) > 0
    for got, want in zip(fast, general, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_ascent_ignores_the_pixels_deep_layers_never_see(tiny):
    model, params = tiny
    start = noise_image(jax.random.key(4), amplitude=1.0)
    deep = oip(params, channel("conv3", 1), start, steps=3, model=model).images - start
    assert np.all(np.asarray(deep[26:]) == 0) and np.all(np.asarray(deep[:, 26:]) == 0)
    assert float(jnp.abs(deep[:26, :26]).max()) > 0
    shallow = oip(params, channel("conv2", 1), start, steps=3, model=model).images - start
    assert float(jnp.abs(shallow[26:]).max()) > 0


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40) | st.text(alphabet="conv123:logit*+-. 0.5e9nanmean_square", max_size=40)
)
def test_any_objective_text_parses_or_raises_our_error(text):
    try:
        objective = parse_objective(text)
    except JaxdreamError:
        return
    assert objective.name


# ------------------------------------------------------------------- bad objective text and weights


PROPERTIES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SHAPES = activation_shapes(CNN())
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Valid terms with the objective each must mean.
TERMS = st.one_of(
    st.integers(0, 63).map(lambda m: (f"conv3:{m}", channel("conv3", m))),
    st.integers(0, 9).map(lambda c: (f"logit:{c}", logit(c))),
    st.sampled_from(["conv1", "conv2", "conv3", "dense"]).map(lambda n: (n, layer(n))),
    st.sampled_from(["conv2", "conv3"]).map(lambda n: (f"mean_square:{n}", mean_square(n))),
    st.tuples(st.integers(0, 63), st.integers(0, 2), st.integers(0, 2)).map(
        lambda t: (f"conv3:{t[0]}:{t[1]}:{t[2]}", neuron("conv3", *t))
    ),
)
WEIGHTS = st.one_of(
    st.none(), st.floats(0.01, 1000, allow_nan=False).map(lambda w: float(f"{w:.3g}"))
)


def _activations(seed: int) -> dict:
    keys = jax.random.split(jax.random.key(seed), len(SHAPES))
    return {k: jax.random.normal(key, s) for key, (k, s) in zip(keys, SHAPES.items(), strict=True)}


def _value(objective, acts) -> float:
    return float(objective(acts))


# --------------------------------------------------------------------------- signs


@PROPERTIES
@given(
    terms=st.lists(st.tuples(st.sampled_from("+-"), WEIGHTS, TERMS), min_size=1, max_size=6),
    first_sign=st.sampled_from(["", "+", "-"]),
    spaces=st.sampled_from(["", " ", "  "]),
    seed=st.integers(0, 3),
)
def test_signed_sums_mean_their_arithmetic(terms, first_sign, spaces, seed):
    """``[+-]W*TERM (+|-) W*TERM ...`` evaluates to the signed, weighted sum of its terms."""
    pieces, expected_terms = [], []
    for k, (sign, weight, (text, objective)) in enumerate(terms):
        s = first_sign if k == 0 else sign
        w = 1.0 if weight is None else weight
        term = text if weight is None else f"{weight!r}*{text}"
        pieces.append(f"{s}{spaces}{term}" if k == 0 else f"{spaces}{s}{spaces}{term}")
        expected_terms.append(((-1.0 if s == "-" else 1.0) * w, objective))
    text = "".join(pieces)
    acts = _activations(seed)
    expected = sum(w * _value(o, acts) for w, o in expected_terms)
    names = {}
    for w, o in expected_terms:
        names[o.name] = names.get(o.name, 0.0) + w
    if max(abs(v) for v in names.values()) < MIN_LARGEST_WEIGHT:
        with pytest.raises(ObjectiveError, match=r"0 everywhere|largest weight"):
            parse_objective(text)
        return
    parsed = parse_objective(text)
    parsed.validate(SHAPES)
    assert _value(parsed, acts) == pytest.approx(expected, rel=1e-4, abs=1e-4)


@given(term=TERMS)
@PROPERTIES
def test_a_leading_minus_is_the_negation(term):
    text, objective = term
    acts = _activations(0)
    minus, zero_minus = parse_objective(f"-{text}"), parse_objective(f"0 - {text}")
    assert minus.name == zero_minus.name == (-objective).name
    assert _value(minus, acts) == pytest.approx(-_value(objective, acts), rel=1e-6)
    assert parse_objective(f"+{text}").name == objective.name


@pytest.mark.parametrize(
    "text, says",
    [
        ("-", "ends with an operator"),
        ("+", "ends with an operator"),
        ("conv3:56 +", "ends with an operator"),
        ("conv3:56 - ", "ends with an operator"),
        ("--conv3:56", "follows another operator"),
        ("conv3:56 + + -conv2", "follows another operator"),
        ("*conv3", "follows another operator"),
        ("conv3+:5", "follows another operator"),
        ("2*", "no term after"),
        ("3**conv3", "one weight"),
        ("conv3:5*2", "must follow a number weight"),
        ("conv3*2", "a weight is a number"),
        ("co nv3", "bad term"),
        ("conv3 conv2", "bad term"),
        ("conv3:56:1", "2 ':'"),
        ("mean_square:-conv2", "'-conv2' is not a layer name"),
        ("conv3:1e3", "whole number"),
        ("conv3:x", "whole number"),
        ("", "empty"),
        ("   ", "empty"),
        ("3", "no term that reads a layer"),
        ("0*conv3", "0 everywhere"),
        ("conv3:1 - conv3:1", "0 everywhere"),
        ("0x10*conv3", "must follow a number weight"),
        ("1_000*conv3", "must follow a number weight"),
        ("conv3;56", "';' at position 5"),
    ],
)
def test_malformed_text_is_refused_saying_why(text, says):
    with pytest.raises(ObjectiveError, match=re.escape(says)):
        parse_objective(text)


def test_constants_and_double_signs_mean_their_arithmetic():
    assert parse_objective("conv3:56 - -logit:3").name == "channel(conv3, 56) + logit(3)"
    assert parse_objective("conv3:56 + 0.1*logit:3 - 2").name == (
        "channel(conv3, 56) + 0.1*logit(3)"
    )
    assert parse_objective("conv3:-1").name == "channel(conv3, -1)"  # whole layer, as before
    assert parse_objective("conv3:+5").name == "channel(conv3, 5)"


# --------------------------------------------------------------------------- characters


@PROPERTIES
@given(term=TERMS, look_alike=st.sampled_from(sorted(_LOOK_ALIKES)))
def test_look_alike_characters_are_named(term, look_alike):
    text = f"conv2 {look_alike} {term[0]}"
    with pytest.raises(ObjectiveError) as e:
        parse_objective(text)
    assert f"write {_LOOK_ALIKES[look_alike]!r}" in str(e.value)
    assert "position 6" in str(e.value)


@pytest.mark.parametrize(
    "text",
    ["conv3:\u0665\u0666", "\uff43\uff4f\uff4e\uff56\uff13", "conv3:56 \uff0b conv2", "c\u00f6nv3"],
)
def test_other_unicode_is_refused(text):
    with pytest.raises(ObjectiveError, match="is not part of the grammar"):
        parse_objective(text)


@PROPERTIES
@given(
    st.text(max_size=60)
    | st.text(alphabet="conv123:logit*+-. 0.5e9nanmean_square\u2212\u00d7", max_size=60)
)
def test_any_text_parses_into_named_layers_or_raises_our_error(text):
    try:
        objective = parse_objective(text)
    except ObjectiveError:
        return
    assert all(NAME.match(name) for name in objective.layers), objective.layers
    try:
        objective.validate(SHAPES)
    except ObjectiveError:
        return
    value = _value(objective, _activations(1))
    assert np.isfinite(value)


@pytest.mark.parametrize("value", [5, None, b"conv3:56", ["conv3"], 1.5, channel])
def test_non_text_is_refused(value):
    with pytest.raises(ObjectiveError, match="must be a str"):
        parse_objective(value)


# --------------------------------------------------------------------------- numbers


@PROPERTIES
@given(st.integers(2**31, 10**400))
def test_huge_indices_are_out_of_range(index):
    for text in (f"conv3:{index}", f"logit:{index}", f"conv3:1:{index}:0", f"conv3:-{index}"):
        with pytest.raises(ObjectiveError, match="out of range") as e:
            parse_objective(text)
        assert len(str(e.value)) < 300  # one readable line, not 400 digits


def test_huge_indices_through_the_api_are_out_of_range():
    with pytest.raises(ObjectiveError, match=r"out of range: valid 0\.\.63"):
        channel("conv3", 10**400).validate(SHAPES)
    assert "401 digits" in channel("conv3", 10**400).name


@PROPERTIES
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**30), 10**30))
def test_weights_are_finite_bounded_or_refused(w):
    text = f"{w!r}*conv3:1 + conv3:2"
    try:
        parsed = parse_objective(text)
    except ObjectiveError as e:
        assert not np.isfinite(float(w)) or abs(float(w)) > MAX_OBJECTIVE_WEIGHT, (w, str(e))
        return
    assert abs(float(w)) <= MAX_OBJECTIVE_WEIGHT
    assert parsed.terms[0][0] == pytest.approx(float(w))


@pytest.mark.parametrize("text", ["1e300*conv3:1", "1e38*conv3:1 + 1e38*conv3:2", "1e7*logit:3"])
def test_weights_that_overflow_float32_are_refused(text):
    with pytest.raises(ObjectiveError, match="too large"):
        parse_objective(text)


@pytest.mark.parametrize("text", ["1e-9*conv3", "0.0001*conv3:5 + 0.0002*logit:1", "1e-300*conv3"])
def test_weights_too_small_to_move_the_dream_are_refused(text):
    with pytest.raises(ObjectiveError, match="largest weight"):
        parse_objective(text)


@pytest.mark.parametrize(
    "objective, says",
    [
        (1e300 * channel("conv3", 1), "overflow"),
        (jnp.array(1e30) * layer("conv3") + layer("conv2"), "finite|overflow"),
        (1e-30 * layer("conv3"), "largest weight"),
        (np.float64("nan") * layer("conv3"), "finite"),
    ],
)
def test_api_weights_are_checked_by_validate(objective, says):
    with pytest.raises(ObjectiveError, match=says):
        objective.validate(SHAPES)


@pytest.mark.parametrize("weight", ["2", None, b"2", True])
def test_api_weights_must_be_numbers(weight):
    with pytest.raises(ObjectiveError, match="weight is a number"):
        weight * channel("conv3", 1)


def test_a_small_weight_in_a_sum_is_kept():
    parsed = parse_objective("conv3:56 + 1e-9*logit:3")
    parsed.validate(SHAPES)
    assert parsed.terms[1][0] == pytest.approx(1e-9)


def test_the_largest_weights_allowed_keep_the_dream_meaningful(tiny):
    """At the bounds the dream is finite and moves the photo (no false "no gradient")."""
    model, params = tiny
    photo = np.random.default_rng(0).random((32, 32))
    changes = []
    for objective in (f"{MAX_OBJECTIVE_WEIGHT:g}*conv2:1", f"{MIN_LARGEST_WEIGHT:g}*conv2:1"):
        config = DreamConfig(size=32, iterations=1, steps=3, objective=objective)
        result = dream(photo, config, model=model, params=params)
        assert np.all(np.isfinite(result.image))
        changes.append(float(np.abs(result.image - result.gray).mean()))
    assert min(changes) > 1e-3, changes


# --------------------------------------------------------------------------- length


def test_terms_are_bounded_with_a_clear_message():
    text = " + ".join(f"conv3:{i % 64}" for i in range(MAX_TERMS))
    assert len(parse_objective(text).terms) == MAX_TERMS
    with pytest.raises(ObjectiveError, match=f"more than {MAX_TERMS} terms.*compile time"):
        parse_objective(text + " + conv2")
    with pytest.raises(ObjectiveError, match=f"at most {MAX_TERMS}"):
        sum((channel("conv3", i) for i in range(1, MAX_TERMS + 1)), channel("conv3", 0)).validate(
            SHAPES
        )


def test_very_long_text_is_refused_before_reading_it():
    text = "+".join(["conv3:1"] * 1_000_000)
    with pytest.raises(ObjectiveError, match=f"at most {MAX_OBJECTIVE_CHARS:,}") as e:
        parse_objective(text)
    assert len(str(e.value)) < 200


def test_the_terms_of_all_tiles_together_are_bounded(bundled):
    """Tiles of different structures each compute the union (``stack_objectives``)."""
    from jaxdream.config import Level
    from jaxdream.errors import ConfigError

    model, _ = bundled
    kinds = ["conv3:1", "logit:2", "conv2", "mean_square:conv2", "conv3:1:1:1"]
    per_tile = tuple(" + ".join(kinds[: 1 + i % 5]) for i in range(16))
    fits = DreamConfig(levels=(Level(2, objective=per_tile),))
    fits.check(model)  # 5 structures of 1..5 terms: 15 terms
    many = tuple(f"{i + 1}*conv3:1" + " + conv2" * (i % 3) for i in range(16))
    DreamConfig(levels=(Level(2, objective=many),)).check(model)  # 3 structures: 6 terms
    wide = tuple(" + ".join(f"conv3:{j}" for j in range(i + 1)) for i in range(16))
    with pytest.raises(ConfigError, match="136 different terms"):
        DreamConfig(levels=(Level(2, objective=wide),)).check(model)
