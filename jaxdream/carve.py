"""Carving: OIP applied to a photo at the scale of the whole image and of its tiles at once.

The core is ``carve(spec, params, image, knobs, key)``: ``spec`` (a ``DreamSpec``) is everything
that fixes the compiled program, ``knobs`` the traced numbers (the objective of every tile,
level weights, epsilon), and nothing here knows of devices: the OIP call over the tiles is
mapped by the strategy it is handed (``jaxdream.parallel``). ``DreamConfig`` (``jaxdream.config``)
builds both from settings.

Tiles and levels
    Level 0 is the whole image, level 1 its 2x2 quadrants, level ``l`` a ``2**l x 2**l`` grid.
    Tiles are numbered row-major (level 1: 0 upper-left, 1 upper-right, 2 lower-left,
    3 lower-right). Where they lie is the spec's layout (``jaxdream.layouts``: the article's
    disjoint grid, or overlapping feathered tiles). For a non-square image the grid follows
    the image; every tile is resized to the network's input size (28x28 for the bundled CNN;
    its aspect ratio squeezed, as the whole image is) before the network sees it. Below,
    "28x28" stands for that size.

Batched schedule (the default)
    Every iteration cuts every chosen tile of every chosen level from the SAME current image,
    downscales all of them to 28x28, standardizes each one for the CNN (the article's addendum:
    a tile of a standardized image is itself not standardized), and runs ONE vmapped OIP call
    over the stack (the full image and its 4 quadrants: a batch of 5), each tile with its own
    objective. Each tile's *change*, ``(oip(z) - z) * std``, is upscaled to the tile's size and
    added at its place (the layout's ``place``), times the tile's level weight; then the image
    is standardized.

    Why add changes instead of replacing regions: replacing the four quadrants by their results
    would overwrite the whole-image carving made in the same iteration. Adding changes keeps
    both, and since bicubic resizing is linear, ``tile + up(x28' - x28)`` is exactly the
    article's ``up(x28') + correction`` with the correction ``tile - up(down(tile))`` taken from
    the current image: the detail lost by the 28x28 round trip is put back. With zero OIP steps
    every change is zero and the image is returned unchanged.

Faithful schedule
    The article's computation, level by level: corrections taken once from the original,
    ``corr = img - std(up(std(down(img))))`` for the full image and
    ``corr_q = q - std(up(down(q)))`` per tile, then per iteration: OIP on the current 28x28
    image, ``full = std(up(x) + corr)``; for each deeper level, its tiles are cut from ``full``,
    downscaled (not standardized), OIP-ed in one call, upscaled, ``+ corr_q``, written back in
    place, and ``full`` standardized; finally ``down(full)`` feeds the next iteration. Its
    corrections are taken against standardized upscales but added to unstandardized ones: with
    zero steps it does not return the input (the addendum's point, kept here on purpose). It
    replaces tiles in place, so it takes the ``Grid`` layout only.

One iteration at a time
    ``carve_part`` computes one iteration of ``carve``'s dream from the state the previous one
    left (``initial_state`` before the first), so that a host can tell when each iteration is
    done. Its loop's length is traced, so XLA compiles the iteration as it does inside the
    whole dream's loop and the bytes are the same (tested for both schedules).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxdream.imageops import (
    cut_tiles,
    place_tiles,
    resize,
    standardize,
    standardize_for_cnn,
    tile_mask,
)
from jaxdream.layouts import Grid
from jaxdream.levels import cut_levels, level_matrices, place_levels
from jaxdream.network import Network, check_schedule, input_size
from jaxdream.objectives import Objective
from jaxdream.parallel import Execution, Strategy, VMap
from jaxdream.patterns import oip_single

Array = jax.Array

# Working images of at least this many pixels cut and place their levels by resize matrices
# (``jaxdream.levels``: two matrix products over the image an iteration instead of a gather,
# resize and scatter a level); smaller ones level by level, as always (same bytes as ever).
MATRICES_FROM = 600_000


@dataclasses.dataclass(frozen=True)
class DreamSpec:
    """Everything that fixes a dream's compiled program (hashable: a static argument).

    ``model``, the network (with its compute choices made), the working ``shape``, the
    taking-part tiles of each level ``((level, tiles), ...)`` in the order of the tile batch,
    the tile ``layout``, ``iterations`` and OIP ``steps``, the ``schedule`` (``"batched"`` or
    ``"faithful"``), ``shift_tiles`` and whether the frames of every iteration are returned.
    """

    model: Network
    shape: tuple[int, int]
    levels: tuple[tuple[int, tuple[int, ...]], ...]
    iterations: int
    steps: int
    layout: Grid = Grid()
    schedule: str = "batched"
    shift_tiles: bool = False
    return_frames: bool = False

    @property
    def tile_size(self) -> tuple[int, int]:
        """What every tile is resized to: the network's input ``(H, W)``."""
        return input_size(self.model)

    @property
    def channels(self) -> int:
        """The network's input channels: 1 (gray, working images ``(H, W)``) or 3 (colour,
        working images ``(H, W, 3)``)."""
        return int(self.model.input_shape[-1])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """A working image's shape: ``shape``, with a trailing channel axis in colour."""
        return self.shape if self.channels == 1 else (*self.shape, self.channels)

    @property
    def tile_count(self) -> int:
        return sum(len(tiles) for _, tiles in self.levels)

    def cell_shape(self, level: int) -> tuple[int, int]:
        """A grid cell of ``level``: the range of a tile shift."""
        n = 2**level
        return self.shape[0] // n, self.shape[1] // n


class Knobs(NamedTuple):
    """The traced numbers of a dream: changing them never recompiles.

    ``objective``: every taking-part tile's objective, leaves of shape ``(T,)``
    (``jaxdream.objectives.stack_objectives``); ``weights`` ``(T,)``: each tile's level weight.
    """

    objective: Objective
    weights: Array
    epsilon: Array
    conv_criterion: Array


class Stages(NamedTuple):
    """What one iteration did, for the stage figure (``carve_stages`` stacks them over a
    dream's iterations).

    ``before`` and ``after`` ``(T, 28, 28)``: every taking-part tile as the CNN saw it before
    and after its OIP steps (tiles in the order of the spec's levels); ``change`` ``(L, H, W)``:
    each level's OIP change, upscaled and placed on the image in the image's units; ``result``
    ``(L, H, W)``: the image once each level's change is in (the last one is the iteration's
    frame). In the batched schedule every level's change is added to the same image, so a
    level's ``result`` is the image plus the changes of the levels up to it (standardized only
    at the last); in the faithful schedule it is the image after that level's step.
    """

    before: Array
    after: Array
    change: Array
    result: Array


def per_channel(spec: DreamSpec, f):
    """``f`` of gray arrays (no channel axis) applied to each channel of a colour spec's arrays
    (a trailing channel axis): the resize matrices, cuts and placements apply per channel. A
    gray spec's ``f`` is ``f`` itself: its program is the one it always was."""
    if spec.channels == 1:
        return f
    return jax.vmap(f, in_axes=-1, out_axes=-1)


def _weighted(change: Array, weights: Array) -> Array:
    """Each tile's change ``(T, h, w[, C])`` times its level weight ``(T,)``."""
    return change * weights[(slice(None), *([None] * (change.ndim - 1)))]


def _select(objective: Objective, start: int, stop: int) -> Objective:
    return jax.tree.map(lambda a: a[start:stop], objective)


def _oip_tiles(spec, params, knobs, objective, tiles28, map_tiles: Strategy):
    """ONE batched OIP call over tiles ``(T, 28, 28)``, each with its own objective."""

    def run(args):
        obj, tile = args
        out = oip_single(
            spec.model, params, obj, tile, knobs.epsilon, knobs.conv_criterion, steps=spec.steps
        )
        return out.images

    return map_tiles.map(run, (objective, tiles28))


def by_matrices(spec: DreamSpec) -> bool:
    """Whether ``spec``'s iterations cut and place every level at once by resize matrices
    (``jaxdream.levels``): for working images of ``MATRICES_FROM`` pixels or more, without
    tile shifts (a shift moves the tiles each iteration)."""
    return spec.shape[0] * spec.shape[1] >= MATRICES_FROM and not spec.shift_tiles


def _batched_by_matrices(spec, params, knobs, map_tiles, image, record=False):
    m = level_matrices(spec.layout, spec.shape, spec.levels, spec.tile_size)
    cut = per_channel(spec, lambda x: cut_levels(m, x, spec.levels, spec.tile_size))
    z, _, scale = standardize_for_cnn(cut(image), spec.channels > 1)
    carved = _oip_tiles(spec, params, knobs, knobs.objective, z, map_tiles)
    change28 = _weighted((carved - z) * scale, knobs.weights)

    def place(c, split=False):
        return per_channel(spec, lambda x: place_levels(m, x, spec.levels, spec.tile_size, split))(
            c
        )

    if not record:
        return standardize(image + place(change28)), None
    changes = place(change28, split=True)
    results = image + jnp.cumsum(changes, axis=0)
    image = standardize(results[-1])
    return image, Stages(z, carved, changes, results.at[-1].set(image))


def _cut(spec: DreamSpec, level: int, tiles, image: Array) -> Array:
    """The chosen tiles of ``level`` of a gray image, resized to the network's input."""
    return resize(spec.layout.cut(image, level, tiles), spec.tile_size)


def _place(spec: DreamSpec, level: int, tiles, part: Array) -> Array:
    """Tiles' changes at the network's input size, enlarged and placed on a gray image."""
    up = resize(part, spec.layout.tile_shape(spec.shape, level))
    return spec.layout.place(up, spec.shape, level, tiles)


def _batched_iteration(spec, params, knobs, map_tiles, image, key, record=False):
    if by_matrices(spec):
        return _batched_by_matrices(spec, params, knobs, map_tiles, image, record)
    shift = spec.shift_tiles
    offsets, cut = [], []
    for (level, tiles), k in zip(spec.levels, jax.random.split(key, len(spec.levels)), strict=True):
        if shift and level > 0:
            th, tw = spec.cell_shape(level)
            off = jax.random.randint(k, (2,), 0, jnp.array([th, tw]))
        else:
            off = jnp.zeros((2,), jnp.int32)
        offsets.append(off)
        rolled = jnp.roll(image, -off, axis=(0, 1)) if shift else image
        cut.append(per_channel(spec, functools.partial(_cut, spec, level, tiles))(rolled))
    # Standardize each tile for the CNN (as ``standardize``) and undo it on the change.
    z, _, scale = standardize_for_cnn(jnp.concatenate(cut), spec.channels > 1)
    carved = _oip_tiles(spec, params, knobs, knobs.objective, z, map_tiles)
    change28 = _weighted((carved - z) * scale, knobs.weights)
    start, changes, results = 0, [], []
    for (level, tiles), off in zip(spec.levels, offsets, strict=True):
        part = change28[start : start + len(tiles)]
        start += len(tiles)
        change = per_channel(spec, functools.partial(_place, spec, level, tiles))(part)
        change = jnp.roll(change, off, axis=(0, 1)) if shift else change
        image = image + change
        changes.append(change)
        results.append(image)
    image = standardize(image)
    if not record:
        return image, None
    results[-1] = image
    return image, Stages(z, carved, jnp.stack(changes), jnp.stack(results))


def faithful_corrections(spec: DreamSpec, image: Array) -> list[Array]:
    """The article's constant correction tensors of a standardized working image, one per level
    of ``spec``: ``(H, W)`` for level 0, ``(tiles, H/n, W/n)`` for deeper levels."""
    corrections = []
    for level, tiles in spec.levels:
        if level == 0:
            img28 = standardize(resize(image, spec.tile_size))
            corrections.append(image - standardize(resize(img28, spec.shape)))
        else:
            q = cut_tiles(image, level, tiles)
            q28 = resize(q, spec.tile_size)
            up = resize(q28, spec.cell_shape(level))
            corrections.append(q - jax.vmap(standardize)(up))
    return corrections


def _faithful_iteration(spec, params, knobs, map_tiles, corrections, full, cur28, record=False):
    start, parts = 0, ([], [], [], [])
    for (level, tiles), corr in zip(spec.levels, corrections, strict=True):
        objective = _select(knobs.objective, start, start + len(tiles))
        start += len(tiles)
        if level == 0:
            x28 = cur28[None]
            x = _oip_tiles(spec, params, knobs, objective, x28, map_tiles)
            full = standardize(resize(x[0], spec.shape) + corr)
        else:
            x28 = resize(cut_tiles(full, level, tiles), spec.tile_size)
            x = _oip_tiles(spec, params, knobs, objective, x28, map_tiles)
            new = resize(x, spec.cell_shape(level)) + corr
            mask = tile_mask(spec.shape, level, tiles)
            full = standardize(full * (1 - mask) + place_tiles(new, spec.shape, level, tiles))
        if record:
            change = resize(x - x28, spec.cell_shape(level))
            for part, value in zip(
                parts, (x28, x, place_tiles(change, spec.shape, level, tiles), full), strict=True
            ):
                part.append(value)
    if not record:
        return (full, resize(full, spec.tile_size)), None
    before, after, change, result = parts
    stages = Stages(
        jnp.concatenate(before), jnp.concatenate(after), jnp.stack(change), jnp.stack(result)
    )
    return (full, resize(full, spec.tile_size)), stages


def initial_state(spec: DreamSpec, image: Array) -> tuple[Array, ...]:
    """What the iterations carry, before the first: the image (and, faithful, its 28x28); the
    state ``carve_part`` takes and returns."""
    if spec.schedule == "batched":
        return (image,)
    return image, standardize(resize(image, spec.tile_size))


def placeholder_states(spec: DreamSpec, images: Array) -> tuple[Array, ...]:
    """Zeros shaped as ``initial_state`` of each of ``images`` ``(N, H, W)``: the state
    ``carve_batch_part`` is given for iteration 0 (where it is ignored)."""
    if spec.schedule == "batched":
        return (jnp.zeros_like(images),)
    return jnp.zeros_like(images), jnp.zeros((images.shape[0], *spec.tile_size), images.dtype)


def _iterate(spec, params, image, state, knobs, keys, map_tiles, count=None):
    """A ``lax.scan`` of one iteration per key from ``state``: ``(state, frames)``.
    With a traced ``count`` (always ``len(keys)``) the loop's length is unknown to XLA, which
    therefore compiles it as it does a dream's whole loop (it would inline a loop of one)."""

    def record(frame):
        return frame if spec.return_frames else None

    if spec.schedule == "batched":

        def step(carry, key):
            x, _ = _batched_iteration(spec, params, knobs, map_tiles, carry[0], key)
            return (x,), record(x)

    else:
        check_schedule(spec.model, spec.schedule)
        corrections = faithful_corrections(spec, image)

        def step(carry, key):
            carry, _ = _faithful_iteration(spec, params, knobs, map_tiles, corrections, *carry)
            return carry, record(carry[0])

    if count is None:
        return jax.lax.scan(step, state, keys)

    def body(i, carry):
        state, records = carry
        state, new = step(state, keys[i])
        return state, jax.tree.map(lambda r, v: r.at[i].set(v), records, new)

    shapes = jax.eval_shape(lambda: step(state, keys[0])[1])
    records = jax.tree.map(lambda s: jnp.zeros((keys.shape[0], *s.shape), s.dtype), shapes)
    return jax.lax.fori_loop(0, count, body, (state, records))


def carve(
    spec: DreamSpec,
    params: Mapping,
    image: Array,
    knobs: Knobs,
    key: Array,
    map_tiles: Strategy = VMap(),
) -> tuple[Array, Array | None]:
    """The whole dream of ONE standardized working image ``(H, W)``: a ``lax.scan`` over
    iterations. Returns ``(dream, frames)``, frames ``(iterations, H, W)`` when the spec asks.
    ``map_tiles`` maps the OIP over the tiles (``jaxdream.parallel``; default: one vmap)."""
    image = jnp.asarray(image, jnp.float32)
    keys = iteration_keys(spec, key)
    state, frames = _iterate(
        spec, params, image, initial_state(spec, image), knobs, keys, map_tiles
    )
    return state[0], frames


def iteration_keys(spec: DreamSpec, key: Array) -> Array:
    """The key of each iteration of a dream with ``key``."""
    return jax.random.split(key, spec.iterations)


def carve_part(
    spec: DreamSpec,
    params: Mapping,
    image: Array,
    state: tuple[Array, ...],
    knobs: Knobs,
    key: Array,
    index: Array,
    map_tiles: Strategy = VMap(),
) -> tuple[tuple[Array, ...], Array | None]:
    """Iteration ``index`` of ``carve(spec, params, image, knobs, key)``'s dream, from
    ``state``, what iteration ``index - 1`` returned (``initial_state``'s shapes; ignored at
    0). Returns the state (its first leaf the image so far) and the iteration's frame (with a
    leading axis of 1) where the spec asks: ``carve``'s numbers, one iteration a call, so that
    the host knows when each is done (the progress of a dream)."""
    image = jnp.asarray(image, jnp.float32)
    state = jax.tree.map(
        lambda a, b: jnp.where(index == 0, a, b), initial_state(spec, image), state
    )
    keys = jax.lax.dynamic_slice_in_dim(iteration_keys(spec, key), index, 1)
    count = jnp.minimum(1, index + 1)  # 1, but traced: see _iterate
    return _iterate(spec, params, image, state, knobs, keys, map_tiles, count)


def carve_stages(
    spec: DreamSpec,
    params: Mapping,
    image: Array,
    frames: Array,
    knobs: Knobs,
    key: Array,
    map_tiles: Strategy = VMap(),
) -> Stages:
    """Every iteration's ``Stages`` of ``carve(spec, params, image, knobs, key)``'s dream, each
    iteration computed again from the frame before it (``frames``: the dream's own). Recorded
    inside the dream, the intermediates would change how XLA fuses it (the vivid preset moved
    by up to 6e-3 after 6 iterations), so they are recorded here, apart, and the dream's bytes
    are the same with a stage figure or without. Each ``result[:, -1]`` is the dream's frame."""
    image = jnp.asarray(image, jnp.float32)
    keys = iteration_keys(spec, key)
    inputs = jnp.concatenate([image[None], frames[:-1]])
    if spec.schedule == "batched":

        def one(args):
            x, k = args
            return _batched_iteration(spec, params, knobs, map_tiles, x, k, record=True)[1]

        stages = jax.lax.map(one, (inputs, keys))
    else:
        corrections = faithful_corrections(spec, image)
        first28 = initial_state(spec, image)[1]
        small = jnp.concatenate([first28[None], resize(inputs[1:], spec.tile_size)])

        def one(args):
            full, cur28 = args
            step = _faithful_iteration
            return step(spec, params, knobs, map_tiles, corrections, full, cur28, record=True)[1]

        stages = jax.lax.map(one, (inputs, small))
    return stages._replace(result=stages.result.at[:, -1].set(frames))


@functools.partial(jax.jit, static_argnames=("spec", "execution"))
def carve_batch_stages(
    spec: DreamSpec,
    params: Mapping,
    images: Array,
    frames: Array,
    knobs: Knobs,
    keys: Array,
    execution: Execution = Execution(),
) -> Stages:
    """``carve_stages`` over a batch (``frames`` ``(N, iterations, H, W)``), knobs shared."""

    def one(args):
        image, frame, key = args
        return carve_stages(spec, params, image, frame, knobs, key, execution.tiles)

    return execution.images.map(one, (images, frames, keys))


@functools.partial(jax.jit, static_argnames=("spec", "execution"))
def carve_batch(
    spec: DreamSpec,
    params: Mapping,
    images: Array,
    knobs: Knobs,
    keys: Array,
    execution: Execution = Execution(),
) -> tuple[Array, Array | None]:
    """``carve`` over a batch of images ``(N, H, W)`` (one key each), laid out by
    ``execution`` (``jaxdream.parallel``), compiled once for each spec and execution."""
    return _carve_each(spec, params, images, keys, execution, knobs, None)


@functools.partial(jax.jit, static_argnames=("spec", "execution"))
def carve_batch_each(
    spec: DreamSpec,
    params: Mapping,
    images: Array,
    knobs: Knobs,
    keys: Array,
    execution: Execution = Execution(),
) -> tuple[Array, Array | None]:
    """``carve_batch`` with one ``Knobs`` per image (every leaf with a leading batch axis): one
    photo dreamt with many maps or objectives of one structure in ONE compiled call."""
    return _carve_each(spec, params, images, keys, execution, None, knobs)


@functools.partial(jax.jit, static_argnames=("spec", "execution", "each"))
def carve_batch_part(
    spec: DreamSpec,
    params: Mapping,
    images: Array,
    states: tuple[Array, ...],
    knobs: Knobs,
    keys: Array,
    index: Array,
    execution: Execution = Execution(),
    each: bool = False,
) -> tuple[tuple[Array, ...], Array | None]:
    """``carve_part`` over a batch (``states`` per image, ``keys`` as for ``carve_batch``),
    ``knobs`` shared or, with ``each``, one per image (as ``carve_batch_each``). One program for
    every iteration (``index`` is traced)."""

    def one(args):
        image, state, key, own = args
        own = knobs if own is None else own
        return carve_part(spec, params, image, state, own, key, index, execution.tiles)

    return execution.images.map(one, (images, states, keys, knobs if each else None))


def _carve_each(spec, params, images, keys, execution, shared, own):
    """``carve`` mapped over images and keys, with ``shared`` knobs or each image's ``own``."""

    def one(args):
        image, key, knobs = args
        knobs = shared if own is None else knobs
        return carve(spec, params, image, knobs, key, execution.tiles)

    return execution.images.map(one, (images, keys, own))
