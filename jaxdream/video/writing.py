"""Writing frames out: a video file (its audio copied from another), an animated image or a
folder of numbered PNG frames, the format from the output's name, written atomically.

Formats, one entry each in ``WRITERS`` (keyed by the lower-case extension; ``FOLDER`` for a
folder of frames):

- ``.mp4``: H.264 (libx264, yuv420p, CRF 18, preset "superfast": a fifth of the encoder's CPU
  of "medium" within 0.3 dB of its PSNR, for about a quarter more bytes; measured by
  ``python -m benchmarks.motion --encoders``), audio AAC (copied where it is AAC or MP3); frames
  of ``LARGE_FRAME_PIXELS`` or more without B-frames and with full-pixel motion search only
  (x264 holds a whole frame more for each B-frame it may place, and three half-pixel planes
  beside each frame it keeps for reference: at 4K, 430 MB with both, 160 without, for about a
  tenth more bytes);
- ``.webm``: VP9 (libvpx-vp9, CRF 32), audio Opus (copied where it is Opus);
- ``.webp``: animated WebP (libwebp, quality 80), looping, no audio;
- ``.gif``: animated GIF (Pillow, an adaptive palette per frame), looping, no audio; its
  frames are held until it is written, so it suits short clips;
- a name with no extension, ending in ``/``, or an existing folder: numbered PNG frames
  (``frame_000000.png``, ...), the only lossless form (same seed, same bytes).

A new output format is one entry of ``WRITERS``: an ``Encoded`` (any container and codec
FFmpeg's libraries in PyAV write: its options, and the audio it takes) or an object with
``needs_av`` and ``sink(writer)``, which returns a ``Sink`` (``begin``, ``put``, ``end``,
``drop``: see ``PngFolder`` and ``AnimatedGif``). ``check_video_output`` and the error that
names the formats follow the table.

Frames are uint8 ``(H, W, 3)`` (or ``(H, W)`` gray) numpy arrays. H.264 and VP9 take even
sides only: an odd side is padded by repeating the last row or column (``VideoWriter.padded``
says so). Nothing appears under the output's name before it is complete (``jaxdream._files``):
a file is written to a temporary name, a folder as ``.OUT.writing/``, both removed when the run
ends, also by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from jaxdream import _files
from jaxdream._files import check_regular_file, check_writable
from jaxdream.checks import number
from jaxdream.errors import ConfigError
from jaxdream.video.common import (
    LARGE_FRAME_PIXELS,
    MAX_FRAMES,
    MAX_VIDEO_BYTES,
    VideoError,
    _av,
    _fps,
    _frames_of,
    _path,
)
from jaxdream.video.reading import check_range

FOLDER = "/"  # the key of a folder of numbered PNG frames in ``WRITERS``


class Sink(Protocol):
    """One output's writing, for ``VideoWriter``: ``begin`` when its block is entered (what is
    written goes to a hidden place, removed by ``stack`` unless the output is whole), ``put``
    frame ``index`` (its ``time``, where frames carry their own), ``end`` to make the output
    whole under its name, ``drop`` after an error. ``failed``: why a write failed (no later one
    is tried); ``padded`` and ``audio_copied`` as ``VideoWriter`` tells them."""

    failed: object
    padded: tuple[int, int] | None
    audio_copied: str | None

    def begin(self, stack: contextlib.ExitStack) -> None: ...

    def put(self, frame: np.ndarray, index: int, time: float | None) -> None: ...

    def end(self) -> None: ...

    def drop(self) -> None: ...


def is_folder_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a folder of PNG frames: an existing folder, a name ending in a
    separator, or a name with no extension."""
    text = str(path)
    p = Path(text)
    return p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix


def _key(path: Path) -> str:
    """``path``'s entry in ``WRITERS``."""
    return FOLDER if is_folder_output(path) else path.suffix.lower()


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
            f"no encoder here writes {path.suffix} videos: use {', '.join(ENCODED)} or a "
            "folder (numbered PNG frames)"
        )
    if WRITERS[path.suffix.lower()].needs_av:
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


# --------------------------------------------------------------------------- the formats


@dataclasses.dataclass
class Encoded:
    """A format FFmpeg's libraries encode (through PyAV): the ``container`` and ``codec`` with
    its ``pix_fmt`` and ``options``; ``audio``, the codec audio is encoded with where it cannot
    be copied (``None``: no audio), ``copies``, the audio codecs the container takes as they
    are; ``large_options``, the codec's options that frames of ``LARGE_FRAME_PIXELS`` or more
    add to ``options``."""

    container: str
    codec: str
    pix_fmt: str
    options: dict[str, str]
    audio: str | None
    copies: tuple[str, ...]
    container_options: dict[str, str] = dataclasses.field(default_factory=dict)
    large_options: dict[str, str] = dataclasses.field(default_factory=dict)
    needs_av = True

    def options_for(self, height: int, width: int) -> dict[str, str]:
        """The codec's options for frames of ``height`` x ``width``.

        >>> WRITERS[".mp4"].options_for(2160, 3840)["x264-params"]
        'bframes=0:subme=0'
        >>> "x264-params" in WRITERS[".mp4"].options_for(720, 1280)
        False
        """
        large = self.large_options if height * width >= LARGE_FRAME_PIXELS else {}
        return {**self.options, **large}

    def sink(self, writer: VideoWriter) -> Sink:
        return _EncodedSink(self, writer)


class _EncodedSink:
    """Frames encoded as they come into a temporary file, renamed once the trailer is
    written; the audio muxed beside them up to a second ahead of the last frame."""

    def __init__(self, settings: Encoded, writer: VideoWriter):
        self.settings, self.writer = settings, writer
        self.failed: object = None
        self.padded: tuple[int, int] | None = None
        self.audio_copied: str | None = None
        self._container = None
        self._audio: _AudioCopy | None = None
        self._last_pts = -1

    def begin(self, stack: contextlib.ExitStack) -> None:
        path = self.writer.path
        self._file = stack.enter_context(_files.atomic_path(path, VideoError, suffix=path.suffix))

    def _open(self, h: int, w: int) -> None:
        av, s, writer = _av(), self.settings, self.writer
        self._container = av.open(
            str(self._file), "w", format=s.container, options=dict(s.container_options)
        )
        stream = self._container.add_stream(s.codec, rate=writer.fps)
        eh, ew = h + h % 2, w + w % 2
        if (eh, ew) != (h, w):
            self.padded = (eh, ew)
        stream.width, stream.height, stream.pix_fmt = ew, eh, s.pix_fmt
        stream.options = s.options_for(eh, ew)
        stream.codec_context.time_base = writer.time_base or 1 / writer.fps
        self._stream = stream
        if writer.audio is not None:
            self._audio = _AudioCopy(
                self._container, writer.audio, s, writer.audio_start, writer.audio_duration
            )
            self.audio_copied = self._audio.how

    def put(self, frame: np.ndarray, index: int, time: float | None) -> None:
        if self._container is None:
            self._open(*frame.shape[:2])
        try:
            self._encode(frame, index, time)
        except BaseException as e:  # a full disk: the file is lost, never written again
            self.failed = getattr(e, "strerror", None) or e
            raise

    def _encode(self, a: np.ndarray, index: int, time: float | None) -> None:
        av, writer = _av(), self.writer
        if self.padded:
            eh, ew = self.padded
            a = np.pad(a, ((0, eh - a.shape[0]), (0, ew - a.shape[1]), (0, 0)), mode="edge")
        frame = _video_frame(av, a)
        if writer.time_base is not None and time is not None:
            pts = round(time / writer.time_base)
            pts = max(pts, self._last_pts + 1)
            self._last_pts = pts
            frame.pts = pts
            now = time
        else:
            frame.pts = index
            now = index / float(writer.fps)
        frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.until(now + 1.0)

    def end(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.until(math.inf)
        self._container.close()

    def drop(self) -> None:
        if self._container is not None and self.failed is None:
            with contextlib.suppress(Exception):
                self._container.close()


def _video_frame(av, a: np.ndarray):
    """An RGB ``VideoFrame`` of ``a``: ``a``'s own memory where it is C-contiguous (the encoder
    converts it to its own format, a copy of its own, before it returns), else a copy. Copying
    each 4K frame (25 MB) cost 60 MB at the encoder's peak; the pixels converted are the same
    either way, and so are the bytes encoded."""
    if a.flags.c_contiguous:
        return av.VideoFrame.from_numpy_buffer(a, format="rgb24")
    return av.VideoFrame.from_ndarray(a, format="rgb24")


class AnimatedGif:
    """An animated GIF (Pillow, an adaptive palette per frame), looping: its frames are held
    until it is written."""

    needs_av = False

    def sink(self, writer: VideoWriter) -> Sink:
        return _GifSink(writer)


class _GifSink:
    failed: object = None
    padded = None
    audio_copied = None

    def __init__(self, writer: VideoWriter):
        self.writer = writer
        self._frames: list[Image.Image] = []

    def begin(self, stack: contextlib.ExitStack) -> None:
        pass

    def put(self, frame: np.ndarray, index: int, time: float | None) -> None:
        self._frames.append(Image.fromarray(frame).quantize(256, dither=Image.Dither.NONE))

    def end(self) -> None:
        frames, ms = self._frames, max(20, round(1000 / float(self.writer.fps) / 10) * 10)
        _files.atomic_write(
            self.writer.path,
            lambda f: frames[0].save(
                f, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0
            ),
            error=VideoError,
        )

    def drop(self) -> None:
        pass


class PngFolder:
    """Numbered PNG frames (``frame_000000.png``, ...) written into the hidden folder
    ``.OUT.writing`` beside the output, which is renamed to the output once whole."""

    needs_av = False

    def sink(self, writer: VideoWriter) -> Sink:
        return _FolderSink(writer)


class _FolderSink:
    failed: object = None
    padded = None
    audio_copied = None

    def __init__(self, writer: VideoWriter):
        self.path = writer.path
        self._folder: Path | None = None

    def begin(self, stack: contextlib.ExitStack) -> None:
        # A fixed hidden name: a write that was stopped is cleared by the next one.
        self._folder = self.path.parent / f".{self.path.name}.writing"
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder.mkdir()
        _files.register_partial(self._folder)  # removed by Ctrl-C and SIGTERM too
        stack.callback(self._remove)

    def _remove(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            _files.register_partial(self._folder, False)

    def put(self, frame: np.ndarray, index: int, time: float | None) -> None:
        Image.fromarray(frame).save(self._folder / f"frame_{index:06d}.png", compress_level=6)

    def end(self) -> None:
        if self.path.exists():
            self.path.rmdir()  # empty: check_video_output said so
        os.chmod(self._folder, 0o755)
        os.replace(self._folder, self.path)
        _files.register_partial(self._folder, False)
        self._folder = None

    def drop(self) -> None:
        pass


# Every output format: the output's lower-case extension (``FOLDER``: a folder of PNG frames)
# and how it is written. The error for an unknown extension lists them in this order.
WRITERS: dict[str, Encoded | AnimatedGif | PngFolder] = {
    ".mp4": Encoded(
        "mp4",
        "libx264",
        "yuv420p",
        {"crf": "18", "preset": "superfast"},
        "aac",
        ("aac", "mp3"),
        {"movflags": "faststart"},
        {"x264-params": "bframes=0:subme=0"},
    ),
    ".webm": Encoded(
        "webm",
        "libvpx-vp9",
        "yuv420p",
        {"crf": "32", "b": "0", "row-mt": "1"},
        "libopus",
        ("opus",),
    ),
    ".webp": Encoded("webp", "libwebp_anim", "yuv420p", {"quality": "80"}, None, (), {"loop": "0"}),
    ".gif": AnimatedGif(),
    FOLDER: PngFolder(),
}
ENCODED = tuple(k for k in WRITERS if k != FOLDER)  # the extensions written as files
# The formats FFmpeg encodes, by extension (the same objects as in WRITERS).
SETTINGS = {k: w for k, w in WRITERS.items() if isinstance(w, Encoded)}


# --------------------------------------------------------------------------- the writer


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
        self._sink: Sink | None = None

    def __enter__(self) -> VideoWriter:
        self._sink = WRITERS[_key(self.path)].sink(self)
        self._sink.begin(self._stack)
        return self

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Append one frame (uint8 ``(H, W, 3)`` or ``(H, W)``); every frame must have the
        first one's size. ``time`` (seconds) where the writer was given a ``time_base``."""
        a = _as_frame(frame)
        if time is not None:
            number("time", time, 0, 1e7)
        sink = self._sink
        if self.size is None:
            self.size = a.shape[:2]
        elif a.shape[:2] != self.size:
            raise VideoError(
                f"frame {self.count} is {a.shape[1]}x{a.shape[0]}, the first was "
                f"{self.size[1]}x{self.size[0]}: a video's frames share one size"
            )
        if self.count >= MAX_FRAMES:
            raise VideoError(f"a video may have at most {MAX_FRAMES:,} frames")
        if sink.failed is not None:  # FFmpeg's muxer is not called again after a failure
            raise VideoError(f"cannot write {self.path}: {sink.failed}")
        try:
            sink.put(a, self.count, time)
        finally:  # what the encoder was opened with, told also where the first write failed
            self.padded, self.audio_copied = sink.padded, sink.audio_copied
        self.count += 1

    def close(self) -> None:
        """Finish the file (on leaving the ``with`` block)."""
        if self.count == 0:
            raise VideoError(f"no frame to write to {self.path}")
        if self._sink.failed is not None:
            raise VideoError(f"cannot write {self.path}: {self._sink.failed}")
        self._sink.end()

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
        self._sink.drop()
        self._stack.__exit__(kind, value, tb)


class _AudioCopy:
    """The audio of ``source`` into ``container``: packets copied where the container takes
    the codec, else decoded and encoded again; timestamps shifted by ``start``."""

    def __init__(self, container, source, settings: Encoded, start: float, duration):
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
