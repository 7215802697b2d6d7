"""Every level at once by resize matrices (``jaxdream.levels``) agrees with the level-by-level
form (``layout.cut`` + ``resize``, ``resize`` + ``layout.place``) that small images keep."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.config import DreamConfig, Level
from jaxdream.imageops import OIP_SIZE, resize
from jaxdream.layouts import Grid, Overlap
from jaxdream.levels import cut_levels, level_matrices, place_levels

carve = importlib.import_module("jaxdream.carve")

LEVELS = ((0, (0,)), (1, (3,)), (2, tuple(range(16))), (3, (0, 9, 63)))


@pytest.mark.parametrize(
    "layout",
    [Grid(), Overlap(0.5), Overlap(0.25), Overlap(0.0, aspect=0.6), Overlap(0.25, aspect=1.0)],
)
@pytest.mark.parametrize("shape", [(224, 224), (240, 320)])
def test_cut_and_place_agree_with_the_level_by_level_form(layout, shape):
    rng = np.random.default_rng(0)
    image = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    m = level_matrices(layout, shape, LEVELS, OIP_SIZE)
    tiles = cut_levels(m, image, LEVELS, OIP_SIZE)
    expected = jnp.concatenate([resize(layout.cut(image, lv, t), OIP_SIZE) for lv, t in LEVELS])
    np.testing.assert_allclose(tiles, expected, atol=2e-5)

    changes = jnp.asarray(rng.standard_normal(tiles.shape), jnp.float32)
    placed, start = [], 0
    for lv, t in LEVELS:
        part = changes[start : start + len(t)]
        start += len(t)
        placed.append(layout.place(resize(part, layout.tile_shape(shape, lv)), shape, lv, t))
    split = place_levels(m, changes, LEVELS, OIP_SIZE, split=True)
    np.testing.assert_allclose(split, jnp.stack(placed), atol=2e-5)
    np.testing.assert_allclose(place_levels(m, changes, LEVELS, OIP_SIZE), sum(placed), atol=5e-5)


def test_a_large_dream_takes_the_matrices_and_agrees(monkeypatch, tiny):
    """The same iteration by both forms, with its stages: equal to float rounding (the OIP
    steps then amplify rounding, so the check is on an iteration of few steps)."""
    model, params = tiny
    config = DreamConfig(
        size=96, levels=(Level(0), Level(1), Level(2, tiles=(1, 6))), overlap=0.5, steps=2
    )
    shape = config.working_shape((72, 96))
    spec, knobs = config.spec(model, shape), config.knobs()
    image = jnp.asarray(np.random.default_rng(1).standard_normal(shape), jnp.float32)
    key = jax.random.key(3)
    runs = []
    for threshold in (10**12, 1):
        monkeypatch.setattr(carve, "MATRICES_FROM", threshold)
        assert carve.by_matrices(spec) == (threshold == 1)
        runs.append(
            carve._batched_iteration(spec, params, knobs, carve.VMap(), image, key, record=True)
        )
    (a, stages_a), (b, stages_b) = runs
    np.testing.assert_allclose(a, b, atol=1e-4)
    for x, y in zip(stages_a, stages_b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)
    assert not carve.by_matrices(config.replace(shift_tiles=True).spec(model, shape))
