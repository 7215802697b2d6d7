"""``jaxdream zoom``: the classic infinite zoom: a photo dreamt, zoomed in a little and dreamt
again, frame after frame, encoded as the frames are made: the flags of
``jaxdream.video.render_zoom``, which does the work, and its report."""

from __future__ import annotations

import argparse
import math

from jaxdream.cli._core import (
    describe,
    display,
    display_flags,
    dream_config,
    dream_flags,
    frame_bar,
    load_network_flags,
    map_large_allocations,
    preset_defaults,
    quiet_flag,
    run_settings,
)
from jaxdream.errors import ConfigError

MOTION_ITERATIONS = 2  # jaxdream.motion.MOTION_ITERATIONS, here so that --help needs no JAX
RESUME_SKIPS = ("quiet", "resume", "func", "command")


def register(sub, preset: str | None) -> None:
    preset, _ = preset_defaults(preset)
    p = sub.add_parser(
        "zoom",
        help="an infinite zoom: dream, zoom in a little, dream again, frame after frame",
        description="Frame 0 is the photo dreamt; each next frame is the last one zoomed in "
        "about the centre (and turned, and panned), then dreamt again with a few iterations. "
        "One compiled program dreams every frame (one more carries the photo at its size). "
        "Written by extension: .mp4 (H.264), .webm "
        "(VP9), .webp and .gif (animated), or a folder of numbered PNG frames. Every dream "
        f"flag works; defaults shown are preset {preset!r}'s, with {MOTION_ITERATIONS} "
        "iterations a frame. Frames are at the photo's size (--output-size), with --strength of "
        "each frame's carving (0: the photo moved, frame after frame).",
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
        "--output-size",
        choices=["photo", "enlarged", "working"],
        default="photo",
        help="photo: frames at the photo's size, up to 3840 pixels on the longer side (a larger "
        "photo is reduced to that), where the photo is larger than the working size: the "
        "photo's own pixels carried beside the dream, each frame's carving added at that size "
        "(its detail kept); enlarged: the working-size frames enlarged to that size; working: "
        "at the working size (--size)",
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
    """What fixes a render's frames: every flag but those that only say how it runs. A zoom
    at the working size keeps the settings it had before ``--output-size`` was a flag: one
    interrupted then resumes with ``--output-size working``."""
    working = getattr(args, "output_size", None) == "working"
    return run_settings(args, RESUME_SKIPS + (("output_size",) if working else ()))


def run(args: argparse.Namespace) -> int:
    # Imported here: jaxdream.motion imports JAX (about 1 s measured), and --help builds this
    # module's flags without it.
    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.fullres import zoom_shape
    from jaxdream.imageio import MAX_FILE_BYTES, load_photo
    from jaxdream.motion import MAX_FRAMES, Motion
    from jaxdream.video import LARGE_FRAME_PIXELS, check_video_output, render_zoom

    source = args.input or str(bundled_sample_path())
    check_regular_file(source, MAX_FILE_BYTES)
    check_video_output(args.output, source)
    if not isinstance(args.frames, int) or not 1 <= args.frames <= MAX_FRAMES:
        raise ConfigError(f"--frames must be in 1..{MAX_FRAMES:,}, got {args.frames}")
    if not (math.isfinite(args.fps) and 1e-3 <= args.fps <= 1000):
        raise ConfigError(f"--fps must be in [0.001, 1000], got {args.fps:g}")
    motion = Motion(args.zoom, args.rotate, tuple(args.pan))
    motion.check()
    config = dream_config(args)
    shown = display(args)
    rgb = load_photo(source).rgb  # read and checked here; its float gray is not kept
    if args.output_size != "working":
        h, w = zoom_shape(rgb.shape[:2])
        if h * w >= LARGE_FRAME_PIXELS:
            map_large_allocations()
    network = load_network_flags(args)
    network.check(config)
    done = render_zoom(
        rgb,
        args.output,
        config,
        motion,
        frames=args.frames,
        fps=args.fps,
        display=shown,
        color=args.color,
        size=args.output_size,
        **network.keywords(),
        resume=args.resume,
        identity=settings_of(args),
        progress=frame_bar(args.quiet, "zooming"),
    )
    h, w = done.size
    made = args.frames - done.start
    again = f" (resumed at frame {done.start})" if done.start else ""
    padded = f"; padded to {done.padded[1]}x{done.padded[0]} for the encoder" if done.padded else ""
    print(
        f"zoomed into {source}: {args.frames} frames at {w}x{h}{again}, {describe(config)}, "
        f"{config.iterations} iterations x {config.steps} steps a frame, {made} frames in "
        f"{done.seconds:.1f} s ({made / max(done.seconds, 1e-9):.2f} frames/s){padded}; "
        f"wrote {args.output}"
    )
    return 0
