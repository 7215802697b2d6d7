"""Several hosts: JAX's own multi-process runtime, and each process's share of the work.

``initialize`` joins a run through ``jax.distributed.initialize``: with no arguments JAX finds
the cluster itself (SLURM, Open MPI, TPU pods, ...); otherwise the coordinator's address, the
number of processes and this one's id. Each process then dreams a deterministic share of the
input list (``share``) on its own devices and writes its own outputs: no process waits for
another, and the union of their outputs is what one process would write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import jax

from jaxdream.errors import ConfigError

T = TypeVar("T")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join a multi-process run (before any JAX computation)."""
    given = [v is not None for v in (coordinator_address, num_processes, process_id)]
    if any(given) and not all(given):
        raise ConfigError(
            "give --coordinator-address, --num-processes and --process-id together, or "
            "--distributed alone for a cluster JAX detects"
        )
    if num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"cannot join the multi-host run: {e}") from None


def share(items: Sequence[T]) -> list[T]:
    """This process's share of ``items``: every ``process_count()``-th, from its index.

    >>> share(["a", "b", "c"])  # one process: all of them
    ['a', 'b', 'c']
    """
    return list(items[jax.process_index() :: jax.process_count()])


def describe() -> str:
    """`` (process I of N)`` in a multi-process run, else empty."""
    if jax.process_count() == 1:
        return ""
    return f" (process {jax.process_index()} of {jax.process_count()})"
