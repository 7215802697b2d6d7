"""Reading video files: what a file holds (``probe``: size with rotation applied, rate,
frames, audio, timestamps that jump back or are missing) and its frames in order
(``read_frames``), timed as FFmpeg reads and players show them.

A range holds the frames whose time ``t`` is ``start <= t < start + duration`` (at 24 fps,
0.1 s holds 3 frames), from Python and from the command line alike. Output times only ever
increase: a frame whose timestamp goes back (two recordings joined) is placed one frame after
the frame before it, and a stream without timestamps (a raw ``.h264``) is timed at its own
rate; a frame of another size than the first is scaled to it. ``Decoded.retimed`` and
``Decoded.resized`` count them.
"""

from __future__ import annotations

import contextlib
import fractions
import math
import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from PIL import Image

from jaxdream import imageio
from jaxdream._files import check_regular_file
from jaxdream.checks import number
from jaxdream.errors import ConfigError
from jaxdream.video.common import LARGE_FRAME_PIXELS, MAX_VIDEO_BYTES, VideoError, _av, _path


class VideoInfo(NamedTuple):
    """What ``probe`` found: the display ``width`` and ``height`` (rotation applied),
    ``fps`` (the average rate), ``frames`` (as the container counts them), ``duration`` in
    seconds, the ``rotation`` (counter-clockwise degrees), whether the rate is
    ``variable``, the ``audio`` codec name (``None``: no audio stream); ``jumps``, how often
    the timestamps jump back (two recordings joined: frames are then timed one after another,
    as players show them); ``untimed``, whether the stream has no timestamps (a raw ``.h264``
    stream: frames are timed by the rate)."""

    path: str
    width: int
    height: int
    fps: fractions.Fraction
    frames: int
    duration: float
    rotation: int
    variable: bool
    audio: str | None
    jumps: int = 0
    untimed: bool = False


def _open(path: str | os.PathLike):
    path = _path(path)
    av = _av()
    check_regular_file(path, MAX_VIDEO_BYTES, "a video", VideoError)
    try:
        return av.open(str(path))
    except av.error.EOFError:
        raise VideoError(f"{path} has no frames: it ends before its first one") from None
    except av.error.FFmpegError as e:
        raise VideoError(f"{path} is not a video that FFmpeg can read ({e.strerror})") from None


def probe(path: str | os.PathLike) -> VideoInfo:
    """A video's ``VideoInfo``, read from its packets (no frame decoded but the first), or
    ``VideoError``: not a video, no video stream, no frame, a frame over the pixel limit."""
    path = _path(path)
    av = _av()
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path} holds no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base or fractions.Fraction(1, 1)
        times: list[int] = []
        untimed, jumps, top = 0, 0, None
        # A pts 8 frames behind the highest yet is a jump back (B-frames reorder by fewer).
        rate = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        back = max(1, round(8 / (rate * tb)))
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                if packet.pts is None:  # a raw elementary stream (.h264): no timestamps
                    untimed += 1
                    continue
                if top is not None and packet.pts < top - back:
                    jumps += 1
                    top = packet.pts  # a new run of timestamps (two recordings joined)
                times.append(packet.pts)
                top = packet.pts if top is None else max(top, packet.pts)
        except av.error.FFmpegError:
            pass  # a truncated file: dream_video tells how many frames were lost
        count = max(stream.frames or 0, len(times) + untimed)
        if not count:
            raise VideoError(f"{path} has a video stream with no frames")
        w, h = stream.codec_context.width, stream.codec_context.height
        if w * h > imageio.MAX_PIXELS:  # the photos' limit, read when called: it may be changed
            raise VideoError(
                f"{path}'s frames are too large to dream ({w}x{h}); the limit is "
                f"{imageio.MAX_PIXELS:,} pixels a frame"
            )
        if times:
            fps = stream.average_rate or stream.guessed_rate or fractions.Fraction(25)
        else:  # no timestamps: the rate the stream's own timing says, as FFmpeg guesses it
            fps = stream.guessed_rate or stream.average_rate or fractions.Fraction(25)
        fps = fractions.Fraction(fps)
        if times and not jumps:
            times.sort()
            steps = np.diff(np.asarray(times, np.int64))
            variable = bool(steps.size) and int(steps.max()) > 1.5 * max(1, int(np.median(steps)))
            duration = float((times[-1] - times[0]) * tb) + 1 / float(fps)
        else:  # frames one after another at the rate, as players show them (dream_video too)
            variable, duration = False, count / float(fps)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    rotation = 0
    with _open(path) as container:  # opened again: a raw stream cannot seek back
        try:
            first = next(container.decode(container.streams.video[0]))
            rotation = round((first.rotation or 0) / 90) * 90 % 360
        except (StopIteration, av.error.FFmpegError):
            raise VideoError(f"{path}: not one frame of its video stream decodes") from None
    if rotation in (90, 270):
        w, h = h, w
    return VideoInfo(
        str(path), w, h, fps, count, duration, rotation, variable, audio, jumps, not times
    )


class Frame(NamedTuple):
    """A decoded frame: its ``index`` from the first frame read, its ``time`` in seconds from
    the video's start, its ``pixels`` (uint8 ``(H, W, 3)``, rotation applied)."""

    index: int
    time: float
    pixels: np.ndarray


class Decoded:
    """The iterator ``read_frames`` returns; ``lost`` is set once it ends: frames the container
    counts in the range that did not decode (a truncated or corrupt file). ``info``: what
    ``probe`` found of ``path``, where the caller has it (the file is then not read again)."""

    def __init__(
        self,
        path,
        start: float,
        duration: float | None,
        stop_index: int | None,
        first_index: int = 0,
        info: VideoInfo | None = None,
    ):
        self.info = probe(path) if info is None else info
        self.path, self.start, self.duration = str(path), start, duration
        self.lost = 0
        self.read = 0
        self.resized = 0  # frames of another size than the first, scaled to it (as players do)
        self.retimed = 0  # frames whose time went back, placed after the one before instead
        self._stop_index = stop_index
        self._first_index = first_index
        self._iterator = self._run()

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading and close the file and its decoder, here, in the calling thread (the
        thread that decoded: FFmpeg's frame threads are joined by the one that drives them)."""
        self._iterator.close()

    def expected(self) -> int:
        """Frames the range holds by the container's count (its index, which a truncated
        file keeps whole), by the rule the decoding follows: a frame at ``t`` seconds is in
        the range where ``start <= t < start + duration`` (at 24 fps, ``duration`` 0.1 holds
        the frames at 0, 1/24 and 2/24 s: 3)."""
        fps = float(self.info.fps)
        skipped = min(self.info.frames, math.ceil((self.start - 1e-6) * fps))
        end = self.info.frames
        if self.duration is not None:
            end = min(end, math.ceil((self.start + self.duration - 1e-6) * fps))
        return max(0, end - max(0, skipped))

    def _run(self) -> Iterator[Frame]:
        av = _av()
        k = round(self.info.rotation / 90) % 4
        step = 1 / float(self.info.fps)
        with _open(self.path) as container:
            stream = container.streams.video[0]
            # Large frames: slice threads only, frame threads hold a frame each (4K: 50 MB).
            large = self.info.width * self.info.height >= LARGE_FRAME_PIXELS
            stream.thread_type = "SLICE" if large else "AUTO"
            tb = stream.time_base or fractions.Fraction(1, 1)
            origin = stream.start_time or 0
            # Timestamps that jump back make a seek by time ambiguous: read from the start.
            if self.start > 0 and not self.info.jumps and not self.info.untimed:
                with contextlib.suppress(av.error.FFmpegError):
                    container.seek(int(self.start / tb) + origin, stream=stream, backward=True)
            index, broken, last = 0, False, None
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:  # no timestamp (a raw stream): the next at the rate
                        t = 0.0 if last is None else last + step
                    else:
                        t = float((frame.pts - origin) * tb)
                    if last is not None and t <= last + 1e-9:
                        # Back in time (two recordings joined): placed after the frame before
                        # it, as players show it; output times only ever increase.
                        t = last + step
                        self.retimed += frame.pts is not None
                    last = t
                    if t < self.start - 1e-6:
                        continue
                    if self.duration is not None and t >= self.start + self.duration - 1e-6:
                        break
                    if self._stop_index is not None and index >= self._stop_index:
                        break
                    if index < self._first_index:
                        index += 1
                        continue
                    pixels = frame.to_ndarray(format="rgb24")
                    del frame  # its buffer back to the decoder's pool before the next decode
                    if k:
                        pixels = np.ascontiguousarray(np.rot90(pixels, k))
                    if pixels.shape[:2] != (self.info.height, self.info.width):
                        # The frame size changes mid-stream: scaled to the first, as FFmpeg's
                        # own tools and players show it (a video's frames share one size).
                        size = (self.info.width, self.info.height)
                        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))
                        self.resized += 1
                    self.read += 1
                    yield Frame(index, t - self.start, pixels)
                    index += 1
            except av.error.FFmpegError:
                broken = True
        end = (
            self.expected() if self._stop_index is None else min(self._stop_index, self.expected())
        )
        wanted = max(0, end - self._first_index)
        self.lost = max(0, wanted - self.read) if (broken or self.read < wanted) else 0


def read_frames(
    path: str | os.PathLike, start: float = 0.0, duration: float | None = None
) -> Decoded:
    """The frames of a video from ``start`` seconds for ``duration`` seconds (``None``: to
    the end): an iterator of ``Frame``. Errors before any frame is read: ``VideoError``
    (``probe``), ``ConfigError`` for a range that holds no frame."""
    path = _path(path)
    check_range(start, duration)
    decoded = Decoded(path, start, duration, None)
    if start >= decoded.info.duration:
        raise ConfigError(
            f"--start {start:g} s is past the end of {path} ({decoded.info.duration:.2f} s)"
        )
    return decoded


def check_range(start: float, duration: float | None) -> None:
    """``ConfigError`` unless ``start`` and ``duration`` (``None``: to the end) are seconds
    that can make a range: finite, ``start >= 0``, ``duration > 0``."""
    number("start", start, 0, 1e7)
    if duration is not None:
        number("duration", duration, 0, 1e7)
        if duration <= 0:
            raise ConfigError(f"duration must be > 0 seconds, got {duration:g}")
