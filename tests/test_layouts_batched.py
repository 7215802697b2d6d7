"""Tiles cut and placed as one batched operation per level: the same numbers as one tile at a
time, and a program whose size does not grow with the tile count (issue 22, item 5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.carve import carve
from jaxdream.config import DreamConfig, Level
from jaxdream.layouts import Grid, Overlap, _overlap_plan

CASES = [
    ((64, 96), 1, Overlap(0.25), None),
    ((96, 64), 2, Overlap(0.5), None),
    ((48, 48), 2, Overlap(0.5), (0, 5, 6, 15)),
    ((32, 64), 3, Overlap(0.9), (1, 2, 40, 63)),
    ((64, 64), 5, Overlap(0.5), None),  # margin 0: windows of ones, a partition without overlap
    # tiles at a network's aspect: taller windows for a square network on a wide image, wider
    # ones for a wide network, with or without an overlap of their own
    ((64, 96), 1, Overlap(0.0, aspect=1.0), None),
    ((60, 90), 2, Overlap(0.25, aspect=1.0), (0, 5, 6, 15)),
    ((96, 64), 2, Overlap(0.0, aspect=24 / 40), None),
    ((40, 120), 1, Overlap(0.0, aspect=0.5), None),
]


def _reference_cut(image: np.ndarray, shape, level, layout, tiles):
    origins, windows = _overlap_plan(layout, shape, level)
    th, tw = windows.shape[1:]
    return np.stack([image[y : y + th, x : x + tw] for y, x in origins[list(tiles)]])


def _reference_place(values: np.ndarray, shape, level, layout, tiles):
    origins, windows = _overlap_plan(layout, shape, level)
    th, tw = windows.shape[1:]
    out = np.zeros(shape, np.float64)
    for v, k in zip(values, tiles, strict=True):
        y, x = origins[k]
        out[y : y + th, x : x + tw] += v * windows[k]
    return out


@pytest.mark.parametrize("shape, level, layout, tiles", CASES)
def test_batched_overlap_cut_and_place_equal_one_tile_at_a_time(shape, level, layout, tiles):
    tiles = tuple(range(4**level)) if tiles is None else tiles
    rng = np.random.default_rng(level)
    image = rng.normal(size=shape).astype(np.float32)
    cut = np.asarray(layout.cut(jnp.asarray(image), level, tiles))
    np.testing.assert_array_equal(cut, _reference_cut(image, shape, level, layout, tiles))
    assert cut.shape[1:] == layout.tile_shape(shape, level)
    values = rng.normal(size=cut.shape).astype(np.float32)
    placed = np.asarray(layout.place(jnp.asarray(values), shape, level, tiles))
    expected = _reference_place(values, shape, level, layout, tiles)
    np.testing.assert_allclose(placed, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, level, layout", [(c[0], c[1], c[2]) for c in CASES])
def test_the_separable_windows_are_a_partition_of_unity(shape, level, layout):
    origins, windows = _overlap_plan(layout, shape, level)
    total = np.zeros(shape)
    for (y, x), w in zip(origins, windows, strict=True):
        total[y : y + w.shape[0], x : x + w.shape[1]] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def _program_bytes(model, params, config: DreamConfig) -> int:
    spec = config.spec(model, (64, 64))
    image = jnp.zeros((64, 64), jnp.float32)
    lowered = jax.jit(carve, static_argnums=0).lower(
        spec, params, image, config.knobs(), jax.random.key(0)
    )
    return len(lowered.as_text())


@pytest.mark.parametrize("overlap", [0.0, 0.5])
def test_the_program_does_not_grow_with_the_tile_count(tiny, overlap):
    model, params = tiny
    sizes = {}
    for deepest in (1, 4):
        config = DreamConfig(
            size=64,
            levels=tuple(Level(k) for k in range(deepest + 1)),
            iterations=1,
            steps=1,
            overlap=overlap,
        )
        sizes[deepest] = _program_bytes(model, params, config)
    # 5 tiles against 341: three more levels (a few resizes each), not 336 more tiles. Cut and
    # placed one tile at a time, the overlapping program was 3x the size at 0-4.
    assert sizes[4] < 2.0 * sizes[1], sizes


@pytest.mark.parametrize(
    "shape, aspect", [((64, 96), 1.0), ((60, 90), 1.0), ((96, 64), 0.6), ((40, 120), 0.5)]
)
def test_tiles_at_the_network_aspect_have_its_aspect_where_the_image_allows(shape, aspect):
    for level in (1, 2):
        th, tw = Overlap(0.0, aspect=aspect).tile_shape(shape, level)
        cell = (shape[0] // 2**level, shape[1] // 2**level)
        assert th >= cell[0] and tw >= cell[1]  # each covers its cell
        fits = th < shape[0] and tw < shape[1]
        assert abs(tw / th - aspect) <= 2 / min(th, tw) or not fits, (level, th, tw)


def test_a_chosen_subset_of_overlapping_tiles_is_placed_where_they_lie():
    layout = Overlap(0.5)
    values = jnp.ones((2, *layout.tile_shape((32, 32), 1)))
    placed = np.asarray(layout.place(values, (32, 32), 1, (0, 3)))
    # Tile 0 alone covers the upper-left corner, tile 3 the lower-right; the others are absent.
    assert placed[0, 0] == 1.0 and placed[-1, -1] == 1.0
    assert placed[0, -1] == 0.0 and placed[-1, 0] == 0.0
    np.testing.assert_array_equal(
        Grid().place(jnp.ones((1, 16, 16)), (32, 32), 1, (3,))[16:, 16:], np.ones((16, 16))
    )


def test_a_dream_cuts_its_tiles_at_a_networks_aspect(nnx_net):
    import jaxdream
    from jaxdream.errors import ConfigError
    from jaxdream.network import as_network

    network, params = as_network(nnx_net, input_shape=(40, 24, 1))
    image = np.random.default_rng(0).normal(size=(96, 48)).astype(np.float32)
    base = DreamConfig(size=(96, 48), levels=(Level(0), Level(1)), iterations=1, steps=2, map=1)
    fitted = base.replace(tile_aspect="network")
    th, tw = fitted.spec(network, (96, 48)).layout.tile_shape((96, 48), 1)
    assert (th, tw) == (48, 30)  # cells of 48x24 grown to about the network's 40x24 (0.6)
    assert base.spec(network, (96, 48)).layout == Grid()  # the article's cells, squeezed
    squeezed = jaxdream.dream(image, base, network=network, params=params).image
    at_aspect = jaxdream.dream(image, fitted, network=network, params=params).image
    assert np.isfinite(at_aspect).all() and not np.allclose(at_aspect, squeezed)
    unchanged = jaxdream.dream(image, fitted.replace(steps=0), network=network, params=params)
    np.testing.assert_allclose(unchanged.image, unchanged.gray, atol=1e-5)
    with pytest.raises(ConfigError, match="faithful"):
        jaxdream.dream(image, fitted.replace(schedule="faithful"), network=network, params=params)
