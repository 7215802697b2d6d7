"""Dreaming a video's frames: ``dream_video(path, config)`` yields the dreamt frames of a
video as they are made, each at the video's own size (rotation applied), alone or carrying the
frame before it (coherence).

Decoding runs on a host thread ahead of the dream, the dream runs on a second thread in
batches over every local device (``jaxdream.dream_photos``'s engine: one compiled program,
batches sized by ``jaxdream.parallel.items_per_device`` and by the bytes in flight, sharded over
the devices), and the caller's thread renders what comes out. ``VideoDreams.close()`` (or
leaving a ``contextlib.closing`` block) ends and joins both threads. Frames of
``LARGE_FRAME_PIXELS`` or more (4K) go one at a time, decoded, dreamt and shown in the caller's
thread: a 4K frame is 25 MB of RGB, and one in each stage of the pipeline held seven
frames' worth where the render needs about three (its dream takes a fraction
of the time its PNG for a resume and its encoding take, which run on their own threads: the
render loses nothing by it). Every public function here checks its arguments and raises
``VideoError`` or ``ConfigError`` (``jaxdream.errors``).

A colour (3-channel) network (``jaxdream.network.is_color``) dreams each frame's RGB as a still
colour dream does (``jaxdream.dreaming.prepare_rgb``): the carving carried with coherence is
``(H, W, 3)`` (the flow found on the frames' luminance moves every channel), and the frames
are the dreams' own colours (``color`` is then unused).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping

import jax
import numpy as np

from jaxdream import parallel
from jaxdream.checks import flag, number, one_of, shown, whole_number
from jaxdream.config import DreamConfig
from jaxdream.display import Display
from jaxdream.dreaming import DreamResult, prepare
from jaxdream.errors import ConfigError
from jaxdream.imageio import GRAY_WEIGHTS, photo_of
from jaxdream.imageops import standardize_host
from jaxdream.many import dream_photos
from jaxdream.network import Network, is_color, network_argument, resolve
from jaxdream.video.common import LARGE_FRAME_PIXELS, MAX_FRAMES, VideoError, _path
from jaxdream.video.reading import Decoded, Frame, VideoInfo, check_range

COHERENCE = ("none", "blend", "flow")

# What the frames in flight of a video's dream may hold, about (``frames_in_flight``): small
# frames are batched as photos are, large ones in smaller batches with fewer decoded ahead, and
# a frame of over a third of it (4K: 83 MB) goes alone through each stage.
FRAMES_IN_FLIGHT_BYTES = 256 * 2**20
# Host bytes a frame in flight is counted at, a pixel: its RGB, a copy of it and a float
# luminance (3 + 3 + 4), as frames cost before each photo became its decoded frame itself with
# its luminance made in bands (about 3 + 3 now, with the frame made): kept, so that the batches
# of smaller frames did not change.
FRAME_BYTES_PER_PIXEL = 10


def frames_in_flight(
    width: int, height: int, batch: int, chosen: bool = False
) -> tuple[int, int, int]:
    """``(batch, ahead, waiting)`` for frames of ``width`` x ``height``: the frames dreamt at
    once (``batch`` as asked where ``chosen``, else cut to fit), those decoded ahead of the
    dream and the dreamt batches waiting to be shown; together, a third of them in each stage,
    within ``FRAMES_IN_FLIGHT_BYTES`` (at least one frame in each).

    >>> frames_in_flight(1280, 720, 4), frames_in_flight(3840, 2160, 4)
    ((4, 9, 2), (1, 1, 1))
    """
    room = max(3, FRAMES_IN_FLIGHT_BYTES // (width * height * FRAME_BYTES_PER_PIXEL))
    if not chosen:
        batch = max(1, min(batch, room // 3))
    ahead = min(2 * batch + 2, max(1, room // 3))
    return batch, ahead, 2 if room >= 6 * batch else 1


@dataclasses.dataclass(frozen=True)
class VideoSettings:
    """How a video's frames are dreamt, beside the ``DreamConfig`` (``dream_video``'s
    keywords, which say what each does, as one value): how they are shown (``display``,
    ``color``), the range (``start``, ``duration``; ``frames``, indices within it), the
    carving carried from frame to frame (``coherence``, ``carry``, ``prime``) and the frames
    dreamt at once (``batch_size``). ``check()`` raises ``ConfigError`` for a bad one."""

    display: Display = Display()
    color: bool = False
    start: float = 0.0
    duration: float | None = None
    coherence: str = "none"
    carry: float = 0.5
    batch_size: int | None = None
    frames: tuple[int, int | None] | None = None
    prime: bool = True

    def check(self) -> VideoSettings:
        """The settings themselves, or ``ConfigError`` naming the first that is wrong."""
        one_of("coherence", self.coherence, COHERENCE)
        if not isinstance(self.display, Display):
            raise ConfigError(
                f"display must be a jaxdream.Display, got {type(self.display).__name__}"
            )
        flag("color", self.color)
        flag("prime", self.prime)
        number("carry", self.carry, 0, 10)
        check_range(self.start, self.duration)
        if self.batch_size is not None:
            whole_number("batch size", self.batch_size, 1, 4096)
        frames = self.frames
        if frames is not None:
            if not isinstance(frames, tuple | list) or len(frames) != 2:
                raise ConfigError(f"frames is a pair (first, stop or None), got {shown(frames)}")
            whole_number("first frame", frames[0], 0, MAX_FRAMES)
            if frames[1] is not None:
                whole_number("stop frame", frames[1], frames[0], MAX_FRAMES)
        return self


def _flow_warp(previous: np.ndarray, current: np.ndarray, carving: np.ndarray) -> np.ndarray:
    """``carving`` (made on ``previous``) moved along the motion to ``current`` (OpenCV's
    Farneback flow from ``current`` back to ``previous``, both standardized working images:
    gray, or RGB whose luminance the flow is found on; an RGB carving moves every channel)."""
    try:  # imported here: OpenCV is an optional extra (``video``), for coherence "flow" only
        import cv2
    except ImportError:
        raise VideoError("coherence 'flow' needs OpenCV: pip install 'jaxdream[video]'") from None

    def gray8(x):
        if x.ndim == 3:
            x = x @ GRAY_WEIGHTS
        lo, hi = float(x.min()), float(x.max())
        return np.round((x - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8)

    flow = cv2.calcOpticalFlowFarneback(
        gray8(current), gray8(previous), None, 0.5, 3, 15, 3, 5, 1.2, 0
    )
    h, w = carving.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(
        carving.astype(np.float32),
        xs + flow[..., 0],
        ys + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


class VideoDreams:
    """The iterator ``dream_video`` returns: dreamt frames (uint8) in order, as they are made.
    ``info`` is the input's ``VideoInfo``; ``times`` the time of each frame yielded so far
    (seconds from ``start``); ``lost`` (once it ends) the frames that did not decode;
    ``compiled`` the programs its dreams used; ``state``, with coherence, what the last frame
    yielded carries into the next (its working image and its carving: ``dream_video``'s
    ``state`` for a render that continues after it). ``info``: ``probe``'s ``VideoInfo`` of
    ``path``, where the caller has it (the file is then not probed again)."""

    def __init__(
        self,
        path: str,
        config: DreamConfig,
        settings: VideoSettings,
        network: Network | None = None,
        params: Mapping | None = None,
        state: tuple[np.ndarray, np.ndarray] | None = None,
        info: VideoInfo | None = None,
    ):
        self.model, params = resolve(network, params)
        self.params, self.config, self.settings = params, config, settings
        self.display, self.color = settings.display, settings.color
        self.coherence, self.carry = settings.coherence, settings.carry
        self.batch_size = settings.batch_size
        self.batch: int | None = None  # frames dreamt at once, once the first is asked for
        coherence, start, duration = settings.coherence, settings.start, settings.duration
        first, stop = (0, None) if settings.frames is None else settings.frames
        # A coherent range that starts after the first frame, with nothing carried into it,
        # begins by dreaming the frame before it (not yielded): its carving is carried into
        # the range's first frame, so a part or a resumed render does not restart the carving.
        self._primer = None
        if coherence != "none" and state is None and settings.prime and first > 0:
            first = self._primer = first - 1
        self.decoded = Decoded(path, start, duration, stop, first, info)
        self.info = self.decoded.info
        if start >= self.info.duration:
            raise ConfigError(
                f"start {start:g} s is past the end of {path} ({self.info.duration:.2f} s)"
            )
        self.shape = config.working_shape((self.info.height, self.info.width))
        # The working images a coherent dream carries: (H, W), or (H, W, 3) in colour.
        self.state_shape = (*self.shape, 3) if is_color(self.model) else self.shape
        self.state = None if state is None else self._checked_state(state, coherence)
        self._carried = self.state
        self.times: list[float] = []
        self.compiled = 0
        self._plain = config.replace(prepare="gray")
        self._iterator = self._run()

    def _checked_state(self, state, coherence: str) -> tuple[np.ndarray, np.ndarray]:
        if coherence == "none":
            raise ConfigError("a carried state needs coherence 'blend' or 'flow'")
        try:
            image, carving = (np.asarray(a, np.float32) for a in state)
        except (TypeError, ValueError):
            raise ConfigError(
                "state must be a pair of arrays (a frame's working image and its carving)"
            ) from None
        for name, a in (("image", image), ("carving", carving)):
            if a.shape != self.state_shape or not np.all(np.isfinite(a)):
                raise ConfigError(
                    f"the carried state's {name} must be finite, of the working shape "
                    f"{self.state_shape}; got {a.shape}"
                )
        return image, carving

    @property
    def lost(self) -> int:
        return self.decoded.lost

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        return next(self._iterator)

    def close(self) -> None:
        """Stop: the decoding and dreaming threads end (a dream under way is finished first)
        and are joined, the file is closed; frames not yet yielded are dropped."""
        with contextlib.suppress(ValueError):  # "generator already executing": its own end
            self._iterator.close()

    def __enter__(self) -> VideoDreams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- threads

    def _decode_into(self, out: queue.Queue, stop: threading.Event) -> None:
        try:
            for frame in self.decoded:
                self._put(out, frame, stop)
                if stop.is_set():
                    return
            self._put(out, None, stop)
        except BaseException as e:  # handed to the dreaming thread
            self._put(out, e, stop)
        finally:  # the decoder is closed by the thread that drove it
            self.decoded.close()

    def _run(self) -> Iterator[np.ndarray]:
        devices = jax.local_devices()
        if self.coherence != "none":
            batch = 1
        elif self.batch_size:
            batch = self.batch_size
        else:
            per = parallel.items_per_device(devices[0].platform, streamed=True)
            batch = per * len(devices)
        # Never more than there is to dream (as for photos): a short clip is not padded up to
        # the batch size (4096 on 2 frames cost 14 s and 719 MB).
        end = self.decoded.expected()
        if self.decoded._stop_index is not None:
            end = min(end, self.decoded._stop_index)
        batch = max(1, min(batch, end - self.decoded._first_index))
        # Large frames: as many in flight as FRAMES_IN_FLIGHT_BYTES holds: a 4K frame is 83 MB
        # of pixels, their copy and the float gray, and 18 of them ahead cost 1.4 GB.
        batch, ahead, waiting = frames_in_flight(
            self.info.width, self.info.height, batch, bool(self.batch_size)
        )
        self.batch = batch
        if self.info.width * self.info.height >= LARGE_FRAME_PIXELS:
            yield from self._in_turn(batch)
            return
        stop = threading.Event()
        frames_in: queue.Queue = queue.Queue(maxsize=ahead)
        dreams_out: queue.Queue = queue.Queue(maxsize=waiting)

        def dream_batches():
            try:
                pending: list[Frame] = []
                state = self._carried
                while not stop.is_set():
                    try:
                        item = frames_in.get(timeout=0.1)
                    except queue.Empty:
                        continue  # stop is looked at again: close() never leaves it waiting
                    if isinstance(item, BaseException):
                        raise item
                    if item is not None:
                        pending.append(item)
                    if pending and (len(pending) == batch or item is None):
                        if self.coherence == "none":
                            results = self._dream_batch(pending, batch)
                        else:
                            results, state = self._dream_coherent(pending[0], state)
                        states = [state] * len(pending)
                        done = [f._replace(pixels=None) for f in pending]  # the result has them
                        self._put(dreams_out, list(zip(done, results, states, strict=True)), stop)
                        pending = []
                    if item is None:
                        break
                self._put(dreams_out, None, stop)
            except BaseException as e:
                self._put(dreams_out, e, stop)

        decoder = threading.Thread(
            target=self._decode_into, args=(frames_in, stop), name="jaxdream-decode", daemon=True
        )
        dreamer = threading.Thread(target=dream_batches, name="jaxdream-dream", daemon=True)
        decoder.start()
        dreamer.start()
        try:
            while True:
                item = self._get(dreams_out)
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                for frame, result, state in item:
                    self.state = state
                    if frame.index == self._primer:
                        continue
                    self.times.append(frame.time)
                    yield result.to_uint8(self.display, color=self.color, size="photo")
        finally:
            # Both threads end before this does: none is left inside FFmpeg or XLA when the
            # caller goes on (to exit the interpreter, say, after an error).
            stop.set()
            decoder.join()
            dreamer.join()

    def _in_turn(self, batch: int) -> Iterator[np.ndarray]:
        """Large frames (``LARGE_FRAME_PIXELS``), in the caller's thread: ``batch`` frames
        decoded, dreamt and shown before the next are decoded. A 4K frame's stages are few
        and short beside keeping and encoding it (``render_video``'s threads, which take what
        this yields), so overlapping them would gain little and hold a frame in each stage."""
        state = self._carried
        try:
            pending: list[Frame] = []
            for frame in self.decoded:
                pending.append(frame)
                if len(pending) == batch:
                    yield from self._shown(pending, state, batch)
                    state, pending = self.state, []
            if pending:
                yield from self._shown(pending, state, batch)
        finally:  # the decoder is closed by the thread that drove it
            self.decoded.close()

    def _shown(self, frames: list[Frame], state, batch: int) -> Iterator[np.ndarray]:
        """``frames`` dreamt (a batch of ``batch``, the last one padded to it; or one coherent
        frame) and yielded as pixels, each dream dropped once shown."""
        if self.coherence == "none":
            results = self._dream_batch(frames, batch)
        else:
            results, state = self._dream_coherent(frames[0], state)
        times = [(f.index, f.time) for f in frames]
        frames.clear()  # the results hold the pixels they need
        self.state = state
        for (index, time), result in zip(times, results, strict=True):
            if index == self._primer:
                continue
            self.times.append(time)
            yield result.to_uint8(self.display, color=self.color, size="photo")
        results.clear()

    @staticmethod
    def _put(q: queue.Queue, item, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    @staticmethod
    def _get(q: queue.Queue):
        while True:  # wakes every 0.1 s so that Ctrl-C and SIGTERM get in
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def _dream_batch(self, frames: list[Frame], batch: int) -> list:
        # The decoded pixels are the photos' own (no copy of a frame while it is dreamt).
        pixels = [photo_of(f.pixels) for f in frames]
        pixels += [pixels[-1]] * (batch - len(pixels))  # one program: padding, dropped
        run = dream_photos(
            pixels, self.config, network=self.model, params=self.params, batch_size=batch
        )
        outcomes = list(run)
        self.compiled = max(self.compiled, run.compiled)
        for o in outcomes[: len(frames)]:
            if o.error is not None:
                raise o.error
        return [o.result for o in outcomes[: len(frames)]]

    def _dream_coherent(self, frame: Frame, state):
        photo = photo_of(frame.pixels)
        current = prepare(photo, self.shape, self.config, self.model)
        start = current
        if state is not None:
            previous, carving = state
            if self.coherence == "flow":
                carving = _flow_warp(previous, current, carving)
            start = standardize_host(current + self.carry * carving)
        # The start is a working image already: prepared plainly (in float), never again as
        # the article prepares a photo (through uint8).
        run = dream_photos(
            [start], self._plain, network=self.model, params=self.params, batch_size=1
        )
        (outcome,) = list(run)
        self.compiled = max(self.compiled, run.compiled)
        if outcome.error is not None:
            raise outcome.error
        out = outcome.result.image
        result = DreamResult(out, current, photo.rgb, None, self.config)
        return [result], (current, out - current)


def dream_video(
    path: str | os.PathLike,
    config: DreamConfig = DreamConfig(),
    *,
    display: Display = Display(),
    color: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    coherence: str = "none",
    carry: float = 0.5,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    frames: tuple[int, int | None] | None = None,
    state: tuple[np.ndarray, np.ndarray] | None = None,
    prime: bool = True,
    model: Network | None = None,
) -> VideoDreams:
    """Every frame of the video at ``path`` (from ``start`` seconds, for ``duration``)
    dreamt with ``config``, at the video's own size (rotation applied), as uint8 frames
    yielded as they are made; in colour with ``color`` (a colour network's frames are its
    dreams' own colours, always). Frames are decoded on a host thread
    and dreamt in batches over every local device (``batch_size``; default: 4 a CPU device,
    16 an accelerator, memory permitting), one compiled program for all.

    ``coherence``: ``"none"``, every frame dreamt on its own (they flicker); ``"blend"``, the
    previous frame's carving (its dream minus its input) added to the next frame's input,
    times ``carry``, before it is dreamt; ``"flow"``, the same carving first moved along the
    motion (OpenCV's Farneback optical flow), as DeepDreamVideo does. Both dream one frame
    after another (each needs the one before). ``frames=(first, stop)``: only the frames of
    those indices in the range (a process's share of a multi-host run, or what a resumed
    render has left). ``state``: the carving to carry into the first of them (``VideoDreams.state``
    after the frame before it: a resumed render then makes the bytes of one uninterrupted);
    without it a coherent range that starts after frame 0 first dreams the frame before it,
    unyielded, and carries that (``prime``; ``False``: start afresh). Errors before any work:
    ``VideoError``, ``ConfigError``. ``network``, ``params``, ``input_shape`` and
    ``preprocess`` as for ``jaxdream.dream`` (``model``: ``network``'s old name)."""
    network = network_argument(network, model)
    if input_shape is not None or preprocess is not None:
        network, params = resolve(network, params, input_shape, preprocess)
    path = _path(path)
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    settings = VideoSettings(
        display, color, start, duration, coherence, carry, batch_size, frames, prime
    )
    return VideoDreams(path, config, settings.check(), network, params, state)
