"""Tile layouts: where the tiles of each level lie, and how their changes go back into the image.

A layout is a small frozen (hashable) object with four methods, all static in shapes:

- ``tile_shape(shape, level)``: the ``(height, width)`` of one tile of ``level``;
- ``cut(image, level, tiles)``: the chosen tiles of ``level``, ``(len(tiles), th, tw)``;
- ``place(values, shape, level, tiles)``: an ``(H, W)`` image holding each tile's ``values``
  (a change to add) where that tile lies, zero elsewhere;
- ``axis(shape, level, dim)``: the same tiles along axis ``dim`` of images of ``shape``, their
  starts and the weights of their windows (1 for disjoint tiles): the separable form
  ``jaxdream.levels`` builds a large image's resize matrices from.

Level 0 is always the whole image. Each level's tiles are cut and placed in ONE operation
whatever their count (a reshape for the grid, a windowed gather and scatter-add for
overlapping tiles), so a dream's program stays about the same size from 5 tiles to 4,096.
A new layout is one class here; the dream takes any object
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
import math
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

    def axis(self, shape: tuple[int, int], level: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Axis ``dim`` of ``level``'s tiles: their starts ``(n,)`` and their weights ``(n,
        length)`` (a tile's 2-D window is the product of its row's and its column's)."""
        n = 2**level
        core = shape[dim] // n
        return np.arange(n, dtype=np.int32) * core, np.ones((n, core), np.float32)


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
def _overlap_axis(side: int, level: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis of an ``Overlap`` level: the ``n`` window starts (windows reaching ``margin``
    pixels past their cell) and their feathered weights ``(n, length)``, normalized so that the
    windows sum to 1 at every pixel of the axis.

    The 2-D windows are products of one row window and one column window, so they sum to 1 at
    every pixel of the image too: only these 1-D weights are stored (per level, not per tile),
    and a tile's 2-D window is their product, computed in the program."""
    n = 2**level
    starts, weights = _ramp_1d(side, n, margin)
    total = np.zeros(side)
    for s, w in zip(starts, weights, strict=True):
        total[s : s + w.size] += w
    weights = weights / np.stack([total[s : s + weights.shape[1]] for s in starts])
    return starts.astype(np.int32), weights.astype(np.float32)


def _overlap_plan(layout: Overlap, shape: tuple[int, int], level: int):
    """Every tile's origin ``(n*n, 2)`` and 2-D window ``(n*n, th, tw)`` of an ``Overlap``
    level, in numpy (to look at and test; the program computes them from ``_overlap_axis``)."""
    (sy, wy), (sx, wx) = (layout.axis(shape, level, dim) for dim in (0, 1))
    origins = np.array([(y, x) for y in sy for x in sx])
    windows = np.einsum("ah,bw->abhw", wy, wx).reshape(len(origins), wy.shape[1], wx.shape[1])
    return origins, windows


def _origins(starts_y: np.ndarray, starts_x: np.ndarray, tiles: Sequence[int]):
    """Row and column indices ``(T,)`` of the chosen tiles (row-major) into the starts: from
    the ``n`` starts by a broadcast where all tiles take part, else one index per tile."""
    n = starts_x.size
    if tuple(tiles) == tuple(range(n * n)):
        rows = jnp.broadcast_to(jnp.arange(n)[:, None], (n, n)).reshape(-1)
        cols = jnp.broadcast_to(jnp.arange(n)[None, :], (n, n)).reshape(-1)
        return rows, cols
    tiles = np.asarray(tiles)
    return jnp.asarray(tiles // n, jnp.int32), jnp.asarray(tiles % n, jnp.int32)


_WINDOWS = jax.lax.GatherDimensionNumbers(
    offset_dims=(1, 2), collapsed_slice_dims=(), start_index_map=(0, 1)
)
_PLACES = jax.lax.ScatterDimensionNumbers(
    update_window_dims=(1, 2), inserted_window_dims=(), scatter_dims_to_operand_dims=(0, 1)
)


@dataclasses.dataclass(frozen=True)
class Overlap:
    """Overlapping tiles with feathered blending, to hide the seams of plain quadrants, or to
    cut tiles at the network's input aspect.

    Each tile of level ``l >= 1`` is its grid cell grown by ``fraction / 2`` of the cell's side
    on each side (moved inside the image at its edges), so neighbours overlap by ``fraction`` of
    a cell. With an ``aspect`` (the network's input width over its height), a tile whose window
    is narrower or wider than that is grown further along its short axis until its window has
    the network's aspect (as far as the image allows), so the network sees it unsqueezed. A
    tile's change is weighted by a window that ramps linearly across each overlap and is 1
    elsewhere; the windows of all tiles of a level sum to 1 at every pixel, so where all tiles
    take part their changes blend into one smooth change, and with zero steps the image is
    returned unchanged. Level 0 is the whole image, as in ``Grid``.

    >>> Overlap(0.0, aspect=1.0).tile_shape((300, 452), 1)
    (226, 226)
    """

    fraction: float = 0.25
    aspect: float | None = None

    @staticmethod
    def margin(core: int, fraction: float, side: int) -> int:
        """Pixels a tile reaches past its cell on each side (at most what fits the image)."""
        return int(min(round(core * fraction / 2), (side - core) // 2))

    def margins(self, shape: tuple[int, int], level: int) -> tuple[int, int]:
        """Pixels ``level``'s tiles reach past their cells on each side, ``(rows, columns)``."""
        n = 2**level
        (ch, cw), (h, w) = (shape[0] // n, shape[1] // n), shape
        my, mx = self.margin(ch, self.fraction, h), self.margin(cw, self.fraction, w)
        if self.aspect is not None and level > 0:
            th, tw = ch + 2 * my, cw + 2 * mx
            if tw > th * self.aspect:  # too wide for the network: taller windows
                my = max(my, min(math.ceil((tw / self.aspect - ch) / 2), (h - ch) // 2))
            else:
                mx = max(mx, min(math.ceil((th * self.aspect - cw) / 2), (w - cw) // 2))
        return int(my), int(mx)

    def tile_shape(self, shape: tuple[int, int], level: int) -> tuple[int, int]:
        if level == 0:
            return shape[0], shape[1]
        n = 2**level
        my, mx = self.margins(shape, level)
        return shape[0] // n + 2 * my, shape[1] // n + 2 * mx

    def _plan(self, shape: tuple[int, int], level: int, tiles: Sequence[int]):
        """The chosen tiles' origins ``(T, 2)`` and their row and column weights."""
        (sy, wy), (sx, wx) = (self.axis(shape, level, dim) for dim in (0, 1))
        rows, cols = _origins(sy, sx, tiles)
        origins = jnp.stack([jnp.asarray(sy)[rows], jnp.asarray(sx)[cols]], axis=1)
        return origins, jnp.asarray(wy)[rows], jnp.asarray(wx)[cols]

    def cut(self, image: Array, level: int, tiles: Sequence[int]) -> Array:
        if level == 0:
            return cut_tiles(image, 0, tuple(tiles))
        shape = tuple(image.shape)
        origins, _, _ = self._plan(shape, level, tiles)
        size = self.tile_shape(shape, level)
        # ONE windowed gather, whatever the tile count: the windows are computed, not stored.
        return jax.lax.gather(image, origins, _WINDOWS, size, mode="promise_in_bounds")

    def place(
        self, values: Array, shape: tuple[int, int], level: int, tiles: Sequence[int]
    ) -> Array:
        if level == 0:
            return place_tiles(values, shape, 0, tuple(tiles))
        origins, wy, wx = self._plan(tuple(shape), level, tiles)
        weighted = values * wy[:, :, None] * wx[:, None, :]
        # ONE windowed scatter-add, in tile order (the order the tiles' changes were summed in).
        zeros = jnp.zeros(shape, values.dtype)
        return jax.lax.scatter_add(
            zeros, origins, weighted, _PLACES, indices_are_sorted=True, mode="promise_in_bounds"
        )

    def axis(self, shape: tuple[int, int], level: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """As ``Grid.axis``: the feathered windows' starts and weights along axis ``dim``."""
        side = shape[dim]
        if level == 0:
            return np.zeros(1, np.int32), np.ones((1, side), np.float32)
        return _overlap_axis(side, level, self.margins(tuple(shape), level)[dim])


LAYOUTS = {"grid": Grid, "overlap": Overlap}
