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

Everything runs on the host in bands of rows, so a 12-megapixel photo needs a few of its own
sizes of memory, not a float copy of every channel at once.

>>> import numpy as np
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

# Where a dream at the photo's size comes from: ``"photo"``, the change applied to the photo at
# its own resolution (this module); ``"enlarged"``, the whole dream enlarged bicubically (the
# article's look); ``"working"``, the dream at the working size.
OUTPUT_SIZES = ("photo", "enlarged", "working")
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
BAND_ROWS = 256  # rows computed at a time: temporaries of a band, not of the photo


def to_pixels(rgb: np.ndarray) -> np.ndarray:
    """A float photo in [0, 1] as uint8, rounded (the bytes it was read from, for an 8-bit
    photo: ``k / 255 * 255`` rounds back to ``k``)."""
    return np.rint(np.clip(np.asarray(rgb, np.float32) * 255.0, 0.0, 255.0)).astype(np.uint8)


def enlarge(change: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``change`` ``(h, w)`` enlarged to ``shape`` by Pillow's bicubic filter in float (Keys'
    cubic, a = -0.5, as every resize here): four taps an output pixel, where a dense resize
    matrix would take every input row and column."""
    h, w = shape
    if change.shape == (h, w):
        return np.asarray(change, np.float32)
    image = Image.fromarray(np.ascontiguousarray(change, np.float32), "F")
    return np.asarray(image.resize((w, h), Image.Resampling.BICUBIC), np.float32)


def luminance_std(rgb: np.ndarray) -> float:
    """The standard deviation of the photo's luminance (``0.299 R + 0.587 G + 0.114 B``, in
    [0, 1] units), computed in bands (float64 sums)."""
    total = total_sq = 0.0
    rows = rgb.shape[0]
    for r0 in range(0, rows, BAND_ROWS):
        y = (rgb[r0 : r0 + BAND_ROWS] @ GRAY_WEIGHTS).astype(np.float64)
        total += float(y.sum())
        total_sq += float(np.square(y).sum())
    n = rgb.shape[0] * rgb.shape[1]
    mean = total / n
    return float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))


def carved_photo(
    rgb: np.ndarray, change: np.ndarray, strength: float = 1.0, color: bool = True
) -> np.ndarray:
    """The photo ``rgb`` ``(H, W, 3)`` (float in [0, 1]) with the dream's ``change`` (a
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
    delta = enlarge(change * np.float32(scale), (h, w)) if scale else None
    out = np.empty((h, w, 3) if color else (h, w), np.uint8)
    for r0 in range(0, h, BAND_ROWS):
        band = slice(r0, r0 + BAND_ROWS)
        pixels = rgb[band] * np.float32(255.0) if color else (rgb[band] @ GRAY_WEIGHTS) * 255.0
        if delta is not None:
            pixels += delta[band, :, None] if color else delta[band]
        np.rint(np.clip(pixels, 0.0, 255.0, out=pixels), out=pixels)
        out[band] = pixels
    return out
