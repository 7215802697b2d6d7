"""Dreams timed in turns, each side in a process of its own: a peer (``benchmarks/peers.py``),
``jaxdream.dream()`` as a user calls it, and jaxdream's compiled core.

Issue 22's protocol: jaxdream and each peer in processes of their own, alternating turns
(peer, jaxdream, core, peer, ...), ratio = median of the peer's / jaxdream's. A process holds
one library only, as a user's does (with TensorFlow loaded beside it, jaxdream's dream ran
13-20% slower: benchmarks/NOTES.md). Each side is a server on its stdin: it prepares and
warms its dream, says ``ready``, then answers each ``go`` with one untimed and one timed call
(seconds on its stdout)::

    python -m benchmarks.turns tf-function --threads 1 --tiles 5 --turns 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIDES = ("jaxdream", "jaxdream-core")


def _config(tiles: int, size: int):
    from jaxdream.config import DreamConfig, Level

    levels = (Level(0), Level(1)) if tiles == 5 else (Level(0), Level(1, tiles=(3,)))
    return DreamConfig(size=size, levels=levels)


def make_dream(side: str, tiles: int, size: int, threads: int | None) -> Callable[[], object]:
    """The zero-argument dream of ``side``: ``jaxdream`` (the public call on the gray photo at
    the working size), ``jaxdream-core`` (``dream_call(...)()``) or a peer's name (the same
    algorithm and weights on the standardized working image, at ``threads`` intra-op
    threads)."""
    import numpy as np

    from jaxdream.checkpoint import bundled_sample_path, load_model
    from jaxdream.dreaming import dream, dream_call, prepare
    from jaxdream.imageio import load_photo
    from jaxdream.imageops import resize_host

    config = _config(tiles, size)
    model, params = load_model()
    photo = load_photo(bundled_sample_path())
    image = prepare(photo, (size, size))
    if side == "jaxdream":
        gray = resize_host(photo.gray, (size, size))
        return lambda: dream(gray, config, network=model, params=params).image
    if side == "jaxdream-core":
        call = dream_call(model, params, config, image[None])
        return lambda: call()[0].block_until_ready()
    from benchmarks import peers

    ops = peers.build(side, params, threads)
    maps = np.array(config.knobs().objective.map, np.int32)  # writeable (PyTorch)
    quadrants = next((t for lv, t in config.spec(model.resolved(), image.shape).levels if lv == 1))
    return lambda: peers.dream(
        ops, image, maps, config.iterations, config.steps, config.epsilon, quadrants
    )


def serve(side: str, tiles: int, size: int, threads: int | None) -> None:
    if side in SIDES:
        from jaxdream.runtime import configure_cpu_devices

        configure_cpu_devices()  # as the CLI sets jaxdream up
    fn = make_dream(side, tiles, size, threads)
    fn()
    fn()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        fn()  # after the other side's turn its caches and threads are cold: one untimed call
        start = time.perf_counter()
        fn()
        print(time.perf_counter() - start, flush=True)


class Side:
    """A server process of ``serve``."""

    def __init__(self, side: str, tiles: int, size: int, threads: int | None):
        cmd = [sys.executable, "-m", "benchmarks.turns", "--serve", side, "--tiles", str(tiles)]
        cmd += ["--size", str(size)] + (["--threads", str(threads)] if threads else [])
        self.proc = subprocess.Popen(
            cmd, cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        said = self.proc.stdout.readline().strip()
        if said != "ready":
            self.close(kill=True)
            raise RuntimeError(f"{side}: its process failed before it was ready")

    def turn(self) -> float:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


def alternate(
    peer: str, tiles: int, size: int, threads: int | None, turns: int
) -> dict[str, dict[str, float]]:
    """``turns`` turns of the peer, ``jaxdream`` and ``jaxdream-core``, each in its process;
    medians, mins and maxes, and the peer's ratio over each jaxdream side."""
    sides: dict[str, Side] = {}
    samples: dict[str, list[float]] = {name: [] for name in (peer, *SIDES)}
    try:
        for name in samples:
            sides[name] = Side(name, tiles, size, threads)
        for _ in range(turns):
            for name, side in sides.items():
                samples[name].append(side.turn())
    finally:
        for side in sides.values():
            side.close()
    out: dict = {
        name if name in SIDES else "peer": {
            "median_s": statistics.median(s),
            "min_s": min(s),
            "max_s": max(s),
            "repeats": turns,
        }
        for name, s in samples.items()
    }
    out["ratio_peer_over_jaxdream"] = out["peer"]["median_s"] / out["jaxdream"]["median_s"]
    out["ratio_peer_over_jaxdream_core"] = (
        out["peer"]["median_s"] / out["jaxdream-core"]["median_s"]
    )
    return {"tiles": tiles, "threads": threads, **out}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", nargs="?", help="torch-eager, tf-function or tf-eager")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--tiles", type=int, choices=(2, 5), default=5)
    parser.add_argument("--size", type=int, default=560)
    parser.add_argument("--threads", type=int, help="the peer's intra-op threads")
    parser.add_argument("--turns", type=int, default=9)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.tiles, args.size, args.threads)
        return 0
    if not args.peer:
        parser.error("name a peer")
    print(json.dumps(alternate(args.peer, args.tiles, args.size, args.threads, args.turns)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
