"""Tile layouts: where the tiles of each level lie, and how their changes go back into the image.

A layout is a small frozen (hashable) object with three methods, all static in shapes:

- ``tile_shape(shape, level)``: the ``(height, width)`` of one tile of ``level``;
- ``cut(image, level, tiles)``: the chosen tiles of ``level``, ``(len(tiles), th, tw)``;
- ``place(values, shape, level, tiles)``: an ``(H, W)`` image holding each tile's ``values``
  (a change to add) where that tile lies, zero elsewhere.

Level 0 is always the whole image. A new layout is one class here; the dream takes any object
with these methods (``DreamConfig.layout`` names the built-in ones).

>>> import jax.numpy as jnp
>>> x = jnp.ones((8, 8))
>>> Grid().cut(x, 1, (0, 3)).shape, Overlap(0.5).cut(x, 1, (0, 3)).shape
((2, 4, 4), (2, 6, 6))
>>> bool(jnp.allclose(Overlap(0.5).place(Overlap(0.5).cut(x, 1, range(4)), (8, 8), 1, range(4)), x))
True
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.imageops import cut_tiles, place_tiles

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Grid:
    """The article's tiles: level ``l`` is a ``2**l x 2**l`` grid of disjoint tiles, each
    ``(H / 2**l) x (W / 2**l)``, numbered row-major (level 1: 0 upper-left, 3 lower-right)."""

    def tile_shape(self, shape: tuple[int, int], level: int) -> tuple[int, int]:
        n = 2**level
        return shape[0] // n, shape[1] // n

    def cut(self, image: Array, level: int, tiles: Sequence[int]) -> Array:
        return cut_tiles(image, level, tuple(tiles))

    def place(
        self, values: Array, shape: tuple[int, int], level: int, tiles: Sequence[int]
    ) -> Array:
        return place_tiles(values, shape, level, tuple(tiles))


def _ramp_1d(size: int, n: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of ``n`` overlapping windows over ``size`` pixels (core ``size / n``,
    ``margin`` more on each side, moved inside at the edges) and their feathered weights,
    ``(n, core + 2 margin)``: linear ramps where a neighbour overlaps, flat at the edges."""
    core = size // n
    length = core + 2 * margin
    starts = np.clip(np.arange(n) * core - margin, 0, size - length)
    weights = np.ones((n, length))
    if margin == 0:
        return starts, weights
    for k, s in enumerate(starts):
        pos = np.arange(s, s + length) + 0.5
        if k > 0:  # ramp up across the overlap with the previous window
            weights[k] *= np.clip((pos - (k * core - margin)) / (2 * margin), 0, 1)
        if k < n - 1:  # ramp down across the overlap with the next window
            weights[k] *= np.clip(((k + 1) * core + margin - pos) / (2 * margin), 0, 1)
    return starts, weights


@functools.lru_cache(maxsize=64)
def _overlap_plan(shape: tuple[int, int], level: int, fraction: float):
    """Static tile origins ``(n*n, 2)`` and normalized feather windows ``(n*n, th, tw)`` of an
    ``Overlap`` level: at every pixel the windows of all ``n*n`` tiles sum to 1."""
    n = 2**level
    (sy, wy), (sx, wx) = (
        _ramp_1d(side, n, Overlap.margin(side // n, fraction, side)) for side in shape
    )
    origins = np.array([(y, x) for y in sy for x in sx])
    windows = np.einsum("ah,bw->abhw", wy, wx).reshape(n * n, wy.shape[1], wx.shape[1])
    total = np.zeros(shape)
    for (y, x), w in zip(origins, windows, strict=True):
        total[y : y + w.shape[0], x : x + w.shape[1]] += w
    for k, (y, x) in enumerate(origins):
        windows[k] /= total[y : y + windows.shape[1], x : x + windows.shape[2]]
    return origins, windows.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Overlap:
    """Overlapping tiles with feathered blending, to hide the seams of plain quadrants.

    Each tile of level ``l >= 1`` is its grid cell grown by ``fraction / 2`` of the cell's side
    on each side (moved inside the image at its edges), so neighbours overlap by ``fraction`` of
    a cell. A tile's change is weighted by a window that ramps linearly across each overlap and
    is 1 elsewhere; the windows of all tiles of a level sum to 1 at every pixel, so where all
    tiles take part their changes blend into one smooth change, and with zero steps the image is
    returned unchanged. Level 0 is the whole image, as in ``Grid``.
    """

    fraction: float = 0.25

    @staticmethod
    def margin(core: int, fraction: float, side: int) -> int:
        """Pixels a tile reaches past its cell on each side (at most what fits the image)."""
        return int(min(round(core * fraction / 2), (side - core) // 2))

    def tile_shape(self, shape: tuple[int, int], level: int) -> tuple[int, int]:
        if level == 0:
            return shape[0], shape[1]
        n = 2**level
        h, w = (s // n + 2 * self.margin(s // n, self.fraction, s) for s in shape)
        return h, w

    def cut(self, image: Array, level: int, tiles: Sequence[int]) -> Array:
        if level == 0:
            return cut_tiles(image, 0, tuple(tiles))
        origins, _ = _overlap_plan(tuple(image.shape), level, float(self.fraction))
        th, tw = self.tile_shape(tuple(image.shape), level)
        return jnp.stack([image[y : y + th, x : x + tw] for y, x in origins[np.asarray(tiles)]])

    def place(
        self, values: Array, shape: tuple[int, int], level: int, tiles: Sequence[int]
    ) -> Array:
        if level == 0:
            return place_tiles(values, shape, 0, tuple(tiles))
        origins, windows = _overlap_plan(tuple(shape), level, float(self.fraction))
        th, tw = self.tile_shape(tuple(shape), level)
        parts = []
        for value, k in zip(values, tiles, strict=True):  # static offsets: pads, no scatter
            y, x = (int(v) for v in origins[k])
            pad = ((y, shape[0] - y - th), (x, shape[1] - x - tw))
            parts.append(jnp.pad(value * windows[k], pad))
        return sum(parts[1:], parts[0])


LAYOUTS = {"grid": Grid, "overlap": Overlap}
