"""Plot the benchmark history (one dream's time per commit, per machine kind) to a PNG.

    python -m benchmarks.plot_history [-o benchmarks/history.png]

Needs matplotlib (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from benchmarks.suite import HISTORY, machine_kind


def plot(history: list[dict], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    for i, record in enumerate(history):
        for name, w in record.get("workloads", {}).items():
            series[(machine_kind(record), name)].append(
                (i, record["commit"], w["iteration_median_s"] * 1e3)
            )
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (kind, name), points in sorted(series.items()):
        xs, _, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=f"{name} on {kind}")
    ticks = [(i, r["commit"]) for i, r in enumerate(history)]
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], rotation=45, ha="right")
    ax.set_ylabel("one iteration (ms, median)")
    ax.set_yscale("log")
    ax.set_title("jaxdream iteration time over commits")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history", default=str(HISTORY))
    parser.add_argument("-o", "--output", default=str(Path(HISTORY).with_suffix(".png")))
    args = parser.parse_args()
    lines = Path(args.history).read_text().splitlines()
    plot([json.loads(ln) for ln in lines if ln.strip()], Path(args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
