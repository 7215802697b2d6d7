"""Progress: the compile stage told as it happens, and long dreams run an iteration at a time.

A dream is one compiled program. To say where it is, ``jaxdream.dream`` can instead run it one
iteration per call (``carve.carve_batch_part``: the same numbers, tested byte for byte) and
tell a callback after each; host callbacks from inside the program would do the same, but a
program with host callbacks is never loaded from JAX's persistent cache (the callback's address
is part of it), so every process would compile it again.

``watching_compiles(callback)`` makes the dreams within it compile ahead of running (the
program store, ``jaxdream.programs``) and say whether the program was compiled or loaded from
the cache, before and after.

>>> import jax, numpy as np
>>> from jaxdream.programs import compiled
>>> events = []
>>> with watching_compiles(lambda event, seconds: events.append(event)):
...     fn = compiled(jax.jit(lambda x: x + 1), (np.float32(1),), (0,))
>>> events, float(fn(np.float32(2)))
(['compiling', 'compiled'], 3.0)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

# Tile steps an iteration must take (steps x tiles) for the command line's bar to run a dream
# an iteration a call: on a 2-core CPU a call costs ~0.5 ms on one device and ~1.3 ms on two
# (one image split over both; the suite's cascade, 630 tile steps an iteration of 43 ms: +4.5%;
# vivid, 630 of 50 ms: +3%; the article's 60 of 6 ms would pay +20%). Shorter dreams run whole
# and their bar moves once, at the end.
CALL_PER_ITERATION_FROM = 400

# The listeners of ``watching_compiles``, innermost last: the program store tells the last.
LISTENERS: list[Callable[[str, float | None], object]] = []


@contextlib.contextmanager
def watching_compiles(callback: Callable[[str, float | None], object]) -> Iterator[None]:
    """Within the block, dreams compile their programs ahead of running them and tell
    ``callback(event, seconds)``: ``"compiling"`` or ``"loading"`` (from the persistent cache)
    before, ``"compiled"`` or ``"loaded"`` after, with the seconds it took. A program compiled
    earlier in this process is neither compiled nor loaded: no event."""
    LISTENERS.append(callback)
    try:
        yield
    finally:
        LISTENERS.remove(callback)
