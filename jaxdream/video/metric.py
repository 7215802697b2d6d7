"""How much a video flickers: the mean change from frame to frame (``flicker``), to compare a
dream's frames with its input's (``python -m benchmarks.motion`` measures the coherence modes
by it).

>>> import numpy as np
>>> frames = [np.full((8, 10, 3), 40 * k, np.uint8) for k in range(3)]
>>> flicker(frames)
40.0
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from jaxdream.video.common import VideoError, _frames_of


def flicker(frames: Iterable[np.ndarray]) -> float:
    """The mean absolute change from each frame to the next, in pixel levels (0-255): how much
    a video flickers (compare a dream's with its input's). Frames of one size, finite, else
    ``VideoError``."""
    total, count, previous = 0.0, 0, None
    for k, frame in enumerate(_frames_of(frames)):
        try:
            a = np.asarray(frame, np.float32)
        except (TypeError, ValueError):
            raise VideoError(f"frame {k} is not an array of numbers") from None
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise VideoError(f"frame {k} is empty or holds NaN or infinite values")
        if previous is not None and a.shape != previous.shape:
            raise VideoError(
                f"frame {k} is of shape {a.shape}, the first {previous.shape}: the frames of "
                "a video share one size"
            )
        if previous is not None:
            total += float(np.abs(a - previous).mean())
            count += 1
        previous = a
    return total / count if count else 0.0
