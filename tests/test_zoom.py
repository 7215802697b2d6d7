"""The zoom: the per-frame move, one compiled program for every frame, the state carried,
same bytes for the same seed, resuming, and bad settings refused before any work."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.config import DreamConfig, Level
from jaxdream.errors import ConfigError, ImageError
from jaxdream.motion import IDENTITY, Motion, warp, zoom

CFG = DreamConfig(size=32, iterations=1, steps=2, levels=(Level(0), Level(1)), map=3)
PHOTO = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)


def _frames(tiny, config=CFG, **kw):
    model, params = tiny
    return list(zoom(PHOTO, config, model=model, params=params, **kw))


def test_warp_moves_as_the_motion_says():
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    img = jnp.asarray(np.sin(x / 3) + np.cos(y / 5) + 0.1 * x * y / 16)
    assert (np.asarray(warp(img, *IDENTITY)) == np.asarray(img)).all()
    # The view moved 2 px right and 1 down: the picture slides left and up.
    moved = np.asarray(warp(img, *Motion(1.0, 0.0, (2.0, 1.0)).matrix((16, 16))))
    np.testing.assert_allclose(moved[:-1, :-2], np.asarray(img)[1:, 2:], atol=1e-5)
    # A quarter turn counter-clockwise is numpy's rot90.
    turned = np.asarray(warp(img, *Motion(1.0, 90.0).matrix((16, 16))))
    np.testing.assert_allclose(turned, np.rot90(np.asarray(img)), atol=1e-4)
    # Zooming in by 2: the centre stays, a pixel 4 from the centre shows what lay 2 from it.
    zoomed = np.asarray(warp(img, *Motion(2.0).matrix((16, 16))))
    c = 7.5
    sample = jax.scipy.ndimage.map_coordinates(img, [[c + (11 - c) / 2], [c]], order=1)
    np.testing.assert_allclose(zoomed[11, 7:9].mean(), float(sample[0]), atol=0.2)
    assert abs(zoomed[11, 7] - np.asarray(img)[11, 7]) > 1e-3  # it did move


def test_frames_at_the_working_size_same_bytes_for_the_same_seed(tiny):
    a = _frames(tiny, frames=4, color=True)
    b = _frames(tiny, frames=4, color=True)
    assert (
        len(a) == 4
        and a[0].shape == (*CFG.working_shape(PHOTO.shape[:2]), 3)
        and a[0].dtype == np.uint8
    )
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    other = _frames(tiny, CFG.replace(seed=1, shift_tiles=True), frames=4, color=True)
    assert len(other) == 4
    # Frames differ from one to the next (the zoom moves), and the dream carries on.
    assert all(np.abs(x.astype(int) - y).mean() > 0.5 for x, y in itertools.pairwise(a))


def test_the_state_carries_from_frame_to_frame(tiny):
    """Frame 1 is frame 0's dream moved and dreamt again, not the photo moved."""
    model, params = tiny
    run = zoom(PHOTO, CFG, frames=2, model=model, params=params, zoom=1.0)
    next(run)
    after_one = run.state()["image"]
    next(run)
    after_two = run.state()["image"]
    fresh = zoom(PHOTO, CFG, frames=1, model=model, params=params)
    next(fresh)
    # With no move, frame 1 continues frame 0: one more iteration changes it again.
    assert np.abs(after_two - after_one).mean() > 1e-4
    assert (fresh.state()["image"] == after_one).all()


def test_a_ten_frame_zoom_compiles_exactly_one_program(tiny):
    """Every frame, the first (the identity move) included, runs the same compiled program;
    after the set-up nothing else is compiled at all."""
    model, params = tiny
    config = CFG.replace(size=40)  # a working shape no other test compiles
    compiled = []

    def listen(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kw.get("fun_name"))

    run = zoom(PHOTO, config, frames=10, model=model, params=params, rotate=2.0, pan=(1, 0))
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        frames = list(run)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert len(frames) == 10
    assert compiled == ["jit(zoom_step)"], compiled


def test_resuming_from_the_state_gives_the_same_frames(tiny):
    model, params = tiny
    whole = _frames(tiny, frames=5, zoom=1.1, rotate=3.0)
    first = zoom(PHOTO, CFG, frames=5, model=model, params=params, zoom=1.1, rotate=3.0)
    head = [next(first), next(first)]
    state = {k: np.copy(v) for k, v in first.state().items()}
    assert int(state["next"]) == 2
    rest = list(
        zoom(PHOTO, CFG, frames=5, model=model, params=params, zoom=1.1, rotate=3.0, resume=state)
    )
    assert len(rest) == 3
    assert all((x == y).all() for x, y in zip(whole, head + rest, strict=True))
    with pytest.raises(ConfigError, match="cannot resume"):
        zoom(PHOTO, CFG.replace(size=48), frames=5, model=model, params=params, resume=state)
    with pytest.raises(ConfigError, match="no frame has been made"):
        zoom(PHOTO, CFG, frames=5, model=model, params=params).state()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"frames": 0}, "frames must be in 1"),
        ({"frames": 10**7}, "frames must be in 1"),
        ({"frames": 2.5}, "frames must be a whole number"),
        ({"zoom": 0.0}, "zoom must be > 0"),
        ({"zoom": -1.05}, "zoom must be > 0"),
        ({"zoom": math.nan}, "zoom must be a finite number"),
        ({"zoom": math.inf}, "zoom must be a finite number"),
        ({"zoom": 1e6}, r"zoom must be in \[0.1, 10\]"),
        ({"rotate": math.nan}, "rotate must be a finite number"),
        ({"rotate": math.inf}, "rotate must be a finite number"),
        ({"pan": (math.nan, 0)}, "pan dx must be a finite number"),
        ({"pan": (0, -math.inf)}, "pan dy must be a finite number"),
        ({"pan": (1,)}, "pan is two numbers"),
    ],
)
def test_bad_motion_settings_are_refused_before_any_work(tiny, kwargs, pattern, monkeypatch):
    from jaxdream import motion

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(motion, "zoom_step", no_work)
    model, params = tiny
    with pytest.raises(ConfigError, match=pattern):
        zoom(PHOTO, CFG, model=model, params=params, **kwargs)


def test_bad_photos_and_configs_are_refused(tiny):
    model, params = tiny
    with pytest.raises(ImageError):
        zoom("/no/such/photo.jpg", CFG, model=model, params=params)
    with pytest.raises(ConfigError, match="DreamConfig"):
        zoom(PHOTO, {"size": 32}, model=model, params=params)
    with pytest.raises(ConfigError):
        zoom(PHOTO, CFG.replace(epsilon=math.nan), model=model, params=params)
    with pytest.raises(ConfigError, match="strength"):  # 0..10, as every dream's
        zoom(PHOTO, CFG.replace(strength=11.0), model=model, params=params)
    with pytest.raises(ConfigError, match="size must be one of"):
        zoom(PHOTO, CFG, size="huge", model=model, params=params)
