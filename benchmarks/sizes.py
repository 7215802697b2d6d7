"""Cost that follows the pixels: dreams at working sizes 560 to 4480, and the photo-size output.

For each preset (vivid, article) and working size, on a photo of the working shape (the
dream's own cost, not the photo's preparation): the warm dream's median time, the same dream
with 0 OIP steps (only the image operations of every level and iteration: cut, resize, place,
standardize), and both per megapixel of the working image, beside a memory-traffic estimate:
the bytes an iteration must move at least (``traffic_bytes``) over the machine's measured
memory bandwidth (a numpy copy of 256 MB). Then a 12-megapixel photo dreamt with the defaults
(its preparation included), and the output path of a 12-megapixel photo
(``jaxdream.fullres.carved_photo``: the change enlarged and applied at full resolution), also
against its traffic estimate. One line goes to ``benchmarks/history.jsonl`` with ``--record``.

    python -m benchmarks.sizes [--sizes 560 1120 2240 4480] [--repeats 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from jaxdream.runtime import configure_cpu_devices

PHOTO_12MP = (3000, 4000)


def bandwidth_gb_s(megabytes: int = 256, repeats: int = 5) -> float:
    """The host's copy bandwidth (read + write bytes a second), best of ``repeats``."""
    a = np.ones(megabytes * 2**20 // 4, np.float32)
    b = np.empty_like(a)
    best = min(_timed(lambda: np.copyto(b, a)) for _ in range(repeats))
    return 2 * a.nbytes / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def traffic_bytes(config, shape: tuple[int, int]) -> float:
    """The bytes a dream must move at least, in float32 images of ``shape``: each iteration
    reads the image once for every level's cuts (overlapping tiles read their overlap again),
    writes and reads each level's placed change once, and reads the image twice and writes it
    once to standardize it; one read and one write at the end."""
    pixels = shape[0] * shape[1] * 4.0
    grow = (1 + config.overlap) ** 2  # an overlapping level's tiles cover this much more
    per_iteration = 0.0
    for lv in config.levels:
        area = 1.0 if lv.level == 0 else grow * len(lv.tile_indices()) / 4**lv.level
        per_iteration += area + 2  # read the tiles; write the change, read it to add it
    per_iteration += 3
    return (per_iteration * config.iterations + 2) * pixels


def dream_times(config, photo: np.ndarray, repeats: int) -> dict:
    import jax

    from jaxdream import dream

    result = dream(photo, config)  # compiles
    jax.block_until_ready(result.image)
    times = sorted(_timed(lambda: dream(photo, config)) for _ in range(repeats))
    return {"median_s": times[len(times) // 2], "min_s": times[0], "shape": result.image.shape}


def output_times(repeats: int) -> dict | None:
    try:
        from jaxdream.fullres import carved_photo
    except ImportError:  # a commit before the photo-size output (a before/after pair)
        return None

    rng = np.random.default_rng(0)
    rgb = rng.random((*PHOTO_12MP, 3), dtype=np.float32)
    change = rng.standard_normal((420, 560)).astype(np.float32)
    carved_photo(rgb, change, 0.5, True)
    times = sorted(_timed(lambda: carved_photo(rgb, change, 0.5, True)) for _ in range(repeats))
    pixels = PHOTO_12MP[0] * PHOTO_12MP[1]
    # read float RGB (12 bytes), write the enlarged change and read it (8), write uint8 RGB (3)
    return {"median_s": times[len(times) // 2], "traffic_bytes": pixels * (12 + 8 + 3)}


def main(argv=None) -> int:
    configure_cpu_devices()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[560, 1120, 2240, 4480])
    p.add_argument("--presets", nargs="+", default=["vivid", "article"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--record", action="store_true", help="append a line to the history")
    args = p.parse_args(argv)

    from benchmarks.suite import HISTORY, environment
    from jaxdream.presets import preset_config

    rng = np.random.default_rng(1)
    bandwidth = bandwidth_gb_s()
    print(f"memory bandwidth (copy): {bandwidth:.1f} GB/s")
    rows = {}
    for name in args.presets:
        for size in args.sizes:
            config = preset_config(name).replace(size=size)
            # A photo of the working shape: the dream's own cost, not the photo's preparation
            shape = config.working_shape(PHOTO_12MP)
            photo = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            full = dream_times(config, photo, args.repeats)
            ops = dream_times(config.replace(steps=0), photo, args.repeats)
            shape = full.pop("shape")
            ops.pop("shape")
            mp = shape[0] * shape[1] / 1e6
            bound = traffic_bytes(config, shape) / (bandwidth * 1e9)
            row = {
                "shape": list(shape),
                "dream": full,
                "image_ops": ops,
                "dream_ms_per_mp": 1e3 * full["median_s"] / mp,
                "image_ops_ms_per_mp": 1e3 * ops["median_s"] / mp,
                "traffic_bound_s": bound,
                "image_ops_over_bound": ops["median_s"] / bound,
            }
            rows[f"{name}/{size}"] = row
            print(
                f"{name:8s} {shape[1]:5d}x{shape[0]:<5d} dream {full['median_s']:7.3f} s "
                f"({row['dream_ms_per_mp']:6.1f} ms/MP), image ops {ops['median_s']:7.3f} s, "
                f"bound {bound:6.3f} s (x{row['image_ops_over_bound']:.1f})",
                flush=True,
            )
    photo12 = rng.integers(0, 256, (*PHOTO_12MP, 3), dtype=np.uint8)
    whole = dream_times(preset_config("vivid"), photo12, args.repeats)
    print(f"a 12 MP photo dreamt with the defaults (vivid, 560): {whole['median_s']:.3f} s")
    out = output_times(args.repeats)
    if out is not None:
        out["traffic_bound_s"] = out["traffic_bytes"] / (bandwidth * 1e9)
        print(
            f"photo-size output of a 12 MP photo: {out['median_s']:.3f} s, bound "
            f"{out['traffic_bound_s']:.3f} s (x{out['median_s'] / out['traffic_bound_s']:.1f})"
        )
    whole.pop("shape")
    record = {
        "sizes": rows,
        "photo_12mp_dream": whole,
        "photo_output_12mp": out,
        "bandwidth_gb_s": bandwidth,
    }
    if args.record:
        with open(HISTORY, "a") as f:
            f.write(json.dumps({**environment(), "size_sweep": record}) + "\n")
    else:
        print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
