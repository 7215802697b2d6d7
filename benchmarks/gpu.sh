#!/usr/bin/env bash
# The benchmark suite on a GPU machine: OIP at batch 1 to 1024, dreams at once up to 256, the
# article and cascade workloads; appends a history line. Needs jax with CUDA, flax, optax,
# numpy, pillow, tqdm (tensorflow-datasets is not needed to dream). A few minutes.
#   bash benchmarks/gpu.sh [extra suite flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import jax
print("devices:", jax.devices())
assert jax.default_backend() == "gpu", "no GPU visible to JAX"
PY
# The history line is appended here; the same record goes to $OUT/gpu_record.json so that a run
# on a lent machine (where only $OUT comes back) can be appended to history.jsonl at home.
python -m benchmarks --peers none --oip-batches 1 5 64 320 1024 --many 1 8 64 256 \
  --json "${OUT:-.}/gpu_record.json" "$@"
