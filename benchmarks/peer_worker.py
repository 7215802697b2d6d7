"""One peer and jaxdream side by side in a process of their own (``bench_peers`` for one name).

Prints the peer's row as one JSON line. Run by ``benchmarks.suite.bench_peers_isolated``: with
PyTorch and TensorFlow loaded into one process, jaxdream's dreams after a TensorFlow call ran
about 20% slower than with either alone (benchmarks/NOTES.md), and no user runs all three.
"""

import argparse
import json

from jaxdream.runtime import configure_cpu_devices

configure_cpu_devices()

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("--size", type=int, default=560)
parser.add_argument("--repeats", type=int, default=9)
parser.add_argument("--oip-batch", type=int, default=320)
parser.add_argument("--threads", type=int, help="the peer's intra-op threads")
args = parser.parse_args()

from benchmarks.suite import WORKLOADS, bench_peers, working_image  # noqa: E402
from jaxdream.checkpoint import bundled_sample_path, load_model  # noqa: E402
from jaxdream.config import DreamConfig  # noqa: E402
from jaxdream.imageio import load_photo  # noqa: E402
from jaxdream.imageops import resize_host  # noqa: E402

model, params = load_model()
model = model.resolved()
config = WORKLOADS["article"].replace(size=args.size)
photo = resize_host(load_photo(bundled_sample_path()).gray, (args.size, args.size))
row = bench_peers(
    model,
    params,
    config,
    working_image(args.size),
    [args.name],
    args.repeats,
    args.oip_batch,
    threads=args.threads,
    photo=photo,
    extra={"2 tiles": DreamConfig(size=args.size)},  # the article's: full image + quadrant 3
)[args.name]
print(json.dumps(row))
