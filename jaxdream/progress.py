"""Progress from inside compiled programs: one host callback per image and dream iteration.

A dream is one compiled program (a ``lax.scan`` over iterations); with ``DreamSpec.progress``
each iteration of each image ends with ``jax.debug.callback`` to ``iteration_done(image,
iteration, value)``. ``value`` is a number of the iteration's result, so the callback cannot run
before the iteration has (XLA may otherwise move it to the start of the loop body). Images are
told apart by their place in the batch: a strategy that computes one image on several devices
(``Replicated``), or pads a batch with copies, reports it more than once, and those reports
count once. The innermost ``listening`` callback is told how many iterations the batch has done
(completed image-iterations over the batch's images). The callback is a module function, so it
never causes a retrace; with no listener it does nothing.

>>> seen = []
>>> with listening(seen.append, images=2):
...     for image, iteration in [(0, 0), (0, 0), (1, 0), (0, 1)]:
...         iteration_done(image, iteration, 0.0)
>>> seen
[1]
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import jax
import numpy as np

# Dreams of fewer tile steps than this run without callbacks under the command line's bar (it
# shows the compile stage and the end). A program with host callbacks can never come from JAX's
# persistent cache (the callback's address is part of it), so each process compiles it again
# (0.6-0.8 s for the presets on a 2-core CPU), and the callbacks cost ~1 ms per program and
# ~0.7 ms per iteration besides. From 250,000 tile steps (about 20 s of dreaming on that CPU)
# that is a few percent, and a bar that moves is worth it.
REPORT_FROM_TILE_STEPS = 250_000

_LISTENERS: list[_Listener] = []
_LOCK = threading.Lock()
_CACHE_HITS = [0]
_WATCHING = [False]


class _Listener:
    def __init__(self, callback: Callable[[int], object], images: int):
        self.callback, self.images = callback, max(1, images)
        self.seen: set[tuple[int, int]] = set()
        self.told = 0

    def done(self, image: int, iteration: int) -> None:
        self.seen.add((image, iteration))
        n = len(self.seen) // self.images
        if n > self.told:
            self.told = n
            self.callback(n)


def iteration_done(image, iteration, value=None) -> None:
    """Host side: ``iteration`` (0-based) of the batch's image ``image`` has finished."""
    with _LOCK:
        listener = _LISTENERS[-1] if _LISTENERS else None
        if listener is None:
            return
        key = (int(np.asarray(image)), int(np.asarray(iteration)))
    listener.done(*key)


def report(image: jax.Array, iteration: jax.Array, value: jax.Array) -> None:
    """Inside a traced program: call ``iteration_done`` on the host once ``value`` (a scalar of
    the iteration's result) is computed."""
    jax.debug.callback(iteration_done, image, iteration, value)


@contextlib.contextmanager
def listening(callback: Callable[[int], object], images: int = 1) -> Iterator[None]:
    """Within the block, ``callback(iterations_done)`` each time the dream of a batch of
    ``images`` has done one more iteration (counted over all its images)."""
    listener = _Listener(callback, images)
    with _LOCK:
        _LISTENERS.append(listener)
    try:
        yield
    finally:
        with _LOCK:
            _LISTENERS.remove(listener)


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


_PROGRAMS: dict = {}  # the programs compiled ahead in this process, by lowered program key
KEEP_PROGRAMS = 16


def call(jitted, args: tuple, dynamic: tuple[int, ...], cacheable: bool = True):
    """``jitted(*args)`` (``dynamic``: the positions of its non-static arguments), computed by
    ``jaxdream.parallel.run``. Where ``watching_compiles`` listens, the program is lowered and
    compiled first, the listener told whether it was compiled or loaded from the cache
    (``cacheable=False``: a program with host callbacks, which JAX's cache never holds)."""
    from jaxdream import cache
    from jaxdream.parallel import run

    if not _WATCHERS:
        return run(lambda: jitted(*args))
    tell = _WATCHERS[-1]

    def compile_and_call():
        lowered = jitted.lower(*args)
        key = cache.program_key(lowered.as_text())
        compiled = _PROGRAMS.get(key)
        if compiled is None:
            known = cacheable and cache.holds_program(key)
            tell("loading" if known else "compiling", None)
            hits, t0 = cache_hits(), time.perf_counter()
            compiled = lowered.compile()
            loaded = cache_hits() > hits
            if cacheable and not loaded:
                cache.note_program(key)
            tell("loaded" if loaded else "compiled", time.perf_counter() - t0)
            if len(_PROGRAMS) >= KEEP_PROGRAMS:
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
            _PROGRAMS[key] = compiled
        return jax.block_until_ready(compiled(*(args[i] for i in dynamic)))

    return run(compile_and_call)


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
