"""Reading photos of any mode into gray + RGB float arrays, and writing images atomically.

Everything that touches files lives here, at the edge; the dream core only sees arrays.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxdream._files import atomic_write, check_regular_file, check_writable
from jaxdream.errors import ConfigError, ImageError
from jaxdream.imageops import resize_bands_host, standardize_host

MAX_PIXELS = 100_000_000  # beyond this an image is refused as a likely decompression bomb
MAX_FILE_BYTES = 2 << 30  # a file larger than this is not read
# Longer sides above this are box-reduced by an integer factor first: a photo up to the largest
# working size (``config.MAX_SIDE``) is read at its own resolution, which the dream is written at.
REDUCE_ABOVE = 8192
FAST_PNG_ABOVE = 2_000_000  # pixels: larger PNGs are written with zlib's fastest level
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
# How a photo becomes the standardized gray working image (``prepare_photo``).
PREPARATIONS = ("gray", "article")


class Photo:
    """A photo as loaded: ``rgb`` ``(H, W, 3)``, an 8-bit colour photo's own uint8 pixels (a
    quarter of a float copy: a 12-megapixel photo holds 36 MB, not 144), else float32 in [0, 1]
    (``rgb_float(photo.rgb)`` is the float form either way); ``gray`` ``(H, W)``, float32 in [0,
    1], its luminance ``rgb @ GRAY_WEIGHTS``. An 8-bit photo's gray is made when asked for, a band
    at a time, and not kept (48 MB at 12 megapixels, which a dream needs only at the working
    size: ``prepare_photo`` makes that without it); ``shape`` is ``(H, W)``.

    >>> photo = Photo(None, np.full((2, 3, 3), 255, np.uint8))
    >>> photo.shape, photo.gray.dtype, float(photo.gray.max())
    ((2, 3), dtype('float32'), 1.0)
    >>> gray, rgb = photo
    >>> photo
    Photo(shape=(2, 3), rgb=uint8)
    """

    __slots__ = ("_gray", "rgb")

    def __init__(self, gray: np.ndarray | None, rgb: np.ndarray):
        self._gray, self.rgb = gray, rgb

    @property
    def gray(self) -> np.ndarray:
        return _gray_of(self.rgb) if self._gray is None else self._gray

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    def __iter__(self):  # ``gray, rgb = photo``, as when it was a named tuple
        return iter((self.gray, self.rgb))

    def __repr__(self) -> str:
        return f"Photo(shape={self.shape}, rgb={self.rgb.dtype})"

    def gray_rows(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of ``gray``, made from those of ``rgb`` alone where it is not kept."""
        if self._gray is not None:
            return self._gray[r0:r1]
        return rgb_float(self.rgb[r0:r1]) @ GRAY_WEIGHTS


BAND_ROWS = 256  # rows converted at a time: a float copy of a band, not of the photo


def rgb_float(rgb: np.ndarray) -> np.ndarray:
    """A photo's ``rgb`` as float32 in [0, 1] (uint8 divided by 255, as it was read)."""
    if rgb.dtype == np.uint8:
        out = rgb.astype(np.float32)
        return np.divide(out, np.float32(255), out=out)
    return rgb


def to_pixels(rgb: np.ndarray) -> np.ndarray:
    """A photo's ``rgb`` as uint8: its own pixels, or a float photo in [0, 1] rounded (the
    bytes it was read from, for an 8-bit photo: ``k / 255 * 255`` rounds back to ``k``)."""
    if rgb.dtype == np.uint8:
        return rgb
    return np.rint(np.clip(np.asarray(rgb, np.float32) * 255.0, 0.0, 255.0)).astype(np.uint8)


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    """An 8-bit photo's gray, made a band at a time (the same numbers as ``(rgb / 255) @
    GRAY_WEIGHTS`` at once: three terms a pixel, in order)."""
    gray = np.empty(rgb.shape[:2], np.float32)
    for r0 in range(0, rgb.shape[0], BAND_ROWS):
        gray[r0 : r0 + BAND_ROWS] = rgb_float(rgb[r0 : r0 + BAND_ROWS]) @ GRAY_WEIGHTS
    return gray


def _from_rgb8(a: np.ndarray) -> Photo:
    """An 8-bit RGB photo: its pixels kept as they are, its gray made when asked for."""
    a.flags.writeable = False  # shared with every result made from it
    return Photo(None, a)


def _from_array(a: np.ndarray, own: bool = False) -> Photo:
    """A ``Photo`` of an array; ``own``: the array is this module's (no copy is needed)."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageError(f"the image is empty: shape {a.shape}")
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[-1] == 3:
        return _from_rgb8(np.ascontiguousarray(a) if own else np.array(a, order="C"))
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif a.dtype in (np.uint8, np.uint16):  # divided in place: one float copy, not two
        top = np.float32(np.iinfo(a.dtype).max)
        a = a.astype(np.float32)
        np.divide(a, top, out=a)
    elif np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        if np.issubdtype(a.dtype, np.integer):
            # Other integers (int32, int64, ...) mostly carry 8- or 16-bit values: the smallest
            # of those ranges that holds them; else min to max, as for floats.
            top = next((t for t in (255, 65535) if a.min() >= 0 and a.max() <= t), 1)
            a = a / top
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())  # NaN propagates into both, inf into one
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ImageError("the image holds NaN or infinite values")
        if lo < 0 or hi > 1:  # arbitrary range: map onto [0, 1] (in float64: +-3e38 fits)
            if hi > lo:  # in place on a float64 copy: (wide - lo) / (hi - lo), no temporaries
                wide = a.astype(np.float64)
                a = np.divide(np.subtract(wide, lo, out=wide), hi - lo, out=wide)
                a = a.astype(np.float32)
            else:
                a = np.zeros_like(a)
    else:
        raise ImageError(f"an image array must hold numbers, not {a.dtype}")
    if a.ndim == 2:
        # A gray image's gray is itself (the weights sum to exactly 1 in float32: the weighted
        # sum of three equal channels differed from it by rounding, <= 1 ulp), and its RGB a
        # read-only view: no (H, W, 3) copy and no matrix product on every call. ``a`` is
        # this function's own array here (every branch above made a new one).
        gray = np.ascontiguousarray(a, np.float32)
        return Photo(gray, np.broadcast_to(gray[..., None], (*gray.shape, 3)))
    rgb = a[..., :3]
    if a.shape[-1] == 4:  # composite over white
        alpha = a[..., 3:]
        rgb = rgb * alpha + (1.0 - alpha)
    rgb = np.ascontiguousarray(rgb, np.float32)
    return Photo(rgb @ GRAY_WEIGHTS, rgb)


def _pil_pixels(img: Image.Image) -> tuple[np.ndarray, bool]:
    """``img``'s pixels as an array ``_from_array`` reads, and whether it is a copy of ours
    (EXIF rotation applied, huge sides reduced, palettes and alpha made RGB or RGBA)."""
    img = ImageOps.exif_transpose(img)
    if max(img.size) > REDUCE_ABOVE:
        img = img.reduce(-(-max(img.size) // REDUCE_ABOVE))
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img).astype(np.uint16), True
    if img.mode == "I":  # 32-bit integers: the smallest range that holds them (_from_array)
        return np.asarray(img, np.int64), True
    if img.mode == "F":
        return np.asarray(img, np.float32), True
    if img.mode == "L" and "transparency" not in img.info:  # gray: the 2-D path, as an array
        return np.asarray(img), True
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    mode = "RGBA" if has_alpha else "RGB"
    if img.mode != mode:  # converting to its own mode would copy the whole image
        img = img.convert(mode)
    # Copied a band of rows at a time: ``np.asarray(img)`` makes the image's bytes twice over
    # (Pillow's chunks, then their join) before the array holds them.
    w, h = img.size
    pixels = np.empty((h, w, len(mode)), np.uint8)
    for r0 in range(0, h, BAND_ROWS):
        pixels[r0 : r0 + BAND_ROWS] = np.asarray(img.crop((0, r0, w, min(r0 + BAND_ROWS, h))))
    return pixels, True


def _from_pil(img: Image.Image) -> Photo:
    return _from_array(*_pil_pixels(img))


def prepare_photo(photo: Photo, shape: tuple[int, int], how: str = "gray") -> np.ndarray:
    """The standardized gray working image ``(H, W)`` = ``shape`` of ``photo``, float32.

    ``"gray"`` (jaxdream's): gray at the photo's own size, resized in float (bicubic,
    antialiased: ``resize_host``). ``"article"`` (the article's): the colour photo as uint8
    resized by PIL's bicubic filter (so clipped and rounded), then ``0.299 R + 0.587 G +
    0.114 B`` in float. Both end in per-image standardization. They differ by up to about 0.16
    (rms 0.004) on a 560x560 photo. On the host: no program to compile for each photo's size.

    >>> photo = load_photo(np.linspace(0, 1, 64 * 48).reshape(64, 48))
    >>> [prepare_photo(photo, (32, 24), h).shape for h in PREPARATIONS]
    [(32, 24), (32, 24)]
    """
    if how == "gray":  # the photo's gray is made a band at a time, never whole
        return standardize_host(resize_bands_host(photo.gray_rows, photo.shape, shape))
    if how == "article":
        rgb8 = photo.rgb
        if rgb8.dtype != np.uint8:
            rgb8 = np.round(np.clip(rgb8, 0.0, 1.0) * 255.0).astype(np.uint8)
        small = Image.fromarray(rgb8).resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
        gray = np.asarray(small, np.float32) @ GRAY_WEIGHTS
        return standardize_host(gray / 255.0)
    raise ConfigError(f"a photo is prepared as one of {list(PREPARATIONS)}, not {how!r}")


@contextlib.contextmanager
def _opened(path: Path, source) -> Iterator[Image.Image]:
    """``Image.open(source)`` (a path or a file object of ``path``'s bytes) with the pixel limit
    checked from the header, and every failure an ``ImageError`` naming ``path``."""
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the limit is ours, checked from the header below
        with Image.open(source) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(
                    f"{path} is too large to dream ({img.width}x{img.height}); the limit is "
                    f"{MAX_PIXELS:,} pixels"
                )
            yield img
    except FileNotFoundError:
        raise ImageError(f"{path} does not exist") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image that Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path} is truncated or corrupt ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def _as_path(source) -> Path:
    """A photo's path, or ``ImageError`` saying what a photo may be."""
    if isinstance(source, bytes | bytearray | memoryview):
        raise ImageError(
            "a photo is a file name, a PIL image or an array, not bytes; for encoded image "
            "data use PIL.Image.open(io.BytesIO(data))"
        )
    if not isinstance(source, str | os.PathLike):
        raise ImageError(
            "a photo is a file name, a PIL image or a numpy array (H, W), (H, W, 3) or "
            f"(H, W, 4), not {type(source).__name__}"
        )
    return Path(source)


def load_photo(source: str | os.PathLike | Image.Image | np.ndarray | Photo) -> Photo:
    """A photo from a file, a PIL image or an array, in any common mode (gray, RGB, RGBA,
    palette, CMYK, 16-bit): transparent parts are composited over white, EXIF rotation is
    applied. A ``Photo`` is taken as it is (no copy). Raises ``ImageError`` with one clear
    sentence for anything unreadable."""
    if isinstance(source, Photo):
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _from_pil(source)
    path = _as_path(source)
    check_regular_file(path, MAX_FILE_BYTES)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path} does not exist") from None
    except OSError as e:
        raise ImageError(f"cannot read {path}: {e.strerror}") from e
    with _opened(path, io.BytesIO(data)) as img:
        img.load()
        pixels, own = _pil_pixels(img)
    del data  # the file's bytes and the decoded image go before the float gray is made
    return _from_array(pixels, own)


def photo_of(pixels: np.ndarray) -> Photo:
    """A ``Photo`` of an array the caller hands over (a decoded video frame, say): as
    ``load_photo(pixels)``, but an 8-bit RGB array is taken as it is, not copied (it becomes
    read-only, shared with every result made from it).

    >>> a = np.zeros((2, 3, 3), np.uint8)
    >>> photo_of(a).rgb is a, a.flags.writeable
    (True, False)
    """
    return _from_array(pixels, own=True)


def photo_shape(source: str | os.PathLike | Image.Image | np.ndarray | Photo) -> tuple[int, int]:
    """``(height, width)`` that ``load_photo(source)`` will have, from a file's header alone
    (EXIF rotation and the reduction of huge sides included): for planning many photos
    without decoding them. Raises ``ImageError`` where the header is unreadable."""
    if isinstance(source, Photo):
        return source.shape
    if isinstance(source, np.ndarray):
        if source.ndim < 2:
            raise ImageError(f"an image array must be (H, W) or (H, W, C); got {source.shape}")
        return int(source.shape[0]), int(source.shape[1])
    if isinstance(source, Image.Image):
        w, h = source.size
        orientation = source.getexif().get(0x0112, 1)
    else:
        path = _as_path(source)
        check_regular_file(path, MAX_FILE_BYTES)
        with _opened(path, path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees
        w, h = h, w
    if max(w, h) > REDUCE_ABOVE:
        factor = -(-max(w, h) // REDUCE_ABOVE)
        w, h = -(-w // factor), -(-h // factor)
    return h, w


def format_for(path: Path) -> str:
    """The Pillow format that ``path``'s extension names, if Pillow can write it."""
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not a file name")
    ext = path.suffix.lower()
    formats = Image.registered_extensions()
    if ext not in formats:
        raise ImageError(f"cannot tell the image format of {path}: use .png, .jpg, .webp, ...")
    if formats[ext] not in Image.SAVE:
        raise ImageError(f"Pillow can read {ext} images but not write them: use .png, .jpg, ...")
    return formats[ext]


def check_output(path: str | os.PathLike, mode: str = "L") -> str:
    """Fail early, before any work, if ``path`` cannot take an image of ``mode`` (``"L"``
    gray, ``"RGB"`` colour): a directory, an unknown or read-only extension, a format that
    cannot hold the mode (tried on a tiny image), or a missing folder. Returns the format."""
    path = Path(path)
    try:
        fmt = format_for(path)
    except OSError as e:  # a name too long, a loop of links
        raise ImageError(f"cannot write {path}: {e.strerror}") from None
    try:
        Image.new(mode, (2, 2)).save(io.BytesIO(), format=fmt)
    except Exception as e:  # Pillow's writers raise many types for modes they cannot hold
        raise ImageError(f"cannot write a {mode} image as {path.suffix}: {e}") from None
    check_writable(path)
    return fmt


def _as_image(image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(
            "an image to write is a uint8 array (H, W), (H, W, 3) or (H, W, 4) (for a dream, "
            f"DreamResult.to_uint8()), got {a.dtype} {a.shape}"
        )
    if a.size == 0:
        raise ImageError(f"an image to write must have pixels, got shape {a.shape}")
    return Image.fromarray(a)


def save_image(path: str | os.PathLike, image: np.ndarray | Image.Image) -> None:
    """Write an image (uint8 array or PIL image) atomically, format from the file name."""
    path = Path(path)
    fmt = format_for(path)
    img = _as_image(image)
    options = {}
    if fmt == "PNG" and img.width * img.height > FAST_PNG_ABOVE:
        options["compress_level"] = 1  # 4x faster than Pillow's 6 on a 12 MP photo, 4% larger
    atomic_write(path, lambda f: img.save(f, format=fmt, **options))


def save_gif(path: str | os.PathLike, frames: list[np.ndarray], duration_ms: int = 600) -> None:
    """Write frames (uint8 arrays) as a looping GIF animation, atomically."""
    path = Path(path)
    if format_for(path) != "GIF":
        raise ImageError(f"an animation must be written as .gif, not {path.name}")
    images = [_as_image(f) for f in frames]
    atomic_write(
        path,
        lambda f: images[0].save(
            f,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=duration_ms,
            loop=0,
        ),
    )
