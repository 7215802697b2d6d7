"""Labelled image grids with Pillow (no plotting library needed): OIP pattern sheets and the
stage figures of a dream.

>>> import numpy as np
>>> sheet = labelled_grid([np.zeros((28, 28), np.uint8)] * 3, ["a", "b", "c"], columns=2)
>>> sheet.size
(124, 152)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 14
PAD = 4


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


def stage_figure(result, photo_rgb: np.ndarray, display=None) -> Image.Image:
    """The stages of a dream (a ``DreamResult`` with frames): the photo, its gray working
    image, the 28x28 the CNN sees of it, and every iteration, labelled."""
    import jax.numpy as jnp

    from jaxdream.display import Display
    from jaxdream.imageops import resize

    display = display or Display()
    frames = [] if result.frames is None else [result.render(f, display) for f in result.frames]
    small = np.asarray(resize(jnp.asarray(result.gray), (28, 28)))
    pics = [
        np.round(np.clip(photo_rgb, 0, 1) * 255).astype(np.uint8),
        result.render(result.gray, display),
        result.render(small, display),
        *frames,
    ]
    labels = [
        "original",
        "gray",
        "28x28 input",
        *[f"iteration {i + 1}" for i in range(len(frames))],
    ]
    return labelled_grid(pics, labels, columns=4, cell=256)
