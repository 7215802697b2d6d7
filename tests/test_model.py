import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.errors import ConfigError
from jaxdream.model import (
    CNN,
    HIGHEST,
    Features,
    activation_shapes,
    activations,
    architecture_dict,
    check_architecture,
    init_params,
    max_pool_2x2,
    model_from_architecture,
    needed_side,
    param_count,
    param_shapes,
    prepare_digits,
    standardize,
)


@pytest.mark.parametrize(
    "model", [CNN(), CNN(widths=(4, 8, 6), hidden=9, num_classes=3), CNN(widths=(2, 3))]
)
def test_parameter_shapes_are_worked_out_as_flax_makes_them(model):
    from flax import traverse_util

    made = jax.eval_shape(lambda: init_params(model, jax.random.key(0)))
    flat = {"/".join(k): v.shape for k, v in traverse_util.flatten_dict(made).items()}
    assert param_shapes(model) == flat


def test_named_activation_shapes():
    model = CNN()
    params = init_params(model, jax.random.key(0))
    acts = activations(model, params, jnp.zeros((28, 28)))
    expected = {
        "conv1_pre": (26, 26, 32),
        "conv1": (26, 26, 32),
        "pool1": (13, 13, 32),
        "conv2_pre": (11, 11, 64),
        "conv2": (11, 11, 64),
        "pool2": (5, 5, 64),
        "conv3_pre": (3, 3, 64),
        "conv3": (3, 3, 64),
        "dense_pre": (70,),
        "dense": (70,),
        "logits": (10,),
    }
    assert {k: v.shape for k, v in acts.items()} == expected
    assert activation_shapes(model) == expected
    for shape in ((26, 26), (30, 22)):  # worked out, not traced: check it on other inputs
        acts = jax.eval_shape(
            lambda s=shape: model.init_with_output(jax.random.key(0), jnp.zeros(s))[0]
        )
        assert activation_shapes(model, shape) == {k: v.shape for k, v in acts.items()}


def test_upto_stops_at_that_layer(tiny):
    model, params = tiny
    image = jax.random.normal(jax.random.key(9), (28, 28))
    full = activations(model, params, image)
    part = activations(model, params, image, upto="pool2")
    assert list(part) == list(full)[: list(full).index("pool2") + 1]
    for name in part:
        np.testing.assert_array_equal(part[name], full[name])


def test_parameter_count_matches_architecture():
    params = init_params(CNN(), jax.random.key(0))
    convs = (9 * 1 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64)
    dense = (3 * 3 * 64 * 70 + 70) + (70 * 10 + 10)
    assert param_count(params) == convs + dense
    wide = init_params(CNN(widths=(32, 64, 128)), jax.random.key(0))
    assert wide["conv3"]["kernel"].shape == (3, 3, 64, 128)


def test_relu_and_pre_activation_agree():
    model = CNN(widths=(4, 4, 4), hidden=5)
    params = init_params(model, jax.random.key(1))
    acts = activations(model, params, jax.random.normal(jax.random.key(2), (28, 28)))
    for name in ("conv1", "conv2", "conv3", "dense"):
        np.testing.assert_array_equal(acts[name], jnp.maximum(acts[f"{name}_pre"], 0))


def test_jit_vmap_equal_per_image_calls(tiny):
    model, params = tiny
    images = jax.random.normal(jax.random.key(3), (5, 28, 28))
    batched = jax.jit(jax.vmap(lambda x: activations(model, params, x)))(images)
    for i in range(5):
        one = activations(model, params, images[i])
        for name in one:
            np.testing.assert_allclose(batched[name][i], one[name], rtol=1e-5, atol=1e-5)


def test_max_pool_matches_flax():
    x = jax.random.normal(jax.random.key(4), (11, 11, 3))
    want = nn.max_pool(x[None], (2, 2), (2, 2), padding="VALID")[0]
    np.testing.assert_array_equal(max_pool_2x2(x), want)


def test_max_pool_gradient_matches_flax():
    x = jax.random.normal(jax.random.key(5), (11, 11, 3))  # no ties
    probe = jax.random.normal(jax.random.key(6), (5, 5, 3))
    ours = jax.grad(lambda x: jnp.sum(max_pool_2x2(x) * probe))(x)
    flax = jax.grad(
        lambda x: jnp.sum(nn.max_pool(x[None], (2, 2), (2, 2), padding="VALID")[0] * probe)
    )(x)
    np.testing.assert_array_equal(ours, flax)


def test_max_pool_gradient_goes_to_the_first_maximum_as_in_tf_and_torch():
    x = jnp.zeros((5, 4, 1)).at[1, 1, 0].set(2.0).at[3, 2, 0].set(-1.0)
    x = x.at[4, 0, 0].set(9.0)  # the odd last row: dropped, no gradient
    g = jax.grad(lambda x: jnp.sum(max_pool_2x2(x) * jnp.arange(1.0, 5.0).reshape(2, 2, 1)))(x)
    want = np.zeros((5, 4, 1), np.float32)
    want[1, 1, 0] = 1.0  # window (0, 0): the single maximum
    want[0, 2, 0] = 2.0  # window (0, 1): all four tie at 0 -> the first (top left)
    want[2, 0, 0] = 3.0  # window (1, 0): a tie of four zeros again
    want[2, 2, 0] = 4.0  # window (1, 1): the -1 loses to three zeros; the first of them
    np.testing.assert_array_equal(g, want)


def test_pooling_after_relu_is_pooling_before():
    model = CNN(widths=(4, 4, 4), hidden=5)
    params = init_params(model, jax.random.key(1))
    acts = activations(model, params, jax.random.normal(jax.random.key(2), (28, 28)))
    np.testing.assert_array_equal(acts["pool1"], max_pool_2x2(acts["conv1"]))
    np.testing.assert_array_equal(acts["pool2"], max_pool_2x2(acts["conv2"]))


def test_needed_side_crop_gives_the_same_activations(tiny):
    model, params = tiny
    image = jax.random.normal(jax.random.key(7), (28, 28))
    full = activations(model, params, image)
    sides = {name: needed_side(model, [name]) for name in full}
    assert sides["conv3"] == sides["logits"] == 26 and sides["conv2"] == sides["pool1"] == 28
    for name, side in sides.items():
        cropped = activations(model, params, image[:side, :side])[name]
        np.testing.assert_allclose(cropped, full[name], rtol=1e-5, atol=1e-5)
    for name in ("conv1", "pool1", "conv2", "pool2", "conv3"):  # one pixel less would not do
        smaller = activation_shapes(model, (sides[name] - 1, sides[name] - 1))
        assert smaller[name] != full[name].shape
    assert needed_side(model, ["conv3", "conv2"]) == 28


@pytest.mark.parametrize("conv", ["im2col", "xla", "fast"])
def test_one_map_alone_equals_the_whole_layer(tiny, conv):
    model, params = tiny
    model = model.clone(conv=conv)
    features = Features(model, params, jax.random.normal(jax.random.key(8), (26, 26)))
    for layer in ("conv1", "conv1_pre", "conv2", "conv3", "conv3_pre", "pool2", "dense"):
        for m in (0, 3):
            alone = jax.jit(features.channel, static_argnums=0)(layer, jnp.int32(m))
            np.testing.assert_allclose(alone, features[layer][..., m], rtol=1e-5, atol=1e-5)
    assert set(features) == set(activations(model, params, jnp.zeros((28, 28))))


def test_standardize_matches_definition():
    x = np.random.default_rng(0).normal(3.0, 2.0, (28, 28)).astype(np.float32)
    want = (x - x.mean()) / max(x.std(), 1 / np.sqrt(x.size))
    np.testing.assert_allclose(standardize(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_standardize_flat_image_gives_finite_zeros(value):
    out = standardize(jnp.full((28, 28), value))
    assert np.all(np.isfinite(out)) and np.all(out == 0)


def test_standardize_tiny_variance_uses_guard():
    x = np.zeros((28, 28), np.float32)
    x[0, 0] = 1e-4  # std far below 1/sqrt(N): the guard divides by 1/28 instead
    out = np.asarray(standardize(x))
    np.testing.assert_allclose(out, (x - x.mean()) * 28, rtol=1e-4)


@pytest.mark.parametrize("channels", [1, 5])
def test_fast_convolution_gradients_match_autodiff(channels):
    from jaxdream.model import conv3x3_fast, conv3x3_im2col, conv3x3_xla

    kx, kk, kg = jax.random.split(jax.random.key(6), 3)
    x = jax.random.normal(kx, (9, 11, channels))
    kernel = jax.random.normal(kk, (3, 3, channels, 4))
    probe = jax.random.normal(kg, (7, 9, 4))
    grads = {
        name: jax.grad(lambda x, k, f=f: jnp.sum(f(x, k) * probe), argnums=(0, 1))(x, kernel)
        for name, f in {"fast": conv3x3_fast, "im2col": conv3x3_im2col, "xla": conv3x3_xla}.items()
    }
    for name in ("fast", "im2col"):
        for got, want in zip(grads[name], grads["xla"], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- architectures as data

ARCHITECTURES = [
    CNN(),
    CNN(widths=(4, 6, 8, 5), padding="same", input_size=(56, 56), pool_after=(1, 2, 3)),
    CNN(widths=(3, 5), padding="same", input_size=(12, 20), channels=3),
    CNN(widths=(4, 4, 4), pool_after=()),
    CNN(widths=(2, 3, 4), pool_after=(3,), input_size=(17, 17)),
    CNN(widths=(5,), hidden=7, num_classes=4, input_size=(9, 9), channels=3, pool_after=(1,)),
    CNN(widths=(4, 4, 4, 4, 4), padding="same", pool_after=(2, 4)),
]


@pytest.mark.parametrize("model", ARCHITECTURES, ids=lambda m: str(architecture_dict(m)))
def test_worked_out_shapes_are_the_traced_shapes_for_every_architecture(model):
    from flax import traverse_util

    check_architecture(model)
    made = jax.eval_shape(lambda: init_params(model, jax.random.key(0)))
    flat = {"/".join(k): v.shape for k, v in traverse_util.flatten_dict(made).items()}
    assert param_shapes(model) == flat
    h, w = model.input_size
    for shape in ((h, w, model.channels), (h + 3, w + 1, model.channels)):
        acts = jax.eval_shape(
            lambda s=shape: model.init_with_output(jax.random.key(0), jnp.zeros(s))[0]
        )
        assert activation_shapes(model, shape) == {k: v.shape for k, v in acts.items()}
    pools = [n for n in activation_shapes(model) if n.startswith("pool")]
    assert pools == [f"pool{i}" for i in model.pools]


@pytest.mark.parametrize("model", ARCHITECTURES[1:5], ids=lambda m: str(architecture_dict(m)))
@pytest.mark.parametrize("conv", ["im2col", "xla", "fast"])
def test_one_map_alone_and_the_needed_crop_for_every_architecture(model, conv):
    model = model.clone(conv=conv)
    params = init_params(model, jax.random.key(1))
    image = jax.random.normal(jax.random.key(2), (*model.input_size, model.channels))
    features = Features(model, params, image)
    full = activations(model, params, image)
    convs = [n for n in full if n.startswith("conv") and not n.endswith("_pre")]
    for layer in (convs[0], convs[-1], f"{convs[-1]}_pre"):
        alone = jax.jit(features.channel, static_argnums=0)(layer, jnp.int32(1))
        np.testing.assert_allclose(alone, full[layer][..., 1], rtol=1e-5, atol=1e-5)
    side = needed_side(model, [convs[-1]])
    if model.padding == "same" or model.input_size[0] != model.input_size[1]:
        assert side == max(model.input_size)
    cropped = activations(model, params, image[:side, :side])[convs[-1]]
    np.testing.assert_allclose(cropped, full[convs[-1]], rtol=1e-5, atol=1e-5)


def test_same_padding_is_a_border_of_zeros_then_the_valid_convolution():
    x = jax.random.normal(jax.random.key(3), (6, 7, 2))
    k = jax.random.normal(jax.random.key(4), (3, 3, 2, 3))
    want = jax.lax.conv_general_dilated(
        x[None], k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST
    )[0]
    for conv in ("im2col", "xla", "fast"):
        got = CNN(padding="same", conv=conv).conv_fn()(x, k)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_architecture_dicts_round_trip_and_bad_ones_are_refused():
    for model in ARCHITECTURES:
        assert model_from_architecture(architecture_dict(model)).architecture == (
            model.architecture
        )
    assert model_from_architecture(architecture_dict(CNN())) == CNN()
    assert model_from_architecture({}) == CNN()
    bad = [
        ({"widths": []}, "at least one convolution"),
        ({"widths": [4, 0]}, "widths"),
        ({"padding": "full"}, "padding"),
        ({"channels": 2}, "channels"),
        ({"channels": 4}, "channels"),
        ({"input_size": [28]}, "input_size"),
        ({"pool_after": [4]}, "pool_after"),
        ({"depth": 3}, "unknown architecture field"),
        ({"widths": [8] * 4}, "too small"),
        ({"hidden": True}, "hidden"),
        ("widths", "mapping"),
    ]
    for spec, message in bad:
        with pytest.raises(ConfigError, match=message):
            model_from_architecture(spec)


def test_digits_are_resized_to_the_input_and_standardized():
    digits = np.random.default_rng(0).integers(0, 255, (3, 28, 28), np.uint8)
    same = prepare_digits(digits, CNN())
    want = jax.vmap(standardize)(jnp.asarray(digits, jnp.float32) / 255.0)
    np.testing.assert_array_equal(same, want)
    big = prepare_digits(digits, CNN(input_size=(56, 56), channels=3))
    assert big.shape == (3, 56, 56, 3)
    np.testing.assert_allclose(big.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
