"""How XLA runs on the CPU: one single-threaded device per core.

At the batch sizes of a dream (a handful of 28x28 tiles), XLA's multi-threaded CPU kernels gain
nothing and sometimes lose half their speed to two threads contending for two cores. One
single-threaded XLA device per core, with the OIP batch split across them by ``shard_map``, is
measured faster (benchmarks/README.md), as is XLA's own code over its YNNPACK fusions. The CLI
and the benchmarks call ``configure_cpu_devices()`` first; library users may too, before their
first JAX computation.
"""

from __future__ import annotations

import os

CPU_FLAGS = (
    "--xla_force_host_platform_device_count={n} --xla_cpu_multi_thread_eigen=false "
    # XLA's YNNPACK fusions (its default for dots, pools and some elementwise work) run the
    # dream's small matrices and pooling gradients slower than XLA's own kernels: off.
    "--xla_cpu_experimental_ynn_fusion_type="
)


def configure_cpu_devices(n: int | None = None) -> bool:
    """Ask XLA for ``n`` (default: one per core) single-threaded CPU devices.

    Only possible before JAX starts its backends, and only where the user has not set
    ``XLA_FLAGS`` (theirs win); returns whether the flags were set. Accelerators are not
    affected: the flags only shape the CPU platform.
    """
    from jax._src import xla_bridge

    if "XLA_FLAGS" in os.environ or xla_bridge.backends_are_initialized():
        return False
    n = n or os.cpu_count() or 1
    if n < 2:
        return False
    os.environ["XLA_FLAGS"] = CPU_FLAGS.format(n=n)
    return True
