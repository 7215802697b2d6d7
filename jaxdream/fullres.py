"""A dream at the photo's own resolution: the carving applied to the photo, its detail kept.

The carving acts at the working size (the tiles are seen at the network's input size), so a
dream enlarged to a phone photo's size is a thumbnail enlarged: the photo's fur, hair, text and
leaves are gone. The article's own idea answers it: what the round trip loses is kept and added
back. Here the dream's *change* (the dream minus the working image, in the working image's
standardized units) is enlarged bicubically and added to the full-resolution photo in the same
standardized space (``change * std`` of the photo's luminance), so the photo keeps its detail
and its tones and the carving is what the working size made. In colour, the same change is added
to R, G and B alike: the BT.601 chroma (Cb, Cr) of every pixel is the photo's own, only its
luminance moves (up to clipping at 0 and 255). A colour network's dream changes R, G and B each
its own way: its change ``(h, w, 3)``, in the units of the photo's RGB standardized over all
its pixels and channels, is enlarged channel by channel and added to the photo's RGB (``change
* std`` of the photo's RGB values). ``strength`` scales the change: 0 gives the
photo's own pixels back, byte for byte.

Everything runs on the host in bands of rows, the enlarged change included, so a 12-megapixel
photo needs its output and a band's temporaries, not a float copy of every channel at once.

A zoom carries such a picture from frame to frame (``jaxdream.motion``): this module makes its
first full-resolution layer (``zoom_layers``: the photo's standardized luminance and its
chroma; for a colour network, ``zoom_rgb_layer``: the photo's RGB standardized over its pixels
and channels, by ``rgb_tone``), the size its frames are made at (``zoom_shape``: the photo's,
up to ``ZOOM_MAX_SIDE`` on the longer side) and the taps of the bicubic enlargement the device
applies (``cubic_taps``, Pillow's filter).

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
from jaxdream.imageops import resize_host

# Where a dream at the photo's size comes from: ``"photo"``, the change applied to the photo at
# its own resolution (this module); ``"enlarged"``, the whole dream enlarged bicubically (the
# article's look); ``"working"``, the dream at the working size.
OUTPUT_SIZES = ("photo", "enlarged", "working")
BAND_ROWS = 256  # rows computed at a time: temporaries of a band, not of the photo
# The longer side of a zoom's frames at most: 4K UHD's width. A zoom into a larger photo is made
# from the photo reduced to it (a video frame of 12 megapixels is heavy to encode and to play).
ZOOM_MAX_SIDE = 3840


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


def rgb_std(rgb: np.ndarray) -> float:
    """The standard deviation of the photo's R, G and B values together ([0, 1] units), in
    bands (float64 sums): the spread a colour working image is standardized by."""
    total = total_sq = 0.0
    for r0 in range(0, rgb.shape[0], BAND_ROWS):
        part = rgb_float(rgb[r0 : r0 + BAND_ROWS]).astype(np.float64)
        total += float(part.sum())
        total_sq += float(np.square(part).sum())
    n = rgb.shape[0] * rgb.shape[1] * 3
    mean = total / n
    return float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))


def carved_photo(
    rgb: np.ndarray, change: np.ndarray, strength: float = 1.0, color: bool = True
) -> np.ndarray:
    """The photo ``rgb`` ``(H, W, 3)`` (uint8, or float in [0, 1]) with the dream's ``change`` (a
    standardized ``(h, w)`` array at the working size) times ``strength`` applied at the
    photo's resolution: uint8 ``(H, W, 3)`` with ``color``, else the luminance ``(H, W)``. A
    colour dream's change ``(h, w, 3)`` moves each channel by its own: ``(H, W, 3)``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageError(f"a photo to carve is (H, W, 3), got {rgb.shape}")
    change = np.asarray(change, np.float32)
    if not np.all(np.isfinite(change)):
        raise ImageError("the dream's change holds NaN or infinite values; nothing is written")
    h, w = rgb.shape[:2]
    channels = change.ndim == 3
    color = color or channels
    spread = rgb_std(rgb) if channels else luminance_std(rgb)
    scale = 255.0 * float(strength) * spread
    scaled = change * np.float32(scale)
    out = np.empty((h, w, 3) if color else (h, w), np.uint8)
    for r0 in range(0, h, BAND_ROWS):
        band = slice(r0, min(r0 + BAND_ROWS, h))
        pixels = _band(rgb, band, color)
        if scale and channels:
            pixels += np.stack([enlarge(scaled[..., c], (h, w), band) for c in range(3)], -1)
        elif scale:
            delta = enlarge(scaled, (h, w), band)
            pixels += delta[:, :, None] if color else delta
        np.rint(np.clip(pixels, 0.0, 255.0, out=pixels), out=pixels)
        out[band] = pixels
    return out


def zoom_shape(photo_shape: tuple[int, int], max_side: int = ZOOM_MAX_SIDE) -> tuple[int, int]:
    """``(height, width)`` of a zoom's frames at the photo's size: the photo's own, or reduced
    to ``max_side`` on its longer side (the aspect kept, to the pixel).

    >>> zoom_shape((3024, 4032)), zoom_shape((150, 200))
    ((2880, 3840), (150, 200))
    """
    h, w = photo_shape
    if max(h, w) <= max_side:
        return int(h), int(w)
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


def cubic_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D bicubic resize of ``size_in`` samples to ``size_out`` as Pillow computes it
    (Keys' cubic, a = -0.5, widened when reducing; the taps past the border dropped and the
    rest normalized): ``(index, weight)``, each ``(size_out, K)``, output ``i`` is
    ``sum_k weight[i, k] * x[index[i, k]]``.

    >>> index, weight = cubic_taps(2, 4)
    >>> index.shape, bool(np.allclose(weight.sum(axis=1), 1))
    ((4, 4), True)
    """
    scale = size_in / size_out
    support = 2.0 * max(scale, 1.0)
    taps = int(np.ceil(2 * support))
    centre = (np.arange(size_out, dtype=np.float64) + 0.5) * scale
    first = np.floor(centre - 0.5 - support).astype(np.int64) + 1
    index = first[:, None] + np.arange(taps)[None, :]
    weight = _keys_cubic((index + 0.5 - centre[:, None]) / max(scale, 1.0))
    weight = np.where((index >= 0) & (index < size_in), weight, 0.0)
    weight /= weight.sum(axis=1, keepdims=True)
    return np.clip(index, 0, size_in - 1).astype(np.int32), weight.astype(np.float32)


def luminance_tone(rgb: np.ndarray) -> tuple[float, float]:
    """``(mean, spread)`` of the photo's luminance in [0, 1] units: its mean, and its standard
    deviation guarded as ``imageops.standardize`` guards it (``1 / sqrt(N)`` at least)."""
    total = 0.0
    for r0 in range(0, rgb.shape[0], BAND_ROWS):
        total += float((rgb_float(rgb[r0 : r0 + BAND_ROWS]) @ GRAY_WEIGHTS).sum(dtype=np.float64))
    n = rgb.shape[0] * rgb.shape[1]
    return total / n, max(luminance_std(rgb), 1.0 / float(np.sqrt(n)))


def zoom_layers(
    rgb: np.ndarray, tone: tuple[float, float], color: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """A zoom's first full-resolution layer: the photo's luminance standardized with ``tone``
    (``luminance_tone``), ``(H, W)`` float32, and with ``color`` its chroma ``(H, W, 2)``: R and
    B minus the luminance ([0, 1] units; G's follows, the luminance's weights summing to 1), made
    in bands of rows."""
    h, w = rgb.shape[:2]
    mean, spread = tone
    layer = np.empty((h, w), np.float32)
    chroma = np.empty((h, w, 2), np.float32) if color else None
    for r0 in range(0, h, BAND_ROWS):
        band = slice(r0, min(r0 + BAND_ROWS, h))
        part = rgb_float(rgb[band])
        y = part @ GRAY_WEIGHTS
        layer[band] = (y - np.float32(mean)) / np.float32(spread)
        if chroma is not None:
            chroma[band] = part[..., ::2] - y[..., None]
    return layer, chroma


def rgb_tone(rgb: np.ndarray) -> tuple[float, float]:
    """``(mean, spread)`` of the photo's R, G and B values together in [0, 1] units: what a
    colour working image is standardized by (``rgb_std``), the spread guarded as
    ``imageops.standardize`` guards it (``1 / sqrt(3 N)`` at least)."""
    total = 0.0
    for r0 in range(0, rgb.shape[0], BAND_ROWS):
        total += float(rgb_float(rgb[r0 : r0 + BAND_ROWS]).sum(dtype=np.float64))
    n = rgb.shape[0] * rgb.shape[1] * 3
    return total / n, max(rgb_std(rgb), 1.0 / float(np.sqrt(n)))


def zoom_rgb_layer(rgb: np.ndarray, tone: tuple[float, float]) -> np.ndarray:
    """A colour network's zoom's first full-resolution layer: the photo's RGB standardized with
    ``tone`` (``rgb_tone``), ``(H, W, 3)`` float32, made in bands of rows.

    >>> rgb = np.random.default_rng(0).random((6, 5, 3)).astype(np.float32)
    >>> layer = zoom_rgb_layer(rgb, rgb_tone(rgb))
    >>> layer.shape, bool(abs(layer.mean()) < 1e-5), bool(abs(layer.std() - 1) < 1e-4)
    ((6, 5, 3), True, True)
    """
    mean, spread = tone
    layer = np.empty((*rgb.shape[:2], 3), np.float32)
    for r0 in range(0, rgb.shape[0], BAND_ROWS):
        band = slice(r0, min(r0 + BAND_ROWS, rgb.shape[0]))
        layer[band] = (rgb_float(rgb[band]) - np.float32(mean)) / np.float32(spread)
    return layer


def reduced_photo(rgb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The photo at ``shape`` (``zoom_shape``): itself where it is that size, else reduced by
    Pillow's bicubic filter (antialiased) in float (``imageops.resize_host``), in [0, 1]."""
    if rgb.shape[:2] == tuple(shape):
        return rgb
    return np.clip(resize_host(rgb_float(rgb), shape), 0.0, 1.0)
