import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.errors import ObjectiveError
from jaxdream.model import activation_shapes
from jaxdream.objectives import (
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
