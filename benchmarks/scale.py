"""Scale-out benchmarks: many photos on 1, 2, 4 and 8 simulated CPU devices, a folder of
mixed photos through the command line's path against ``dream_many`` on pre-grouped batches,
and how a dream's program grows with its tile count.

    python -m benchmarks.scale                 # prints a table, --json writes the record
    python -m benchmarks.scale --devices 1 2   # fewer device counts
    python -m benchmarks.scale --programs      # program cost at levels 0-2, 0-4, 0-6 only
    python -m benchmarks.scale --programs --repo /tmp/old   # the same for another checkout

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

PROGRAM_WORKER = r"""
import json, sys, time
from jaxdream.runtime import configure_cpu_devices
configure_cpu_devices()  # as the command line does
import jax, jax.numpy as jnp
from jaxdream import DreamConfig, Level
from jaxdream.carve import carve_batch
from jaxdream.checkpoint import load_model
from jaxdream.dreaming import dream_call
deepest, overlap, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
model, params = load_model()
config = DreamConfig(size=size, levels=tuple(Level(k) for k in range(deepest + 1)),
                     iterations=1, steps=2, overlap=overlap)
image = jax.random.normal(jax.random.key(0), (1, size, size))
call = dream_call(model, params, config, image)
clock = lambda: (time.perf_counter(), time.process_time())
t0 = clock()
traced = carve_batch.trace(*call)
t1 = clock()
lowered = traced.lower()
t2 = clock()
text = lowered.as_text()
t3 = clock()
compiled = lowered.compile()
t4 = clock()
compiled(*call[1:5])[0].block_until_ready()
t5 = clock()
span = lambda a, b: {"wall_s": b[0] - a[0], "cpu_s": b[1] - a[1]}
print(json.dumps({"levels": f"0-{deepest}", "overlap": overlap, "size": size,
                  "tiles": config.tile_count(), "trace": span(t0, t1), "lower": span(t1, t2),
                  "compile": span(t3, t4), "first_run": span(t4, t5),
                  "stablehlo_bytes": len(text.encode())}))
"""


def programs(deepest=(2, 4, 6), overlaps=(0.0, 0.5), size: int = 64, repo=None) -> list[dict]:
    """Trace, lower and compile time and StableHLO size of one dream (1 iteration of 2 steps,
    levels ``0..d`` for each ``d``, plain and overlapping tiles) at ``size``, each in a new
    process without the persistent cache; ``repo``: the checkout to measure (default: this
    one), so that a figure before a change is one command."""
    out = []
    root = Path(repo) if repo else HERE.parent
    for d in deepest:
        for overlap in overlaps:
            env = dict(os.environ, JAXDREAM_NO_CACHE="1", PYTHONPATH=str(root))
            cmd = [sys.executable, "-c", PROGRAM_WORKER, str(d), str(overlap), str(size)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
            if done.returncode:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                out.append({"levels": f"0-{d}", "overlap": overlap, "failed": tail})
            else:
                out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def programs_table(rows: list[dict]) -> str:
    """Seconds as wall (CPU of this process): on a shared machine the CPU time is the steadier
    figure of the two (tracing, lowering and XLA's compile run on one thread, mostly)."""
    lines = [
        "| levels | tiles | layout | trace s | lower s | compile s | StableHLO |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    both = lambda t: f"{t['wall_s']:.2f} ({t['cpu_s']:.2f})"
    for r in rows:
        layout = f"overlap {r['overlap']}" if r["overlap"] else "grid"
        if "failed" in r:
            lines.append(f"| {r['levels']} | | {layout} | failed: {r['failed']} | | | |")
            continue
        lines.append(
            f"| {r['levels']} | {r['tiles']:,} | {layout} | {both(r['trace'])} | "
            f"{both(r['lower'])} | {both(r['compile'])} | {r['stablehlo_bytes'] / 1e6:.2f} MB |"
        )
    return "\n".join(lines)


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
    """Dreams per second on ``n`` single-threaded CPU devices for each ``n``, as the CLI sets
    them up, and on one device pinned to one core (``1-core``, with ``taskset``).

    XLA's CPU runtime runs independent parts of one device's program on a thread pool of its
    own, so one "single-threaded" device still uses up to every core (measured: 1.75 cores of
    2); the pinned run is the one-core reference that device counts scale from."""
    import shutil

    from jaxdream.runtime import DEVICE_FLAGS, cpu_flags

    out = {}
    runs = {str(n): (f"{DEVICE_FLAGS.format(n=n)} {cpu_flags(1)}", []) for n in counts}
    if shutil.which("taskset"):
        runs = {
            "1-core": (
                runs.get("1", (f"{DEVICE_FLAGS.format(n=1)} {cpu_flags(1)}",))[0],
                ["taskset", "-c", "0"],
            ),
            **runs,
        }
    for n, (flags, prefix) in runs.items():
        env = dict(os.environ, XLA_FLAGS=flags)
        cmd = [*prefix, sys.executable, "-c", DEVICES_WORKER, str(photos), str(size), str(repeats)]
        start = time.perf_counter()
        cpu0 = os.times()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
        cpu1, wall = os.times(), time.perf_counter() - start
        if done.returncode:
            out[n] = {"failed": done.stderr.strip().splitlines()[-1]}
        else:
            out[n] = json.loads(done.stdout.strip().splitlines()[-1])
            used = (cpu1.children_user + cpu1.children_system) - (
                cpu0.children_user + cpu0.children_system
            )
            out[n]["cores_used"] = used / wall
    return out


def folder(count: int, size: int, repeats: int) -> dict:
    """The command line's folder path (``jaxdream dream FOLDER -o OUT/``, in this process, its
    programs compiled by a first run) against what a user would write with ``dream_many``:
    the same photos loaded, grouped by working shape by hand, one ``dream_many`` call per
    group, each dream written as a PNG. Timed in turns. Also the CLI in new processes."""
    from jaxdream import DreamConfig, Level, dream_many, load_model, load_photo, save_image
    from jaxdream.cli import main as cli

    config = DreamConfig(size=size, levels=(Level(0), Level(1)))
    _, params = load_model()
    tmp = Path(tempfile.mkdtemp(prefix="jaxdream-folder-"))
    (tmp / "photos").mkdir()
    paths = make_folder(tmp / "photos", count)
    argv = ["dream", str(tmp / "photos"), "--size", str(size), "--levels", "0", "1", "-q"]
    os.environ["JAXDREAM_NO_CACHE"] = "1"  # in this process: compiled programs, no disk cache

    def folder_path(out: str) -> str:
        import contextlib
        import io

        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            assert cli([*argv, "-o", out]) == 0
        return said.getvalue()

    def grouped(out: Path):
        out.mkdir(exist_ok=True)
        groups: dict = {}
        for p in paths:
            photo = load_photo(p)
            groups.setdefault(config.working_shape(photo.shape), []).append((p, photo.rgb))
        for group in groups.values():
            results = dream_many([rgb for _, rgb in group], config, params=params)
            for (p, _), r in zip(group, results, strict=True):
                save_image(out / f"{p.stem}.png", r.to_uint8())
        return len(groups)

    t0 = time.perf_counter()
    first_said = folder_path(str(tmp / "first"))
    first_s = time.perf_counter() - t0
    shapes = grouped(tmp / "grouped")  # compiles dream_many's programs
    folder_times, grouped_times = [], []
    for i in range(repeats):  # in turns
        t0 = time.perf_counter()
        folder_path(str(tmp / f"folder{i}"))
        folder_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        grouped(tmp / f"grouped{i}")
        grouped_times.append(time.perf_counter() - t0)
    del os.environ["JAXDREAM_NO_CACHE"]
    cli_runs = []
    for i in range(2):  # the second run finds the persistent compilation cache warm
        env = dict(os.environ, JAXDREAM_CACHE_DIR=str(tmp / "cache"))
        cmd = [sys.executable, "-m", "jaxdream", *argv, "-o", str(tmp / f"cli{i}")]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
        cli_runs.append({"wall_s": time.perf_counter() - t0, "said": done.stdout.strip()})
    f, g = statistics.median(folder_times), statistics.median(grouped_times)
    compiled = first_said.split("programs (")[1].split(" compiled")[0]
    return {
        "photos": count,
        "working_shapes": shapes,
        "programs_compiled": int(compiled),
        "folder_first_run_s": first_s,
        "folder_median_s": f,
        "grouped_dream_many_median_s": g,
        "folder_overhead": f / g - 1,
        "cli_new_process_s": [c["wall_s"] for c in cli_runs],
        "cli_said": cli_runs[-1]["said"],
    }


def table(record: dict) -> str:
    lines = ["| figure | value |", "| --- | --- |"]
    rows = record["devices"]
    base = (rows.get("1-core") or rows.get("1") or {}).get("dreams_per_s")
    for n, row in rows.items():
        if "failed" in row:
            lines.append(f"| {n} devices | failed: {row['failed']} |")
            continue
        ratio = f" = {row['dreams_per_s'] / base:.2f}x" if base else ""
        where = "1 CPU device pinned to one core" if n == "1-core" else f"{n} CPU devices"
        lines.append(
            f"| {row['photos']} photos on {where} | {row['dreams_per_s']:.1f} dreams/s{ratio} "
            f"(batch {row['batch']}, {row.get('cores_used', 0):.2f} cores busy, first run "
            f"{row['first_run_s']:.1f} s) |"
        )
    if "folder" in record:
        f = record["folder"]
        lines.append(
            f"| folder of {f['photos']} mixed photos | {f['folder_median_s']:.2f} s as "
            f"`jaxdream dream FOLDER -o OUT/`, {f['grouped_dream_many_median_s']:.2f} s by "
            f"`dream_many` on groups made by hand: {f['folder_overhead']:+.1%} |"
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
    parser.add_argument(
        "--programs", action="store_true", help="only the program cost by tile count"
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[2, 4, 6], help="deepest levels")
    parser.add_argument("--repo", help="the checkout whose program cost is measured")
    args = parser.parse_args(argv)
    if args.programs:
        size = args.size if args.size != 560 else 64
        rows = programs(tuple(args.levels), size=size, repo=args.repo)
        print(programs_table(rows))
        if args.json:
            Path(args.json).write_text(json.dumps({"programs": rows}, indent=1))
        return 0
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
