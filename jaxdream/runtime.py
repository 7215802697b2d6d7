"""How XLA runs on the CPU: one single-threaded device per core, and its faster code paths.

At the batch sizes of a dream (a handful of 28x28 tiles), XLA's multi-threaded CPU kernels gain
nothing and sometimes lose half their speed to two threads contending for two cores. One
single-threaded XLA device per core, with the OIP batch split across them by ``shard_map``, is
measured faster (benchmarks/NOTES.md); so are XLA's own kernels over YNNPACK's, and its
classic fusion emitters, which also compile the dream in half the time. The
CLI and the benchmarks call ``configure_cpu_devices()`` first; library users may too, before
their first JAX computation.
"""

from __future__ import annotations

import os
import sys

DEVICE_FLAGS = "--xla_force_host_platform_device_count={n} --xla_cpu_multi_thread_eigen=false"

# XLA CPU code-generation choices, measured on jaxlib 0.10 (benchmarks/NOTES.md):
# - YNNPACK off (XLA's own dot and loop kernels): dreams about 10% faster than with YNNPACK's
#   dots and reductions, and faster still than with its elementwise fusions (its default);
# - the classic fusion emitters: they compile the dream in 0.4-0.6 s instead of 1.2 s and run
#   it as fast.
# XLA aborts on a flag it does not know, so they are set only for the versions measured.
TUNING_FLAGS = "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_fusion_emitters=false"
TUNED_JAXLIB = ((0, 10), (0, 11))  # [from, to)


def _jaxlib_version() -> tuple[int, ...]:
    # Imported here, as JAX below: this module runs before JAX starts (XLA_FLAGS is read then),
    # and imports JAX only where something else already did, to check its CPU devices.
    from jaxlib import version

    return tuple(int(p) for p in version.__version__.split(".")[:2] if p.isdigit())


def cpu_flags(n: int, jaxlib_version: tuple[int, ...] | None = None) -> str:
    """The ``XLA_FLAGS`` for ``n`` single-threaded CPU devices (none asked for below 2), plus
    the code-generation choices where this jaxlib is one they were measured on.

    >>> cpu_flags(2, (0, 10, 2)).split()[:2]
    ['--xla_force_host_platform_device_count=2', '--xla_cpu_multi_thread_eigen=false']
    >>> cpu_flags(1, (0, 4, 30))
    ''
    """
    low, high = TUNED_JAXLIB
    version = _jaxlib_version() if jaxlib_version is None else tuple(jaxlib_version[:2])
    flags = [DEVICE_FLAGS.format(n=n)] if n >= 2 else []
    if low <= version < high:
        flags.append(TUNING_FLAGS)
    return " ".join(flags)


def configure_cpu_devices(n: int | None = None) -> bool:
    """Ask XLA for ``n`` (default: one per core) single-threaded CPU devices and its faster
    CPU code-generation choices (``cpu_flags``).

    Only possible before JAX starts its backends, and only where the user has not set
    ``XLA_FLAGS`` (theirs win); returns whether the flags took effect. Accelerators are not
    affected: the flags only shape the CPU platform. Where JAX is already imported, the CPU
    backend is started here to check that it came up with the devices asked for (JAX has no
    public way to ask whether its backends have started); if it had started before, the flags
    are taken back and ``False`` returned.
    """
    if "XLA_FLAGS" in os.environ:
        return False
    n = n or os.cpu_count() or 1
    flags = cpu_flags(n)
    if not flags:
        return False
    os.environ["XLA_FLAGS"] = flags
    if n >= 2 and "jax" in sys.modules:
        import jax

        if len(jax.local_devices(backend="cpu")) != n:  # it had started with other flags
            del os.environ["XLA_FLAGS"]
            return False
    return True
