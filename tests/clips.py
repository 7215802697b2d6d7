"""Test clips, for the files that test video and zoom (each imports this after
``pytest.importorskip("av")``): a camera pan over the bundled cat photo, encoded as a phone
would (H.264, optionally an AAC track, a rotation, variable frame times), and a render made to
stop at a chosen frame."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
from PIL import Image

from jaxdream.video import Resumable, VideoError
from tests.helpers import REPO

CAT = np.asarray(Image.open(REPO / "jaxdream" / "assets" / "chelsea.jpg").convert("RGB"))


def pan(count: int, h: int = 48, w: int = 64, step: int = 3) -> list[np.ndarray]:
    """A camera pan across the cat photo: ``count`` RGB frames of ``h x w``."""
    return [
        np.ascontiguousarray(CAT[60 : 60 + h, 100 + step * k : 100 + step * k + w])
        for k in range(count)
    ]


def encode(
    path: Path,
    frames: list[np.ndarray],
    fmt: str | None = None,
    fps: int = 24,
    audio_seconds: float | None = None,
    rotation: int = 0,
    times_ms: list[int] | None = None,
    **x264,
) -> Path:
    """H.264 of ``frames`` in the container ``fmt`` (default: from the name) at ``fps``; with
    an AAC sine track of ``audio_seconds``, a display ``rotation``, frame times ``times_ms``
    (variable frame rate), the encoder's own parameters ``x264`` (``x264-params``)."""
    out = av.open(str(path), "w", format=fmt)
    video = out.add_stream("libx264", rate=fps)
    video.height, video.width = frames[0].shape[:2]
    video.pix_fmt = "yuv420p"
    if x264:
        video.options = {"x264-params": ":".join(f"{k}={v}" for k, v in x264.items())}
    if times_ms is not None:
        video.codec_context.time_base = fractions.Fraction(1, 1000)
    if rotation:
        video.set_display_rotation(rotation)
    audio = out.add_stream("aac", rate=16000) if audio_seconds else None
    for k, f in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(f, format="rgb24")
        frame.pts = k if times_ms is None else times_ms[k]
        if times_ms is not None:
            frame.time_base = fractions.Fraction(1, 1000)
        for p in video.encode(frame):
            out.mux(p)
    if audio is not None:
        t = np.arange(int(16000 * audio_seconds)) / 16000
        sine = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(sine, format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for p in [*audio.encode(frame), *audio.encode(None)]:
            out.mux(p)
    for p in video.encode(None):
        out.mux(p)
    out.close()
    return path


def stop_keeping_at(monkeypatch, calls: int):
    """Make a render's keeping of frames fail at its ``calls``-th frame (a stand-in for any
    stop: a crash, a signal); returns what puts the keeping back."""
    keep = Resumable.keep
    seen = []

    def failing(self, *args, **kw):
        seen.append(1)
        if len(seen) == calls:
            raise VideoError("stopped here (a stand-in for a crash)")
        keep(self, *args, **kw)

    monkeypatch.setattr(Resumable, "keep", failing)
    return lambda: monkeypatch.setattr(Resumable, "keep", keep)
