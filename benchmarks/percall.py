"""What the public dream costs over its own compiled core, per call.

In alternating turns within one process: the compiled core (``dream_call(...)()``), the public
``jaxdream.dream(gray, config, model=, params=)`` and ``jaxdream.dream(gray, config)`` with no
parameters (the bundled weights). Prints one JSON line of medians, wall and CPU time (the CPU
time of the whole process: steadier than the wall on a shared machine)::

    python -m benchmarks.percall --tiles 2 --repeats 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence


def measure(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and process CPU seconds of each call, taken in turns (after one warm-up)."""
    for fn in calls.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        name: {"wall_s": statistics.median(wall[name]), "cpu_s": statistics.median(cpu[name])}
        for name in calls
    }


def calls(config, model, params, gray) -> dict[str, Callable[[], object]]:
    """The three calls compared: ``core``, ``api`` and ``api_no_params``."""
    import jaxdream
    from jaxdream.dreaming import dream_call

    call = dream_call(model, params, config, gray[None])
    return {
        "core": lambda: call()[0].block_until_ready(),
        "api": lambda: jaxdream.dream(gray, config, network=model, params=params),
        "api_no_params": lambda: jaxdream.dream(gray, config),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, choices=(2, 5), default=2)
    parser.add_argument("--size", type=int, default=560)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)

    from jaxdream.runtime import configure_cpu_devices

    configure_cpu_devices()
    from jaxdream.checkpoint import bundled_sample_path, load_model
    from jaxdream.config import DreamConfig, Level
    from jaxdream.dreaming import prepare
    from jaxdream.imageio import load_photo

    levels = (Level(0), Level(1, tiles=(3,))) if args.tiles == 2 else (Level(0), Level(1))
    config = DreamConfig(size=args.size, levels=levels)
    model, params = load_model()
    gray = prepare(load_photo(bundled_sample_path()), (args.size, args.size))
    record = measure(calls(config, model, params, gray), args.repeats)
    core, api, bare = record["core"], record["api"], record["api_no_params"]
    record["api_over_core_ms"] = {k: 1e3 * (api[k] - core[k]) for k in core}
    record["no_params_over_params_ms"] = {k: 1e3 * (bare[k] - api[k]) for k in core}
    print(json.dumps({"tiles": args.tiles, **record}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
