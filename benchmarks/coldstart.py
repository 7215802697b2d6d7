"""A new process's first dream, with JAX's persistent compilation cache in ``--cache-dir``.

Prints one JSON line: seconds to import and load, seconds of the first dream call (compile or
cache load, plus one run), and the median of ``--repeats`` more calls (how fast this process
dreams: the speed differs between processes, see benchmarks/README.md). Run by
``benchmarks.suite.cold_start``.
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
args = parser.parse_args()
enable_compilation_cache(args.cache_dir)

from benchmarks.suite import WORKLOADS, _dream_call, working_image  # noqa: E402
from jaxdream.checkpoint import load_model  # noqa: E402

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
print(json.dumps(record))
