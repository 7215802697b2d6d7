"""Many photos: grouped by working shape, dreamed in batches over every local device.

``dream_photos(photos, config)`` takes any number of photos (paths, PIL images or arrays) and
yields one ``Outcome`` per photo, in input order (or as each batch finishes):

1. Each photo's working shape is read from its header (``imageio.photo_shape``); shapes are
   snapped so that a folder of mixed photos falls into few of them, without squeezing any photo
   to another's aspect (``DreamConfig.working_shape``).
2. Photos of one shape are dreamed in batches by ONE compiled program per shape and batch
   size, the batch laid out over this process's devices by ``jaxdream.parallel.auto`` (split
   evenly by a ``NamedSharding`` over a ``Mesh`` of CPU devices, GPUs or TPU cores alike; a
   batch that does not fill the program is padded and the padding dropped).
3. The batch size comes from the compiled program's own memory analysis and the device's
   memory (a cap on CPUs), unless given; running out of memory raises ``ResourceError`` that
   says what to lower.
4. A photo that cannot be read gives an ``Outcome`` with its error; the others go on.

Every photo is dreamed with the key of a lone dream (``fold_in(key(seed), 0)``), so its result
is the same as ``dream(photo, config)``'s, whatever batch or device it lands on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxdream import parallel, programs
from jaxdream.carve import carve_batch
from jaxdream.checks import flag, whole_number
from jaxdream.config import DreamConfig
from jaxdream.dreaming import (
    DreamCall,
    DreamResult,
    ImageLike,
    check_finite,
    prepare,
    split_trace,
    stages_of,
)
from jaxdream.errors import ConfigError, ImageError, JaxdreamError, NumericalError, ResourceError
from jaxdream.imageio import load_photo, photo_shape
from jaxdream.keys import image_keys
from jaxdream.network import Network, network_argument, resolve

# The walk of folders and the naming of outputs live in ``jaxdream.photos``; importable from
# here too, where they were first.
from jaxdream.photos import damaged_output, find_photos, output_paths  # noqa: F401

MEMORY_FRACTION = 0.5  # of a device's memory (on CPUs: of the memory available now)
# A batch size beyond any device's memory at the smallest size (a typo such as 10**9 would
# stack that many copies of the padding photo): refused. A batch is never larger than the
# photos of one shape, whatever the batch size.
MAX_BATCH = 65536


def lone_keys(seed: int, batch: int) -> jax.Array:
    """``batch`` copies of the key a lone dream uses (``dream_call``'s key of image 0)."""
    return image_keys(seed, [0] * batch)


class Outcome(NamedTuple):
    """One photo's outcome: its input ``index`` and ``source``, and either the ``result`` or
    the ``error`` that kept it from being dreamed."""

    index: int
    source: object
    result: DreamResult | None
    error: JaxdreamError | None


def device_memory(device: jax.Device) -> int:
    """Bytes one batch may use on ``device``: a fraction of its memory (accelerators: the
    allocator's limit; CPUs: the memory available now, shared by the CPU devices)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
        return int(MEMORY_FRACTION * stats["bytes_limit"])
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(MEMORY_FRACTION * available / max(1, len(jax.local_devices())))


def _is_out_of_memory(e: Exception) -> bool:
    text = str(e)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


@dataclasses.dataclass
class _Program:
    compiled: object
    batch: int
    execution: parallel.Execution
    bytes_per_device: int
    spec: object = None


def _compile(spec, execution, batch: int, params, knobs) -> programs.Made:
    """The compiled dream of ``batch`` images for ``spec``, from the program store (kept for
    the process: a later run over photos of the same shape compiles nothing)."""
    sharding = parallel.batch_sharding(execution, batch)
    images = jax.ShapeDtypeStruct((batch, *spec.image_shape), jnp.float32, sharding=sharding)
    keys = jax.ShapeDtypeStruct((batch,), jax.random.key(0).dtype, sharding=sharding)
    args = (spec, programs.abstract(params), images, programs.abstract(knobs), keys, execution)
    return programs.ahead(carve_batch, args, (1, 2, 3, 4))


class PhotoDreams:
    """The iterator ``dream_photos`` returns; ``compiled`` counts the programs it used,
    ``new_programs`` those not made earlier in this process, ``loaded_programs`` those of them
    loaded from the persistent compilation cache instead of compiled, ``shapes`` the working
    shapes it met."""

    def __init__(
        self,
        photos: Sequence[ImageLike],
        config: DreamConfig,
        model: Network,
        params: Mapping,
        batch_size: int | None,
        return_frames: bool,
        ordered: bool,
        return_stages: bool = False,
    ):
        self.photos, self.config, self.params = list(photos), config, params
        self.model, self.batch_size = model, batch_size
        self.return_frames, self.ordered = return_frames, ordered
        self.return_stages = return_stages
        self.devices = jax.local_devices()
        self._programs: dict[tuple[tuple[int, int], int], _Program] = {}
        self.shapes: set[tuple[int, int]] = set()
        self.new_programs = 0
        self.loaded_programs = 0
        self._knobs = config.knobs()
        self._iterator = self._run()

    @property
    def compiled(self) -> int:
        return len(self._programs)

    def __iter__(self) -> Iterator[Outcome]:
        return self

    def __next__(self) -> Outcome:
        return next(self._iterator)

    # -- planning

    def _cap(self) -> int:
        per = parallel.items_per_device(self.devices[0].platform)
        return per * len(self.devices)

    def _batch_for(self, count: int) -> int:
        """Photos per batch: the given batch size or the cap, no more than there are photos,
        rounded up to fill every device."""
        n = len(self.devices)
        wanted = min(self.batch_size or self._cap(), count)  # never more than the photos
        return -(-wanted // n) * n if wanted > 1 else 1

    def _program(self, shape: tuple[int, int], batch: int) -> _Program:
        key = (shape, batch)
        if key in self._programs:
            return self._programs[key]
        spec = self.config.spec(self.model, shape, self.return_frames or self.return_stages)
        execution = parallel.auto(batch, self.config.tile_count(), self.devices)
        try:
            compiled, new, loaded = _compile(spec, execution, batch, self.params, self._knobs)
        except Exception as e:  # XLA's own error type; only memory is ours to explain
            if _is_out_of_memory(e):
                raise self._oom(shape, batch) from None
            raise
        self.new_programs += new
        self.loaded_programs += loaded
        memory = compiled.memory_analysis()
        used = 0
        if memory is not None:
            used = (
                memory.temp_size_in_bytes
                + memory.argument_size_in_bytes
                + memory.output_size_in_bytes
            )
        program = _Program(compiled, batch, execution, used, spec)
        self._programs[key] = program
        return program

    def _fitting_program(self, shape: tuple[int, int], count: int) -> _Program:
        """The program for ``count`` photos of ``shape``: the largest batch whose memory, by
        the compiled program's own analysis, fits the device (halving from the cap)."""
        batch = self._batch_for(count)
        while True:
            program = self._program(shape, batch)
            if self.batch_size or batch == 1:
                return program
            budget = device_memory(self.devices[0])
            if program.bytes_per_device <= budget:
                return program
            n = len(self.devices)
            batch = max(1, (batch // 2) // n * n) if batch // 2 >= n else 1
            del self._programs[(shape, program.batch)]

    def _oom(self, shape, batch) -> ResourceError:
        h, w = shape
        return ResourceError(
            f"out of memory dreaming {batch} photos of {w}x{h} at once: lower --batch-size "
            f"(now {batch}) or --size"
        )

    # -- running

    def _shapes(self) -> tuple[dict[tuple[int, int], list[int]], list[Outcome]]:
        groups: dict[tuple[int, int], list[int]] = {}
        failed = []
        for i, photo in enumerate(self.photos):
            try:
                shape = self.config.working_shape(photo_shape(photo))
            except JaxdreamError as e:
                failed.append(Outcome(i, photo, None, e))
                continue
            groups.setdefault(shape, []).append(i)
        return groups, failed

    def _dream(self, shape, indices: list[int]) -> Iterator[Outcome]:
        """Dream the photos ``indices`` (all of working ``shape``) in batches."""
        program = self._fitting_program(shape, len(indices))
        for start in range(0, len(indices), program.batch):
            part = indices[start : start + program.batch]
            loaded, outcomes = [], []
            for i in part:
                try:
                    photo = load_photo(self.photos[i])
                    real = self.config.working_shape(photo.shape)
                except JaxdreamError as e:
                    outcomes.append(Outcome(i, self.photos[i], None, e))
                    continue
                if real != shape:  # the header told another shape (rare): dream it alone
                    yield from self._dream(real, [i])
                    continue
                loaded.append((i, (prepare(photo, shape, self.config, self.model), photo.rgb)))
                del photo  # a float photo's gray, kept with it, is not needed while it is dreamt
            yield from outcomes
            if loaded:
                yield from self._run_batch(program, shape, loaded)

    def _run_batch(self, program: _Program, shape, loaded) -> Iterator[Outcome]:
        grays = [g for _, (g, _) in loaded]
        grays += [grays[-1]] * (program.batch - len(grays))  # padding, dropped below
        images = np.stack(grays)
        keys = lone_keys(self.config.seed, program.batch)
        sharding = parallel.batch_sharding(program.execution, program.batch)
        if sharding is not None:
            images, keys = jax.device_put((images, keys), sharding)
        try:
            out, frames = parallel.run(
                lambda: program.compiled(self.params, images, self._knobs, keys)
            )
            out = np.asarray(out)
            stages = None
            if self.return_stages:
                call = DreamCall(
                    program.spec, self.params, images, self._knobs, keys, program.execution
                )
                stages = stages_of(call, frames)
        except Exception as e:
            if _is_out_of_memory(e):
                raise self._oom(shape, program.batch) from None
            raise
        traces = split_trace(frames, stages, len(loaded))
        for k, (i, (gray, rgb)) in enumerate(loaded):
            frames, stages = traces[k]
            try:
                check_finite(out[k], self.config)
            except NumericalError as e:
                yield Outcome(i, self.photos[i], None, e)
                continue
            result = DreamResult(out[k], gray, rgb, frames, self.config, stages)
            yield Outcome(i, self.photos[i], result, None)

    def _run(self) -> Iterator[Outcome]:
        groups, failed = self._shapes()
        self.shapes = set(groups)
        pending: dict[int, Outcome] = {}
        next_index = 0

        def ready(outcome: Outcome) -> Iterator[Outcome]:
            nonlocal next_index
            if not self.ordered:
                yield outcome
                return
            pending[outcome.index] = outcome
            while next_index in pending:
                yield pending.pop(next_index)
                next_index += 1

        for outcome in failed:
            yield from ready(outcome)
        # Groups in the order of their first photo, so ordered results come out early.
        for shape, indices in sorted(groups.items(), key=lambda kv: kv[1][0]):
            for outcome in self._dream(shape, indices):
                yield from ready(outcome)


def dream_photos(
    photos: Iterable[ImageLike],
    config: DreamConfig = DreamConfig(),
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    return_frames: bool = False,
    ordered: bool = True,
    return_stages: bool = False,
    model: Network | None = None,
) -> PhotoDreams:
    """Dream many photos: an iterator of one ``Outcome`` per photo, in input order (with
    ``ordered=False``: as each batch finishes, the first to come first). Photos are grouped by
    working shape, dreamed in batches of ``batch_size`` (default: from the device's memory and
    the compiled program's memory analysis) sharded over this process's devices; unreadable
    photos come back with their error. The iterator's ``compiled`` counts compiled programs.
    ``network``, ``params``, ``input_shape`` and ``preprocess`` as for ``dream`` (``model``:
    ``network``'s old name).

    >>> import numpy as np
    >>> photos = [np.random.default_rng(i).random((40, 60)) for i in range(3)]
    >>> run = dream_photos(photos, DreamConfig(size=32, iterations=1, steps=1))
    >>> [(o.index, o.result.image.shape) for o in run], run.compiled
    ([(0, (22, 32)), (1, (22, 32)), (2, (22, 32))], 1)
    """
    photos = _photo_list(photos)
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    if batch_size is not None:
        whole_number("batch size", batch_size, 1, MAX_BATCH)
    for name, value in (
        ("return_frames", return_frames),
        ("ordered", ordered),
        ("return_stages", return_stages),
    ):
        flag(name, value)
    network = network_argument(network, model)
    model, params = resolve(network, params, input_shape, preprocess)
    config.check(model)
    return PhotoDreams(
        photos, config, model, params, batch_size, return_frames, ordered, return_stages
    )


def _photo_list(photos) -> list:
    """``photos`` as a list, refusing one photo given alone. A ``str`` is iterable, so one
    path would otherwise be taken for a list of one-character names; and taking it as one
    photo would make a folder's name ambiguous (its photos, or a failed photo?). So a single
    path, array or image is refused, as ``dream_many`` refuses it: ``dream_photos([path])``
    says what is meant (``jaxdream.photos.find_photos`` lists a folder's photos)."""
    if isinstance(photos, str | os.PathLike | bytes | np.ndarray | Image.Image):
        raise ImageError(
            f"dream_photos takes a list of photos, not one {type(photos).__name__}: "
            "dream_photos([photo]) for one (or dream(photo))"
        )
    try:
        return list(photos)
    except TypeError:
        raise ImageError(
            f"dream_photos takes a list of photos (file names, PIL images or arrays), not "
            f"{type(photos).__name__}"
        ) from None
