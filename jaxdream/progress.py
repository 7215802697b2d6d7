"""Progress: the compile stage told as it happens, and long dreams run an iteration at a time.

A dream is one compiled program. To say where it is, ``jaxdream.dream`` can instead run it one
iteration per call (``carve.carve_batch_part``: the same numbers, tested byte for byte) and
tell a callback after each; host callbacks from inside the program would do the same, but a
program with host callbacks is never loaded from JAX's persistent cache (the callback's address
is part of it), so every process would compile it again.

``watching_compiles(callback)`` makes the dreams within it compile ahead of running (``call``,
``compiled``) and say whether the program was compiled or loaded from the cache, before and
after.

>>> events = []
>>> with watching_compiles(lambda event, seconds: events.append(event)):
...     fn = compiled(jax.jit(lambda x: x + 1), (np.float32(1),), (0,))
>>> events, float(fn(np.float32(2)))
(['compiling', 'compiled'], 3.0)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import jax
import numpy as np

from jaxdream import cache
from jaxdream.parallel import run

# Tile steps an iteration must take (steps x tiles) for the command line's bar to run a dream
# an iteration a call: on a 2-core CPU a call costs ~0.5 ms on one device and ~1.3 ms on two
# (one image split over both; the suite's cascade, 630 tile steps an iteration of 43 ms: +4.5%;
# vivid, 630 of 50 ms: +3%; the article's 60 of 6 ms would pay +20%). Shorter dreams run whole
# and their bar moves once, at the end.
CALL_PER_ITERATION_FROM = 400

_CACHE_HITS = [0]
_WATCHING = [False]


_WATCHERS: list[Callable[[str, float | None], object]] = []


@contextlib.contextmanager
def watching_compiles(callback: Callable[[str, float | None], object]) -> Iterator[None]:
    """Within the block, dreams compile their programs ahead of running them and tell
    ``callback(event, seconds)``: ``"compiling"`` or ``"loading"`` (from the persistent cache)
    before, ``"compiled"`` or ``"loaded"`` after, with the seconds it took. A program compiled
    earlier in this process is neither compiled nor loaded: no event."""
    _WATCHERS.append(callback)
    try:
        yield
    finally:
        _WATCHERS.remove(callback)


_PROGRAMS: dict = {}  # the programs compiled ahead in this process, by signature
KEEP_PROGRAMS = 16


def _signature(jitted, args: tuple, dynamic: tuple[int, ...]):
    static = tuple(a for i, a in enumerate(args) if i not in dynamic)
    leaves, treedef = jax.tree.flatten([args[i] for i in dynamic])
    shapes = tuple(
        (np.shape(a), str(getattr(a, "dtype", type(a))), getattr(a, "weak_type", False))
        for a in leaves
    )
    return id(jitted), static, treedef, shapes


def compiled(jitted, args: tuple, dynamic: tuple[int, ...]):
    """``jitted`` with ``args``' static arguments bound (``dynamic``: the positions of the
    others): a function of the dynamic arguments. Where ``watching_compiles`` listens, the
    program is compiled now, the listener told whether it was compiled or loaded from the
    persistent cache; a program this process compiled before is reused, and nothing is told."""
    if not _WATCHERS:
        return lambda *values: jitted(*_merge(args, dynamic, values))
    signature = _signature(jitted, args, dynamic)
    program = _PROGRAMS.get(signature)
    if program is None:
        program = compile_lowered(jitted.lower(*args))
        if len(_PROGRAMS) >= KEEP_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[signature] = program
    return program


def compile_lowered(lowered):
    """``lowered.compile()``, told to the innermost ``watching_compiles`` listener, if any:
    ``"loading"`` where jaxdream noted the program in the persistent cache, else
    ``"compiling"``, then what it was (JAX's cache-hit event) and how long it took."""
    if not _WATCHERS:
        return lowered.compile()
    tell = _WATCHERS[-1]
    key = cache.program_key(lowered.as_text())
    tell("loading" if cache.holds_program(key) else "compiling", None)
    hits, t0 = cache_hits(), time.perf_counter()
    program = lowered.compile()
    loaded = cache_hits() > hits
    if not loaded:
        cache.note_program(key)
    tell("loaded" if loaded else "compiled", time.perf_counter() - t0)
    return program


def _merge(args: tuple, dynamic: tuple[int, ...], values: tuple) -> tuple:
    merged = list(args)
    for i, v in zip(dynamic, values, strict=True):
        merged[i] = v
    return tuple(merged)


def call(jitted, args: tuple, dynamic: tuple[int, ...]):
    """``jitted(*args)`` computed by ``jaxdream.parallel.run`` (interruptible), compiled as
    ``compiled`` says."""

    def go():
        fn = compiled(jitted, args, dynamic)
        return jax.block_until_ready(fn(*(args[i] for i in dynamic)))

    return run(go)


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
