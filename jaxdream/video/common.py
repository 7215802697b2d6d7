"""What the video modules share: the error they raise, the limits of what they read and
write, PyAV's import (an optional extra) and the checks of paths, rates and frame iterables."""

from __future__ import annotations

import fractions
import os
from collections.abc import Iterable

import numpy as np

from jaxdream.checks import number, shown
from jaxdream.errors import ImageError

MAX_VIDEO_BYTES = 256 << 30  # a file larger than this is not read
MAX_FRAMES = 1_000_000  # frames of one output, at most (about 11 hours at 25 fps)
MAX_FPS = 1000.0
# A frame of at least this many pixels (above 1440p; 4K is 8.3 million) is decoded with slice
# threads only, encoded without B-frames and dreamt one frame at a time (``dreaming``):
# FFmpeg's frame threads, x264's B-frames and a pipeline's stages each hold whole frames (4K:
# 50, 200 and 75 MB measured), which small frames can afford and large ones not.
LARGE_FRAME_PIXELS = 4_000_000


class VideoError(ImageError):
    """A video cannot be read, or frames cannot be written as the file name asks."""


def _path(value, what: str = "a video") -> str:
    """``value`` as a file's path (``str`` or ``os.PathLike``), else ``VideoError``."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str) or not text or "\0" in text:
        raise VideoError(f"{what} is a file's path (str or os.PathLike), got {shown(value)}")
    return text


def _fps(value) -> fractions.Fraction:
    """A frame rate: a number (or ``Fraction``) in ``[0.001, MAX_FPS]``, else ``ConfigError``."""
    if isinstance(value, fractions.Fraction):
        value = float(value)
    number("fps", value, 1e-3, MAX_FPS)
    return fractions.Fraction(value).limit_denominator(1001 * 1000)


def _frames_of(frames, what: str = "frames") -> Iterable:
    if isinstance(frames, str | bytes | np.ndarray) and np.ndim(frames) < 3:
        raise VideoError(f"{what} is an iterable of uint8 arrays, got {type(frames).__name__}")
    if not isinstance(frames, Iterable):
        raise VideoError(f"{what} is an iterable of uint8 arrays, got {type(frames).__name__}")
    return frames


def _av():
    """The ``av`` module (PyAV), imported on first use: it is an optional extra (``video``),
    and a program that writes only GIFs or PNG frames runs without it."""
    try:
        import av
    except ImportError:
        raise VideoError(
            "video files need PyAV: pip install 'jaxdream[video]' (or pip install av)"
        ) from None
    return av
