"""Host work beside the dream: a render's frames kept (for resuming) and encoded on threads of
their own, in frame order, while the caller dreams the next frames; the progress it tells."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# A render's progress, where its caller shows one: called with the frames to make in all and
# those an interrupted run already made, it returns a context manager that gives ``(bar,
# stage)``: ``bar.update()`` once a frame is kept and encoded (a ``tqdm`` bar, say; ``None``:
# nothing), ``stage(event, seconds)`` for each program compiled or loaded
# (``jaxdream.progress.watching_compiles``).
Stage = Callable[[str, float | None], object]
Progress = Callable[[int, int], contextlib.AbstractContextManager[tuple[Any, Stage]]]


@contextlib.contextmanager
def no_progress(total: int, done: int) -> Iterator[tuple[None, Stage]]:
    """The ``Progress`` of a render that shows none."""
    yield None, lambda event, seconds: None


class KeepAndEncode:
    """A render's two host jobs a frame, each on a thread of its own, in frame order: keeping
    the frame for ``--resume`` and encoding it. At most ``ahead`` frames wait (the dream then
    waits for them), and, with ``ahead_bytes``, no more than those bytes of the frames ``put``
    says it holds (one frame always may: a 4K frame is 25 MB, 8 of them 200 MB); ``bar`` moves
    once a frame is both kept and encoded; an error of either
    job is raised by the next ``put`` or by leaving the block. On a host whose devices dream,
    the two jobs take two cores beside the caller's, which renders the next frame; before,
    one thread did both, and its PNGs (18 ms a 854x480 frame) and x264 (8 ms) added up.

    >>> done = []
    >>> with KeepAndEncode(None) as jobs:
    ...     for k in range(3):
    ...         jobs.put(lambda k=k: done.append(("kept", k)), lambda: None)
    >>> [k for what, k in done]
    [0, 1, 2]
    """

    def __init__(self, bar, ahead: int = 8, ahead_bytes: int | None = None):
        self.bar, self.ahead, self.ahead_bytes = bar, ahead, ahead_bytes
        self._keeper = ThreadPoolExecutor(1, thread_name_prefix="jaxdream-keep")
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="jaxdream-encode")
        self._pending: list = []
        self.waiting_bytes = 0  # of the frames whose jobs are not finished

    def __enter__(self) -> KeepAndEncode:
        return self

    def put(self, keep, encode, nbytes: int = 0) -> None:
        """Queue one frame's jobs (callables of no argument); ``nbytes``: what the frame they
        hold takes, counted against ``ahead_bytes``."""
        self._pending.append((self._keeper.submit(keep), self._encoder.submit(encode), nbytes))
        self.waiting_bytes += nbytes
        while (
            len(self._pending) > self.ahead
            or self._over_bytes()
            or (self._pending and all(f.done() for f in self._pending[0][:2]))
        ):
            self._finish_one()

    def _over_bytes(self) -> bool:
        return (
            self.ahead_bytes is not None
            and len(self._pending) > 1
            and self.waiting_bytes > self.ahead_bytes
        )

    def _finish_one(self) -> None:
        *futures, nbytes = self._pending.pop(0)
        self.waiting_bytes -= nbytes
        for future in futures:
            future.result()
        if self.bar is not None:
            self.bar.update()

    def __exit__(self, kind, error, trace) -> None:
        failed = kind is not None
        try:
            while self._pending and not failed:
                self._finish_one()
        except BaseException:
            failed = True
            raise
        finally:  # a job running ends (no frame is left half kept); after an error none starts
            for pool in (self._keeper, self._encoder):
                pool.shutdown(wait=True, cancel_futures=failed)
