"""One OIP step on the CPU, looked at: XLA's optimized program (its fusions and other ops), the
time of each of its kernels (JAX's profiler, one event per XLA thunk), and the step's time with
each convolution, in turns within one process.

    python -m benchmarks.step_profile              # batch 5 (the article's 5 tiles)
    python -m benchmarks.step_profile --batch 3    # a device's share of them on 2 devices

The step is ``ascent_step`` (the forward pass to the objective's layer, its gradient and the RMS
update) vmapped over the batch, as the dream runs it; the timing loop runs 30 steps inside one
``fori_loop``. Times are wall and this process's CPU time (the steadier one on a shared
machine).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import gzip
import json
import re
import statistics
import tempfile
import time

from jaxdream.runtime import configure_cpu_devices

configure_cpu_devices(1)  # one device: the step itself, not the split over devices

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxdream.checkpoint import load_model  # noqa: E402
from jaxdream.model import CONV_IMPLS  # noqa: E402
from jaxdream.objectives import broadcast_objective, channel  # noqa: E402
from jaxdream.patterns import ascent_step  # noqa: E402


def _steps(model, count: int):
    def run(params, objective, images):
        def body(_, x):
            return jax.vmap(lambda o, x: ascent_step(model, params, o, x, 0.01)[0])(objective, x)

        return jax.lax.fori_loop(0, count, body, images)

    return jax.jit(run)


def program(model, params, objective, images) -> dict:
    """The optimized program of one step: its op counts (top level) and fusion count."""
    compiled = _steps(model, 1).lower(params, objective, images).compile()
    text = compiled.as_text()
    entry = text[text.index("ENTRY") :]
    ops = collections.Counter(re.findall(r"= \S+ ([a-z][\w-]*)\(", entry))
    return {"ops": dict(ops.most_common()), "fusions": text.count(" fusion(")}


def kernels(model, params, objective, images, calls: int = 50, top: int = 12) -> list[dict]:
    """Microseconds per step of each XLA kernel (thunk), from a profile of ``calls`` steps."""
    step = _steps(model, 1).lower(params, objective, images).compile()
    for _ in range(10):
        step(params, objective, images).block_until_ready()
    folder = tempfile.mkdtemp(prefix="jaxdream-profile-")
    with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(calls):
            out = step(params, objective, images)
        out.block_until_ready()
    trace = sorted(glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True))[-1]
    with gzip.open(trace) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    total: dict[str, float] = collections.defaultdict(float)
    for e in events:
        name = e.get("name", "")
        # XLA's kernels: fusions and the ops left alone (dots, concatenates, ...).
        if e.get("ph") == "X" and re.fullmatch(r"[a-z][\w-]*(\.\d+)?", name):
            total[name] += e.get("dur", 0.0)
    rows = sorted(total.items(), key=lambda kv: -kv[1])
    whole = sum(total.values())
    return [{"kernel": k, "us_per_step": v / calls, "share": v / whole} for k, v in rows[:top]] + [
        {"kernel": "all kernels", "us_per_step": whole / calls, "share": 1.0}
    ]


def compare(models: dict, params, objective, images, turns: int = 7) -> dict:
    """Per-step time of each model (30 steps a call, 5 calls a turn), in turns."""
    compiled = {
        k: _steps(m, 30).lower(params, objective, images).compile() for k, m in models.items()
    }
    first = None
    diffs = {}
    for k, c in compiled.items():
        out = np.asarray(c(params, objective, images))
        first = out if first is None else first
        diffs[k] = float(np.abs(out - first).max())
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in compiled}
    for _ in range(turns):
        for k, c in compiled.items():
            c(params, objective, images).block_until_ready()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                out = c(params, objective, images)
            out.block_until_ready()
            samples[k].append(((time.perf_counter() - t0) / 150, (time.process_time() - c0) / 150))
    return {
        k: {
            "wall_us": statistics.median(a for a, _ in s) * 1e6,
            "cpu_us": statistics.median(b for _, b in s) * 1e6,
            "max_abs_diff": diffs[k],
        }
        for k, s in samples.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_profile")
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--convs", nargs="+", default=list(CONV_IMPLS))
    parser.add_argument("--json", help="write the record here")
    args = parser.parse_args(argv)
    model, params = load_model()
    model = model.resolved()
    objective = broadcast_objective(channel("conv3", 56), args.batch)
    images = jax.random.normal(jax.random.key(0), (args.batch, 28, 28))
    record = {
        "batch": args.batch,
        "conv": model.conv,
        "program": program(model, params, objective, images),
        "kernels": kernels(model, params, objective, images),
    }
    models = {c: dataclasses.replace(model, conv=c).resolved() for c in args.convs}
    record["convs"] = compare(models, params, objective, images)
    print(
        f"one step, batch {args.batch}, conv={model.conv}: {record['program']['fusions']} fusions"
    )
    print("top-level ops:", record["program"]["ops"])
    for k in record["kernels"]:
        print(f"  {k['us_per_step']:8.1f} us/step {k['share']:6.1%}  {k['kernel']}")
    for c, v in record["convs"].items():
        print(
            f"  conv={c:7s} {v['wall_us']:7.1f} us/step wall, {v['cpu_us']:7.1f} CPU "
            f"(max abs diff after 30 steps {v['max_abs_diff']:.1e})"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
