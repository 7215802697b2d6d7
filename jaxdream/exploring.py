"""The map explorer: one photo dreamt with many maps in ONE batched, compiled call, ranked by how
strongly each map took hold.

Strength of a map on a photo: the mean absolute change the dream made to the standardized photo
(``mean |dream - photo|``, in the photo's standard deviations). A map whose OIP found no
gradient on any tile (its activations are zero everywhere on this photo) leaves the photo as it
was: strength below ``DEAD_BELOW``, marked dead.

>>> import numpy as np
>>> photo = np.random.default_rng(0).random((40, 40))
>>> ranked = explore(photo, "conv3", [0, 1, 2], DreamConfig(size=32, iterations=1, steps=2))
>>> sorted(r.map for r in ranked), ranked[0].strength >= ranked[-1].strength
([0, 1, 2], True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream import parallel
from jaxdream.carve import carve_batch_each
from jaxdream.checks import shown, whole_number
from jaxdream.config import MAX_SIDE, MAX_TILE_STEPS, DreamConfig
from jaxdream.dreaming import (
    DreamCall,
    DreamResult,
    ImageLike,
    check_finite,
    dream_in_parts,
    prepare,
)
from jaxdream.errors import ConfigError
from jaxdream.figures import LABEL_HEIGHT, PAD
from jaxdream.imageio import load_photo
from jaxdream.imageops import resize, standardize
from jaxdream.keys import image_keys
from jaxdream.network import Network, input_size, layer_shapes, network_argument, resolve
from jaxdream.objectives import channel
from jaxdream.patterns import oip
from jaxdream.programs import run as run_program

DEAD_BELOW = 1e-4


class Explored(NamedTuple):
    """One map's dream of the photo, its strength and whether it was dead."""

    map: int
    result: DreamResult
    strength: float
    dead: bool


def parse_maps(text: str, count: int) -> list[int]:
    """``all``, a range ``A-B`` (inclusive) or a list ``1,5,9`` of a layer's ``count`` maps;
    every map in ``0..count-1`` and listed once (a map twice is the same dream twice).

    >>> parse_maps("2-4", 8), parse_maps("1,6", 8), len(parse_maps("all", 8))
    ([2, 3, 4], [1, 6], 8)
    """
    usage = f"--maps takes 'all', a range A-B or a list A,B,C of maps 0..{count - 1}"
    if not isinstance(text, str):
        raise ConfigError(f"{usage}; got {shown(text)}")
    text = text.strip()
    if len(text) > 100_000:
        raise ConfigError(f"{usage}; got {len(text):,} characters")

    def index(v: str) -> int:
        v = v.strip()
        if not v.isascii() or not v.isdigit():
            raise ConfigError(f"{usage}; got {shown(text)}")
        if len(v) > 9 or int(v) >= count:
            raise ConfigError(f"maps must be in 0..{count - 1}; map {shown(int(v))} is not")
        return int(v)

    if text == "all":
        return list(range(count))
    if "-" in text and "," not in text:
        low, _, high = text.partition("-")
        a, b = index(low), index(high)
        if a > b:
            raise ConfigError(f"--maps {text!r} is an empty range: write the lower map first")
        return list(range(a, b + 1))
    maps = [index(v) for v in text.split(",")]
    seen: set[int] = set()
    for m in maps:
        if m in seen:
            raise ConfigError(f"map {m} is listed twice in --maps: each map is dreamt once")
        seen.add(m)
    return maps


def check_work(count: int, config: DreamConfig, shape: tuple[int, int]) -> None:
    """Refuse ``count`` dreams of ``config`` on working images of ``shape`` in one call where
    together they pass ONE dream's limits: its tile steps (``MAX_TILE_STEPS``) and its pixels
    (``MAX_SIDE`` squared, the largest working image). Many maps each just under the limit
    would otherwise make one call of hours and gigabytes.

    >>> check_work(64, DreamConfig(), (280, 280))
    >>> try:
    ...     check_work(10**6, DreamConfig(), (280, 280))
    ... except ConfigError as e:
    ...     print(str(e)[:59])
    1,000,000 maps x 240 tile steps = 240,000,000 tile steps is
    """
    steps = count * config.tile_steps()
    if steps > MAX_TILE_STEPS:
        raise ConfigError(
            f"{count:,} maps x {config.tile_steps():,} tile steps = {steps:,} tile steps is more "
            f"than one call may take ({MAX_TILE_STEPS:,}): fewer maps, iterations or steps"
        )
    pixels = count * shape[0] * shape[1]
    if pixels > MAX_SIDE**2:
        raise ConfigError(
            f"{count:,} maps x {shape[1]}x{shape[0]} pixels = {pixels:,} pixels is more than one "
            f"call may hold ({MAX_SIDE**2:,}): fewer maps or a smaller --size"
        )


MAX_CELL = 2048


def check_sheet(count: int, columns: int, cell: int, shape: tuple[int, int]) -> None:
    """Refuse a contact sheet of ``count`` dreams of ``shape`` (height, width) in ``columns``
    at ``cell`` pixels wide that would be larger than one dream's image may be (``MAX_SIDE``
    squared pixels), before any work.

    >>> check_sheet(64, 8, 200, (280, 280))
    """
    whole_number("--cell", cell, 8, MAX_CELL)
    whole_number("--columns", columns, 1, 1024)
    height = max(1, round(cell * shape[0] / shape[1]))
    columns = min(columns, count)
    rows = -(-count // columns)
    w, h = columns * (cell + PAD) + PAD, rows * (height + LABEL_HEIGHT + PAD) + PAD
    if w * h > MAX_SIDE**2:
        raise ConfigError(
            f"a sheet of {count} dreams at --cell {cell} in {columns} columns would be {w:,}x"
            f"{h:,} pixels, more than {MAX_SIDE**2:,}: a smaller --cell, or fewer maps"
        )


def explore(
    photo: ImageLike,
    layer: str,
    maps: Sequence[int],
    config: DreamConfig = DreamConfig(),
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    progress: Callable[[int], object] | None = None,
    model: Network | None = None,
) -> list[Explored]:
    """Dream ``photo`` once per map of ``layer`` (every tile carving that map; ``config``'s
    other settings) in one compiled call; strongest first. ``network``, ``params``,
    ``input_shape`` and ``preprocess`` as for ``dream`` (``model``: ``network``'s old name);
    ``progress(iterations_done)`` as for ``dream``."""
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    if not isinstance(layer, str):
        raise ConfigError(f"layer must be a layer's name, not {shown(layer)}")
    model, params = resolve(network_argument(network, model), params, input_shape, preprocess)
    levels = tuple(dataclasses.replace(lv, maps=None, objective=None) for lv in config.levels)
    maps = list(maps) if isinstance(maps, Sequence) and not isinstance(maps, str) else None
    if not maps or not all(
        isinstance(m, int | np.integer) and not isinstance(m, bool) for m in maps
    ):
        raise ConfigError("maps must be a non-empty list of whole numbers")
    if len(set(maps)) != len(maps):
        raise ConfigError("each map may be listed once (a map twice is the same dream twice)")
    config = config.replace(layer=layer, objective=None, map=int(maps[0]), levels=levels)
    config.check(model)
    count = layer_shapes(model)[layer][-1]
    if any(not 0 <= m < count for m in maps):
        raise ConfigError(f"maps of {layer} are 0..{count - 1}")
    loaded = load_photo(photo)
    shape = config.working_shape(loaded.shape)
    check_work(len(maps), config, shape)
    gray = prepare(loaded, shape, config, model)
    knobs = [config.replace(map=int(m)).knobs() for m in maps]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *knobs)
    n = len(maps)
    keys = image_keys(config.seed, [0] * n)
    execution = parallel.auto(n, config.tile_count())
    images = jnp.broadcast_to(jnp.asarray(gray), (n, *gray.shape))
    call = DreamCall(config.spec(model, shape), params, images, stacked, keys, execution)
    if progress is None:
        out, _ = run_program(carve_batch_each, tuple(call), (1, 2, 3, 4))
    else:
        out, _ = dream_in_parts(call, progress, each=True)
    out = np.asarray(out)
    check_finite(out, config)
    found = []
    for m, image in zip(maps, out, strict=True):
        strength = float(np.abs(image - gray).mean())
        result = DreamResult(image, gray, loaded.rgb, None, config.replace(map=int(m)))
        found.append(Explored(int(m), result, strength, strength < DEAD_BELOW))
    return sorted(found, key=lambda e: -e.strength)


def responding_maps(
    gray: np.ndarray, layer: str, *, model: Network, params: Mapping, count: int = 5
) -> list[int]:
    """The ``count`` maps of ``layer`` that respond most to a standardized photo: one OIP step
    on the photo at the network's input size for every map in one call, ranked by how far it
    moved the image (a cheap stand-in for a full ``explore``); maps that do not move it are
    left out."""
    n = layer_shapes(model)[layer][-1]
    size = input_size(model)
    gray = jnp.asarray(gray)
    if gray.ndim == 3:  # a colour network's working image: resized channel by channel
        z = standardize(jnp.moveaxis(resize(jnp.moveaxis(gray, -1, 0), size), 0, -1))
    else:
        z = standardize(resize(gray, size))
    out = oip(
        params,
        channel(layer, jnp.arange(n)),
        jnp.broadcast_to(z, (n, *z.shape)),
        steps=1,
        network=model,
    )
    moved = np.abs(np.asarray(out.images) - np.asarray(z)).mean(axis=tuple(range(1, z.ndim + 1)))
    order = [int(m) for m in np.argsort(-moved) if moved[m] > 0]
    return order[:count]
