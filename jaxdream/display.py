"""The article's display transforms: a contrast clip and a mean/std mapping to [0, 255].

>>> import numpy as np
>>> x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(4, 4)
>>> to_uint8(x).dtype
dtype('uint8')
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from jaxdream.checks import number
from jaxdream.errors import ConfigError, NumericalError


@dataclasses.dataclass(frozen=True)
class Display:
    """How a standardized dream becomes pixels.

    ``clip``: apply ``contrast_clip`` against the original image (``height_fact``,
    ``spect_fact``: the article's 1.1 and 0.85). Then ``to_uint8`` with ``centre_move`` and
    ``fact``: a pixel ``k`` standard deviations above the mean lands at
    ``255 * (centre_move + fact * k)``.
    """

    clip: bool = True
    height_fact: float = 1.1
    spect_fact: float = 0.85
    centre_move: float = 0.5
    fact: float = 0.2

    def __post_init__(self):
        for name in ("height_fact", "spect_fact", "centre_move", "fact"):
            number(name, getattr(self, name), -1e6, 1e6)
        if self.fact <= 0:
            raise ConfigError(f"fact must be > 0 (the contrast), got {self.fact}")


def contrast_clip(
    x: np.ndarray, reference: np.ndarray, height_fact: float = 1.1, spect_fact: float = 0.85
) -> np.ndarray:
    """``clip(height_fact * x, -s, s)`` with ``s = spect_fact * min(|min|, |max|)`` of the
    (standardized) ``reference``: keeps the dream's extremes within the original's range."""
    ref = np.asarray(reference, np.float32)
    s = spect_fact * min(abs(float(ref.min())), abs(float(ref.max())))
    if s == 0:  # a flat reference gives no range to clip to
        return np.asarray(x, np.float32) * height_fact
    return np.clip(height_fact * np.asarray(x, np.float32), -s, s)


def to_uint8(x: np.ndarray, centre_move: float = 0.5, fact: float = 0.2) -> np.ndarray:
    """Map by mean and standard deviation to [0, 255]; a flat image gives mid-gray. An image
    holding NaN or infinite values raises ``NumericalError``: none reaches a written image."""
    x = np.asarray(x, np.float32)
    if not np.all(np.isfinite(x)):
        raise NumericalError("the dream holds NaN or infinite values; nothing is written")
    std = float(x.std())
    z = (x - x.mean()) / std if std > 0 else np.zeros_like(x)
    return np.round(np.clip(centre_move + fact * z, 0.0, 1.0) * 255.0).astype(np.uint8)


def render(x: np.ndarray, reference: np.ndarray | None = None, display: Display = Display()):
    """A standardized image as uint8 pixels, with the article's clip when asked and possible."""
    if display.clip and reference is not None:
        x = contrast_clip(x, reference, display.height_fact, display.spect_fact)
    return to_uint8(x, display.centre_move, display.fact)


def colorize(gray: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Put the uint8 luminance ``gray`` under the chroma of ``rgb`` (float [0, 1] or uint8, same
    size): the carved structure in the photo's own colours."""
    rgb8 = rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    ycbcr = np.asarray(Image.fromarray(rgb8).convert("YCbCr")).copy()
    ycbcr[..., 0] = gray
    return np.asarray(Image.fromarray(ycbcr, "YCbCr").convert("RGB"))
