"""Progress from inside compiled programs: one host callback per dream iteration.

A dream is one compiled program (a ``lax.scan`` over iterations); with ``DreamSpec.progress``
each iteration ends with ``jax.debug.callback`` to ``iteration_done``, which tells the innermost
``listening`` callback how many iterations are done. The callback is a module function, so it
never causes a retrace; with no listener it does nothing.

>>> seen = []
>>> with listening(seen.append):
...     iteration_done(0)
>>> seen
[1]
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import jax
import numpy as np

_LISTENERS: list[Callable[[int], object]] = []
_LOCK = threading.Lock()
_CACHE_HITS = [0]
_WATCHING = [False]


def iteration_done(index) -> None:
    """Host side: iteration ``index`` (an array under ``vmap``: the furthest) has finished."""
    with _LOCK:
        listener = _LISTENERS[-1] if _LISTENERS else None
    if listener is not None:
        listener(int(np.max(np.asarray(index))) + 1)


def report(index: jax.Array) -> None:
    """Inside a traced program: call ``iteration_done(index)`` on the host when reached."""
    jax.debug.callback(iteration_done, index)


@contextlib.contextmanager
def listening(callback: Callable[[int], object]) -> Iterator[None]:
    """Within the block, ``callback(iterations_done)`` after each iteration of a dream."""
    with _LOCK:
        _LISTENERS.append(callback)
    try:
        yield
    finally:
        with _LOCK:
            _LISTENERS.remove(callback)


def _on_event(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _CACHE_HITS[0] += 1


def cache_hits() -> int:
    """Programs loaded from JAX's persistent compilation cache in this process so far (counted
    from the first call on)."""
    if not _WATCHING[0]:
        jax.monitoring.register_event_listener(_on_event)
        _WATCHING[0] = True
    return _CACHE_HITS[0]
