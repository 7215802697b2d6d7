"""Colour carving: a Flax Linen CNN of 32x32 RGB input dreams the photo in colour (working
images ``(H, W, 3)``), through ``dream``, ``dream_photos``, ``explore`` and OIP; a zoom, a video
and the faithful schedule refuse it clearly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdream
from jaxdream.config import DreamConfig
from jaxdream.errors import ConfigError
from jaxdream.exploring import responding_maps
from jaxdream.fullres import carved_photo
from jaxdream.motion import zoom
from jaxdream.network import as_network, is_color
from jaxdream.objectives import channel
from jaxdream.patterns import oip_from_noise
from tests.helpers import LinenCNN

PHOTO = np.random.default_rng(0).random((40, 56, 3))
CFG = DreamConfig(size=40, iterations=2, steps=3, map=1, layer="Conv_1")


@pytest.fixture(scope="module")
def color():
    module = LinenCNN()  # RGB: its first convolution's kernel takes 3 channels
    params = jax.jit(lambda k: module.init(k, jnp.zeros((1, 32, 32, 3)))["params"])(
        jax.random.key(0)
    )
    network, params = as_network(module, params)
    return network, params


def test_the_network_is_found_to_take_rgb(color):
    network, _ = color
    assert network.input_shape == (32, 32, 3) and is_color(network)


def test_dream_in_colour_same_seed_same_bytes(color):
    network, params = color
    a = jaxdream.dream(PHOTO, CFG, network=network, params=params)
    b = jaxdream.dream(PHOTO, CFG, network=network, params=params)
    h, w = CFG.working_shape(PHOTO.shape[:2])
    assert a.image.shape == (h, w, 3) and a.gray.shape == (h, w, 3)
    assert np.isfinite(a.image).all() and np.array_equal(a.image, b.image)
    change = a.image - a.gray
    assert np.abs(change).mean() > 0
    # The carving is not gray: its channels change each their own way.
    assert np.abs(change[..., 0] - change[..., 1]).mean() > 1e-3
    assert np.abs(change[..., 1] - change[..., 2]).mean() > 1e-3


def test_a_colour_dream_renders_its_own_colours(color):
    network, params = color
    result = jaxdream.dream(PHOTO, CFG, network=network, params=params)
    h, w = result.image.shape[:2]
    pixels = result.to_uint8()
    assert pixels.shape == (h, w, 3) and pixels.dtype == np.uint8
    assert np.array_equal(result.to_uint8(color=True), pixels)  # no colorize: its own colours
    assert result.to_uint8(size="photo").shape == (*PHOTO.shape[:2], 3)
    assert result.to_uint8(size="enlarged").shape == (*PHOTO.shape[:2], 3)
    assert result.render(result.gray).shape == (h, w, 3)


def test_the_change_at_the_photos_size_moves_each_channel():
    rgb = np.random.default_rng(1).random((40, 60, 3)).astype(np.float32)
    change = np.zeros((20, 30, 3), np.float32)
    change[..., 0] = 1.0
    out = carved_photo(rgb, change, strength=1.0).astype(int)
    base = carved_photo(rgb, change, strength=0.0).astype(int)
    assert out.shape == (40, 60, 3)
    assert (out[..., 0] >= base[..., 0]).all() and (out[..., 0] > base[..., 0]).any()
    assert np.array_equal(out[..., 1:], base[..., 1:])


def test_a_large_working_image_cuts_by_matrices_alike(color, monkeypatch):
    """The resize-matrix form of the levels' cut and placement (large images) gives the
    level-by-level form's numbers in colour too."""
    import jaxdream.carve as carve
    from jaxdream.dreaming import prepare_rgb
    from jaxdream.imageio import load_photo
    from jaxdream.parallel import VMap

    network, params = color
    shape = CFG.working_shape(PHOTO.shape[:2])
    spec, knobs = CFG.spec(network, shape), CFG.knobs()
    image = jnp.asarray(prepare_rgb(load_photo(PHOTO), shape))
    key = jax.random.key(0)
    a, _ = carve._batched_iteration(spec, params, knobs, VMap(), image, key)
    monkeypatch.setattr(carve, "MATRICES_FROM", 1)
    assert carve.by_matrices(spec)
    b, _ = carve._batched_iteration(spec, params, knobs, VMap(), image, key)
    assert a.shape == b.shape == (*shape, 3)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-4)


def test_dream_photos_and_explore_in_colour(color):
    network, params = color
    outcomes = list(jaxdream.dream_photos([PHOTO, PHOTO], CFG, network=network, params=params))
    assert len(outcomes) == 2
    for o in outcomes:
        assert o.result is not None and o.result.image.shape[-1] == 3
        assert np.isfinite(o.result.image).all()
    one = jaxdream.dream(PHOTO, CFG, network=network, params=params)
    assert np.array_equal(outcomes[0].result.image, one.image)
    found = jaxdream.explore(PHOTO, "Conv_1", [0, 2], CFG, network=network, params=params)
    assert sorted(e.map for e in found) == [0, 2]
    assert all(e.result.image.shape[-1] == 3 for e in found)
    maps = responding_maps(one.gray, "Conv_1", model=network, params=params, count=3)
    assert len(maps) <= 3 and all(0 <= m < 6 for m in maps)


def test_oip_from_noise_at_the_networks_colour_input(color):
    network, params = color
    out, starts = oip_from_noise(
        params,
        channel("Conv_1", jnp.array([0, 1])),
        jax.random.key(1),
        2,
        steps=3,
        network=network,
    )
    assert out.images.shape == (2, 32, 32, 3) and np.isfinite(np.asarray(out.images)).all()
    assert len(starts) == 2
    one = jaxdream.oip(params, channel("Conv_1", 0), out.images[0], 2, network=network)
    assert one.images.shape == (32, 32, 3)
    with pytest.raises(ConfigError, match="32x32x3"):
        jaxdream.oip(params, channel("Conv_1", 0), jnp.zeros((32, 32)), 1, network=network)


def test_zoom_video_and_the_faithful_schedule_are_refused(color):
    network, params = color
    with pytest.raises(ConfigError, match="a zoom with a 3-channel"):
        list(zoom(PHOTO, CFG, frames=2, network=network, params=params))
    with pytest.raises(ConfigError, match="batched schedule only"):
        jaxdream.dream(PHOTO, CFG.replace(schedule="faithful"), network=network, params=params)


def test_the_stage_figure_of_a_colour_dream(color):
    from jaxdream.figures import stage_figure

    network, params = color
    config = CFG.replace(iterations=1)
    staged = jaxdream.dream(PHOTO, config, network=network, params=params, return_stages=True)
    framed = jaxdream.dream(PHOTO, config, network=network, params=params, return_frames=True)
    for result in (staged, framed):
        figure = stage_figure(result, result.photo)
        assert figure.mode == "RGB" and figure.size[0] > 0


def test_the_command_line_dreams_with_a_colour_network(tmp_path, color):
    from PIL import Image

    from jaxdream.cli import main
    from jaxdream.loading import save_weights

    _, params = color
    source = tmp_path / "colornet.py"
    source.write_text(
        "import flax.linen as nn\n\n"
        "class ColorCNN(nn.Module):\n"
        "    @nn.compact\n"
        "    def __call__(self, x):\n"
        "        x = nn.relu(nn.Conv(4, (3, 3), padding='SAME')(x))\n"
        "        x = nn.max_pool(x, (2, 2), (2, 2))\n"
        "        x = nn.relu(nn.Conv(6, (3, 3), padding='SAME')(x))\n"
        "        return nn.Dense(5)(x.reshape(x.shape[0], -1))\n"
    )
    save_weights(tmp_path / "w.msgpack", params)
    photo, out = tmp_path / "photo.png", tmp_path / "out.png"
    Image.fromarray((PHOTO * 255).astype(np.uint8)).save(photo)
    argv = ["dream", str(photo), "-o", str(out), "--network", f"{source}:ColorCNN"]
    argv += ["--weights", str(tmp_path / "w.msgpack"), "--size", "40", "--iterations", "1"]
    assert main([*argv, "--steps", "2", "--figure", str(tmp_path / "fig.png")]) == 0
    with Image.open(out) as written:
        assert written.mode == "RGB" and written.size == (56, 40)
