"""The dream API: a photo (path, PIL image or array) and a ``DreamConfig`` in, arrays out.

This is the edge where a dream's execution is decided: the model's compute choices for the
backend (``DreamConfig.model_for``, ``jaxdream.compute``) and how the batch is spread over the
devices (``jaxdream.parallel.auto``, or the caller's ``parallel``). The core it calls
(``jaxdream.carve``) knows nothing of either.

>>> import numpy as np
>>> photo = np.random.default_rng(0).random((64, 48))
>>> result = dream(photo, DreamConfig(size=64, iterations=1, steps=2))
>>> result.image.shape, result.to_uint8().dtype
((64, 48), dtype('uint8'))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from PIL import Image

from jaxdream import parallel as par
from jaxdream import programs
from jaxdream.carve import (
    DreamSpec,
    Knobs,
    Stages,
    carve_batch,
    carve_batch_each,
    carve_batch_part,
    carve_batch_stages,
    placeholder_states,
)
from jaxdream.config import DreamConfig
from jaxdream.display import Display, colorize, render
from jaxdream.errors import ConfigError, ImageError, NumericalError
from jaxdream.fullres import OUTPUT_SIZES, carved_photo
from jaxdream.imageio import Photo, load_photo, prepare_photo, rgb_float
from jaxdream.imageops import resize_host, standardize_host
from jaxdream.keys import image_keys
from jaxdream.network import Network, check_schedule, is_color, network_argument, resolve

ImageLike = str | os.PathLike | Image.Image | np.ndarray | Photo


class DreamResult(NamedTuple):
    """A finished dream. ``image`` and ``gray`` (the prepared working image) are standardized
    ``(H, W)`` float arrays at the working size, ``(H, W, 3)`` (RGB) for a colour network's
    dream (``jaxdream.network.is_color``); ``frames`` ``(iterations, H, W)`` when asked for;
    ``photo`` the photo's RGB ``(H0, W0, 3)`` as loaded (``Photo.rgb``: uint8 for an 8-bit
    photo, else float in [0, 1]), and ``rgb`` it resized to the working size, float in [0, 1]
    (for colour output; made when asked for); ``stages`` every iteration's
    ``jaxdream.carve.Stages`` (numpy leaves with a leading iterations axis) when asked for."""

    image: np.ndarray
    gray: np.ndarray
    photo: np.ndarray
    frames: np.ndarray | None
    config: DreamConfig
    stages: Stages | None = None

    @property
    def rgb(self) -> np.ndarray:
        return np.clip(resize_host(rgb_float(self.photo), self.image.shape[:2]), 0.0, 1.0)

    def to_uint8(
        self, display: Display = Display(), color: bool = False, size: str = "working"
    ) -> np.ndarray:
        """The dream as pixels: gray ``(H, W)``, or ``(H, W, 3)`` keeping the photo's chroma
        (a colour network's dream: always ``(H, W, 3)``, its own colours, ``color`` unused),
        with ``config.strength`` of the carving's change. ``size`` (``fullres.OUTPUT_SIZES``):
        ``"working"``, at the working size; ``"photo"``, at the photo's size: where the photo is
        larger than the working size, the change applied to the photo at its own resolution,
        which keeps its detail and tones (``jaxdream.fullres``), else the dream resized to it;
        ``"enlarged"``, the whole dream resized to the photo's size (the article's look)."""
        return self.render(self.image, display, color, size)

    def render(
        self,
        x: np.ndarray,
        display: Display = Display(),
        color: bool = False,
        size: str = "working",
    ) -> np.ndarray:
        """``x`` (a standardized image of the working size, e.g. a frame) as pixels, as
        ``to_uint8`` makes them."""
        if size not in OUTPUT_SIZES:
            raise ConfigError(f"size must be one of {', '.join(OUTPUT_SIZES)}, got {size!r}")
        strength = float(self.config.strength)
        h, w = self.photo.shape[:2]
        color = color and x.ndim == 2  # a colour dream's colours are its own
        if size == "photo" and h * w > x.shape[0] * x.shape[1]:
            return carved_photo(self.photo, x - self.gray, strength, color)
        if strength != 1.0:
            x = self.gray + np.float32(strength) * (x - self.gray)
        gray = render(x, self.gray, display)
        if size != "working" and gray.shape != (h, w):
            filt = Image.BICUBIC if h * w >= gray.size else Image.LANCZOS
            gray = np.asarray(Image.fromarray(gray).resize((w, h), filt))
            return colorize(gray, self.photo) if color else gray
        return colorize(gray, self.rgb) if color else gray


class DreamCall(NamedTuple):
    """The arguments of ``carve_batch`` for a batch of standardized working images: call it to
    dream, or ``carve_batch.trace(*call)`` to look at the program."""

    spec: DreamSpec
    params: Mapping
    images: jax.Array
    knobs: Knobs
    keys: jax.Array
    execution: par.Execution

    def __call__(self) -> tuple[jax.Array, jax.Array | None]:
        return carve_batch(*self)


def dream_call(
    model: Network,
    params: Mapping,
    config: DreamConfig,
    images: jax.Array,
    return_frames: bool = False,
    parallel: par.Execution | str = "auto",
    indices: Sequence[int] | None = None,
) -> DreamCall:
    """The compiled dream's arguments for standardized working images ``(N, H, W)``: image
    ``k`` uses the key ``fold_in(key(config.seed), indices[k])`` (default ``indices``:
    ``0..N-1``); ``parallel`` as in ``dream_many``; the call returns ``(dreams, frames)``."""
    on_device = isinstance(images, jax.Array)
    images = jnp.asarray(images, jnp.float32) if on_device else np.asarray(images, np.float32)
    count = images.shape[0]
    indices = tuple(range(count)) if indices is None else tuple(int(i) for i in indices)
    fixed = _fixed_parts(model, config, tuple(images.shape[1:3]), return_frames, parallel, indices)
    everywhere = _replicated(fixed.execution)
    if everywhere is not None:  # placed as the program takes them: no transfer in its dispatch
        params = _placed(params, everywhere)
        images = jax.device_put(images, everywhere)
    else:
        images = jnp.asarray(images)
    return DreamCall(fixed.spec, params, images, fixed.knobs, fixed.keys, fixed.execution)


def _replicated(execution: par.Execution) -> NamedSharding | None:
    """Where every device computes the whole batch (one image's tiles split over them): the
    sharding its program takes every input with."""
    if isinstance(execution.images, par.Replicated):
        return NamedSharding(execution.images.mesh, PartitionSpec())
    return None


# Parameters put on the devices a program takes them on, by the identity of their leaves: each
# call of a dream otherwise copied every weight from the host to every device (0.5-0.7 ms of a
# 2-tile dream's dispatch on a 2-core CPU). Kept only for leaves that cannot change: JAX arrays,
# and numpy arrays that are not writeable (``load_model``'s); the entry holds the leaves, so
# their ids stay theirs.
KEEP_FIXED = 32
_PLACED = programs.Bounded(KEEP_FIXED)


def _placed(params: Mapping, sharding: NamedSharding) -> Mapping:
    leaves, tree = jax.tree.flatten(params)
    if not all(
        isinstance(a, jax.Array) or (isinstance(a, np.ndarray) and not a.flags.writeable)
        for a in leaves
    ):
        return params
    key = (tree, tuple(map(id, leaves)), sharding)
    hit = _PLACED.get(key)
    if hit is None:
        hit = _PLACED.put(key, (leaves, jax.device_put(params, sharding)))
    return hit[1]


class _Fixed(NamedTuple):
    """What a dream's call takes besides its parameters and images: fixed by the config, the
    model, the working shape and the images' indices."""

    spec: DreamSpec
    knobs: Knobs
    keys: jax.Array
    execution: par.Execution


# The fixed parts of the dreams called in this process (``_fixed_parts``), so that a dream
# called again spends nothing on them: no spec, objectives or keys made again, no jnp ops
# dispatched one by one. Their arrays are JAX arrays: immutable, safe to share.
_FIXED = programs.Bounded(KEEP_FIXED)


def _fixed_parts(model, config, shape, return_frames, parallel, indices) -> _Fixed:
    key = (model, config, shape, return_frames, parallel, indices)
    cacheable = _immutable(config)
    if cacheable:
        try:
            hit = _FIXED.get(key)
        except TypeError:  # an unhashable setting (a list for a tuple): made each call
            cacheable, hit = False, None
        if hit is not None:
            return hit
    keys = image_keys(config.seed, indices)
    execution = par.resolve(parallel, len(indices), config.tile_count())
    knobs = config.knobs()
    everywhere = _replicated(execution)
    if everywhere is not None:
        knobs = jax.device_put(knobs, everywhere)
    fixed = _Fixed(
        spec=config.spec(model, shape, return_frames),
        knobs=knobs,
        keys=keys,
        execution=execution,
    )
    if cacheable:
        _FIXED.put(key, fixed)
    return fixed


def _immutable(config: DreamConfig) -> bool:
    """Whether ``config``'s knobs cannot change behind its back: objectives are compared by
    identity, and one holding a numpy array (which its owner may write to) is not cached."""
    given = [config.objective]
    for lv in config.levels:
        given += lv.objective if isinstance(lv.objective, tuple) else (lv.objective,)
    objectives = [o for o in given if o is not None and not isinstance(o, str)]
    return not any(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(objectives))


def _checked(config: DreamConfig, model: Network) -> None:
    """``config.check(model)``, once per config and model this process dreamt (the checks
    passed: a config is frozen, and its objectives compared by identity); a colour network
    carves in the batched schedule only."""
    check_schedule(model, config.schedule)
    key = (config, model)
    try:
        if key in _CHECKED:
            return
    except TypeError:  # an unhashable setting: checked each call
        config.check(model)
        return
    config.check(model)
    if _immutable(config):
        _CHECKED.put(key, None)


_CHECKED = programs.Bounded(KEEP_FIXED)


def run_whole(call: DreamCall) -> tuple[jax.Array, jax.Array | None]:
    """``call()``, computed by ``jaxdream.parallel.run`` (interruptible) as
    ``jaxdream.programs.run`` says, and, where the persistent cache is on, by way of the
    program exported there (``exported_program``): a new process does not trace the dream
    again."""
    program = exported_program(call)
    if program is None:
        return programs.run(carve_batch, tuple(call), (1, 2, 3, 4))
    return programs.run(program, (call.params, call.images, call.knobs, call.keys), (0, 1, 2, 3))


def _mesh(execution: par.Execution):
    for strategy in (execution.images, execution.tiles):
        if getattr(strategy, "mesh", None) is not None:
            return strategy.mesh
    return None


def exported_program(call: DreamCall):
    """A jitted function of ``(params, images, knobs, keys)`` with ``carve_batch(*call)``'s
    results (the same bytes): the program store's exported program (``programs.exported``),
    from the persistent cache. ``None`` where no persistent cache is on or the program cannot
    be exported."""
    return programs.exported("dream", carve_batch, tuple(call), (1, 2, 3, 4), _mesh(call.execution))


def dream_in_parts(call: DreamCall, progress: Callable[[int], object], each: bool = False):
    """``call()``'s numbers, computed one iteration per call (``carve_batch_part``), with
    ``progress(iterations_done)`` told as each is done (``each``: ``call.knobs`` hold one
    ``Knobs`` per image, as for ``carve_batch_each``). Each iteration is queued before the last
    one is awaited, so the device never waits for the host."""
    spec, images = call.spec, call.images
    if spec.iterations == 1:
        # One call in any case; and XLA inlines a loop of one, so a part would not give the
        # whole program's bytes.
        whole = carve_batch_each if each else carve_batch
        out = programs.run(whole, tuple(call), (1, 2, 3, 4))
        progress(1)
        return out
    states = placeholder_states(spec, images)
    args = (spec, call.params, images, states, call.knobs, call.keys, jnp.int32(0))

    def run():
        dynamic = (1, 2, 3, 4, 5, 6)
        part = programs.compiled(carve_batch_part, (*args, call.execution, each), dynamic)
        traces, waiting = [], None
        state = states
        for i in range(spec.iterations):
            state, trace = part(call.params, images, state, call.knobs, call.keys, jnp.int32(i))
            traces.append(trace)
            if waiting is not None:
                jax.block_until_ready(waiting)
                progress(i)
            waiting = state
        jax.block_until_ready(waiting)
        progress(spec.iterations)
        if traces[0] is None:
            return state[0], None
        return state[0], jax.tree.map(lambda *t: jnp.concatenate(t, axis=1), *traces)

    return par.run(run)


def stages_of(call: DreamCall, frames: jax.Array) -> Stages:
    """The ``Stages`` of ``call``'s dreams, from their ``frames`` (``carve_batch_stages``: each
    iteration computed again, apart, so that the dream's own bytes do not change)."""
    return programs.run(
        carve_batch_stages,
        (call.spec, call.params, call.images, frames, call.knobs, call.keys, call.execution),
        (1, 2, 3, 4, 5),
    )


def split_trace(
    frames, stages: Stages | None, count: int
) -> list[tuple[np.ndarray | None, Stages | None]]:
    """A batch's frames and ``Stages`` as host arrays, ``(frames, stages)`` for each of its
    first ``count`` images (the rest is padding)."""
    frames = None if frames is None else np.asarray(frames)
    stages = None if stages is None else Stages(*(np.asarray(a) for a in stages))
    return [
        (
            None if frames is None else frames[k],
            None if stages is None else Stages(*(a[k] for a in stages)),
        )
        for k in range(count)
    ]


def check_finite(images: np.ndarray, config: DreamConfig) -> None:
    """Raise ``NumericalError`` where a dream holds NaN or infinite values."""
    if not np.all(np.isfinite(images)):
        raise NumericalError(
            f"the dream diverged to NaN or infinite values (epsilon {config.epsilon}, level "
            f"weights {sorted({lv.weight for lv in config.levels})}): lower them"
        )


def prepare(
    photo: Photo,
    shape: tuple[int, int],
    config: DreamConfig = DreamConfig(),
    network: Network | None = None,
) -> np.ndarray:
    """The standardized working image of ``shape`` that ``network`` carves, on the host (no
    program to compile for each photo's size): gray ``(H, W)``, prepared as ``config.prepare``
    says (``jaxdream.imageio.prepare_photo``); for a colour network (``is_color``) the photo's
    RGB ``(H, W, 3)`` resized in float and standardized as gray is, by its mean and spread over
    all pixels and channels (``prepare_rgb``)."""
    if network is not None and is_color(network):
        return prepare_rgb(photo, shape)
    return prepare_photo(photo, shape, config.prepare)


def prepare_rgb(photo: Photo, shape: tuple[int, int]) -> np.ndarray:
    """The photo's RGB in [0, 1] resized to ``shape`` (bicubic, antialiased, per channel:
    ``resize_host``) and standardized over all its pixels and channels, ``(H, W, 3)``."""
    return standardize_host(resize_host(rgb_float(photo.rgb), shape))


def dream_many(
    images: Sequence[ImageLike],
    config: DreamConfig = DreamConfig(),
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    return_frames: bool = False,
    parallel: par.Execution | str = "auto",
    progress: Callable[[int], object] | None = None,
    return_stages: bool = False,
    model: Network | None = None,
) -> list[DreamResult]:
    """Dream several photos in one compiled, batched call per working shape (photos of other
    aspect ratios are dreamt in calls of their own, never squeezed to another's shape); image
    ``i`` uses the key ``fold_in(key(seed), i)``. ``parallel``: how each batch is spread over
    devices (``"auto"``: ``jaxdream.parallel.auto``, from the backend and the device count;
    ``"vmap"``; or a ``jaxdream.parallel.Execution``). ``progress(iterations_done)`` is called
    as each iteration ends (of each group of photos of one working shape): the dream then runs
    one iteration per call, with the same bytes (``dream_in_parts``). ``return_stages``: each
    result's ``stages`` (and frames) hold what every iteration did, for the stage figure
    (``jaxdream.figures.stage_figure``). For folders of photos, with batches
    sized to memory and errors per photo, see ``jaxdream.dream_photos``.
    ``input_shape`` and ``preprocess``: the network's input shape and its own preprocessing
    (``jaxdream.network.resolve``)."""
    if isinstance(images, str | os.PathLike | bytes | np.ndarray | Image.Image | Photo):
        raise ImageError(
            "dream_many takes a list of photos (file names, PIL images or arrays); for one "
            "photo use dream()"
        )
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    model, params = resolve(network_argument(network, model), params, input_shape, preprocess)
    _checked(config, model)
    photos = [load_photo(im) for im in images]
    if not photos:
        return []
    shapes = [config.working_shape(p.shape) for p in photos]
    prepared = [prepare(p, shape, config, model) for p, shape in zip(photos, shapes, strict=True)]
    results: list[DreamResult | None] = [None] * len(photos)
    for shape in dict.fromkeys(shapes):
        group = [i for i, s in enumerate(shapes) if s == shape]
        grays = np.stack([prepared[i] for i in group])  # one transfer, no device op
        call = dream_call(
            model, params, config, grays, return_frames or return_stages, parallel, group
        )
        if progress is None:
            out, frames = run_whole(call)
        else:
            out, frames = dream_in_parts(call, progress)
        out = np.asarray(out)
        check_finite(out, config)
        stages = stages_of(call, frames) if return_stages else None
        traces = split_trace(frames, stages, len(group))
        for k, (i, (frames, stages)) in enumerate(zip(group, traces, strict=True)):
            results[i] = DreamResult(out[k], prepared[i], photos[i].rgb, frames, config, stages)
    return results


def dream(
    image: ImageLike,
    config: DreamConfig = DreamConfig(),
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    return_frames: bool = False,
    parallel: par.Execution | str = "auto",
    progress: Callable[[int], object] | None = None,
    return_stages: bool = False,
    model: Network | None = None,
) -> DreamResult:
    """Carve ``config``'s objectives into one photo. With no ``network`` and ``params``, the
    bundled CNN and weights; ``network`` may be any ``jaxdream.network.as_network`` takes (a
    Flax Linen module with its ``params``, an NNX module); ``model`` is ``network``'s old name.
    ``parallel``, ``progress`` and ``return_stages`` as for ``dream_many``; ``input_shape`` and
    ``preprocess``: the network's input shape and its own preprocessing
    (``jaxdream.network.resolve``)."""
    return dream_many(
        [image],
        config,
        network=network_argument(network, model),
        params=params,
        input_shape=input_shape,
        preprocess=preprocess,
        return_frames=return_frames,
        parallel=parallel,
        progress=progress,
        return_stages=return_stages,
    )[0]
