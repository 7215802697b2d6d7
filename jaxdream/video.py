"""Video files: reading them (rotation applied), dreaming every frame, writing frames out.

Files go through PyAV (the ``av`` package: FFmpeg's libraries with their codecs inside the
wheel; the ``video`` extra). Output formats follow the file name:

- ``.mp4``: H.264 (libx264, yuv420p, CRF 18, preset "superfast": a fifth of the encoder's CPU
  of "medium" within 0.3 dB of its PSNR, for about a quarter more bytes; measured by
  ``python -m benchmarks.motion --encoders``), audio AAC (copied where it is AAC or MP3);
- ``.webm``: VP9 (libvpx-vp9, CRF 32), audio Opus (copied where it is Opus);
- ``.webp``: animated WebP (libwebp, quality 80), looping, no audio;
- ``.gif``: animated GIF (Pillow, an adaptive palette per frame), looping, no audio; its
  frames are held until it is written, so it suits short clips;
- a name with no extension, ending in ``/``, or an existing folder: numbered PNG frames
  (``frame_000000.png``, ...), the only lossless form (same seed, same bytes).

Frames are uint8 ``(H, W, 3)`` (or ``(H, W)`` gray) numpy arrays. H.264 and VP9 take even
sides only: an odd side is padded by repeating the last row or column (``VideoWriter.padded``
says so). Every file is written atomically (``jaxdream._files``): nothing appears under the
output's name before it is complete.

``dream_video(path, config)`` yields the dreamt frames of a video as they are made: decoding
runs on a host thread ahead of the dream, the dream runs on a second thread in batches over
every local device (``jaxdream.dream_photos``'s engine: one compiled program, memory-sized
batches sharded over the devices), and the caller's thread renders and encodes what comes out.
``VideoDreams.close()`` (or leaving a ``contextlib.closing`` block) ends and joins both threads.

Reading follows what FFmpeg reads and players show. A range holds the frames whose time ``t``
is ``start <= t < start + duration`` (at 24 fps, 0.1 s holds 3 frames), from Python and from
the command line alike. Output times only ever increase: a frame whose timestamp goes back
(two recordings joined) is placed one frame after the frame before it, and a stream without
timestamps (a raw ``.h264``) is timed at its own rate; a frame of another size than the first
is scaled to it. ``Decoded.retimed`` and ``Decoded.resized`` count them; the command says so
in a note.

What a render leaves beside its output ``OUT``: ``.OUT.partial/`` holds the frames of an
unfinished render, on purpose, for ``--resume`` (remove it to start afresh); it is made with
the first frame kept, so a refused command leaves nothing. ``.OUT.writing/`` (a frame folder
being written) and the temporary ``.OUT.HOST-PID.XXXXXXXX.EXT`` are removed when the run ends,
also by Ctrl-C or SIGTERM; after SIGKILL they stay until the next write of ``OUT`` removes
them (``jaxdream._files``), or ``rm -r .OUT.*`` once no run writes ``OUT``.

FFmpeg's log is left as PyAV leaves it: silent, with no Python in it. Do not set a level with
``av.logging.set_level`` in a program that uses this module: that installs a Python log
callback, which FFmpeg calls from its own frame threads, and a decoder being closed then waits
for ever on a thread that waits for the GIL. Every public function here checks its arguments
and raises ``VideoError`` or ``ConfigError`` (``jaxdream.errors``).

>>> import numpy as np
>>> frames = [np.full((8, 10, 3), 40 * k, np.uint8) for k in range(3)]
>>> flicker(frames)
40.0
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import math
import os
import queue
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from jaxdream import _files
from jaxdream._files import check_regular_file, check_writable
from jaxdream.config import DreamConfig
from jaxdream.display import Display
from jaxdream.errors import ConfigError, ImageError

MAX_VIDEO_BYTES = 256 << 30  # a file larger than this is not read
MAX_FRAMES = 1_000_000  # frames of one output, at most (about 11 hours at 25 fps)
MAX_FPS = 1000.0
MAX_STATE_BYTES = 4 << 30  # a kept state (a working image, its carving or colours) is smaller
ENCODED = {".mp4", ".webm", ".webp", ".gif"}
COHERENCE = ("none", "blend", "flow")


class VideoError(ImageError):
    """A video cannot be read, or frames cannot be written as the file name asks."""


def _path(value, what: str = "a video") -> str:
    """``value`` as a file's path (``str`` or ``os.PathLike``), else ``VideoError``."""
    from jaxdream.checks import shown

    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str) or not text or "\0" in text:
        raise VideoError(f"{what} is a file's path (str or os.PathLike), got {shown(value)}")
    return text


def _display(value) -> Display:
    if not isinstance(value, Display):
        raise ConfigError(f"display must be a jaxdream.Display, got {type(value).__name__}")
    return value


def _fps(value) -> fractions.Fraction:
    """A frame rate: a number (or ``Fraction``) in ``[0.001, MAX_FPS]``, else ``ConfigError``."""
    from jaxdream.checks import number

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
    try:
        import av
    except ImportError:
        raise VideoError(
            "video files need PyAV: pip install 'jaxdream[video]' (or pip install av)"
        ) from None
    return av


# --------------------------------------------------------------------------- reading


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
    from jaxdream.imageio import MAX_PIXELS

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
        if w * h > MAX_PIXELS:
            raise VideoError(
                f"{path}'s frames are too large to dream ({w}x{h}); the limit is "
                f"{MAX_PIXELS:,} pixels a frame"
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


# What the frames in flight of a video's dream may hold, about (``VideoDreams``): small frames
# are batched as photos are, large ones in smaller batches with fewer decoded ahead.
FRAMES_IN_FLIGHT_BYTES = 512 * 2**20


class Frame(NamedTuple):
    """A decoded frame: its ``index`` from the first frame read, its ``time`` in seconds from
    the video's start, its ``pixels`` (uint8 ``(H, W, 3)``, rotation applied)."""

    index: int
    time: float
    pixels: np.ndarray


class Decoded:
    """The iterator ``read_frames`` returns; ``lost`` is set once it ends: frames the container
    counts in the range that did not decode (a truncated or corrupt file)."""

    def __init__(
        self,
        path,
        start: float,
        duration: float | None,
        stop_index: int | None,
        first_index: int = 0,
    ):
        self.info = probe(path)
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
            stream.thread_type = "AUTO"
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
    from jaxdream.checks import number

    number("start", start, 0, 1e7)
    if duration is not None:
        number("duration", duration, 0, 1e7)
        if duration <= 0:
            raise ConfigError(f"duration must be > 0 seconds, got {duration:g}")


# --------------------------------------------------------------------------- writing


def is_folder_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a folder of PNG frames: an existing folder, a name ending in a
    separator, or a name with no extension."""
    text = str(path)
    p = Path(text)
    return p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix


def check_video_output(path: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Fail before any work where ``path`` cannot take a video: an extension no encoder here
    writes, a folder that cannot be made or is not empty, the input file itself."""
    path = Path(_path(path, "the output"))
    if source is not None:
        same = path.resolve() == Path(source).resolve()
        with contextlib.suppress(OSError):
            same = same or (path.exists() and os.path.samefile(path, source))
        if same:
            raise VideoError(f"{path} is the input: choose another output name")
    if is_folder_output(path):
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise VideoError(f"{path} exists and is not an empty folder: frames go into a new one")
        check_writable(path.parent / "frame.png", VideoError)
        return path
    if path.suffix.lower() not in ENCODED:
        raise VideoError(
            f"no encoder here writes {path.suffix} videos: use .mp4, .webm, .webp, .gif or a "
            "folder (numbered PNG frames)"
        )
    if path.suffix.lower() != ".gif":
        _av()
    return check_writable(path, VideoError)


def _as_frame(frame) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3 or a.size == 0:
        raise VideoError(
            f"a video frame is a uint8 array (H, W) or (H, W, 3), got {a.dtype} {a.shape}"
        )
    return a


@dataclasses.dataclass
class _Settings:
    container: str
    codec: str
    pix_fmt: str
    options: dict[str, str]
    audio: str | None  # the codec audio is encoded with where it cannot be copied
    copies: tuple[str, ...]  # audio codecs the container takes as they are
    container_options: dict[str, str] = dataclasses.field(default_factory=dict)


SETTINGS = {
    ".mp4": _Settings(
        "mp4",
        "libx264",
        "yuv420p",
        {"crf": "18", "preset": "superfast"},
        "aac",
        ("aac", "mp3"),
        {"movflags": "faststart"},
    ),
    ".webm": _Settings(
        "webm",
        "libvpx-vp9",
        "yuv420p",
        {"crf": "32", "b": "0", "row-mt": "1"},
        "libopus",
        ("opus",),
    ),
    ".webp": _Settings(
        "webp", "libwebp_anim", "yuv420p", {"quality": "80"}, None, (), {"loop": "0"}
    ),
}


class VideoWriter:
    """Frames written as they come to ``path`` (format from the name, module docstring), at
    ``fps``; ``time_base``: frames then carry their own times (``write(frame, time)``, in
    seconds), as a variable-rate video does. ``audio``: the path of a video whose audio stream
    is copied (or re-encoded where the container cannot take it), from ``audio_start`` seconds
    for ``audio_duration``. Use as a context manager: the file appears, whole, when the block
    ends without an error, and not at all otherwise."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | fractions.Fraction,
        *,
        time_base: fractions.Fraction | None = None,
        audio: str | os.PathLike | None = None,
        audio_start: float = 0.0,
        audio_duration: float | None = None,
    ):
        self.fps = _fps(fps)
        if time_base is not None and (
            not isinstance(time_base, fractions.Fraction) or not 0 < time_base <= 1
        ):
            raise ConfigError(f"time_base must be a Fraction in (0, 1], got {time_base!r}")
        if audio is not None:  # the source of the audio, told apart from the output
            audio = _path(audio, "audio")
            check_regular_file(audio, MAX_VIDEO_BYTES, "a video (its audio)", VideoError)
            check_range(audio_start, audio_duration)
        self.path = check_video_output(path, audio)
        self.time_base = time_base
        self.audio, self.audio_start, self.audio_duration = audio, audio_start, audio_duration
        self.count = 0
        self.size: tuple[int, int] | None = None  # (height, width) of the frames given
        self.padded: tuple[int, int] | None = None  # (height, width) as encoded, if padded
        self.audio_copied: str | None = None  # "copied", "re-encoded as X", or None
        self._stack = contextlib.ExitStack()
        self._gif: list[Image.Image] = []
        self._last_time = -1.0
        self._failed: object = None  # why a write failed: no later one is tried

    def __enter__(self) -> VideoWriter:
        ext = self.path.suffix.lower()
        if is_folder_output(self.path):
            # A fixed hidden name: a write that was stopped is cleared by the next one.
            self._folder = self.path.parent / f".{self.path.name}.writing"
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder.mkdir()
            _files.register_partial(self._folder)  # removed by Ctrl-C and SIGTERM too
            self._stack.callback(self._drop_folder)
        elif ext != ".gif":
            self._file = self._stack.enter_context(
                _files.atomic_path(self.path, VideoError, suffix=self.path.suffix)
            )
            self._settings = SETTINGS[ext]
            self._container = None
        return self

    def _drop_folder(self):
        if getattr(self, "_folder", None) is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            _files.register_partial(self._folder, False)

    def _open_encoder(self, h: int, w: int) -> None:
        av = _av()
        s = self._settings
        self._container = av.open(
            str(self._file), "w", format=s.container, options=dict(s.container_options)
        )
        stream = self._container.add_stream(s.codec, rate=self.fps)
        eh, ew = h + h % 2, w + w % 2
        if (eh, ew) != (h, w):
            self.padded = (eh, ew)
        stream.width, stream.height, stream.pix_fmt = ew, eh, s.pix_fmt
        stream.options = dict(s.options)
        stream.codec_context.time_base = self.time_base or 1 / self.fps
        self._stream = stream
        self._audio = None
        if self.audio is not None:
            self._audio = _AudioCopy(
                self._container, self.audio, s, self.audio_start, self.audio_duration
            )
            self.audio_copied = self._audio.how

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Append one frame (uint8 ``(H, W, 3)`` or ``(H, W)``); every frame must have the
        first one's size. ``time`` (seconds) where the writer was given a ``time_base``."""
        a = _as_frame(frame)
        if time is not None:
            from jaxdream.checks import number

            number("time", time, 0, 1e7)
        if self.size is None:
            self.size = a.shape[:2]
            if not is_folder_output(self.path) and self.path.suffix.lower() not in (".gif",):
                self._open_encoder(*self.size)
        elif a.shape[:2] != self.size:
            raise VideoError(
                f"frame {self.count} is {a.shape[1]}x{a.shape[0]}, the first was "
                f"{self.size[1]}x{self.size[0]}: a video's frames share one size"
            )
        if self.count >= MAX_FRAMES:
            raise VideoError(f"a video may have at most {MAX_FRAMES:,} frames")
        if self._failed is not None:  # FFmpeg's muxer is not called again after a failure
            raise VideoError(f"cannot write {self.path}: {self._failed}")
        if is_folder_output(self.path):
            Image.fromarray(a).save(self._folder / f"frame_{self.count:06d}.png", compress_level=6)
        elif self.path.suffix.lower() == ".gif":
            self._gif.append(Image.fromarray(a).quantize(256, dither=Image.Dither.NONE))
        else:
            try:
                self._encode(a, time)
            except BaseException as e:  # a full disk: the file is lost, never written again
                self._failed = getattr(e, "strerror", None) or e
                raise
        self.count += 1

    def _encode(self, a: np.ndarray, time: float | None) -> None:
        av = _av()
        if self.padded:
            eh, ew = self.padded
            a = np.pad(a, ((0, eh - a.shape[0]), (0, ew - a.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(a, format="rgb24")
        if self.time_base is not None and time is not None:
            pts = round(time / self.time_base)
            pts = max(pts, getattr(self, "_last_pts", -1) + 1)
            self._last_pts = pts
            frame.pts = pts
            now = time
        else:
            frame.pts = self.count
            now = self.count / float(self.fps)
        frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.until(now + 1.0)

    def close(self) -> None:
        """Finish the file (on leaving the ``with`` block)."""
        if self.count == 0:
            raise VideoError(f"no frame to write to {self.path}")
        if self._failed is not None:
            raise VideoError(f"cannot write {self.path}: {self._failed}")
        if is_folder_output(self.path):
            if self.path.exists():
                self.path.rmdir()  # empty: check_video_output said so
            os.chmod(self._folder, 0o755)
            os.replace(self._folder, self.path)
            _files.register_partial(self._folder, False)
            self._folder = None
        elif self.path.suffix.lower() == ".gif":
            frames, ms = self._gif, max(20, round(1000 / float(self.fps) / 10) * 10)
            from jaxdream._files import atomic_write

            atomic_write(
                self.path,
                lambda f: frames[0].save(
                    f, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0
                ),
                error=VideoError,
            )
        else:
            for packet in self._stream.encode():
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.until(math.inf)
            self._container.close()

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            try:
                self.close()
            except BaseException as e:  # the trailer failed (a full disk): not a whole file
                if not self._stack.__exit__(type(e), e, e.__traceback__):
                    raise
                return
            self._stack.__exit__(None, None, None)
            return
        if getattr(self, "_container", None) is not None and self._failed is None:
            with contextlib.suppress(Exception):
                self._container.close()
        self._stack.__exit__(kind, value, tb)


class _AudioCopy:
    """The audio of ``source`` into ``container``: packets copied where the container takes
    the codec, else decoded and encoded again; timestamps shifted by ``start``."""

    def __init__(self, container, source, settings: _Settings, start: float, duration):
        av = _av()
        self.how: str | None = None
        try:
            self._input = av.open(str(source))
        except av.error.FFmpegError as e:
            raise VideoError(
                f"the audio source {source} is not a file FFmpeg can read ({e.strerror})"
            ) from None
        if not self._input.streams.audio or settings.audio is None:
            self._input.close()
            self._input = None
            return
        self._in = self._input.streams.audio[0]
        self.start, self.end = start, math.inf if duration is None else start + duration
        name = self._in.codec_context.name
        self.copy = name in settings.copies
        if self.copy:
            self._out = container.add_stream_from_template(self._in)
            self.how = f"{name} copied"
        else:
            rate = 48000 if settings.audio == "libopus" else self._in.codec_context.sample_rate
            self._out = container.add_stream(settings.audio, rate=rate)
            self.how = f"{name} re-encoded as {settings.audio.removeprefix('lib')}"
        if start > 0:
            with contextlib.suppress(av.error.FFmpegError):
                self._input.seek(int(start / self._in.time_base), stream=self._in)
        self._packets = self._input.demux(self._in)
        self._done = False

    def until(self, t: float) -> None:
        """Mux the audio up to ``t`` seconds of the output."""
        if self._input is None or self._done:
            return
        av = _av()
        tb = self._in.time_base
        origin = self._in.start_time or 0
        try:
            for packet in self._packets:
                if packet.pts is None:
                    if not self.copy:  # the end: flush the decoder into the encoder
                        self._encode(packet.decode())
                    continue
                when = float((packet.pts - origin) * tb)
                if self.start > 0 and when < self.start - 1e-6:  # (from 0: priming kept)
                    continue
                if when >= self.end:
                    break
                if self.copy:
                    shift = round(self.start / tb)
                    packet.pts -= shift
                    if packet.dts is not None:
                        packet.dts -= shift
                    packet.stream = self._out
                    self._output_mux(packet)
                else:
                    self._encode(packet.decode())
                if when - self.start > t:
                    return
        except av.error.FFmpegError:
            pass  # a truncated audio stream: what decoded is kept
        self._finish()

    def _output_mux(self, packet) -> None:
        self._out.container.mux(packet)

    def _encode(self, frames) -> None:
        for frame in frames:
            frame.pts = None
            for packet in self._out.encode(frame):
                self._output_mux(packet)

    def _finish(self) -> None:
        if not self.copy:
            for packet in self._out.encode(None):
                self._output_mux(packet)
        self._input.close()
        self._done = True


def save_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    *,
    audio: str | os.PathLike | None = None,
) -> int:
    """Write ``frames`` (uint8 arrays, all one size) as a video at ``fps``, the format from
    the file name (``.mp4``, ``.webm``, ``.webp``, ``.gif``, or a folder of PNG frames), with
    the audio of the video ``audio`` where given; atomically, encoding each frame as it comes
    (an iterator is never held in memory, except for a GIF). Returns the frames written.

    >>> import tempfile, numpy as np, os
    >>> folder = tempfile.mkdtemp()
    >>> save_video(os.path.join(folder, "clip.gif"), [np.zeros((4, 6), np.uint8)] * 3, 10)
    3
    """
    frames = _frames_of(frames)
    with VideoWriter(path, fps, audio=audio) as writer:
        for frame in frames:
            writer.write(frame)
        if writer.count == 0:
            raise VideoError(f"no frame to write to {path}")
    return writer.count


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


# --------------------------------------------------------------------------- dreaming


def _flow_warp(previous: np.ndarray, current: np.ndarray, carving: np.ndarray) -> np.ndarray:
    """``carving`` (made on ``previous``) moved along the motion to ``current`` (OpenCV's
    Farneback flow from ``current`` back to ``previous``, both standardized gray)."""
    try:
        import cv2
    except ImportError:
        raise VideoError("coherence 'flow' needs OpenCV: pip install 'jaxdream[video]'") from None

    def gray8(x):
        lo, hi = float(x.min()), float(x.max())
        return np.round((x - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)

    flow = cv2.calcOpticalFlowFarneback(
        gray8(current), gray8(previous), None, 0.5, 3, 15, 3, 5, 1.2, 0
    )
    h, w = carving.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(
        carving.astype(np.float32),
        xs + flow[..., 0],
        ys + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


class VideoDreams:
    """The iterator ``dream_video`` returns: dreamt frames (uint8) in order, as they are made.
    ``info`` is the input's ``VideoInfo``; ``times`` the time of each frame yielded so far
    (seconds from ``start``); ``lost`` (once it ends) the frames that did not decode;
    ``compiled`` the programs its dreams used; ``state``, with coherence, what the last frame
    yielded carries into the next (its working image and its carving: ``dream_video``'s
    ``state`` for a render that continues after it)."""

    def __init__(
        self,
        path,
        config,
        display,
        color,
        start,
        duration,
        coherence,
        carry,
        model,
        params,
        batch_size,
        frames,
        state=None,
        prime=True,
    ):
        from jaxdream.checkpoint import load_model
        from jaxdream.oip import model_from_params

        if params is None:
            model, params = load_model()
        self.model = model or model_from_params(params)
        self.params, self.config = params, config
        self.display, self.color = display, color
        self.coherence, self.carry = coherence, carry
        self.batch_size = batch_size
        self.batch: int | None = None  # frames dreamt at once, once the first is asked for
        self._frames = frames
        first, stop = (0, None) if frames is None else frames
        # A coherent range that starts after the first frame, with nothing carried into it,
        # begins by dreaming the frame before it (not yielded): its carving is carried into
        # the range's first frame, so a part or a resumed render does not restart the carving.
        self._primer = None
        if coherence != "none" and state is None and prime and first > 0:
            first = self._primer = first - 1
        self.decoded = Decoded(path, start, duration, stop, first)
        self.info = self.decoded.info
        if start >= self.info.duration:
            raise ConfigError(
                f"start {start:g} s is past the end of {path} ({self.info.duration:.2f} s)"
            )
        self.shape = config.working_shape((self.info.height, self.info.width))
        self.state = None if state is None else self._checked_state(state, coherence)
        self._carried = self.state
        self.times: list[float] = []
        self.compiled = 0
        self._plain = config.replace(prepare="gray")
        self._iterator = self._run()

    def _checked_state(self, state, coherence: str) -> tuple[np.ndarray, np.ndarray]:
        if coherence == "none":
            raise ConfigError("a carried state needs coherence 'blend' or 'flow'")
        try:
            image, carving = (np.asarray(a, np.float32) for a in state)
        except (TypeError, ValueError):
            raise ConfigError(
                "state must be a pair of arrays (a frame's working image and its carving)"
            ) from None
        for name, a in (("image", image), ("carving", carving)):
            if a.shape != self.shape or not np.all(np.isfinite(a)):
                raise ConfigError(
                    f"the carried state's {name} must be finite, of the working shape "
                    f"{self.shape}; got {a.shape}"
                )
        return image, carving

    @property
    def lost(self) -> int:
        return self.decoded.lost

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        return next(self._iterator)

    def close(self) -> None:
        """Stop: the decoding and dreaming threads end (a dream under way is finished first)
        and are joined, the file is closed; frames not yet yielded are dropped."""
        with contextlib.suppress(ValueError):  # "generator already executing": its own end
            self._iterator.close()

    def __enter__(self) -> VideoDreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- threads

    def _decode_into(self, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for frame in self.decoded:
                self._put(out, frame, stop)
                if stop.is_set():
                    return
            self._put(out, None, stop)
        except BaseException as e:  # handed to the dreaming thread
            self._put(out, e, stop)
        finally:  # the decoder is closed by the thread that drove it
            self.decoded.close()

    def _run(self) -> Iterator[np.ndarray]:
        import jax

        from jaxdream.many import CPU_PHOTOS_PER_DEVICE, dream_photos

        devices = jax.local_devices()
        if self.coherence != "none":
            batch = 1
        elif self.batch_size:
            batch = self.batch_size
        else:
            per = CPU_PHOTOS_PER_DEVICE if devices[0].platform == "cpu" else 16
            batch = per * len(devices)
        # Never more than there is to dream (as for photos): a short clip is not padded up to
        # the batch size (4096 on 2 frames cost 14 s and 719 MB).
        end = self.decoded.expected()
        if self.decoded._stop_index is not None:
            end = min(end, self.decoded._stop_index)
        batch = max(1, min(batch, end - self.decoded._first_index))
        # Large frames: as many in flight as FRAMES_IN_FLIGHT_BYTES holds, a third of them in
        # each stage (decoded ahead, dreamt, waiting to be shown): a 4K frame is 83 MB of
        # pixels, their copy and the float gray, and 18 of them ahead cost 1.4 GB.
        room = max(3, FRAMES_IN_FLIGHT_BYTES // (self.info.width * self.info.height * 10))
        if not self.batch_size:
            batch = max(1, min(batch, room // 3))
        self.batch = batch
        stop = threading.Event()
        frames_in: queue.Queue = queue.Queue(maxsize=min(2 * batch + 2, max(1, room // 3)))
        dreams_out: queue.Queue = queue.Queue(maxsize=2 if room >= 6 * batch else 1)

        def dream_batches():
            try:
                pending: list[Frame] = []
                state = self._carried
                while not stop.is_set():
                    try:
                        item = frames_in.get(timeout=0.1)
                    except queue.Empty:
                        continue  # stop is looked at again: close() never leaves it waiting
                    if isinstance(item, BaseException):
                        raise item
                    if item is not None:
                        pending.append(item)
                    if pending and (len(pending) == batch or item is None):
                        if self.coherence == "none":
                            results = self._dream_batch(pending, batch, dream_photos)
                        else:
                            results, state = self._dream_coherent(pending[0], state, dream_photos)
                        states = [state] * len(pending)
                        done = [f._replace(pixels=None) for f in pending]  # the result has them
                        self._put(dreams_out, list(zip(done, results, states, strict=True)), stop)
                        pending = []
                    if item is None:
                        break
                self._put(dreams_out, None, stop)
            except BaseException as e:
                self._put(dreams_out, e, stop)

        decoder = threading.Thread(
            target=self._decode_into, args=(frames_in, stop), name="jaxdream-decode", daemon=True
        )
        dreamer = threading.Thread(target=dream_batches, name="jaxdream-dream", daemon=True)
        decoder.start()
        dreamer.start()
        try:
            while True:
                item = self._get(dreams_out)
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                for frame, result, state in item:
                    self.state = state
                    if frame.index == self._primer:
                        continue
                    self.times.append(frame.time)
                    yield result.to_uint8(self.display, color=self.color, size="photo")
        finally:
            # Both threads end before this does: none is left inside FFmpeg or XLA when the
            # caller goes on (to exit the interpreter, say, after an error).
            stop.set()
            decoder.join()
            dreamer.join()

    @staticmethod
    def _put(q: queue.Queue, item, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @staticmethod
    def _get(q: queue.Queue):
        while True:  # wakes every 0.1 s so that Ctrl-C and SIGTERM get in
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def _dream_batch(self, frames: list[Frame], batch: int, dream_photos) -> list:
        pixels = [f.pixels for f in frames]
        pixels += [pixels[-1]] * (batch - len(pixels))  # one program: padding, dropped
        run = dream_photos(
            pixels, self.config, model=self.model, params=self.params, batch_size=batch
        )
        outcomes = list(run)
        self.compiled = max(self.compiled, run.compiled)
        for o in outcomes[: len(frames)]:
            if o.error is not None:
                raise o.error
        return [o.result for o in outcomes[: len(frames)]]

    def _dream_coherent(self, frame: Frame, state, dream_photos):
        from jaxdream.dream import DreamResult, prepare
        from jaxdream.imageio import load_photo
        from jaxdream.imageops import standardize_host

        photo = load_photo(frame.pixels)
        current = prepare(photo, self.shape, self.config)
        start = current
        if state is not None:
            previous, carving = state
            if self.coherence == "flow":
                carving = _flow_warp(previous, current, carving)
            start = standardize_host(current + self.carry * carving)
        # The start is a working image already: prepared plainly (in float), never again as
        # the article prepares a photo (through uint8).
        run = dream_photos([start], self._plain, model=self.model, params=self.params, batch_size=1)
        (outcome,) = list(run)
        self.compiled = max(self.compiled, run.compiled)
        if outcome.error is not None:
            raise outcome.error
        out = outcome.result.image
        result = DreamResult(out, current, photo.rgb, None, self.config)
        return [result], (current, out - current)


def dream_video(
    path: str | os.PathLike,
    config: DreamConfig = DreamConfig(),
    *,
    display: Display = Display(),
    color: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    coherence: str = "none",
    carry: float = 0.5,
    model=None,
    params: Mapping | None = None,
    batch_size: int | None = None,
    frames: tuple[int, int | None] | None = None,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    prime: bool = True,
) -> VideoDreams:
    """Every frame of the video at ``path`` (from ``start`` seconds, for ``duration``)
    dreamt with ``config``, at the video's own size (rotation applied), as uint8 frames
    yielded as they are made; in colour with ``color``. Frames are decoded on a host thread
    and dreamt in batches over every local device (``batch_size``; default: 4 a CPU device,
    16 an accelerator, memory permitting), one compiled program for all.

    ``coherence``: ``"none"``, every frame dreamt on its own (they flicker); ``"blend"``, the
    previous frame's carving (its dream minus its input) added to the next frame's input,
    times ``carry``, before it is dreamt; ``"flow"``, the same carving first moved along the
    motion (OpenCV's Farneback optical flow), as DeepDreamVideo does. Both dream one frame
    after another (each needs the one before). ``frames=(first, stop)``: only the frames of
    those indices in the range (a process's share of a multi-host run, or what a resumed
    render has left). ``state``: the carving to carry into the first of them (``VideoDreams.state``
    after the frame before it: a resumed render then makes the bytes of one uninterrupted);
    without it a coherent range that starts after frame 0 first dreams the frame before it,
    unyielded, and carries that (``prime``; ``False``: start afresh). Errors before any work:
    ``VideoError``, ``ConfigError``."""
    from jaxdream.checks import flag, number, one_of, shown, whole_number

    path = _path(path)
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    one_of("coherence", coherence, COHERENCE)
    _display(display)
    flag("color", color)
    flag("prime", prime)
    number("carry", carry, 0, 10)
    check_range(start, duration)
    if batch_size is not None:
        whole_number("batch size", batch_size, 1, 4096)
    if frames is not None:
        if not isinstance(frames, tuple | list) or len(frames) != 2:
            raise ConfigError(f"frames is a pair (first, stop or None), got {shown(frames)}")
        whole_number("first frame", frames[0], 0, MAX_FRAMES)
        if frames[1] is not None:
            whole_number("stop frame", frames[1], frames[0], MAX_FRAMES)
    return VideoDreams(
        path,
        config,
        display,
        color,
        start,
        duration,
        coherence,
        carry,
        model,
        params,
        batch_size,
        frames,
        state,
        prime,
    )


def iter_pngs(folder: Path) -> Iterator[np.ndarray]:
    """The numbered PNG frames of ``folder``, in order."""
    for p in sorted(folder.glob("frame_*.png")):
        with Image.open(p) as im:
            yield np.asarray(im.convert("RGB"))


# --------------------------------------------------------------------------- resuming


def partial_folder(output: str | os.PathLike) -> Path:
    """Where an unfinished render keeps its frames: a hidden folder beside the output."""
    out = Path(str(output).rstrip("/" + os.sep))
    return out.parent / f".{out.name}.partial"


class Resumable:
    """The frames of a render kept as they are made (numbered PNGs in ``partial_folder``, and
    the dream's state where one carries), so that a render stopped by Ctrl-C, SIGTERM or a
    crash continues where it stopped (``resume``); ``finish()`` removes them once the output
    is whole. ``settings`` (JSON) must match the interrupted run's to resume it."""

    def __init__(self, output: str | os.PathLike, settings: dict, resume: bool):
        import json

        self.folder = partial_folder(output)
        self.settings = json.loads(json.dumps(settings))
        marker = self.folder / "settings.json"
        if self.folder.exists():
            if not resume:
                raise VideoError(
                    f"{self.folder} holds the frames of an unfinished render of {output}: add "
                    "--resume to continue it, or remove the folder"
                )
            try:
                with open(marker, "rb") as f:  # bounded: a settings file is small
                    saved = json.loads(f.read(1 << 20).decode())
            except (OSError, ValueError):
                saved = None
            if not isinstance(saved, dict):
                raise VideoError(
                    f"cannot resume {output}: {marker} is missing or damaged, so the settings "
                    f"of the unfinished render are unknown; remove {self.folder} to start again"
                )
            if saved != self.settings:
                changed = sorted(
                    k
                    for k in set(self.settings) | set(saved)
                    if saved.get(k) != self.settings.get(k)
                )
                raise VideoError(
                    f"cannot resume {output}: the unfinished render in {self.folder} was made "
                    f"with other settings ({', '.join(changed)})"
                )
        else:
            if resume:
                raise VideoError(f"nothing to resume: {self.folder} does not exist")
            check_writable(self.folder.parent / "x", VideoError)
        for stale in self.folder.glob("*.tmp"):  # what an interruption left half-written
            stale.unlink()

    def _make(self) -> None:
        """The folder and its settings, made with the first thing kept: a run refused or
        stopped before its first frame leaves nothing behind (and nothing to --resume)."""
        if (self.folder / "settings.json").exists():
            return
        import json

        try:
            self.folder.mkdir()
        except FileExistsError:
            raise VideoError(
                f"{self.folder} was made by another render of the same output: run one at a time"
            ) from None
        except OSError as e:
            raise VideoError(f"cannot make {self.folder}: {e.strerror}") from None
        text = json.dumps(self.settings, indent=1, sort_keys=True)
        _files.atomic_write(self.folder / "settings.json", lambda f: f.write(text.encode()))

    def done(self) -> int:
        """Frames kept, from frame 0 on without a gap, each whole: a kept frame that does not
        read back (truncated by a crash or a full disk) and those after it are made again."""
        n = 0
        while (self.folder / f"frame_{n:06d}.png").exists() and self._whole(n):
            n += 1
        return n

    def _whole(self, index: int) -> bool:
        try:
            with Image.open(self.folder / f"frame_{index:06d}.png") as im:
                im.load()  # every byte decoded: a truncated file fails here
            return True
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return False

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """The first ``count`` kept frames."""
        for k in range(count):
            with Image.open(self.folder / f"frame_{k:06d}.png") as im:
                yield np.asarray(im.convert("RGB") if im.mode != "L" else im)

    def times(self) -> dict[int, float]:
        """The kept frames' times (seconds), where ``keep`` was given them."""
        out: dict[int, float] = {}
        with contextlib.suppress(OSError):
            for line in (self.folder / "times.txt").read_text().splitlines():
                with contextlib.suppress(ValueError):
                    k, t = line.split()
                    out[int(k)] = float(t)
        return out

    def keep(
        self,
        index: int,
        frame: np.ndarray,
        time: float | None = None,
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Keep frame ``index`` (and its ``time``, where frames carry their own; and the
        ``state`` it carries into the next, kept before the frame and dropped only once the
        next frame is kept, so that ``state_at(done())`` is there after any interruption)."""
        self._make()
        if state is not None:
            self._save_npz(f"state_{index + 1:06d}.npz", state)
        tmp = self.folder / f"frame_{index:06d}.png.tmp"
        Image.fromarray(frame).save(tmp, format="PNG", compress_level=1)
        if time is not None:
            with open(self.folder / "times.txt", "a") as f:
                f.write(f"{index} {time!r}\n")
        os.replace(tmp, self.folder / f"frame_{index:06d}.png")
        if state is not None:
            with contextlib.suppress(OSError):
                (self.folder / f"state_{index:06d}.npz").unlink()

    def state_at(self, index: int, keys=()) -> dict[str, np.ndarray] | None:
        """The state kept for frame ``index`` to start from (see ``keep``), or ``None``;
        ``VideoError`` where it is damaged or lacks one of ``keys``."""
        return self._load_npz(f"state_{index:06d}.npz", keys)

    def _save_npz(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        self._make()
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, self.folder / name)

    def _load_npz(self, name: str, keys=()) -> dict[str, np.ndarray] | None:
        """The arrays saved as ``name``, ``None`` where there is none, ``VideoError`` naming
        it where it is damaged: not a whole ``.npz`` of plain numeric arrays (never a pickle),
        or larger than a state can be."""
        import zipfile

        path = self.folder / name
        if not path.exists():
            return None
        damaged = (
            f"{path} is damaged (a crash or a full disk, or written by hand): remove "
            f"{self.folder} to start the render again"
        )
        check_regular_file(path, MAX_STATE_BYTES, "a kept state", VideoError)
        try:
            with open(path, "rb") as f:  # this file object is closed whatever np.load does
                data = np.load(f, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):  # a bare array: not a state
                    raise VideoError(damaged)
                sizes = sum(i.file_size for i in data.zip.infolist())
                if sizes > MAX_STATE_BYTES:  # compressed: what it holds, not what it takes
                    raise VideoError(damaged)
                out = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            raise VideoError(damaged) from None
        if not all(a.dtype.kind in "biuf" for a in out.values()) or set(keys) - set(out):
            raise VideoError(damaged)
        return out

    def keep_state(self, state: Mapping[str, np.ndarray]) -> None:
        """The dream's state after frame ``state['next'] - 1`` (replaces the last one)."""
        self._save_npz("state.npz", state)

    def state(self) -> dict[str, np.ndarray] | None:
        return self._load_npz("state.npz")

    def finish(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
