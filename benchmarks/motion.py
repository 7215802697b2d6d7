"""Motion benchmarks: the zoom's frames per second, and a video dreamt end to end against the
same frames dreamt from memory, on 1 and on 2 CPU devices (each count in a process of its own).

    python -m benchmarks.motion                 # 560x560 vivid zoom; a 10 s 480p clip
    python -m benchmarks.motion --quick         # a tiny pass (CI): nothing recorded
    python -m benchmarks.motion --encoders      # x264 presets on dreamt frames

- zoom: ``jaxdream.zoom`` at 560x560 with the vivid preset and the command line's iterations
  a frame (``MOTION_ITERATIONS``), the first frame (the compile) left out; the programs
  compiled over the zoom are counted (one is the promise);
- video: a 10-second 854x480 clip made here (a pan across a bundled photo, AAC sine audio),
  dreamt end to end as ``jaxdream video`` does (decode on a thread, dream in batches, render and
  encode H.264 with the audio copied) against the same frames decoded beforehand and dreamt
  by ``dream_photos`` from memory (rendered, not encoded): the share of the I/O the pipeline
  hides. Runs alternate (end to end, memory, end to end, memory) and the best of each is kept;
  each turn also runs the ``jaxdream video`` command on the clip in a process of its own (a
  warm cache), which also keeps every frame as a PNG for ``--resume``: the seconds it reports.

Prints the record as JSON and a markdown table; appends the record to
``benchmarks/motion_history.jsonl`` (``--no-history``: not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HISTORY = HERE / "motion_history.jsonl"


def cpu_seconds() -> float:
    """CPU seconds this process has used (user and system, every thread)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_clip(path: Path, seconds: float, fps: int, height: int, width: int) -> Path:
    """A pan across the bundled astronaut photo, with a 440 Hz sine track."""
    import av
    import numpy as np
    from PIL import Image

    photo = Image.open(HERE.parent / "jaxdream" / "assets" / "astronaut.jpg").convert("RGB")
    scale = 2 * max(height / photo.height, width / photo.width)
    photo = np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale))))
    frames = round(seconds * fps)
    room = photo.shape[1] - width
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = out.add_stream("aac", rate=44100)
    for k in range(frames):
        x = round(room * k / max(1, frames - 1))
        top = (photo.shape[0] - height) // 2
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(photo[top : top + height, x : x + width]), format="rgb24"
        )
        frame.pts = k
        for p in video.encode(frame):
            out.mux(p)
    t = np.arange(int(44100 * seconds)) / 44100
    sine = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    frame = av.AudioFrame.from_ndarray(sine, format="flt", layout="mono")
    frame.sample_rate, frame.pts = 44100, 0
    for p in [*audio.encode(frame), *audio.encode(None), *video.encode(None)]:
        out.mux(p)
    out.close()
    return path


def bench_zoom(config, frames: int, photo: Path) -> dict:
    import jax

    import jaxdream

    names: list[str] = []

    def listen(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kw.get("fun_name"))

    run = jaxdream.zoom(photo, config, frames=frames, color=True)
    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        t0 = time.perf_counter()
        next(run)
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        for _ in run:
            pass
        rest = time.perf_counter() - t1
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return {
        "frames": frames,
        "first_frame_s": first,
        "frames_per_s": (frames - 1) / rest,
        "programs_compiled": len(names),
        "compiled": names,
    }


def end_to_end(clip: Path, out: Path, config, batch: int) -> tuple[float, int]:
    """``jaxdream video``'s pipeline without the bar: decode, dream, render, encode."""
    from concurrent.futures import ThreadPoolExecutor

    from jaxdream.video import VideoWriter, dream_video, probe

    info = probe(clip)
    t0 = time.perf_counter()
    frames = dream_video(clip, config, color=True, batch_size=batch)
    count = 0
    with (
        VideoWriter(out, info.fps, audio=clip) as writer,
        ThreadPoolExecutor(max_workers=1) as encoder,
    ):
        pending = []
        for frame in frames:
            pending.append(encoder.submit(writer.write, frame))
            count += 1
            while len(pending) > 8:
                pending.pop(0).result()
        for f in pending:
            f.result()
    return time.perf_counter() - t0, count


def command(clip: Path, out: Path, args, cache: str) -> float:
    """``jaxdream video`` itself in a process of its own (the devices of this one, a warm
    cache): the seconds it reports, from the pipeline's start (the program's load included) to
    the file written, its frames kept for ``--resume`` on the way."""
    import re

    size = "64" if args.quick else str(args.video_size)
    argv = ["video", str(clip), "-o", str(out), "--preset", "vivid", "--size", size]
    argv += ["--iterations", str(args.video_iterations), "--color", "-q"]
    if args.quick:
        argv += ["--steps", "2"]
    env = dict(os.environ, JAXDREAM_CACHE_DIR=cache, PYTHONPATH=str(HERE.parent))
    done = subprocess.run(
        [sys.executable, "-m", "jaxdream", *argv], env=env, capture_output=True, text=True
    )
    said = re.search(r" in ([0-9.]+) s \(", done.stdout)
    if done.returncode != 0 or said is None:
        raise RuntimeError(f"jaxdream video failed: {done.stderr[-2000:]}")
    return float(said.group(1))


def from_memory(pixels: list, config, batch: int) -> float:
    from jaxdream.many import dream_photos

    t0 = time.perf_counter()
    for start in range(0, len(pixels), batch):
        part = pixels[start : start + batch]
        part += [part[-1]] * (batch - len(part))
        for o in dream_photos(part, config, batch_size=batch):
            o.result.to_uint8(color=True, size="photo")
    return time.perf_counter() - t0


def child(args) -> dict:
    import jax

    import jaxdream
    from jaxdream.motion import MOTION_ITERATIONS
    from jaxdream.video import read_frames

    cache = tempfile.mkdtemp(prefix="jaxdream-motion-cache-")
    jaxdream.enable_compilation_cache(cache)
    size = 64 if args.quick else 560
    config = jaxdream.preset_config("vivid").replace(size=size, iterations=MOTION_ITERATIONS)
    if args.quick:
        config = config.replace(steps=2)
    photo = HERE.parent / "jaxdream" / "assets" / "chelsea.jpg"
    record = {"devices": len(jax.local_devices())}
    record["zoom"] = bench_zoom(config, args.zoom_frames, photo)
    with tempfile.TemporaryDirectory() as tmp:
        h, w = (48, 64) if args.quick else (480, 854)
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.fps, h, w)
        video_config = jaxdream.preset_config("vivid").replace(
            size=64 if args.quick else args.video_size, iterations=args.video_iterations
        )
        if args.quick:
            video_config = video_config.replace(steps=2)
        batch = 4 * len(jax.local_devices())
        pixels = [f.pixels for f in read_frames(clip)]
        from_memory(pixels[:batch], video_config, batch)  # compile, not timed
        e2e, mem, e2e_cpu, mem_cpu, cli = [], [], [], [], []
        command(clip, Path(tmp) / "warm.mp4", args, cache)  # fills its cache, not timed
        for turn in range(args.turns):
            cli.append(command(clip, Path(tmp) / f"cli{turn}.mp4", args, cache))
            c0 = cpu_seconds()
            seconds, count = end_to_end(clip, Path(tmp) / f"out{turn}.mp4", video_config, batch)
            c1 = cpu_seconds()
            e2e.append(seconds)
            mem.append(from_memory(pixels, video_config, batch))
            e2e_cpu.append(c1 - c0)
            mem_cpu.append(cpu_seconds() - c1)
        record["video"] = {
            "clip": f"{w}x{h}, {args.seconds:g} s at {args.fps} fps, {len(pixels)} frames",
            "working_size": video_config.working_shape((h, w)),
            "iterations": video_config.iterations,
            "batch": batch,
            "frames": count,
            "end_to_end_s": e2e,
            "from_memory_s": mem,
            "end_to_end_cpu_s": e2e_cpu,
            "from_memory_cpu_s": mem_cpu,
            "end_to_end_fps": count / min(e2e),
            "from_memory_fps": len(pixels) / min(mem),
            "end_to_end_over_memory": min(e2e) / min(mem),
            "command_s": cli,
            "command_over_memory": min(cli) / min(mem),
        }
    return record


def bench_flicker(args) -> dict:
    """How much each coherence mode steadies a dreamt video: the output's mean absolute
    frame-to-frame change over the input's (1.0: no more flicker than the input), and what
    each costs (frames per second, the one-at-a-time modes against batches)."""
    import jaxdream
    from jaxdream.motion import MOTION_ITERATIONS
    from jaxdream.video import dream_video, flicker, read_frames

    config = jaxdream.preset_config("vivid").replace(
        size=64 if args.quick else 280, iterations=MOTION_ITERATIONS
    )
    if args.quick:
        config = config.replace(steps=2)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        h, w = (48, 64) if args.quick else (480, 854)
        seconds = 1.0 if args.quick else 4.0
        clip = make_clip(Path(tmp) / "clip.mp4", seconds, args.fps, h, w)
        source = flicker(f.pixels for f in read_frames(clip))
        list(dream_video(clip, config, color=True, duration=0.5))  # compile, not timed
        for mode in ("none", "blend", "flow"):
            t0 = time.perf_counter()
            frames = list(dream_video(clip, config, color=True, coherence=mode))
            took = time.perf_counter() - t0
            out[mode] = {
                "flicker": flicker(frames),
                "over_input": flicker(frames) / source,
                "frames_per_s": len(frames) / took,
            }
        out["input_flicker"] = source
        out["clip"] = f"{w}x{h}, {seconds:g} s at {args.fps} fps; working size 280, vivid"
    return out


ENCODER_PRESETS = ("medium", "veryfast", "superfast", "ultrafast")


def bench_encoders(args) -> dict:
    """What x264's presets cost on dreamt frames (the .mp4 writer's CRF 18 otherwise): encoder
    CPU a frame (this process's CPU seconds: x264's threads and the RGB to YUV conversion
    included), quality (PSNR of the decoded frames against the dreamt ones) and bytes."""
    import numpy as np

    import jaxdream
    from jaxdream.video import SETTINGS, VideoWriter, dream_video, read_frames

    h, w = (48, 64) if args.quick else (480, 854)
    config = jaxdream.preset_config("vivid").replace(
        size=64 if args.quick else args.video_size, iterations=args.video_iterations
    )
    if args.quick:
        config = config.replace(steps=2)
    rows = {"clip": f"{w}x{h}, {args.seconds:g} s at {args.fps} fps, dreamt (vivid)"}
    settings = SETTINGS[".mp4"]
    default = settings.options["preset"]
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds, args.fps, h, w)
        frames = list(dream_video(clip, config, color=True))
        try:
            for preset in ENCODER_PRESETS:
                settings.options["preset"] = preset
                out = Path(tmp) / f"{preset}.mp4"
                c0 = cpu_seconds()
                with VideoWriter(out, args.fps) as writer:
                    for f in frames:
                        writer.write(f)
                took = cpu_seconds() - c0
                back = [f.pixels for f in read_frames(out)]
                pairs = zip(frames, back, strict=True)
                errors = [np.mean((a.astype(float) - b) ** 2) for a, b in pairs]
                rows[preset] = {
                    "cpu_ms_per_frame": 1e3 * took / len(frames),
                    "psnr_db": float(np.mean([10 * np.log10(255**2 / e) for e in errors])),
                    "kilobytes": out.stat().st_size / 1e3,
                    "default": preset == default,
                }
        finally:
            settings.options["preset"] = default
    return rows


def encoders_table(rows: dict) -> str:
    lines = [
        "| x264 preset (CRF 18) | encoder CPU, ms a frame | PSNR, dB | kB |",
        "| --- | --- | --- | --- |",
    ]
    for preset in ENCODER_PRESETS:
        r = rows[preset]
        name = f"{preset} (default)" if r["default"] else preset
        lines.append(
            f"| {name} | {r['cpu_ms_per_frame']:.1f} | {r['psnr_db']:.2f} | {r['kilobytes']:.0f} |"
        )
    return "\n".join(lines)


def flicker_table(rows: dict) -> str:
    lines = [
        "| coherence | flicker (output / input) | frames/s |",
        "| --- | --- | --- |",
    ]
    for mode in ("none", "blend", "flow"):
        r = rows[mode]
        lines.append(f"| {mode} | {r['over_input']:.2f} | {r['frames_per_s']:.2f} |")
    return "\n".join(lines)


def table(record: dict) -> str:
    rows = [
        "| devices | zoom 560x560 vivid, frames/s | programs compiled | video end to end, "
        "frames/s | same frames from memory, frames/s | end to end / memory | "
        "`jaxdream video` / memory |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, r in sorted(record["runs"].items()):
        z, v = r["zoom"], r["video"]
        rows.append(
            f"| {n} | {z['frames_per_s']:.2f} | {z['programs_compiled']} | "
            f"{v['end_to_end_fps']:.2f} | {v['from_memory_fps']:.2f} | "
            f"{v['end_to_end_over_memory']:.3f} | "
            f"{v.get('command_over_memory', float('nan')):.3f} |"
        )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny pass; implies --no-history")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--zoom-frames", type=int, default=13)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--video-size", type=int, default=560, help="working size of the video")
    parser.add_argument("--video-iterations", type=int, default=2)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--json", help="also write the record here")
    parser.add_argument(
        "--flicker", action="store_true", help="only the coherence modes' flicker (this process)"
    )
    parser.add_argument(
        "--encoders",
        action="store_true",
        help="only x264's presets on dreamt frames: CPU, PSNR, bytes (this process)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.zoom_frames, args.turns, args.fps = 1.0, 3, 1, 8
    if args.child:
        print(json.dumps(child(args)))
        return 0
    if args.flicker:
        import jaxdream

        jaxdream.configure_cpu_devices()
        rows = bench_flicker(args)
        print(json.dumps(rows, indent=1))
        print(flicker_table(rows))
        return 0
    if args.encoders:
        rows = bench_encoders(args)
        print(json.dumps(rows, indent=1))
        print(encoders_table(rows))
        return 0
    from jaxdream.runtime import cpu_flags

    runs = {}
    for n in args.devices:
        env = dict(os.environ, XLA_FLAGS=cpu_flags(n) or "--xla_force_host_platform_device_count=1")
        env["PYTHONPATH"] = str(HERE.parent)
        argv_child = [sys.executable, "-m", "benchmarks.motion", "--child", *(argv or sys.argv[1:])]
        done = subprocess.run(argv_child, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        runs[str(n)] = json.loads(done.stdout.strip().splitlines()[-1])
    from benchmarks.suite import environment

    record = {**environment(), "runs": runs}
    record["device"]["count"] = max(args.devices)
    print(json.dumps(record, indent=1))
    print(table(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    if not (args.quick or args.no_history):
        with open(HISTORY, "a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
