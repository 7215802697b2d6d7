"""Any network: the seam (``jaxdream.network``) with a Flax Linen CNN of 32x32 gray input and an
NNX CNN of 40x24 gray input (not square): names, shapes, every entry point, the objectives by
the network's own names, and what is refused."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdream
from jaxdream.config import DreamConfig
from jaxdream.errors import ConfigError, ObjectiveError
from jaxdream.model import CNN
from jaxdream.motion import zoom
from jaxdream.network import (
    LinenNetwork,
    Network,
    NNXNetwork,
    as_network,
    layer_aliases,
    layer_shapes,
    resolve,
)
from jaxdream.objectives import channel, parse_objective
from jaxdream.patterns import noise_image, noise_images

PHOTO = np.random.default_rng(0).random((40, 56))
CFG = DreamConfig(size=40, iterations=1, steps=2, map=1)


@pytest.fixture(scope="module")
def linen(linen_net):
    module, params = linen_net
    return as_network(module, params)


@pytest.fixture(scope="module")
def nnx_pair(nnx_net):
    return as_network(nnx_net, input_shape=(40, 24, 1))


def test_linen_layers_and_shape_are_found(linen):
    network, _ = linen
    assert isinstance(network, LinenNetwork) and isinstance(network, Network)
    assert network.input_shape == (32, 32, 1)
    shapes = network.activation_shapes()
    assert shapes["Conv_0"] == (32, 32, 4) and shapes["Conv_1"] == (16, 16, 6)
    assert shapes["output"] == (5,) and network.classifier == "output"
    # The bundled CNN's names read the first, middle and deepest maps, logits the classifier.
    aliases = layer_aliases(network)
    assert (aliases["conv1"], aliases["conv3"], aliases["logits"]) == ("Conv_0", "Conv_1", "output")
    hash(network)  # a static argument of the compiled programs


def test_nnx_layers_found_at_a_non_square_input(nnx_pair):
    network, state = nnx_pair
    assert isinstance(network, NNXNetwork) and network.input_shape == (40, 24, 1)
    shapes = network.activation_shapes()
    assert shapes["conv1"] == (40, 24, 4) and shapes["conv2"] == (20, 12, 6)
    acts = network.activations(state, jnp.zeros((40, 24, 1)))
    assert acts["conv2"].shape == (20, 12, 6)
    assert hash(network) == hash(as_network(network, state)[0])


def test_the_shape_cannot_be_known_without_a_head(nnx_net):
    class Convolutional(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Conv(3, (3, 3))(x)

    module = Convolutional()
    params = module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
    with pytest.raises(ConfigError, match=r"give input_shape=\(H, W, C\)"):
        as_network(module, params)
    assert as_network(module, params, input_shape=(20, 20, 1))[0].input_shape == (20, 20, 1)
    with pytest.raises(ConfigError, match="input_shape"):
        as_network(nnx_net)  # 40x24: no square side fits


def test_what_as_network_refuses(linen_net):
    module, params = linen_net

    class Dense(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(x.reshape(x.shape[0], -1))

    dense = Dense()
    with pytest.raises(ConfigError, match="no convolution"):
        as_network(dense, dense.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1)))["params"])
    bad = jax.tree.map(lambda a: a.at[(0,) * a.ndim].set(jnp.nan), params)
    with pytest.raises(ConfigError, match="NaN"):
        as_network(module, bad)
    for c in (2, 4):
        with pytest.raises(ConfigError, match="1 or 3"):
            as_network(module, params, input_shape=(32, 32, c))
    with pytest.raises(ConfigError, match="not int"):
        as_network(3, None)


def test_a_three_channel_network_zooms_in_colour(linen_net):
    class RGB(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(2)(nn.Conv(2, (3, 3))(x).reshape(x.shape[0], -1))

    module = RGB()
    params = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
    assert as_network(module, params)[0].input_shape == (16, 16, 3)
    frames = list(zoom(PHOTO, CFG, frames=2, network=module, params=params))
    assert [f.shape for f in frames] == [(*CFG.working_shape(PHOTO.shape), 3)] * 2


def test_resolve_gives_the_bundled_network_by_default(bundled):
    network, params = resolve()
    assert isinstance(network, CNN) and network == bundled[0]
    assert resolve(None, params)[0] == bundled[0]


@pytest.mark.parametrize("which", ["linen", "nnx"])
def test_dream_finite_same_seed_same_bytes(which, linen, nnx_pair):
    network, params = linen if which == "linen" else nnx_pair
    layer = "Conv_1" if which == "linen" else "conv2"
    config = CFG.replace(layer=layer)
    a = jaxdream.dream(PHOTO, config, network=network, params=params)
    b = jaxdream.dream(PHOTO, config, network=network, params=params)
    assert a.image.shape == config.working_shape(PHOTO.shape) and np.isfinite(a.image).all()
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, a.gray)


def test_dream_reads_objectives_by_the_networks_names(linen):
    network, params = linen
    for text in ("Conv_1:3", "logit:2", "0.5*conv3:1 + Conv_0"):
        out = jaxdream.dream(PHOTO, CFG.replace(objective=text), network=network, params=params)
        assert np.isfinite(out.image).all() and not np.array_equal(out.image, out.gray)
    with pytest.raises(ObjectiveError, match=r"valid layers: Conv_0, Conv_1"):
        jaxdream.dream(PHOTO, CFG.replace(objective="nope:1"), network=network, params=params)
    assert parse_objective("block2/conv:17").name == "channel(block2/conv, 17)"


def test_a_linen_module_and_its_network_dream_alike(linen_net, linen):
    module, params = linen_net
    a = jaxdream.dream(PHOTO, CFG.replace(layer="Conv_1"), network=module, params=params)
    b = jaxdream.dream(PHOTO, CFG.replace(layer="Conv_1"), network=linen[0], params=params)
    assert np.array_equal(a.image, b.image)


def test_dream_photos_explore_zoom_and_oip_with_each(linen, nnx_pair):
    for (network, params), layer in ((linen, "Conv_1"), (nnx_pair, "conv2")):
        config = CFG.replace(layer=layer)
        run = jaxdream.dream_photos([PHOTO, PHOTO], config, network=network, params=params)
        outcomes = list(run)
        assert all(o.result is not None and np.isfinite(o.result.image).all() for o in outcomes)
        found = jaxdream.explore(PHOTO, layer, [0, 2], config, network=network, params=params)
        assert sorted(e.map for e in found) == [0, 2]
        frames = list(zoom(PHOTO, config, frames=2, network=network, params=params))
        assert len(frames) == 2 and frames[0].shape == config.working_shape(PHOTO.shape)
        h, w = network.input_shape[:2]
        start = noise_images(jax.random.key(1), 2, size=(h, w))
        out = jaxdream.oip(params, channel(layer, jnp.array([0, 1])), start, 2, network=network)
        assert out.images.shape == (2, h, w) and np.isfinite(np.asarray(out.images)).all()
        with pytest.raises(ConfigError, match=f"{h}x{w}"):
            jaxdream.oip(params, channel(layer, 0), jnp.zeros((28, 28)), 1, network=network)


def test_noise_at_the_networks_size_keeps_the_bundled_scales():
    key = jax.random.key(3)
    assert np.array_equal(noise_image(key), noise_image(key, 28, (28, 14, 7, 4)))
    assert noise_image(key, (40, 24)).shape == (40, 24)


def test_the_old_model_keyword_warns_and_still_works(tiny):
    model, params = tiny
    with pytest.warns(DeprecationWarning, match="network="):
        old = jaxdream.dream(PHOTO, CFG.replace(layer="conv3"), model=model, params=params)
    new = jaxdream.dream(PHOTO, CFG.replace(layer="conv3"), network=model, params=params)
    assert np.array_equal(old.image, new.image)


def test_layer_shapes_of_the_bundled_cnn_are_its_own(tiny):
    model, _ = tiny
    assert layer_aliases(model) == {} and layer_shapes(model) == model.activation_shapes()


def test_programs_of_two_networks_are_never_shared():
    """Two Linen classes of one name but other code: other networks in the program store and in
    the exported-program cache's description."""
    from jaxdream.programs import describe

    def make(width):
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Conv(width, (3, 3))(x)

        return Net()

    a, b = LinenNetwork(make(2), (8, 8, 1)), LinenNetwork(make(3), (8, 8, 1))
    assert a != b and describe("dream", (a,), ()) != describe("dream", (b,), ())


def test_a_video_dreamt_with_a_user_network(tmp_path, linen):
    from jaxdream.video import dream_video

    pytest.importorskip("av")
    from tests.clips import encode, pan

    clip = encode(tmp_path / "clip.mp4", pan(3), fps=12)
    network, params = linen
    config = CFG.replace(layer="Conv_1")
    frames = list(dream_video(clip, config, coherence="blend", network=network, params=params))
    assert len(frames) == 3 and frames[0].shape == (48, 64)


# --------------------------------------------------------------------------- input shape and
# the network's own preprocessing


def test_the_bundled_cnn_refuses_another_input_shape(tiny):
    model, params = tiny
    assert resolve(model, params, input_shape=(28, 28, 1))[0] == model
    with pytest.raises(ConfigError, match=r"takes inputs of shape \(28, 28, 1\), not"):
        resolve(model, params, input_shape=(32, 32, 1))
    with pytest.raises(ConfigError, match=r"not the input_shape given"):
        jaxdream.dream(PHOTO, CFG, network=model, params=params, input_shape=(56, 56, 1))


def test_a_linen_network_is_made_again_at_another_input_shape(linen_net, linen):
    module, params = linen_net
    network, _ = linen

    class Convolutional(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Conv(3, (3, 3))(x)

    conv = Convolutional()
    weights = conv.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
    made, _ = as_network(conv, weights, input_shape=(20, 20, 1))
    again, _ = resolve(made, weights, input_shape=(24, 16, 1))
    assert again.input_shape == (24, 16, 1) and again.activation_shapes()["Conv_0"] == (24, 16, 3)
    with pytest.raises(ConfigError, match=r"does not run on \(40, 40, 1\) with these params"):
        resolve(network, params, input_shape=(40, 40, 1))  # its dense head fixes 32x32
    with pytest.raises(ConfigError, match="does not run on"):
        as_network(module, params, input_shape=(40, 40, 1))


def test_model_from_params_reads_both_bundled_networks_and_refuses_what_it_cannot_tell():
    from jaxdream.checkpoint import load_model
    from jaxdream.inputs import model_from_params
    from jaxdream.model import init_params

    for name in ("mnist_cnn", "mnist_cnn56"):
        model, params = load_model(name)
        assert model_from_params(params).architecture == model.architecture, name
        assert resolve(None, params)[0].input_shape == model.input_shape
    # 32x32 valid and 16x16 same give the dense layer as many values: params cannot tell
    both = init_params(CNN(widths=(4, 4, 4), hidden=8, input_size=(32, 32)), jax.random.key(0))
    with pytest.raises(ConfigError, match=r"\(several padding and input side fit\)"):
        model_from_params(both)
    none = {**both, "dense": {"kernel": np.zeros((7, 8)), "bias": np.zeros(8)}}
    with pytest.raises(ConfigError, match=r"\(no padding and input side fit\)"):
        model_from_params(none)
    with pytest.raises(ConfigError, match="not the bundled CNN's"):
        model_from_params({"Conv_0": {}})


def test_normalized_maps_the_standardized_tile_as_documented():
    from jaxdream.inputs import normalized

    norm = normalized([0.1, 0.2, 0.3], [0.5, 0.25, 0.125], pixel_mean=0.4, pixel_std=0.2)
    tile = jax.random.normal(jax.random.key(0), (4, 5, 3))
    want = (np.asarray(tile) * 0.2 + 0.4 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 0.125])
    np.testing.assert_allclose(np.asarray(norm(tile)), want, rtol=1e-5, atol=1e-6)
    assert normalized(0.5, 0.25) == normalized([0.5], (0.25,))  # hashable, equal by value
    for bad in ((0.5, 0.0), (float("nan"), 1.0), ([0.1, 0.2], 1.0), ("x", 1.0)):
        with pytest.raises(ConfigError):
            normalized(*bad)


def test_the_preprocessing_is_what_the_network_sees(linen):
    """A preprocessing feeds the network: the dream follows it, the same preprocessing gives
    the same bytes, and identity gives the plain dream's bytes."""
    from jaxdream.inputs import normalized
    from jaxdream.network import Preprocessed

    network, params = linen
    config = CFG.replace(layer="Conv_1")
    plain = jaxdream.dream(PHOTO, config, network=network, params=params)

    def same(tile):
        return tile

    kept = jaxdream.dream(PHOTO, config, network=network, params=params, preprocess=same)
    assert np.array_equal(plain.image, kept.image)
    norm = normalized(0.1307, 0.3081)
    a = jaxdream.dream(PHOTO, config, network=network, params=params, preprocess=norm)
    b = jaxdream.dream(PHOTO, config, network=network, params=params, preprocess=norm)
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, plain.image)
    made, _ = resolve(network, params, preprocess=norm)
    assert isinstance(made, Preprocessed) and made.input_shape == network.input_shape
    assert made.needed_side(["Conv_1"]) is None  # the network's own: the whole input


def test_two_preprocessings_never_share_a_program(linen):
    """The program store's keys hold the network, and the network its preprocessing: other
    preprocessings (other code, other numbers) are other keys here and in the exported-program
    cache's description; the same one is the same key."""
    from jaxdream.inputs import normalized
    from jaxdream.programs import describe

    network, params = linen
    scale = np.float32(2.0)

    def double(tile):
        return tile * scale

    def negate(tile):
        return -tile

    made = [
        resolve(network, params, preprocess=p)[0]
        for p in (None, double, negate, normalized(0.1, 0.3), normalized(0.2, 0.3))
    ]
    texts = [describe("dream", (m,), ()) for m in made]
    assert len(set(made)) == len(made) and len(set(texts)) == len(texts)
    assert made[3] == resolve(network, params, preprocess=normalized(0.1, 0.3))[0]
    assert describe("dream", (made[3],), ()) == texts[3]


def test_a_bad_preprocessing_is_refused_in_one_line(linen):
    network, params = linen
    cases = [
        (3, "preprocess must be a function"),
        (lambda t: t[..., :1].reshape(-1), "preprocess gives (1024,) for a tile of (32, 32, 1)"),
        (lambda t: t / 0.0 * 0.0, "NaN or infinite"),
        (lambda t: (t > 0).astype(jnp.int32), "not floating-point"),
        (lambda t: t @ jnp.zeros((2, 2)), "preprocess does not run on a tile of shape"),
    ]
    for bad, says in cases:
        with pytest.raises(ConfigError) as e:
            resolve(network, params, preprocess=bad)
        assert says in str(e.value) and "\n" not in str(e.value), (says, str(e.value))


def test_every_entry_point_takes_input_shape_and_preprocess(tiny, tmp_path):
    """The keywords pass through to ``resolve``: a wrong input shape is refused by each."""
    import inspect

    from jaxdream.maps import mnist_map_table
    from jaxdream.video import dream_video
    from jaxdream.video.render import render_video, render_zoom

    entries = [
        jaxdream.dream,
        jaxdream.dream_many,
        jaxdream.dream_photos,
        jaxdream.explore,
        jaxdream.oip,
        zoom,
        dream_video,
        render_video,
        render_zoom,
        mnist_map_table,
    ]
    for entry in entries:
        names = inspect.signature(entry).parameters
        assert {"input_shape", "preprocess"} <= set(names), entry.__name__
    network, params = tiny
    wrong = {"network": network, "params": params, "input_shape": (40, 40, 1)}
    calls = [
        lambda: jaxdream.dream(PHOTO, CFG, **wrong),
        lambda: jaxdream.dream_many([PHOTO], CFG, **wrong),
        lambda: jaxdream.dream_photos([PHOTO], CFG, **wrong),
        lambda: jaxdream.explore(PHOTO, "conv3", [0], CFG, **wrong),
        lambda: jaxdream.oip(
            params,
            channel("conv3", 0),
            jnp.zeros((28, 28)),
            1,
            network=network,
            input_shape=(40, 40, 1),
        ),
        lambda: list(zoom(PHOTO, CFG, frames=1, **wrong)),
        lambda: render_zoom(PHOTO, str(tmp_path / "z.gif"), CFG, frames=1, **wrong),
        lambda: mnist_map_table("conv3", **wrong),
    ]
    for call in calls:
        with pytest.raises(ConfigError, match="not the input_shape given"):
            call()


def test_a_user_network_may_pool_with_the_fast_kernel(linen_net):
    """``jax.vmap(kernels.max_pool_2x2)`` in a Linen module (docs/own-network.md, "Speed"): the
    numbers of ``nn.max_pool`` forward, and the module dreams."""
    import flax.linen as nn

    from jaxdream.kernels import max_pool_2x2

    x = jax.random.normal(jax.random.key(1), (3, 32, 32, 4))
    np.testing.assert_array_equal(jax.vmap(max_pool_2x2)(x), nn.max_pool(x, (2, 2), (2, 2)))

    class Fast(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(4, (3, 3), padding="SAME")(x))
            x = jax.vmap(max_pool_2x2)(x)
            x = nn.relu(nn.Conv(6, (3, 3), padding="SAME")(x))
            return nn.Dense(5)(x.reshape(x.shape[0], -1))

    module, params = linen_net  # the same architecture: its weights fit
    fast = jaxdream.dream(PHOTO, CFG.replace(objective="Conv_1:3"), network=Fast(), params=params)
    slow = jaxdream.dream(PHOTO, CFG.replace(objective="Conv_1:3"), network=module, params=params)
    assert np.isfinite(fast.image).all()
    np.testing.assert_allclose(fast.image, slow.image, atol=1e-4)  # no ties in a random photo
