"""``jaxdream zoom``: the classic infinite zoom: a photo dreamt, zoomed in a little and dreamt
again, frame after frame, encoded as the frames are made (``jaxdream.motion``)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import time

from jaxdream.background import KeepAndEncode
from jaxdream.cli._core import (
    describe,
    display,
    display_flags,
    dream_config,
    dream_flags,
    folder_stage,
    load_weights,
    preset_defaults,
    quiet_flag,
    run_settings,
)
from jaxdream.errors import ConfigError

MOTION_ITERATIONS = 2  # jaxdream.motion.MOTION_ITERATIONS, here so that --help needs no JAX
STATE_EVERY = 10  # frames between two saved states of an unfinished zoom
RESUME_SKIPS = ("quiet", "resume", "func", "command")


def register(sub, preset: str | None) -> None:
    preset, _ = preset_defaults(preset)
    p = sub.add_parser(
        "zoom",
        help="an infinite zoom: dream, zoom in a little, dream again, frame after frame",
        description="Frame 0 is the photo dreamt; each next frame is the last one zoomed in "
        "about the centre (and turned, and panned), then dreamt again with a few iterations. "
        "One compiled program makes every frame. Written by extension: .mp4 (H.264), .webm "
        "(VP9), .webp and .gif (animated), or a folder of numbered PNG frames. Every dream "
        f"flag works; defaults shown are preset {preset!r}'s, with {MOTION_ITERATIONS} "
        "iterations a frame.",
    )
    p.add_argument("input", nargs="?", help="photo (default: a bundled sample photo)")
    p.add_argument("-o", "--output", default="zoom.mp4", help="video or frame folder to write")
    p.add_argument("--frames", type=int, default=120, help="frames to make")
    p.add_argument("--fps", type=float, default=25.0, help="frames per second of the video")
    p.add_argument("--zoom", type=float, default=1.05, help="scale a frame (> 1 zooms in)")
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEG", help="turn a frame (ccw)")
    p.add_argument(
        "--pan",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        metavar=("DX", "DY"),
        help="move the view by DX pixels right and DY down a frame",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted zoom from the frames it kept in the hidden folder "
        ".OUTPUT.partial beside the output (same flags; remove that folder to start afresh)",
    )
    dream_flags(p, preset, iterations=MOTION_ITERATIONS)
    display_flags(p)
    quiet_flag(p)
    p.set_defaults(func=run)


def settings_of(args: argparse.Namespace) -> dict:
    """What fixes a render's frames: every flag but those that only say how it runs."""
    return run_settings(args, RESUME_SKIPS)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from jaxdream import progress
    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.imageio import MAX_FILE_BYTES, load_photo
    from jaxdream.motion import MAX_FRAMES, Motion, zoom
    from jaxdream.video import Resumable, VideoError, VideoWriter, check_video_output

    source = args.input or str(bundled_sample_path())
    check_regular_file(source, MAX_FILE_BYTES)
    check_video_output(args.output, source)
    if not isinstance(args.frames, int) or not 1 <= args.frames <= MAX_FRAMES:
        raise ConfigError(f"--frames must be in 1..{MAX_FRAMES:,}, got {args.frames}")
    if not (math.isfinite(args.fps) and 1e-3 <= args.fps <= 1000):
        raise ConfigError(f"--fps must be in [0.001, 1000], got {args.fps:g}")
    Motion(args.zoom, args.rotate, tuple(args.pan)).check()
    config = dream_config(args)
    shown = display(args)
    photo = load_photo(source)
    model, params = load_weights(args.weights)
    config.check(model)
    keep = Resumable(args.output, settings_of(args), args.resume)
    state, start = None, 0
    if args.resume:
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
        photo.rgb,
        config,
        frames=args.frames,
        zoom=args.zoom,
        rotate=args.rotate,
        pan=tuple(args.pan),
        display=shown,
        color=args.color,
        model=model,
        params=params,
    )
    try:
        frames = make(resume=state)
    except ConfigError:
        if state is None:
            raise
        state, start = None, 0  # a state that does not fit (NaN, another shape): start again
        frames = make(resume=None)
    with (
        tqdm(
            total=args.frames,
            initial=start,
            unit="frame",
            disable=True if args.quiet else None,
            dynamic_ncols=True,
        ) as bar,
        VideoWriter(args.output, args.fps) as writer,
        progress.watching_compiles(folder_stage(bar, "zooming")),
        contextlib.closing(frames),  # ends after the jobs: no frame left on the device
        KeepAndEncode(bar, ahead=4) as jobs,
    ):
        for frame in keep.frames(start):  # what an interrupted run made, encoded again
            writer.write(frame)

        def keep_frame(index: int, frame, saved) -> None:
            keep.keep(index, frame)
            if saved is not None:  # after the frames before it: kept in order, on one thread
                keep.keep_state(saved)

        for frame in frames:
            index = frames.index - 1
            saved = frames.state() if frames.index % STATE_EVERY == 0 else None
            jobs.put(
                functools.partial(keep_frame, index, frame, saved),
                functools.partial(writer.write, frame),
            )
    keep.finish()
    seconds = time.perf_counter() - t0
    h, w = writer.size
    made = args.frames - start
    again = f" (resumed at frame {start})" if start else ""
    padded = (
        f"; padded to {writer.padded[1]}x{writer.padded[0]} for the encoder"
        if writer.padded
        else ""
    )
    print(
        f"zoomed into {source}: {args.frames} frames at {w}x{h}{again}, {describe(config)}, "
        f"{config.iterations} iterations x {config.steps} steps a frame, {made} frames in "
        f"{seconds:.1f} s ({made / max(seconds, 1e-9):.2f} frames/s){padded}; wrote {args.output}"
    )
    return 0
