"""Scale-out benchmarks: many photos on 1, 2, 4 and 8 simulated CPU devices, and a folder of
mixed photos through the command line's path against ``dream_many`` on pre-grouped batches.

    python -m benchmarks.scale                 # prints a table, --json writes the record
    python -m benchmarks.scale --devices 1 2   # fewer device counts

Each device count runs in a process of its own (XLA's device count is fixed at start). On a
2-core machine, 2 devices can use both cores; 4 and 8 share them (they show the overhead of
more shards, not more speed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

DEVICES_WORKER = r"""
import json, statistics, sys, time
import numpy as np
import jax
from jaxdream import DreamConfig, Level, load_model, load_photo
from jaxdream.checkpoint import bundled_sample_path
from jaxdream.many import dream_photos
n, size, repeats = (int(a) for a in sys.argv[1:4])
_, params = load_model()
photo = load_photo(bundled_sample_path()).rgb
photos = [photo] * n
config = DreamConfig(size=size, levels=(Level(0), Level(1)))
t0 = time.perf_counter()
run = dream_photos(photos, config, params=params, ordered=False)
for _ in run:
    pass
first = time.perf_counter() - t0
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in dream_photos(photos, config, params=params, ordered=False):
        pass
    times.append(time.perf_counter() - t0)
print(json.dumps({"devices": jax.local_device_count(), "photos": n,
                  "first_run_s": first, "median_s": statistics.median(times),
                  "min_s": min(times), "max_s": max(times),
                  "dreams_per_s": n / statistics.median(times),
                  "batch": max(k[1] for k in run._programs)}))
"""

# Aspect ratios of a mixed folder: common camera and phone shapes, both orientations, and a few
# odd crops.
MIXED = [(3, 4), (4, 3), (9, 16), (16, 9), (1, 1), (2, 3), (3, 2), (5, 7), (7, 5), (1, 2)]


def make_folder(folder: Path, count: int = 64) -> list[Path]:
    """``count`` photos cut from the bundled photos at the aspect ratios of ``MIXED``."""
    import numpy as np
    from PIL import Image

    from jaxdream.checkpoint import bundled_sample_path

    sources = [Image.open(bundled_sample_path()).convert("RGB")]
    sources.append(Image.open(bundled_sample_path().parent / "chelsea.jpg").convert("RGB"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        src = sources[i % 2]
        ah, aw = MIXED[i % len(MIXED)]
        scale = min(src.height / ah, src.width / aw) * rng.uniform(0.6, 1.0)
        h, w = int(ah * scale), int(aw * scale)
        y, x = rng.integers(0, src.height - h + 1), rng.integers(0, src.width - w + 1)
        path = folder / f"photo{i:02d}.jpg"
        src.crop((x, y, x + w, y + h)).save(path, quality=92)
        paths.append(path)
    return paths


def devices(counts, photos: int, size: int, repeats: int) -> dict:
    """Dreams per second on ``n`` single-threaded CPU devices for each ``n`` (as the CLI sets
    them up), and on one device with XLA's own threads (``1-threads``)."""
    from jaxdream.runtime import DEVICE_FLAGS, cpu_flags

    out = {}
    runs = {str(n): f"{DEVICE_FLAGS.format(n=n)} {cpu_flags(1)}" for n in counts}
    runs["1-threads"] = f"--xla_force_host_platform_device_count=1 {cpu_flags(1)}"
    for n, flags in runs.items():
        env = dict(os.environ, XLA_FLAGS=flags)
        cmd = [sys.executable, "-c", DEVICES_WORKER, str(photos), str(size), str(repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
        if done.returncode:
            out[n] = {"failed": done.stderr.strip().splitlines()[-1]}
        else:
            out[n] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def folder(count: int, size: int, repeats: int) -> dict:
    """The folder path (``dream_photos`` over files, writing PNGs; and the CLI in a new
    process) against ``dream_many`` on the same photos loaded and grouped by shape."""
    import numpy as np

    from jaxdream import DreamConfig, Level, dream_many, load_model, load_photo, save_image
    from jaxdream.many import dream_photos

    config = DreamConfig(size=size, levels=(Level(0), Level(1)))
    _, params = load_model()
    tmp = Path(tempfile.mkdtemp(prefix="jaxdream-folder-"))
    (tmp / "photos").mkdir()
    paths = make_folder(tmp / "photos", count)
    out = tmp / "out"
    out.mkdir()

    def folder_path():
        run = dream_photos(paths, config, params=params, ordered=False)
        for o in run:
            save_image(out / f"{Path(o.source).stem}.png", o.result.to_uint8())
        return run

    t0 = time.perf_counter()
    first = folder_path()
    first_s = time.perf_counter() - t0
    shapes = {}
    for p in paths:
        photo = load_photo(p)
        shapes.setdefault(config.working_shape(photo.gray.shape), []).append(photo.rgb)

    def grouped():
        for group in shapes.values():
            for r in dream_many(group, config, params=params):
                np.asarray(r.image)

    grouped()  # compiles
    folder_times, grouped_times = [], []
    for _ in range(repeats):  # in turns
        t0 = time.perf_counter()
        folder_path()
        folder_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        grouped()
        grouped_times.append(time.perf_counter() - t0)
    cli_out = tmp / "cli"
    cmd = [sys.executable, "-m", "jaxdream", "dream", str(tmp / "photos"), "-o", f"{cli_out}/"]
    cmd += ["--size", str(size), "--levels", "0", "1", "-q"]
    cli = []
    for _ in range(2):  # the second run finds the persistent compilation cache warm
        env = dict(os.environ, JAXDREAM_CACHE_DIR=str(tmp / "cache"))
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
        cli.append({"wall_s": time.perf_counter() - t0, "said": done.stdout.strip()})
    f, g = statistics.median(folder_times), statistics.median(grouped_times)
    return {
        "photos": count,
        "working_shapes": len(shapes),
        "programs_compiled": first.new_programs,
        "programs_used": first.compiled,
        "folder_first_run_s": first_s,
        "folder_median_s": f,
        "grouped_dream_many_median_s": g,
        "folder_overhead": f / g - 1,
        "cli_new_process_s": [c["wall_s"] for c in cli],
        "cli_said": cli[-1]["said"],
    }


def table(record: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    base = record["devices"].get("1", {}).get("dreams_per_s")
    for n, row in record["devices"].items():
        if "failed" in row:
            lines.append(f"| {n} devices | failed: {row['failed']} |")
            continue
        ratio = f" = {row['dreams_per_s'] / base:.2f}x one device" if base else ""
        where = "1 CPU device with XLA's threads" if n == "1-threads" else f"{n} CPU devices"
        lines.append(
            f"| {row['photos']} photos on {where} | {row['dreams_per_s']:.1f} dreams/s"
            f"{ratio} (batch {row['batch']}, first run {row['first_run_s']:.1f} s) |"
        )
    if "folder" in record:
        f = record["folder"]
        lines.append(
            f"| folder of {f['photos']} mixed photos | {f['folder_median_s']:.2f} s through "
            f"`dream_photos` + PNGs, {f['grouped_dream_many_median_s']:.2f} s as `dream_many` on "
            f"pre-grouped arrays: overhead {f['folder_overhead']:+.1%} |"
        )
        lines.append(
            f"| its working shapes / programs compiled | {f['working_shapes']} / "
            f"{f['programs_compiled']} |"
        )
        lines.append(
            "| the CLI in a new process (empty, then warm cache) | "
            + " / ".join(f"{t:.1f} s" for t in f["cli_new_process_s"])
            + " |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--size", type=int, default=560)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-folder", action="store_true")
    parser.add_argument("--json", help="write the record here")
    args = parser.parse_args(argv)
    record = {"devices": devices(args.devices, args.photos, args.size, args.repeats)}
    if not args.no_folder:
        from jaxdream.runtime import configure_cpu_devices

        configure_cpu_devices()
        record["folder"] = folder(args.photos, args.size, args.repeats)
    print(table(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
