"""A dream at the photo's own resolution: the carving applied to the photo, its detail kept.

The carving acts at the working size (the tiles are seen at the network's input size), so a
dream enlarged to a phone photo's size is a thumbnail enlarged: the photo's fur, hair, text and
leaves are gone. The article's own idea answers it: what the round trip loses is kept and added
back. Here the dream's *change* (the dream minus the working image, in the working image's
standardized units) is enlarged bicubically and added to the full-resolution photo in the same
standardized space (``change * std`` of the photo's luminance), so the photo keeps its detail
and its tones and the carving is what the working size made. In colour, the same change is added
to R, G and B alike: the BT.601 chroma (Cb, Cr) of every pixel is the photo's own, only its
luminance moves (up to clipping at 0 and 255). ``strength`` scales the change: 0 gives the
photo's own pixels back, byte for byte.

Everything runs on the host in bands of rows, the enlarged change included, so a 12-megapixel
photo needs its output and a band's temporaries, not a float copy of every channel at once.

>>> import numpy as np
>>> from jaxdream.imageio import to_pixels
>>> rgb = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
>>> change = np.ones((20, 30), np.float32)
>>> carved_photo(rgb, change, strength=0.0, color=True).tobytes() == to_pixels(rgb).tobytes()
True
>>> carved_photo(rgb, change, strength=1.0, color=False).shape
(40, 60)
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from jaxdream.errors import ImageError
from jaxdream.imageio import GRAY_WEIGHTS, rgb_float

# Where a dream at the photo's size comes from: ``"photo"``, the change applied to the photo at
# its own resolution (this module); ``"enlarged"``, the whole dream enlarged bicubically (the
# article's look); ``"working"``, the dream at the working size.
OUTPUT_SIZES = ("photo", "enlarged", "working")
BAND_ROWS = 256  # rows computed at a time: temporaries of a band, not of the photo


def _band(rgb: np.ndarray, rows: slice, color: bool) -> np.ndarray:
    """Rows of the photo in float pixels (0..255): RGB, or its luminance."""
    if color:
        part = rgb[rows]
        return part.astype(np.float32) if part.dtype == np.uint8 else part * np.float32(255)
    return (rgb_float(rgb[rows]) @ GRAY_WEIGHTS) * np.float32(255)


def enlarge(change: np.ndarray, shape: tuple[int, int], rows: slice | None = None) -> np.ndarray:
    """``change`` ``(h, w)`` enlarged to ``shape`` by Pillow's bicubic filter in float (Keys'
    cubic, a = -0.5, as every resize here): four taps an output pixel, where a dense resize
    matrix would take every input row and column. ``rows``: only those rows of the result
    (the same numbers to float rounding: Pillow maps a box of the source at the same scale,
    its filter reaching past the box into the whole source)."""
    h, w = shape
    if change.shape == (h, w):
        out = np.asarray(change, np.float32)
        return out if rows is None else out[rows]
    image = Image.fromarray(np.ascontiguousarray(change, np.float32), "F")
    r0, r1, _ = (rows or slice(0, h)).indices(h)
    scale = change.shape[0] / h
    box = (0.0, r0 * scale, float(change.shape[1]), r1 * scale)
    band = image.resize((w, r1 - r0), Image.Resampling.BICUBIC, box=box)
    return np.asarray(band, np.float32)


def luminance_std(rgb: np.ndarray) -> float:
    """The standard deviation of the photo's luminance (``0.299 R + 0.587 G + 0.114 B``, in
    [0, 1] units), computed in bands (float64 sums)."""
    total = total_sq = 0.0
    rows = rgb.shape[0]
    for r0 in range(0, rows, BAND_ROWS):
        y = (rgb_float(rgb[r0 : r0 + BAND_ROWS]) @ GRAY_WEIGHTS).astype(np.float64)
        total += float(y.sum())
        total_sq += float(np.square(y).sum())
    n = rgb.shape[0] * rgb.shape[1]
    mean = total / n
    return float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))


def carved_photo(
    rgb: np.ndarray, change: np.ndarray, strength: float = 1.0, color: bool = True
) -> np.ndarray:
    """The photo ``rgb`` ``(H, W, 3)`` (uint8, or float in [0, 1]) with the dream's ``change`` (a
    standardized ``(h, w)`` array at the working size) times ``strength`` applied at the
    photo's resolution: uint8 ``(H, W, 3)`` with ``color``, else the luminance ``(H, W)``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageError(f"a photo to carve is (H, W, 3), got {rgb.shape}")
    change = np.asarray(change, np.float32)
    if not np.all(np.isfinite(change)):
        raise ImageError("the dream's change holds NaN or infinite values; nothing is written")
    h, w = rgb.shape[:2]
    scale = 255.0 * float(strength) * luminance_std(rgb)
    scaled = change * np.float32(scale)
    out = np.empty((h, w, 3) if color else (h, w), np.uint8)
    for r0 in range(0, h, BAND_ROWS):
        band = slice(r0, min(r0 + BAND_ROWS, h))
        pixels = _band(rgb, band, color)
        if scale:
            delta = enlarge(scaled, (h, w), band)
            pixels += delta[:, :, None] if color else delta
        np.rint(np.clip(pixels, 0.0, 255.0, out=pixels), out=pixels)
        out[band] = pixels
    return out
