"""A new process's first dream, with JAX's persistent compilation cache in ``--cache-dir``.

Prints one JSON line. By default (run by ``benchmarks.suite.cold_start``): seconds to import
and load, seconds of the first dream call (compile or cache load, plus one run), and the median
of ``--repeats`` more calls (how fast this process dreams: the speed differs between processes,
see benchmarks/NOTES.md).

``--public``: the first ``jaxdream.dream(photo)`` of the process, as a user calls it (the
bundled sample photo, the bundled weights), and the import before it. ``--pieces``: the same
dream taken apart, each piece timed in the order the call makes it: ``load_model``, the photo
(read and prepared), ``dream_call``, ``program`` (the exported program taken from the cache,
where this jaxdream has one), ``trace``, ``lower``, ``compile`` (or the load from the
persistent cache) and the first ``call``. Both run against any checkout of jaxdream (an older
one has no exported program: its ``program`` piece is absent)::

    python -m benchmarks.coldstart --cache-dir /tmp/c --public   # twice: the second is warm
"""

import argparse
import json
import statistics
import time

start = time.perf_counter()

from jaxdream.cache import enable_compilation_cache  # noqa: E402
from jaxdream.runtime import configure_cpu_devices  # noqa: E402

configure_cpu_devices()

parser = argparse.ArgumentParser()
parser.add_argument("--cache-dir", required=True)
parser.add_argument("--size", type=int, default=560)
parser.add_argument("--repeats", type=int, default=15)
parser.add_argument("--preset", default="article", help="the preset of --public and --pieces")
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--public", action="store_true", help="time the first jaxdream.dream(photo)")
mode.add_argument("--pieces", action="store_true", help="time each piece of that first call")
args = parser.parse_args()
enable_compilation_cache(args.cache_dir)


def public() -> dict:
    import jaxdream
    from jaxdream.checkpoint import bundled_sample_path

    config = jaxdream.preset_config(args.preset).replace(size=args.size)
    imported = time.perf_counter()
    jaxdream.dream(str(bundled_sample_path()), config)
    done = time.perf_counter()
    return {"import_s": imported - start, "first_dream_s": done - imported}


def pieces() -> dict:
    import importlib.util

    import jax
    import numpy as np

    from jaxdream import preset_config
    from jaxdream.carve import carve_batch
    from jaxdream.checkpoint import bundled_sample_path, load_model
    from jaxdream.imageio import load_photo

    # the dream API's module, as this checkout names it
    named = "jaxdream.dreaming"
    if importlib.util.find_spec(named) is None:
        named = "jaxdream.dream"
    dream = importlib.import_module(named)
    times = {"import_s": time.perf_counter() - start}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[f"{name}_s"] = time.perf_counter() - t0
        return out

    config = preset_config(args.preset).replace(size=args.size)
    model, params = timed("load_model", load_model)

    def photo():
        p = load_photo(str(bundled_sample_path()))
        return np.stack([dream.prepare(p, config.working_shape(p.shape))])

    images = timed("photo", photo)
    call = timed("dream_call", lambda: dream.dream_call(model, params, config, images))
    make = getattr(dream, "exported_program", None)  # absent before the exported cache
    program = timed("program", lambda: make(call)) if make is not None else None
    if program is None:
        jitted, dynamic = carve_batch, tuple(call)
    else:
        jitted, dynamic = program, (call.params, call.images, call.knobs, call.keys)
    traced = timed("trace", lambda: jitted.trace(*dynamic))
    lowered = timed("lower", traced.lower)
    compiled = timed("compile", lowered.compile)
    if program is None:
        dynamic = (call.params, call.images, call.knobs, call.keys)
    timed("call", lambda: jax.block_until_ready(compiled(*dynamic)))
    times["first_dream_s"] = sum(v for k, v in times.items() if k != "import_s")
    return times


def suite_record() -> dict:
    from benchmarks.suite import WORKLOADS, _dream_call, working_image
    from jaxdream.checkpoint import load_model

    model, params = load_model()
    image = working_image(args.size)
    config = WORKLOADS["article"].replace(size=args.size)
    run, _ = _dream_call(model, params, config, image[None])
    loaded = time.perf_counter()
    run()
    done = time.perf_counter()
    samples = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    record = {"import_and_load_s": loaded - start, "first_call_s": done - loaded}
    if samples:
        record["dream_median_s"] = statistics.median(samples)
    return record


print(json.dumps(public() if args.public else pieces() if args.pieces else suite_record()))
