"""Colour carving: a Flax Linen CNN of 32x32 RGB input dreams the photo in colour (working
images ``(H, W, 3)``), through ``dream``, ``dream_photos``, ``explore``, OIP, a zoom (from
Python and the command line, resumed to the same bytes) and a video; the faithful schedule
refuses it clearly."""

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
from jaxdream.imageio import to_pixels
from jaxdream.motion import zoom
from jaxdream.network import as_network, is_color
from jaxdream.objectives import channel
from jaxdream.patterns import oip_from_noise
from tests.helpers import REPO, TINY_DREAM_FLAGS, LinenCNN

PHOTO = np.random.default_rng(0).random((40, 56, 3))
CFG = DreamConfig(size=40, iterations=2, steps=3, map=1, layer="Conv_1")
# A gray photo: what colour its frames hold, the colour network's carving put there.
GRAY = PHOTO.mean(axis=-1)
ZOOM = CFG.replace(size=32, iterations=1, steps=2)
MOVE = {"zoom": 1.1, "rotate": 3.0, "pan": (1.0, -0.5)}
COLOR_NET = f"{REPO / 'tests' / 'networks' / 'color_cnn.py'}:NET"


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


def _in_colour(frame: np.ndarray) -> bool:
    """Whether a uint8 frame's channels differ (on average by over half a level): not gray."""
    f = frame.astype(int)
    return bool(
        np.abs(f[..., 0] - f[..., 1]).mean() > 0.5 and np.abs(f[..., 1] - f[..., 2]).mean() > 0.5
    )


def _zoom(pair, photo=GRAY, config=ZOOM, **kw):
    network, params = pair
    return zoom(photo, config, network=network, params=params, **kw)


def test_a_colour_zoom_carves_in_colour_same_seed_same_bytes(color):
    run = _zoom(color, frames=3, **MOVE)
    a = list(run)
    b = list(_zoom(color, frames=3, color=True, **MOVE))  # color: already in colour
    shape = ZOOM.working_shape(GRAY.shape)
    assert [f.shape for f in a] == [(*shape, 3)] * 3 and a[0].dtype == np.uint8
    assert all(_in_colour(f) for f in a)  # a gray photo: the colour is the carving's
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    state = run.state()
    assert state["image"].shape == state["reference"].shape == (*shape, 3)
    assert np.abs(a[2].astype(int) - a[1]).mean() > 0.5  # the zoom moves


@pytest.mark.parametrize("size", ["working", "photo"])
def test_a_colour_zoom_resumes_to_the_same_bytes(color, size):
    config = ZOOM.replace(strength=0.5)  # a layer carried at either size
    whole = list(_zoom(color, config=config, frames=4, size=size, **MOVE))
    assert whole[0].shape == ((*GRAY.shape, 3) if size == "photo" else (22, 32, 3))
    run = _zoom(color, config=config, frames=4, size=size, **MOVE)
    for _ in range(2):
        next(run)
    state = run.state()
    run.close()
    assert state["layer"].shape == whole[0].shape and "chroma" not in state
    rest = list(_zoom(color, config=config, frames=4, size=size, resume=state, **MOVE))
    assert all(np.array_equal(x, y) for x, y in zip(whole[2:], rest, strict=True))


def test_a_resume_by_another_kind_of_network_is_refused(color, tiny):
    run = _zoom(color, frames=2)
    next(run)
    state = run.state()
    run.close()
    model, params = tiny
    config = DreamConfig(size=32, iterations=1, steps=2, map=3)
    with pytest.raises(ConfigError, match=r"dreamt by an RGB .* this one is a gray"):
        zoom(GRAY, config, frames=2, model=model, params=params, resume=state)
    gray_state = {**state, "image": state["image"][..., 0], "reference": state["reference"][..., 0]}
    with pytest.raises(ConfigError, match=r"dreamt by a gray .* this one is an RGB"):
        _zoom(color, frames=2, resume=gray_state)


def test_a_colour_zoom_at_the_photos_size(color):
    frames = list(_zoom(color, PHOTO, ZOOM.replace(strength=0.0), frames=3, size="photo"))
    assert np.abs(frames[0].astype(int) - to_pixels(PHOTO.astype(np.float32))).max() <= 1
    carved = list(_zoom(color, PHOTO, frames=2, size="photo"))
    assert np.abs(carved[1].astype(int) - frames[1]).mean() > 1
    # Frame 0 is the colour dream at the photo's size.
    network, params = color
    shown = jaxdream.dream(PHOTO, ZOOM, network=network, params=params).to_uint8(size="photo")
    assert np.abs(shown.astype(int) - carved[0]).max() <= 1


def test_the_command_line_zooms_with_a_colour_network(tmp_path, color):
    from PIL import Image

    from jaxdream.cli import main
    from jaxdream.loading import save_weights

    _, params = color
    save_weights(tmp_path / "w.msgpack", params)
    photo, out = tmp_path / "photo.png", tmp_path / "zoom"
    Image.fromarray(to_pixels(np.repeat(GRAY[..., None], 3, -1).astype(np.float32))).save(photo)
    argv = ["zoom", str(photo), "-o", f"{out}/", "--frames", "3", "--network", COLOR_NET]
    argv += ["--weights", str(tmp_path / "w.msgpack"), *TINY_DREAM_FLAGS, "--layer", "Conv_1"]
    argv += ["--iterations", "2", "--steps", "3"]  # enough carving to colour the gray photo
    assert main(argv) == 0
    written = sorted(out.iterdir())
    assert len(written) == 3
    for path in written:
        with Image.open(path) as frame:
            assert frame.mode == "RGB" and frame.size == (56, 40)  # at the photo's size
            assert _in_colour(np.asarray(frame))


def test_a_colour_video_writes_colour_frames_and_carries_its_carving(tmp_path, color):
    pytest.importorskip("av")
    from PIL import Image

    from jaxdream.video import VideoSettings, dream_video, render_video, save_video
    from tests.clips import pan

    network, params = color
    gray = [np.repeat(f.mean(-1, keepdims=True), 3, -1).astype(np.uint8) for f in pan(4, 24, 32)]
    clip = tmp_path / "clip.mp4"
    save_video(clip, gray, 12)
    config = CFG.replace(size=24, iterations=3, steps=6)  # enough to colour the gray frames
    kw = {"network": network, "params": params}
    for coherence in ("none", "blend"):
        out = tmp_path / coherence
        done = render_video(clip, f"{out}/", config, VideoSettings(coherence=coherence), **kw)
        assert done.made == 4 and done.size == (24, 32)
        for path in sorted(out.iterdir()):
            with Image.open(path) as frame:
                assert frame.mode == "RGB" and _in_colour(np.asarray(frame))
    # The carving carried in colour: a range resumed from the state after frame 1 makes the
    # frames of the unbroken run.
    flow = {"coherence": "flow", **kw}
    run = dream_video(clip, config, **flow)
    frames = [next(run)]
    frames.append(next(run))
    state = run.state
    frames += list(run)
    assert state[0].shape == state[1].shape == (*config.working_shape((24, 32)), 3)
    rest = list(dream_video(clip, config, frames=(2, None), state=state, **flow))
    assert len(rest) == 2 and all(_in_colour(f) for f in frames)
    assert all(np.array_equal(x, y) for x, y in zip(frames[2:], rest, strict=True))


def test_the_faithful_schedule_is_refused(color):
    network, params = color
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
