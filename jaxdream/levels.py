"""Every level of a carving iteration at once, as resize matrices: the form for large images.

Cutting a level's tiles and resizing them to the network's input is linear and separable, and
so is enlarging their changes and placing them back with their feathered windows. Along one
axis, level ``l``'s tiles are ``n`` windows (``layout.axis``); stacking each window's resize
matrix at its place gives a ``(n * 28, side)`` matrix that cuts and shrinks every tile of the
level in one product, and stacking the levels gives ``down`` ``(K, side)``, ``K`` the sum of
the levels' ``n * 28``. So every tile of every level, as the network sees it, is a block of

    ``down_rows @ image @ down_cols.T``  ``(K, K)``,

and the change of every tile of every level, enlarged, windowed and summed onto the image, is

    ``up_rows @ blocks @ up_cols.T``  ``(H, W)``,

``blocks`` holding each level's tiles' changes on its diagonal block. Two matrix products over
the image instead of a gather, a resize and a scatter for each level: at 4480 pixels wide the
image operations of an iteration take a tenth of the time. The numbers are the same to float
rounding as the level-by-level form (``Grid``/``Overlap`` ``cut`` and ``place`` with
``imageops.resize``), which smaller images keep, so their dreams' bytes do not move.

>>> import numpy as np
>>> from jaxdream.layouts import Grid
>>> m = level_matrices(Grid(), (56, 84), ((0, (0,)), (1, (0, 1, 2, 3))), (28, 28))
>>> m.down_rows.shape, m.up_cols.shape, m.row_offsets
((84, 56), (84, 84), (0, 28, 84))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.imageops import resize_matrix

Array = jax.Array
HIGHEST = jax.lax.Precision.HIGHEST


class LevelMatrices(NamedTuple):
    """The stacked resize matrices of a working shape's levels (numpy, float32): ``down_rows``
    ``(K, H)``, ``down_cols`` ``(L, W)``, ``up_rows`` ``(H, K)``, ``up_cols`` ``(W, L)``, and
    where each level's block starts along ``K`` and ``L`` (one more than the levels)."""

    down_rows: np.ndarray
    down_cols: np.ndarray
    up_rows: np.ndarray
    up_cols: np.ndarray
    row_offsets: tuple[int, ...]
    col_offsets: tuple[int, ...]


def _axis_matrices(
    layout, shape: tuple[int, int], dim: int, level: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(down (n * size, side), up (side, n * size))`` of one level along axis ``dim``."""
    side = shape[dim]
    starts, weights = layout.axis(shape, level, dim)
    n, length = weights.shape
    down = np.zeros((n * size, side), np.float32)
    up = np.zeros((side, n * size), np.float32)
    shrink, grow = resize_matrix(length, size), resize_matrix(size, length)
    for i, start in enumerate(starts):
        down[i * size : (i + 1) * size, start : start + length] = shrink
        up[start : start + length, i * size : (i + 1) * size] = weights[i][:, None] * grow
    return down, up


@functools.lru_cache(maxsize=16)
def level_matrices(
    layout,
    shape: tuple[int, int],
    levels: tuple[tuple[int, tuple[int, ...]], ...],
    size: tuple[int, int],
) -> LevelMatrices:
    """The stacked matrices of ``levels`` (``DreamSpec.levels``) of images of ``shape``, tiles
    resized to ``size``, laid out by ``layout``. Made once per shape (a few MB at most)."""
    axes = []
    for dim, s in enumerate(size):
        pairs = [_axis_matrices(layout, shape, dim, level, s) for level, _ in levels]
        offsets = np.concatenate([[0], np.cumsum([d.shape[0] for d, _ in pairs])])
        axes.append(
            (
                np.concatenate([d for d, _ in pairs]),
                np.concatenate([u for _, u in pairs], axis=1),
                tuple(int(o) for o in offsets),
            )
        )
    (down_rows, up_rows, row_offsets), (down_cols, up_cols, col_offsets) = axes
    return LevelMatrices(down_rows, down_cols, up_rows, up_cols, row_offsets, col_offsets)


def _spans(m: LevelMatrices, levels):
    """Each level with its block's ``(start, stop)`` along ``K`` and along ``L``."""
    rows = zip(m.row_offsets[:-1], m.row_offsets[1:], strict=True)
    cols = zip(m.col_offsets[:-1], m.col_offsets[1:], strict=True)
    return zip(levels, rows, cols, strict=True)


def cut_levels(
    m: LevelMatrices,
    image: Array,
    levels: Sequence[tuple[int, Sequence[int]]],
    size: tuple[int, int],
) -> Array:
    """Every taking-part tile of ``levels``, resized to ``size``: ``(T, *size)`` in the order of
    the levels and their tiles, as ``layout.cut`` then ``resize`` give them."""
    rows = jnp.dot(m.down_rows, image, precision=HIGHEST)
    small = jnp.dot(rows, m.down_cols.T, precision=HIGHEST)  # (K, L): every level's tiles
    out = []
    for (level, tiles), (r0, r1), (c0, c1) in _spans(m, levels):
        n = 2**level
        every = small[r0:r1, c0:c1].reshape(n, size[0], n, size[1]).transpose(0, 2, 1, 3)
        every = every.reshape(n * n, *size)
        out.append(every if tuple(tiles) == tuple(range(n * n)) else every[np.asarray(tiles)])
    return jnp.concatenate(out)


def place_levels(
    m: LevelMatrices,
    changes: Array,
    levels: Sequence[tuple[int, Sequence[int]]],
    size: tuple[int, int],
    split: bool = False,
) -> Array:
    """Every taking-part tile's change ``(T, *size)`` (ordered as ``cut_levels`` gives the
    tiles) enlarged to its tile, windowed and placed: the sum over all levels ``(H, W)``, as
    ``resize`` then ``layout.place`` give it; with ``split``, each level's ``(levels, H, W)``."""
    blocks, start = [], 0
    for level, tiles in levels:
        n = 2**level
        part = changes[start : start + len(tiles)]
        start += len(tiles)
        if tuple(tiles) != tuple(range(n * n)):  # absent tiles change nothing: zeros
            source = np.full(n * n, len(tiles))
            source[np.asarray(tiles)] = np.arange(len(tiles))
            part = jnp.concatenate([part, jnp.zeros((1, *size), part.dtype)])[source]
        block = part.reshape(n, n, *size).transpose(0, 2, 1, 3)
        blocks.append(block.reshape(n * size[0], n * size[1]))
    if split:
        return jnp.stack(
            [
                jnp.dot(
                    jnp.dot(m.up_rows[:, r0:r1], block, precision=HIGHEST),
                    m.up_cols[:, c0:c1].T,
                    precision=HIGHEST,
                )
                for block, (_, (r0, r1), (c0, c1)) in zip(blocks, _spans(m, levels), strict=True)
            ]
        )
    rows = jnp.dot(m.up_rows, jax.scipy.linalg.block_diag(*blocks), precision=HIGHEST)
    return jnp.dot(rows, m.up_cols.T, precision=HIGHEST)
