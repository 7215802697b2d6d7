"""Rendering a video into a dreamt one: ``render_video`` dreams every frame of a file
(``dream_video``), keeps each as it is made for a resume (``Resumable``) and encodes it with
the source's audio (``VideoWriter``), all the way to a whole output; ``jaxdream video`` is this
function behind flags.

With several processes (``jaxdream.distributed``) each renders a contiguous share of the
frames as a part of its own (``part_name``). Frames keep the source's times where its rate
varies. What a render leaves beside its output ``OUT``: ``.OUT.partial/`` holds the frames of
an unfinished render, on purpose, for a resume (``jaxdream.video.resume``); ``.OUT.writing/``
(a frame folder being written) and the temporary ``.OUT.HOST-PID.XXXXXXXX.EXT`` are removed
when the run ends, also by Ctrl-C or SIGTERM where the program's signal handlers remove
``jaxdream._files``' partial files (the command line installs them); after SIGKILL they stay
until the next write of ``OUT`` removes them, or ``rm -r .OUT.*`` once no run writes ``OUT``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fractions
import functools
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from jaxdream.background import KeepAndEncode, Progress, no_progress
from jaxdream.checks import number, whole_number
from jaxdream.config import DreamConfig
from jaxdream.display import Display
from jaxdream.errors import ConfigError
from jaxdream.model import CNN
from jaxdream.motion import MAX_FRAMES, Motion, zoom
from jaxdream.network import Network, network_argument, resolve
from jaxdream.progress import watching_compiles
from jaxdream.video.common import VideoError, _path
from jaxdream.video.dreaming import VideoDreams, VideoSettings
from jaxdream.video.reading import Decoded, VideoInfo, probe
from jaxdream.video.resume import Resumable
from jaxdream.video.writing import VideoWriter, check_video_output, is_folder_output

# The frames a render's keeping and encoding may hold, waiting, about (``KeepAndEncode``): 8
# frames of 720p, 5 of 1080p, one 4K frame (25 MB) beside the one being made.
KEPT_AHEAD_BYTES = 32 * 2**20


def part_name(output: str, index: int, count: int) -> str:
    """Process ``index``'s part of ``output`` in a run of ``count`` processes.

    >>> part_name("out.mp4", 0, 2), part_name("frames/", 1, 2)
    ('out-part1of2.mp4', 'frames-part2of2/')
    """
    if count == 1:
        return output
    path = Path(output.rstrip("/" + os.sep))
    if is_folder_output(output):
        return str(path.with_name(f"{path.name}-part{index + 1}of{count}")) + "/"
    return str(path.with_name(f"{path.stem}-part{index + 1}of{count}{path.suffix}"))


class VideoRender(NamedTuple):
    """What ``render_video`` wrote: ``output`` (this process's part, where several share the
    render), the frames it dreamt (``made``) after the ``resumed`` ones an interrupted run
    kept, their ``size`` ``(height, width)`` and ``fps``, how the ``audio`` was kept (``None``:
    it was not), ``notes`` on what the source made it do (one sentence each), and the
    ``seconds`` it took."""

    output: str
    made: int
    resumed: int
    size: tuple[int, int]
    fps: fractions.Fraction
    audio: str | None
    notes: tuple[str, ...]
    seconds: float


def render_video(
    source: str | os.PathLike,
    output: str | os.PathLike,
    config: DreamConfig = DreamConfig(),
    settings: VideoSettings | None = None,
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    resume: bool = False,
    identity: Mapping | None = None,
    progress: Progress | None = None,
    model: Network | None = None,
    info: VideoInfo | None = None,
) -> VideoRender:
    """Every frame of the video ``source`` dreamt with ``config`` and ``settings`` (default:
    ``VideoSettings()``; their ``frames`` unset: the render chooses them) and written to
    ``output`` (format from its name, ``jaxdream.video.writing``) at the source's rate and
    size, its audio copied.

    Each frame is kept in ``.OUTPUT.partial/`` as it is made; ``resume``: continue the render
    an interruption left there (the same frames and bytes as an uninterrupted one). ``identity``
    (JSON values) is what a resume must match (default: the source, the config and the
    settings). ``progress``: how the render shows its progress (``jaxdream.background``).
    ``info``: ``probe(source)``, where the caller has it (the source is then read once, by the
    caller's checks). Bad settings raise ``ConfigError``, a source or output that cannot be used
    ``VideoError``, before any work. ``network``, ``params``, ``input_shape`` and
    ``preprocess`` as for ``jaxdream.dream`` (``model``: ``network``'s old name); a colour
    (3-channel) network's frames are written in its dreams' own colours
    (``jaxdream.video.dreaming``)."""
    network = network_argument(network, model)
    source = _path(source)
    output = _path(output, "the output")
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    settings = VideoSettings() if settings is None else settings
    if not isinstance(settings, VideoSettings):
        raise ConfigError(f"settings must be a VideoSettings, not {type(settings).__name__}")
    if settings.check().frames is not None:
        raise ConfigError("a render chooses its frames itself: leave settings.frames unset")
    check_video_output(output, source)
    if info is None:  # not a video, no frame, too large: here, before any work
        info = probe(source)
    if settings.start >= info.duration:
        raise ConfigError(
            f"start {settings.start:g} s is past the end of {source} ({info.duration:.2f} s)"
        )
    model, params = resolve(network, params, input_shape, preprocess)
    config.check(model)
    if identity is None:
        identity = {
            "source": source,
            "config": config.resume_text(),
            "settings": repr(settings),
        }
        if not isinstance(model, CNN):  # another network: another render
            identity["network"] = repr(model)
    # Several hosts: each process a contiguous range of the frames, written as its own part.
    count, index = jax.process_count(), jax.process_index()
    total = Decoded(source, settings.start, settings.duration, None, info=info).expected()
    first, stop = index * total // count, (index + 1) * total // count
    output = part_name(output, index, count)
    if count > 1:
        check_video_output(output, source)
    keep = Resumable(output, {**identity, "part": [first, stop]}, resume)
    done = keep.done()
    coherent = settings.coherence != "none"
    # A resumed coherent render carries the state kept with its last frame (the same bytes as
    # an uninterrupted one); without it (or in a later part) the dream primes the carving
    # from the frame before the range.
    kept_state = keep.state_at(done, ("image", "carving")) if coherent and done else None
    carried = None if kept_state is None else (kept_state["image"], kept_state["carving"])
    notes = []
    if info.variable:
        notes.append("the frame rate varies: every frame keeps its own time")
    timed = info.variable and not output.endswith((".gif", "/")) and Path(output).suffix
    fps = info.fps
    t0 = time.perf_counter()
    # One process: the range is the dream's own (the frames' times decide, as in dream_video);
    # several: each its share of the count.
    share = dataclasses.replace(settings, frames=(first + done, stop if count > 1 else None))
    try:
        frames = VideoDreams(source, config, share.check(), model, params, carried, info)
    except ConfigError as e:
        if carried is None:
            raise
        raise VideoError(
            f"{keep.folder / f'state_{done:06d}.npz'} does not fit this render ({e}): remove "
            f"{keep.folder} to start the render again"
        ) from None
    time_base = fractions.Fraction(1, 90000) if timed else None
    audio_start = settings.start + first / float(fps)
    audio_duration = (stop - first) / float(fps) if count > 1 else settings.duration
    kept_times = keep.times()
    base = first / float(fps) if count > 1 else 0.0
    made = 0
    with (
        (progress or no_progress)(stop - first, done) as (bar, stage),
        VideoWriter(
            output,
            fps,
            time_base=time_base,
            audio=source,
            audio_start=audio_start,
            audio_duration=audio_duration,
        ) as writer,
        watching_compiles(stage),
    ):
        for k, frame in enumerate(keep.frames(done)):  # an interrupted run's frames, again
            writer.write(frame, kept_times.get(k, k / float(fps)))
        # On an error, the jobs queued are cancelled (the running one ends) and then the
        # dream's threads are joined (closing), before the writer ends: nothing is left
        # running inside XLA or FFmpeg when the error is told.
        with contextlib.closing(frames), KeepAndEncode(bar, ahead_bytes=KEPT_AHEAD_BYTES) as jobs:
            for frame in frames:
                k = done + made
                when = max(0.0, frames.times[-1] - base)  # a part starts at its own 0
                state = None
                if coherent:
                    state = dict(zip(("image", "carving"), frames.state, strict=True))
                jobs.put(
                    functools.partial(keep.keep, k, frame, when, state),
                    functools.partial(writer.write, frame, when),
                    frame.nbytes,
                )
                made += 1
        if done + made == 0:
            raise VideoError(f"no frame of {source} decoded in the range asked for")
    keep.finish()
    seconds = time.perf_counter() - t0
    notes += _notes(info, frames, writer, output)
    return VideoRender(
        output, made, done, writer.size, fps, writer.audio_copied, tuple(notes), seconds
    )


def _notes(info, frames: VideoDreams, writer: VideoWriter, output: str) -> list[str]:
    """What the source made the render do, beyond what was asked, one sentence each."""
    notes = []
    if frames.lost:
        notes.append(
            f"{frames.lost} frames could not be decoded (a truncated or corrupt file): the "
            "video holds what did"
        )
    if frames.decoded.retimed:
        notes.append(
            f"{frames.decoded.retimed} frames' timestamps went back (recordings joined?): each "
            "was placed after the frame before it, as players show them"
        )
    if info.untimed:
        notes.append(f"the stream has no timestamps: frames are timed at {float(info.fps):.3g} fps")
    if frames.decoded.resized:
        notes.append(
            f"{frames.decoded.resized} frames are of another size than the first (the stream "
            f"changes size): scaled to {info.width}x{info.height}"
        )
    if writer.padded:
        h, w = writer.size
        notes.append(
            f"{w}x{h} has an odd side, which the encoder refuses: padded to "
            f"{writer.padded[1]}x{writer.padded[0]} by repeating the edge"
        )
    if info.audio and writer.audio_copied is None:
        notes.append(
            f"{Path(output).suffix or 'a frame folder'} holds no audio: the audio is not kept"
        )
    return notes


# --------------------------------------------------------------------------- a zoom

STATE_EVERY = 10  # frames between two kept states of an unfinished zoom


class ZoomRender(NamedTuple):
    """What ``render_zoom`` wrote: ``output``, the zoom's ``frames``, the frame it resumed at
    (``start``; 0: made from the first), their ``size`` ``(height, width)``, ``padded`` (as
    encoded, where a side was odd; else ``None``) and the ``seconds`` it took."""

    output: str
    frames: int
    start: int
    size: tuple[int, int]
    padded: tuple[int, int] | None
    seconds: float


def _identity_of(photo) -> str:
    """A photo for a render's identity: its path, or a digest of its pixels."""
    if isinstance(photo, str | os.PathLike):
        return os.fspath(photo)
    return hashlib.sha256(np.ascontiguousarray(np.asarray(photo)).tobytes()).hexdigest()


def render_zoom(
    photo,
    output: str | os.PathLike,
    config: DreamConfig = DreamConfig(),
    motion: Motion = Motion(),
    *,
    frames: int = 120,
    fps: float = 25.0,
    display: Display = Display(),
    color: bool = False,
    size: str = "working",
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    model: Network | None = None,
    resume: bool = False,
    identity: Mapping | None = None,
    progress: Progress | None = None,
) -> ZoomRender:
    """An infinite zoom into ``photo`` (``zoom``: ``frames`` frames, each moved by ``motion``)
    written to ``output`` at ``fps`` (format from its name, ``jaxdream.video.writing``), its
    frames at ``size`` (``zoom``'s); a colour (3-channel) network's in its dreams' own colours
    (``jaxdream.motion``).

    Each frame is kept in ``.OUTPUT.partial/`` as it is made, and the zoom's state every
    ``STATE_EVERY`` frames; ``resume``: continue the zoom an interruption left there, from its
    last state (the same bytes as an uninterrupted zoom; a state that is damaged or does not
    fit is dropped, and the frames made again). ``identity`` (JSON values) is what a resume
    must match (default: the photo, the config, the motion and the settings). ``progress``: how
    the render shows its progress (``jaxdream.background``). Bad settings raise
    ``ConfigError``, an output that cannot be written ``VideoError``, before any work.
    ``network``, ``params``, ``input_shape`` and ``preprocess`` as for ``jaxdream.dream``."""
    source = photo if isinstance(photo, str | os.PathLike) else None
    check_video_output(output, source)
    whole_number("frames", frames, 1, MAX_FRAMES)
    number("fps", fps, 1e-3, 1000)
    if not isinstance(motion, Motion):
        raise ConfigError(f"motion must be a jaxdream.Motion, got {type(motion).__name__}")
    motion.check()
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    network = network_argument(network, model)
    model, params = resolve(network, params, input_shape, preprocess)
    config.check(model)
    if identity is None:
        identity = {
            "photo": _identity_of(photo),
            "config": config.resume_text(),
            "motion": repr(motion),
            "zoom": [frames, fps, repr(display), color],
        }
        if size != "working":  # a working-size zoom keeps the identity it had before sizes
            identity["size"] = size
        if not isinstance(model, CNN):  # another network: another zoom
            identity["network"] = repr(model)
    keep = Resumable(output, identity, resume)
    state, start = None, 0
    if resume:
        # A state that is damaged, incomplete or ahead of the whole frames kept is dropped: the
        # zoom starts again from its first frame, which makes the same frames again.
        with contextlib.suppress(VideoError, KeyError, TypeError, ValueError):
            state = keep.state()
            start = int(np.asarray(state["next"]).item()) if state is not None else 0
        if state is None or not 0 < start <= keep.done():
            state, start = None, 0
    t0 = time.perf_counter()
    make = functools.partial(
        zoom,
        photo,
        config,
        frames=frames,
        zoom=motion.zoom,
        rotate=motion.rotate,
        pan=tuple(motion.pan),
        display=display,
        color=color,
        size=size,
        network=model,
        params=params,
    )
    try:
        made = make(resume=state)
    except ConfigError:
        if state is None:
            raise
        state, start = None, 0  # a state that does not fit (NaN, another shape): start again
        made = make(resume=None)
    with (
        (progress or no_progress)(frames, start) as (bar, stage),
        VideoWriter(output, fps) as writer,
        watching_compiles(stage),
        contextlib.closing(made),  # ends after the jobs: no frame left on the device
        KeepAndEncode(bar, ahead=4, ahead_bytes=KEPT_AHEAD_BYTES) as jobs,
    ):
        for frame in keep.frames(start):  # what an interrupted run made, encoded again
            writer.write(frame)

        def keep_frame(index: int, frame, saved) -> None:
            keep.keep(index, frame)
            if saved is not None:  # after the frames before it: kept in order, on one thread
                keep.keep_state(saved)

        for frame in made:
            index = made.index - 1
            saved = made.state() if made.index % STATE_EVERY == 0 else None
            jobs.put(
                functools.partial(keep_frame, index, frame, saved),
                functools.partial(writer.write, frame),
                frame.nbytes,
            )
    keep.finish()
    seconds = time.perf_counter() - t0
    return ZoomRender(os.fspath(output), frames, start, writer.size, writer.padded, seconds)
