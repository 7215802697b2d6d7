"""``jaxdream video``: every frame of a video file dreamt and encoded again at its frame rate
and size, its audio copied: the flags of ``jaxdream.video.render_video``, which does the work
(decoding and encoding on host threads while the devices dream batches of frames; several
hosts each write their own part), and its report."""

from __future__ import annotations

import argparse
import sys

from jaxdream.cli._core import (
    describe,
    display,
    display_flags,
    distributed_flags,
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

# The strength a video's frames are shown with unless --strength says otherwise: on a real 720p
# clip, vivid's frames then keep the scene (coarse luminance correlation 0.84 against 0.36 at
# strength 1) with 61% of the carving's objective rise (docs: the strength table).
VIDEO_STRENGTH = 0.5

RESUME_SKIPS = (
    "quiet",
    "resume",
    "func",
    "command",
    "distributed",
    "coordinator_address",
    "num_processes",
    "process_id",
)


def register(sub, preset: str | None) -> None:
    preset, _ = preset_defaults(preset)
    p = sub.add_parser(
        "video",
        help="dream every frame of a video, its audio copied",
        description="Dream every frame of a video file and encode it again at its frame rate "
        "and size (rotation metadata applied), its audio stream copied. Written by extension: "
        ".mp4 (H.264), .webm (VP9), .webp and .gif (animated), or a folder of numbered PNG "
        "frames. Frames are decoded and encoded on host threads while the devices dream "
        f"batches of them. Every dream flag works; defaults shown are preset {preset!r}'s, "
        f"shown at strength {VIDEO_STRENGTH:g} (the scene kept).",
    )
    p.add_argument("input", help="the video to dream")
    p.add_argument("-o", "--output", required=True, help="video or frame folder to write")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the video to begin")
    p.add_argument("--duration", type=float, help="seconds to dream (unset: to the end)")
    p.add_argument(
        "--coherence",
        choices=["none", "blend", "flow"],
        default="none",
        help="none: every frame dreamt on its own (they flicker); blend: the previous "
        "frame's carving added to the next before it is dreamt; flow: the same, moved "
        "along the motion (OpenCV's Farneback optical flow). blend and flow dream one "
        "frame after another",
    )
    p.add_argument(
        "--carry",
        type=float,
        default=0.5,
        help="with --coherence: how much of the previous frame's carving is carried",
    )
    p.add_argument(
        "--batch-size", type=int, help="frames dreamt at once (default: from the devices)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted render from the frames it kept in the hidden folder "
        ".OUTPUT.partial beside the output (same flags; remove that folder to start afresh)",
    )
    dream_flags(p, preset, strength=VIDEO_STRENGTH)
    display_flags(p)
    distributed_flags(p)
    quiet_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the video package imports JAX (0.9 s measured), and --help builds this
    # module's flags without it.
    from jaxdream import distributed
    from jaxdream.checks import number, whole_number
    from jaxdream.video import (
        LARGE_FRAME_PIXELS,
        VideoSettings,
        check_range,
        check_video_output,
        probe,
        render_video,
    )

    check_range(args.start, args.duration)
    number("--carry", args.carry, 0, 10)
    if args.batch_size is not None:
        whole_number("--batch-size", args.batch_size, 1, 4096)
    check_video_output(args.output, args.input)
    # Not a video, no frame, too large: here, before any work; the render takes what this read
    # (the file's packets are read once).
    info = probe(args.input)
    if args.start >= info.duration:
        raise ConfigError(f"--start {args.start:g} s is past the end ({info.duration:.2f} s)")
    if info.width * info.height >= LARGE_FRAME_PIXELS:
        map_large_allocations()
    config = dream_config(args)
    settings = VideoSettings(
        display(args),
        args.color,
        args.start,
        args.duration,
        args.coherence,
        args.carry,
        args.batch_size,
    )
    network = load_network_flags(args)
    network.check(config)
    done = render_video(
        args.input,
        args.output,
        config,
        settings,
        **network.keywords(),
        resume=args.resume,
        identity=run_settings(args, RESUME_SKIPS),
        progress=frame_bar(args.quiet),
        info=info,
    )
    for note in done.notes:
        print(f"jaxdream: note: {note}", file=sys.stderr)
    h, w = done.size
    share = distributed.describe()
    audio = f", audio {done.audio}" if done.audio else ""
    seconds = done.seconds
    print(
        f"dreamed {done.made} frames{share} of {args.input} at {w}x{h}, {float(done.fps):.3g} fps"
        f"{f' (resumed after {done.resumed})' if done.resumed else ''}, {describe(config)}, "
        f"{config.iterations} iterations x {config.steps} steps a frame, coherence "
        f"{args.coherence}, in {seconds:.1f} s ({done.made / max(seconds, 1e-9):.2f} frames/s)"
        f"{audio}; wrote {done.output}"
    )
    return 0
