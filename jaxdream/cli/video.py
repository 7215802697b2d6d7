"""``jaxdream video``: every frame of a video file dreamt and encoded again at its frame rate
and size, its audio copied (``jaxdream.video``); decoding and encoding on host threads while
the devices dream batches of frames; several hosts each write their own part."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from pathlib import Path

from jaxdream.background import KeepAndEncode
from jaxdream.cli._core import (
    describe,
    display,
    display_flags,
    distributed_flags,
    dream_config,
    dream_flags,
    folder_stage,
    load_weights,
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


def part_name(output: str, index: int, count: int) -> str:
    """Process ``index``'s part of ``output`` in a run of ``count`` processes.

    >>> part_name("out.mp4", 0, 2), part_name("frames/", 1, 2)
    ('out-part1of2.mp4', 'frames-part2of2/')
    """
    from jaxdream.video import is_folder_output

    if count == 1:
        return output
    path = Path(output.rstrip("/" + os.sep))
    if is_folder_output(output):
        return str(path.with_name(f"{path.name}-part{index + 1}of{count}")) + "/"
    return str(path.with_name(f"{path.stem}-part{index + 1}of{count}{path.suffix}"))


def run(args: argparse.Namespace) -> int:
    import jax
    from tqdm.auto import tqdm

    from jaxdream import distributed, progress
    from jaxdream.checks import number, whole_number
    from jaxdream.video import (
        Decoded,
        Resumable,
        VideoError,
        VideoWriter,
        check_range,
        check_video_output,
        dream_video,
        probe,
    )

    check_range(args.start, args.duration)
    number("--carry", args.carry, 0, 10)
    if args.batch_size is not None:
        whole_number("--batch-size", args.batch_size, 1, 4096)
    check_video_output(args.output, args.input)
    info = probe(args.input)  # not a video, no frame, too large: here, before any work
    if args.start >= info.duration:
        raise ConfigError(f"--start {args.start:g} s is past the end ({info.duration:.2f} s)")
    config = dream_config(args)
    shown = display(args)
    model, params = load_weights(args.weights)
    config.check(model)
    # Several hosts: each process a contiguous range of the frames, written as its own part.
    count, index = jax.process_count(), jax.process_index()
    total = Decoded(args.input, args.start, args.duration, None).expected()
    first, stop = index * total // count, (index + 1) * total // count
    output = part_name(args.output, index, count)
    if count > 1:
        check_video_output(output, args.input)
    settings = run_settings(args, RESUME_SKIPS)
    keep = Resumable(output, {**settings, "part": [first, stop]}, args.resume)
    done = keep.done()
    coherent = args.coherence != "none"
    # A resumed coherent render carries the state kept with its last frame (the same bytes as
    # an uninterrupted one); without it (or in a later part) the library primes the carving
    # from the frame before the range.
    kept_state = keep.state_at(done, ("image", "carving")) if coherent and done else None
    carried = None if kept_state is None else (kept_state["image"], kept_state["carving"])
    notes = []
    if info.variable:
        notes.append("the frame rate varies: every frame keeps its own time")
    timed = info.variable and not output.endswith((".gif", "/")) and Path(output).suffix
    fps = info.fps
    t0 = time.perf_counter()
    dream = functools.partial(
        dream_video,
        args.input,
        config,
        display=shown,
        color=args.color,
        start=args.start,
        duration=args.duration,
        coherence=args.coherence,
        carry=args.carry,
        model=model,
        params=params,
        batch_size=args.batch_size,
        # One process: the range is the library's own (the frames' times decide, as in
        # dream_video); several: each its share of the count.
        frames=(first + done, stop if count > 1 else None),
    )
    try:
        frames = dream(state=carried)
    except ConfigError as e:
        if carried is None:
            raise
        raise VideoError(
            f"{keep.folder / f'state_{done:06d}.npz'} does not fit this render ({e}): remove "
            f"{keep.folder} to start the render again"
        ) from None
    import fractions

    time_base = fractions.Fraction(1, 90000) if timed else None
    audio_start = args.start + first / float(fps)
    audio_duration = (stop - first) / float(fps) if count > 1 else args.duration
    kept_times = keep.times()
    base = first / float(fps) if count > 1 else 0.0
    made = 0
    with (
        tqdm(
            total=stop - first,
            initial=done,
            unit="frame",
            disable=True if args.quiet else None,
            dynamic_ncols=True,
        ) as bar,
        VideoWriter(
            output,
            fps,
            time_base=time_base,
            audio=args.input,
            audio_start=audio_start,
            audio_duration=audio_duration,
        ) as writer,
        progress.watching_compiles(folder_stage(bar)),
    ):
        for k, frame in enumerate(keep.frames(done)):  # an interrupted run's frames, again
            writer.write(frame, kept_times.get(k, k / float(fps)))
        # On an error, the jobs queued are cancelled (the running one ends) and then the
        # dream's threads are joined (closing), before the writer ends: nothing is left
        # running inside XLA or FFmpeg when the error is told.
        with contextlib.closing(frames), KeepAndEncode(bar) as jobs:
            for frame in frames:
                k = done + made
                when = max(0.0, frames.times[-1] - base)  # a part starts at its own 0
                state = None
                if coherent:
                    state = dict(zip(("image", "carving"), frames.state, strict=True))
                jobs.put(
                    functools.partial(keep.keep, k, frame, when, state),
                    functools.partial(writer.write, frame, when),
                )
                made += 1
        if done + made == 0:
            raise VideoError(f"no frame of {args.input} decoded in the range asked for")
    keep.finish()
    seconds = time.perf_counter() - t0
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
        notes.append(f"the stream has no timestamps: frames are timed at {float(fps):.3g} fps")
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
    for note in notes:
        print(f"jaxdream: note: {note}", file=sys.stderr)
    h, w = writer.size
    share = distributed.describe()
    audio = f", audio {writer.audio_copied}" if writer.audio_copied else ""
    print(
        f"dreamed {made} frames{share} of {args.input} at {w}x{h}, {float(fps):.3g} fps"
        f"{f' (resumed after {done})' if done else ''}, {describe(config)}, "
        f"{config.iterations} iterations x {config.steps} steps a frame, coherence "
        f"{args.coherence}, in {seconds:.1f} s ({made / max(seconds, 1e-9):.2f} frames/s)"
        f"{audio}; wrote {output}"
    )
    return 0
