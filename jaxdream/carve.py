"""Carving: OIP applied to a photo at the scale of the whole image and of its tiles at once.

Tiles and levels
    Level 0 is the whole image, level 1 its 2x2 quadrants, level ``l`` a ``2**l x 2**l`` grid.
    Tiles are numbered row-major (level 1: 0 upper-left, 1 upper-right, 2 lower-left,
    3 lower-right). For a non-square image the grid follows the image: every tile is
    ``(H / 2**l) x (W / 2**l)`` pixels, and is resized to 28x28 (its aspect ratio squeezed, as the
    whole image is) before the CNN sees it. The working size is rounded so that the grid of the
    deepest level divides it exactly.

Batched schedule (the default)
    Every iteration cuts every chosen tile of every chosen level from the SAME current image,
    downscales all of them to 28x28, standardizes each one for the CNN (the article's addendum:
    a tile of a standardized image is itself not standardized), and runs ONE vmapped OIP call
    over the stack (the full image and its 4 quadrants: a batch of 5). Each tile's *change*,
    ``(oip(z) - z) * std``, is upscaled to the tile's size and added at its place, times the
    tile's level weight; then the image is standardized.

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
    zero steps it does not return the input (the addendum's point, kept here on purpose).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ConfigError
from jaxdream.model import CNN, activation_shapes, standardize
from jaxdream.objectives import Channel
from jaxdream.oip import (
    cpu_mesh,
    default_chunk,
    map_in_chunks,
    map_over_devices,
    oip_single,
    split_across_devices,
)

Array = jax.Array
OIP_SIZE = (28, 28)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """The Keys cubic kernel with a = -0.5 (as Pillow, TensorFlow, PyTorch and JAX use it)."""
    x = np.abs(x)
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


@functools.lru_cache(maxsize=256)
def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The ``(size_out, size_in)`` matrix of the bicubic, antialiased 1-D resize that
    ``jax.image.resize`` computes (the same formula, in numpy, once per pair of sizes):
    resizing is linear and separable, so a 2-D resize is ``A @ x @ B.T``."""
    inv_scale = size_in / size_out
    kernel_scale = max(inv_scale, 1.0)  # downscaling widens the kernel: antialiasing
    sample = (np.arange(size_out) + 0.5) * inv_scale - 0.5
    weights = _keys_cubic((sample[:, None] - np.arange(size_in)[None, :]) / kernel_scale)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(
        np.abs(total) > 1000 * np.finfo(np.float32).eps,
        weights / np.where(total != 0, total, 1),
        0.0,
    )
    inside = (sample >= -0.5) & (sample <= size_in - 0.5)
    return np.where(inside[:, None], weights, 0.0).astype(np.float32)


def resize(x: Array, shape: Sequence[int]) -> Array:
    """Bicubic resize with antialiasing of the trailing two axes: the same numbers as
    ``jax.image.resize(x, ..., "bicubic", antialias=True)``, as two small matrix multiplies with
    weights computed once per size (a smaller, faster program than the generic resize)."""
    (h, w), (oh, ow) = x.shape[-2:], tuple(shape)
    if (h, w) == (oh, ow):
        return x
    a, b = resize_matrix(h, oh), resize_matrix(w, ow)
    return jnp.einsum("oh,...hw,pw->...op", a, x, b, precision=jax.lax.Precision.HIGHEST)


def standardize_each(x: Array) -> Array:
    """``standardize`` over the last two axes of a stack of images."""
    return jax.vmap(standardize)(x.reshape(-1, *x.shape[-2:])).reshape(x.shape)


# --------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of tiles taking part in the dream.

    ``tiles``: row-major indices of the tiles that take part (``None``: all ``4**level``).
    ``maps``: one map for every tile of the level, one per chosen tile, or ``None`` for the
    dream's ``map``; ``-1`` means the whole layer. ``weight`` scales the level's changes in the
    batched schedule.

    >>> Level(1, tiles=(3,))          # the article: the lower-right quadrant only
    Level(level=1, tiles=(3,), maps=None, weight=1.0)
    """

    level: int
    tiles: tuple[int, ...] | None = None
    maps: int | tuple[int, ...] | None = None
    weight: float = 1.0

    def tile_indices(self) -> tuple[int, ...]:
        n = 4**self.level
        if self.tiles is None:
            return tuple(range(n))
        return tuple(self.tiles)

    def check(self) -> None:
        if self.level < 0 or self.level > 6:
            raise ConfigError(f"level must be in 0..6, got {self.level}")
        n = 4**self.level
        idx = self.tile_indices()
        if not idx:
            raise ConfigError(f"level {self.level} has no tiles")
        if len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= n:
            raise ConfigError(
                f"level {self.level} has tiles 0..{n - 1} (row-major); got {list(idx)}"
            )
        if isinstance(self.maps, tuple) and len(self.maps) != len(idx):
            raise ConfigError(
                f"level {self.level}: {len(self.maps)} maps for {len(idx)} tiles; give one map "
                "or one per tile"
            )


ARTICLE_LEVELS = (Level(0), Level(1, tiles=(3,)))
MAX_SIDE = 8192


@dataclasses.dataclass(frozen=True)
class DreamConfig:
    """A dream, as data. The defaults are the article's settings.

    ``size``: working size, an int for the longer side (aspect kept) or ``(height, width)``.
    ``map = -1`` carves the whole ``layer``. ``conv_criterion``: stop a tile's OIP early when its
    loss changes by less (the article's ``2e-4``; off by default). ``shift_tiles``: move the tile
    grid of levels >= 1 by a random offset each iteration (wrapping around), to hide seams.
    """

    size: int | tuple[int, int] = 560
    layer: str = "conv3"
    map: int = 56
    levels: tuple[Level, ...] = ARTICLE_LEVELS
    iterations: int = 4
    steps: int = 30
    epsilon: float = 0.01
    conv_criterion: float | None = None
    schedule: Literal["batched", "faithful"] = "batched"
    shift_tiles: bool = False
    seed: int = 0

    def replace(self, **changes) -> DreamConfig:
        return dataclasses.replace(self, **changes)

    def check(self, model: CNN) -> None:
        """Raise ``ConfigError`` (or ``ObjectiveError``) for any value out of its range."""
        if self.schedule not in ("batched", "faithful"):
            raise ConfigError(f"schedule must be 'batched' or 'faithful', got {self.schedule!r}")
        if self.iterations < 1:
            raise ConfigError(f"iterations must be >= 1, got {self.iterations}")
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if not np.isfinite(self.epsilon):
            raise ConfigError(f"epsilon must be a finite number, got {self.epsilon}")
        if any(not np.isfinite(lv.weight) for lv in self.levels):
            raise ConfigError("level weights must be finite numbers")
        if not self.levels:
            raise ConfigError("at least one level is needed")
        for lv in self.levels:
            lv.check()
        depths = [lv.level for lv in self.levels]
        if len(set(depths)) != len(depths):
            raise ConfigError(f"each level may appear once, got levels {depths}")
        if self.schedule == "faithful" and depths != sorted(depths):
            raise ConfigError("the faithful schedule runs levels in order: list them ascending")
        if self.schedule == "faithful" and self.shift_tiles:
            raise ConfigError("shift_tiles is not part of the faithful schedule")
        Channel(self.layer, np.asarray(self.tile_maps())).validate(activation_shapes(model))

    def tile_maps(self) -> list[int]:
        """The map of every taking-part tile, level after level."""
        out: list[int] = []
        for lv in self.levels:
            n = len(lv.tile_indices())
            maps = self.map if lv.maps is None else lv.maps
            out += list(maps) if isinstance(maps, tuple) else [maps] * n
        return out

    def tile_weights(self) -> list[float]:
        return [lv.weight for lv in self.levels for _ in lv.tile_indices()]

    def plan(self, image_shape: tuple[int, int]) -> Plan:
        return Plan(
            shape=tuple(image_shape),
            levels=tuple((lv.level, lv.tile_indices()) for lv in self.levels),
            whole_layer=min(self.tile_maps()) < 0,
        )

    def working_shape(self, image_shape: tuple[int, int]) -> tuple[int, int]:
        """``(height, width)`` the photo is resized to: divisible by the deepest grid, and no
        side over ``MAX_SIDE`` (a typo such as ``--size 56000`` would exhaust memory)."""
        grid = 2 ** max(lv.level for lv in self.levels)
        sides = self.size if isinstance(self.size, tuple | list) else (self.size,)
        if max(int(s) for s in sides) > MAX_SIDE:
            raise ConfigError(f"size {self.size} is too large: at most {MAX_SIDE} pixels a side")
        if isinstance(self.size, tuple | list):
            h, w = (int(s) for s in self.size)
            if h % grid or w % grid or h < grid or w < grid:
                raise ConfigError(f"size {h}x{w} is not divisible by the {grid}x{grid} tile grid")
            return h, w
        if self.size < grid:
            raise ConfigError(f"size {self.size} is smaller than the {grid}x{grid} tile grid")
        h0, w0 = image_shape
        scale = self.size / max(h0, w0)

        def snap(v: float) -> int:
            return max(grid, round(v / grid) * grid)

        return snap(h0 * scale), snap(w0 * scale)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The static part of a dream: the image shape and which tiles of which levels take part."""

    shape: tuple[int, int]
    levels: tuple[tuple[int, tuple[int, ...]], ...]
    split_tiles: bool = False  # inside shard_map: split each OIP call's tiles across devices
    whole_layer: bool = False  # some tile maximises its whole layer (map -1)

    def tile_shape(self, level: int) -> tuple[int, int]:
        n = 2**level
        return self.shape[0] // n, self.shape[1] // n


def cut_tiles(image: Array, level: int, tiles: Sequence[int]) -> Array:
    """The chosen tiles of ``level`` of an ``(H, W)`` image, shape ``(len(tiles), H/n, W/n)``."""
    n = 2**level
    h, w = image.shape[0] // n, image.shape[1] // n
    grid = image.reshape(n, h, n, w).transpose(0, 2, 1, 3).reshape(n * n, h, w)
    return grid if tuple(tiles) == tuple(range(n * n)) else grid[np.asarray(tiles)]


def place_tiles(values: Array, shape: tuple[int, int], level: int, tiles: Sequence[int]) -> Array:
    """The inverse of ``cut_tiles``: an ``(H, W)`` image holding ``values`` at the chosen tiles
    and zeros elsewhere."""
    n = 2**level
    h, w = shape[0] // n, shape[1] // n
    if tuple(tiles) != tuple(range(n * n)):  # a static gather (a scatter is slow on CPU)
        source = np.full(n * n, len(tiles))
        source[np.asarray(tiles)] = np.arange(len(tiles))
        values = jnp.concatenate([values, jnp.zeros((1, h, w), values.dtype)])[source]
    return values.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(shape)


def tile_mask(shape: tuple[int, int], level: int, tiles: Sequence[int]) -> Array:
    """1 on the chosen tiles of ``level``, 0 elsewhere."""
    n = 2**level
    ones = jnp.ones((len(tiles), shape[0] // n, shape[1] // n), jnp.float32)
    return place_tiles(ones, shape, level, tiles)


# --------------------------------------------------------------------------- the core


class Knobs(NamedTuple):
    """The traced settings of a dream: changing them never recompiles."""

    maps: Array  # (T,) int32, one per taking-part tile
    weights: Array  # (T,) float32
    epsilon: Array
    conv_criterion: Array


def _oip_tiles(model, params, layer, plan, knobs, tiles28, maps, steps):
    """ONE batched OIP call over all tiles; with ``plan.split_tiles`` (inside ``carve_batch``'s
    ``shard_map`` for one image on several CPU devices) each device runs its share."""

    def run(args):
        objective, tile = args
        out = oip_single(
            model, params, objective, tile, knobs.epsilon, knobs.conv_criterion, steps=steps
        )
        return out.images

    objective = Channel(layer, maps, may_be_whole=plan.whole_layer)
    if plan.split_tiles:
        return split_across_devices(run, (objective, tiles28))
    return jax.vmap(run)((objective, tiles28))


def _batched_iteration(model, params, layer, plan, knobs, steps, shift, image, key):
    offsets = []
    cut = []
    keys = jax.random.split(key, len(plan.levels))
    for (level, tiles), k in zip(plan.levels, keys, strict=True):
        if shift and level > 0:
            th, tw = plan.tile_shape(level)
            off = jax.random.randint(k, (2,), 0, jnp.array([th, tw]))
        else:
            off = jnp.zeros((2,), jnp.int32)
        offsets.append(off)
        rolled = jnp.roll(image, -off, axis=(0, 1)) if shift else image
        cut.append(resize(cut_tiles(rolled, level, tiles), OIP_SIZE))
    tiles28 = jnp.concatenate(cut)
    # Standardize each tile for the CNN (as ``standardize``) and undo it on the change.
    mean = tiles28.mean(axis=(1, 2), keepdims=True)
    scale = jnp.maximum(tiles28.std(axis=(1, 2), keepdims=True), 1.0 / np.sqrt(28 * 28))
    z = (tiles28 - mean) / scale
    carved = _oip_tiles(model, params, layer, plan, knobs, z, knobs.maps, steps)
    change28 = (carved - z) * scale * knobs.weights[:, None, None]
    start = 0
    for (level, tiles), off in zip(plan.levels, offsets, strict=True):
        part = change28[start : start + len(tiles)]
        start += len(tiles)
        change = place_tiles(resize(part, plan.tile_shape(level)), plan.shape, level, tiles)
        image = image + (jnp.roll(change, off, axis=(0, 1)) if shift else change)
    return standardize(image)


def faithful_corrections(plan: Plan, image: Array) -> list[Array]:
    """The article's constant correction tensors of a standardized working image, one per level
    of ``plan``: ``(H, W)`` for level 0, ``(tiles, H/n, W/n)`` for deeper levels."""
    corrections = []
    for level, tiles in plan.levels:
        if level == 0:
            img28 = standardize(resize(image, OIP_SIZE))
            corrections.append(image - standardize(resize(img28, plan.shape)))
        else:
            q = cut_tiles(image, level, tiles)
            q28 = resize(q, OIP_SIZE)
            corrections.append(q - standardize_each(resize(q28, plan.tile_shape(level))))
    return corrections


def _faithful_iteration(model, params, layer, plan, knobs, steps, corrections, full, cur28):
    start = 0
    for (level, tiles), corr in zip(plan.levels, corrections, strict=True):
        maps = knobs.maps[start : start + len(tiles)]
        start += len(tiles)
        if level == 0:
            x = _oip_tiles(model, params, layer, plan, knobs, cur28[None], maps, steps)[0]
            full = standardize(resize(x, plan.shape) + corr)
        else:
            q28 = resize(cut_tiles(full, level, tiles), OIP_SIZE)
            x = _oip_tiles(model, params, layer, plan, knobs, q28, maps, steps)
            new = resize(x, plan.tile_shape(level)) + corr
            mask = tile_mask(plan.shape, level, tiles)
            full = standardize(full * (1 - mask) + place_tiles(new, plan.shape, level, tiles))
    return full, resize(full, OIP_SIZE)


def carve(
    model: CNN,
    params: Mapping,
    image: Array,
    knobs: Knobs,
    key: Array,
    *,
    plan: Plan,
    layer: str,
    iterations: int,
    steps: int,
    schedule: str = "batched",
    shift_tiles: bool = False,
    return_frames: bool = False,
) -> tuple[Array, Array | None]:
    """The whole dream of ONE standardized working image ``(H, W)``: a ``lax.scan`` over
    iterations. Returns ``(dream, frames)``, frames ``(iterations, H, W)`` when asked."""
    image = jnp.asarray(image, jnp.float32)
    keys = jax.random.split(key, iterations)
    if schedule == "batched":

        def step(x, k):
            x = _batched_iteration(model, params, layer, plan, knobs, steps, shift_tiles, x, k)
            return x, (x if return_frames else None)

        out, frames = jax.lax.scan(step, image, keys)
    else:
        corrections = faithful_corrections(plan, image)
        img28 = standardize(resize(image, OIP_SIZE))

        def step(carry, _):
            full, cur28 = _faithful_iteration(
                model, params, layer, plan, knobs, steps, corrections, *carry
            )
            return (full, cur28), (full if return_frames else None)

        (out, _), frames = jax.lax.scan(step, (image, img28), keys)
    return out, frames


@functools.partial(
    jax.jit,
    static_argnames=(
        "model",
        "plan",
        "layer",
        "iterations",
        "steps",
        "schedule",
        "shift_tiles",
        "return_frames",
        "chunk",
    ),
)
def carve_batch(
    model: CNN,
    params: Mapping,
    images: Array,
    knobs: Knobs,
    keys: Array,
    chunk: int | None = None,
    **static,
) -> tuple[Array, Array | None]:
    """``carve`` vmapped over a batch of images ``(N, H, W)`` (one key each), ``chunk`` images
    at a time, compiled once for each static configuration."""
    mesh = cpu_mesh()
    if images.shape[0] == 1:  # one image: no batching transform to trace (a faster first call)
        one = functools.partial(carve, model, **static)
        if mesh is not None:
            # Several CPU devices: each holds the whole image and computes everything but the
            # OIP redundantly; the OIP call's tiles are split across them, and one all-gather
            # per iteration brings them together (rather than letting XLA partition the
            # resizes, which cost 8 all-reduces and all-to-alls per iteration).
            plan = dataclasses.replace(static["plan"], split_tiles=True)
            one = jax.shard_map(
                functools.partial(carve, model, **dict(static, plan=plan)),
                mesh=mesh,
                in_specs=jax.sharding.PartitionSpec(),
                out_specs=jax.sharding.PartitionSpec(),
                check_vma=False,
            )
        out, frames = one(params, images[0], knobs, keys[0])
        return out[None], None if frames is None else frames[None]
    if mesh is not None:
        # Several images, several CPU devices: each device dreams whole images (no padded
        # tile slots, no exchange between devices inside an iteration).
        return map_over_devices(
            lambda args: carve(model, params, args[0], knobs, args[1], **static),
            (images, keys),
            chunk,
        )
    return map_in_chunks(
        lambda args: carve(model, params, args[0], knobs, args[1], **static), (images, keys), chunk
    )


def images_per_chunk(config_tiles: int) -> int | None:
    """How many images ``carve_batch`` should vmap together: about ``default_chunk()`` tiles
    on one CPU device; about 10 tiles per device when whole images are spread over several
    (measured: 2 article dreams of 5 tiles per group, 36.9 ms per dream, against 38.6 ms for 3
    and 39.5 ms for 4); all at once on accelerators."""
    chunk = default_chunk()
    if chunk is None:
        return None
    if jax.device_count() > 1:
        return max(1, round(10 / config_tiles))
    return max(1, chunk // config_tiles)


def parse_level(text: str) -> Level:
    """A ``Level`` from command-line text ``LEVEL[:TILE,...][/MAP,...][*WEIGHT]``.

    >>> parse_level("1:3")
    Level(level=1, tiles=(3,), maps=None, weight=1.0)
    >>> parse_level("1/56,12,3,7*0.5")
    Level(level=1, tiles=None, maps=(56, 12, 3, 7), weight=0.5)
    """
    rest, weight = text.split("*", 1) if "*" in text else (text, "1")
    rest, maps = rest.split("/", 1) if "/" in rest else (rest, "")
    level, tiles = rest.split(":", 1) if ":" in rest else (rest, "")
    try:
        map_list = tuple(int(m) for m in maps.split(",")) if maps else None
        return Level(
            level=int(level),
            tiles=tuple(int(t) for t in tiles.split(",")) if tiles else None,
            maps=map_list[0] if map_list and len(map_list) == 1 else map_list,
            weight=float(weight),
        )
    except ValueError:
        raise ConfigError(
            f"cannot read level {text!r}: use LEVEL[:TILE,...][/MAP,...][*WEIGHT], "
            "e.g. 0, 1:3, 1/56,12,3,7 or 2*0.5"
        ) from None
