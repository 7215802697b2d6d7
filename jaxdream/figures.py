"""Labelled image grids with Pillow (no plotting library needed): OIP pattern sheets and the
stage figures of a dream.

>>> import numpy as np
>>> sheet = labelled_grid([np.zeros((28, 28), np.uint8)] * 3, ["a", "b", "c"], columns=2)
>>> sheet.size
(124, 152)
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from jaxdream.display import Display, to_uint8
from jaxdream.errors import ConfigError
from jaxdream.imageio import to_pixels
from jaxdream.imageops import resize

LABEL_HEIGHT = 14
PAD = 4
MAX_STAGE_ROWS = 64  # a stage figure's rows (iterations x levels): 64 rows of 192 px ~ 13,000 px


def check_stage_rows(iterations: int, levels: int) -> None:
    """Refuse, before any work, a stage figure too tall to look at (``ConfigError``)."""
    rows = iterations * levels
    if rows > MAX_STAGE_ROWS:
        raise ConfigError(
            f"a stage figure has a row per iteration and level: {iterations} x {levels} = "
            f"{rows} rows is more than {MAX_STAGE_ROWS}; lower --iterations or the levels, or "
            "leave out --figure"
        )


def _as_rgb(a: np.ndarray, size: tuple[int, int]) -> Image.Image:
    img = Image.fromarray(np.asarray(a)).convert("RGB")
    return img.resize(
        size, Image.Resampling.NEAREST if img.width < size[0] // 2 else Image.Resampling.BICUBIC
    )


def labelled_grid(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    columns: int = 8,
    cell: int | None = None,
) -> Image.Image:
    """uint8 images (gray or RGB) in a grid, each scaled to ``cell`` pixels wide (default: the
    first image's width, at least 56) with its label above it."""
    if not images:
        raise ValueError("no images to lay out")
    h0, w0 = np.asarray(images[0]).shape[:2]
    width = cell or max(56, w0)
    height = max(1, round(width * h0 / w0))
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    sheet = Image.new(
        "RGB",
        (columns * (width + PAD) + PAD, rows * (height + LABEL_HEIGHT + PAD) + PAD),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        r, c = divmod(i, columns)
        x, y = PAD + c * (width + PAD), PAD + r * (height + LABEL_HEIGHT + PAD)
        draw.text((x, y), label, fill="black")
        sheet.paste(_as_rgb(img, (width, height)), (x, y + LABEL_HEIGHT))
    return sheet


def mosaic(tiles: np.ndarray, level: int, indices, size: tuple[int, int]) -> np.ndarray:
    """uint8 tiles ``(T, h, w)`` of ``level`` (grid indices ``indices``) at their places in a
    ``2**level`` grid, one pixel apart, scaled (nearest) to ``size`` ``(height, width)``;
    tiles not taking part are mid-gray.

    >>> mosaic(np.zeros((1, 2, 2), np.uint8), 1, [3], (5, 5))[:, :, 0]
    array([[128, 128, 255, 128, 128],
           [128, 128, 255, 128, 128],
           [255, 255, 255, 255, 255],
           [128, 128, 255,   0,   0],
           [128, 128, 255,   0,   0]], dtype=uint8)
    """
    n, (h, w) = 2**level, tiles.shape[1:3]
    grid = np.full((n * h + n - 1, n * w + n - 1, *tiles.shape[3:]), 255, np.uint8)
    for r in range(n):
        for c in range(n):
            grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = 128
    for tile, k in zip(tiles, indices, strict=True):
        r, c = divmod(int(k), n)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = tile
    rows = np.arange(size[0]) * grid.shape[0] // size[0]
    cols = np.arange(size[1]) * grid.shape[1] // size[1]
    if grid.ndim == 3:  # colour tiles (a colour network's)
        return grid[rows][:, cols]
    return np.repeat(grid[rows][:, cols][..., None], 3, axis=2)


def signed_uint8(x: np.ndarray) -> tuple[np.ndarray, float]:
    """A change as gray pixels, zero at mid-gray, the largest magnitude at black or white;
    returns the pixels and that magnitude."""
    x = np.asarray(x, np.float32)
    top = float(np.abs(x).max())
    pixels = 127.5 + 127.5 * (x / top if top > 0 else x)
    return np.round(np.clip(pixels, 0, 255)).astype(np.uint8), top


def stage_figure(
    result, photo_rgb: np.ndarray, display=None, cell: int = 192, color: bool = False
) -> Image.Image:
    """The stages of a dream (a ``DreamResult``), as the article's figure shows them.

    With ``stages`` (``dream(..., return_stages=True)``): after a first row (the photo, its
    gray working image, the dream), one row per iteration and level: the level's tiles as the
    CNN saw them (28x28, at their places), the same after the OIP steps, the change upscaled to
    the image (mid-gray is none), and the image once it is added. With frames only: the photo,
    the gray image, its 28x28 and every iteration. ``color``: the dream in the photo's colours.
    """
    display = display or Display()
    photo8 = to_pixels(photo_rgb)
    if result.stages is None:
        return _frames_strip(result, photo8, display, cell)
    stages, config = result.stages, result.config
    h, w = result.image.shape[:2]
    size = (max(1, round(cell * h / w)), cell)

    def tiles8(x):
        return np.stack([to_uint8(t, display.centre_move, display.fact) for t in x])

    dream8 = result.render(result.image, display, color)
    pics = [photo8, result.render(result.gray, display), dream8, None]
    labels = ["original", "gray working image", "dream", ""]
    for i in range(stages.result.shape[0]):
        start = 0
        for j, lv in enumerate(config.levels):
            tiles = lv.tile_indices()
            part = slice(start, start + len(tiles))
            start += len(tiles)
            change, top = signed_uint8(stages.change[i, j])
            pics += [
                mosaic(tiles8(stages.before[i, part]), lv.level, tiles, size),
                mosaic(tiles8(stages.after[i, part]), lv.level, tiles, size),
                change,
                result.render(stages.result[i, j], display),
            ]
            labels += [
                f"iter {i + 1} level {lv.level}: 28x28 in",
                f"after {config.steps} OIP steps",
                f"change upscaled (+-{top:.2g})",
                "corrected result" if j + 1 < len(config.levels) else f"iteration {i + 1}",
            ]
    blank = np.full((*size, 3), 255, np.uint8)
    return labelled_grid([blank if p is None else p for p in pics], labels, columns=4, cell=cell)


def _frames_strip(result, photo8: np.ndarray, display, cell: int) -> Image.Image:
    frames = [] if result.frames is None else [result.render(f, display) for f in result.frames]
    gray = jnp.asarray(result.gray)
    if gray.ndim == 3:  # a colour network's working image: resized channel by channel
        small = np.moveaxis(np.asarray(resize(jnp.moveaxis(gray, -1, 0), (28, 28))), 0, -1)
    else:
        small = np.asarray(resize(gray, (28, 28)))
    pics = [photo8, result.render(result.gray, display), result.render(small, display), *frames]
    labels = [
        "original",
        "gray",
        "28x28 input",
        *[f"iteration {i + 1}" for i in range(len(frames))],
    ]
    return labelled_grid(pics, labels, columns=4, cell=cell)
