"""Image operations on standardized images: the low-level pieces every dream is made of.

Standardize, resize (bicubic, antialiased, as ``jax.image.resize``), and cut or place the tiles
of a ``2**level x 2**level`` grid. Pure functions of arrays; no model, no device, no config.
They act on gray images ``(H, W)``; a colour working image ``(H, W, 3)`` goes through them
channel by channel (``jaxdream.carve.per_channel``), its standardizations over all channels.

>>> import jax.numpy as jnp
>>> x = jnp.arange(16.0).reshape(4, 4)
>>> cut_tiles(x, 1, (3,)).tolist()          # the lower-right quadrant
[[[10.0, 11.0], [14.0, 15.0]]]
>>> resize(x, (2, 2)).shape
(2, 2)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

Array = jax.Array

OIP_SIZE = (28, 28)  # what the CNN sees


def standardize(image: Array) -> Array:
    """Per-image standardization, as ``tf.image.per_image_standardization``.

    ``(x - mean) / max(std, 1 / sqrt(N))``: the guard makes a flat image map to zeros, not NaN.
    Used by training and dreaming alike, on all axes of ``image`` (one image).

    >>> standardize(jnp.ones((4, 4))).tolist() == [[0.0] * 4] * 4
    True
    """
    image = jnp.asarray(image, jnp.float32)
    mean = jnp.mean(image)
    std = jnp.std(image)
    return (image - mean) / jnp.maximum(std, 1.0 / math.sqrt(image.size))


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """The Keys cubic kernel with a = -0.5 (as Pillow, TensorFlow, PyTorch and JAX use it)."""
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


@functools.lru_cache(maxsize=256)
def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The ``(size_out, size_in)`` matrix of the bicubic, antialiased 1-D resize that
    ``jax.image.resize`` computes (the same formula, in numpy, once per pair of sizes):
    resizing is linear and separable, so a 2-D resize is ``A @ x @ B.T``."""
    inv_scale = size_in / size_out
    kernel_scale = max(inv_scale, 1.0)  # downscaling widens the kernel: antialiasing
    sample = (np.arange(size_out) + 0.5) * inv_scale - 0.5
    weights = _keys_cubic((sample[:, None] - np.arange(size_in)[None, :]) / kernel_scale)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(
        np.abs(total) > 1000 * np.finfo(np.float32).eps,
        weights / np.where(total != 0, total, 1),
        0.0,
    )
    inside = (sample >= -0.5) & (sample <= size_in - 0.5)
    return np.where(inside[:, None], weights, 0.0).astype(np.float32)


def resize(x: Array, shape: Sequence[int]) -> Array:
    """Bicubic resize with antialiasing of the trailing two axes: the same numbers as
    ``jax.image.resize(x, ..., "bicubic", antialias=True)``, as two small matrix multiplies with
    weights computed once per size (a smaller, faster program than the generic resize), at full
    float32 precision on every backend."""
    (h, w), (oh, ow) = x.shape[-2:], tuple(shape)
    if (h, w) == (oh, ow):
        return x
    a, b = resize_matrix(h, oh), resize_matrix(w, ow)
    return jnp.einsum("oh,...hw,pw->...op", a, x, b, precision=jax.lax.Precision.HIGHEST)


# Host images of more pixels than this are resized by Pillow's filter (the same bicubic,
# antialiased formula, four taps a pixel times the scale) instead of dense matrices, whose work
# grows with both sides: a 12-megapixel photo prepared for a 560-wide dream took 0.26 s.
PILLOW_RESIZE_FROM = 2_000_000


def _pillow_pass(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``x`` ``(H, W)`` resized by Pillow's float bicubic filter along one axis (``shape``
    differs from ``x.shape`` in one side at most), read in place, not copied. One pass at a
    time, rows first, so that the order of the two is ours: Pillow 13 chooses it by the sizes
    (a height reduced much more than the width goes first), and the numbers with it."""
    x = np.ascontiguousarray(x, np.float32)
    if x.shape == tuple(shape):
        return x
    image = Image.frombuffer("F", x.shape[::-1], x, "raw", "F", 0, 1)
    return np.asarray(image.resize(shape[::-1], Image.Resampling.BICUBIC), np.float32)


def resize_host(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``resize`` of a host array ``(H, W)`` or ``(H, W, C)`` in numpy (the same matrices):
    preparing a photo needs no device program, and no compile for each photo's size. Large
    images (``PILLOW_RESIZE_FROM``) go through Pillow's float resize, the same numbers to
    float rounding."""
    x = np.asarray(x, np.float32)
    (h, w), (oh, ow) = x.shape[:2], tuple(shape)
    if (h, w) == (oh, ow):
        return x
    if h * w >= PILLOW_RESIZE_FROM:

        def one(channel: np.ndarray) -> np.ndarray:
            return _pillow_pass(_pillow_pass(channel, (h, ow)), (oh, ow))

        if x.ndim == 2:
            return one(x)
        return np.stack([one(x[..., c]) for c in range(x.shape[-1])], axis=-1)
    a, b = resize_matrix(h, oh), resize_matrix(w, ow)
    if x.ndim == 2:
        return (a @ x @ b.T).astype(np.float32)
    return np.einsum("oh,hwc,pw->opc", a, x, b, optimize=True).astype(np.float32)


def resize_bands_host(
    band: Callable[[int, int], np.ndarray],
    size: tuple[int, int],
    shape: Sequence[int],
    rows: int = 256,
) -> np.ndarray:
    """``resize_host`` of an ``(H, W)`` = ``size`` image that is given a band of rows at a time
    (``band(r0, r1)``: rows ``r0:r1``, float32) and never made whole: each band resized along
    its rows, then the ``(H, w)`` result along its columns, as ``resize_host`` takes Pillow's
    two passes (the same numbers as ``resize_host`` of the whole; images of fewer pixels than
    ``PILLOW_RESIZE_FROM`` are made whole, and resized by it).

    >>> x = np.random.default_rng(0).random((2500, 1000)).astype(np.float32)
    >>> y = resize_bands_host(lambda r0, r1: x[r0:r1], x.shape, (300, 120))
    >>> bool(np.array_equal(y, resize_host(x, (300, 120))))
    True
    """
    (h, w), (oh, ow) = size, tuple(shape)
    if h * w < PILLOW_RESIZE_FROM or (h, w) == (oh, ow):
        return resize_host(
            np.concatenate([band(r, min(r + rows, h)) for r in range(0, h, rows)]), shape
        )
    across = np.empty((h, ow), np.float32)
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        across[r0:r1] = _pillow_pass(band(r0, r1), (r1 - r0, ow))
    return _pillow_pass(across, (oh, ow))


def standardize_host(image: np.ndarray) -> np.ndarray:
    """``standardize`` of a host array in numpy (statistics in float64).

    The deviations from the mean are computed once, in place, and serve both the variance and
    the result: the same operations as ``(x - x.mean()) / x.std()``, so the same bytes.

    >>> x = np.random.default_rng(0).random((4, 5)).astype(np.float64)
    >>> bool(np.array_equal(standardize_host(x), ((x - x.mean()) / x.std()).astype(np.float32)))
    True
    """
    x = np.array(image, np.float64)  # a copy of its own, worked on in place
    np.subtract(x, x.mean(), out=x)
    variance = float(np.add.reduce(np.square(x), axis=None) / x.size)
    scale = max(math.sqrt(variance), 1.0 / math.sqrt(x.size))
    return np.divide(x, scale, out=x).astype(np.float32)


def cut_tiles(image: Array, level: int, tiles: Sequence[int]) -> Array:
    """The chosen tiles of ``level`` of an ``(H, W)`` image, shape ``(len(tiles), H/n, W/n)``,
    ``n = 2**level``, numbered row-major."""
    n = 2**level
    h, w = image.shape[0] // n, image.shape[1] // n
    grid = image.reshape(n, h, n, w).transpose(0, 2, 1, 3).reshape(n * n, h, w)
    return grid if tuple(tiles) == tuple(range(n * n)) else grid[np.asarray(tiles)]


def place_tiles(values: Array, shape: tuple[int, int], level: int, tiles: Sequence[int]) -> Array:
    """The inverse of ``cut_tiles``: an ``(H, W)`` image holding ``values`` at the chosen tiles
    and zeros elsewhere."""
    n = 2**level
    h, w = shape[0] // n, shape[1] // n
    if tuple(tiles) != tuple(range(n * n)):  # a static gather (a scatter is slow on CPU)
        source = np.full(n * n, len(tiles))
        source[np.asarray(tiles)] = np.arange(len(tiles))
        values = jnp.concatenate([values, jnp.zeros((1, h, w), values.dtype)])[source]
    return values.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(shape)


def tile_mask(shape: tuple[int, int], level: int, tiles: Sequence[int]) -> Array:
    """1 on the chosen tiles of ``level``, 0 elsewhere."""
    n = 2**level
    ones = jnp.ones((len(tiles), shape[0] // n, shape[1] // n), jnp.float32)
    return place_tiles(ones, shape, level, tiles)


def standardize_for_cnn(tiles28: Array, channels: bool = False) -> tuple[Array, Array, Array]:
    """Each 28x28 tile standardized as the CNN was trained (``standardize``), with the mean and
    scale that undo it: ``(z, mean, scale)``, ``tiles28 = z * scale + mean``. ``channels``:
    the tiles are colour, ``(T, h, w, C)``, each standardized over its pixels and channels."""
    axes = (-3, -2, -1) if channels else (-2, -1)
    mean = tiles28.mean(axis=axes, keepdims=True)
    floor = 1.0 / np.sqrt(math.prod(tiles28.shape[a] for a in axes))
    scale = jnp.maximum(tiles28.std(axis=axes, keepdims=True), floor)
    return (tiles28 - mean) / scale, mean, scale
