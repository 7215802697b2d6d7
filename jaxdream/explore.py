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
from jaxdream.checkpoint import load_model
from jaxdream.config import DreamConfig
from jaxdream.dream import (
    DreamCall,
    DreamResult,
    ImageLike,
    check_finite,
    dream_in_parts,
    prepare,
)
from jaxdream.errors import ConfigError
from jaxdream.imageio import load_photo
from jaxdream.model import CNN, activation_shapes
from jaxdream.oip import model_from_params
from jaxdream.progress import call as progress_call

DEAD_BELOW = 1e-4


class Explored(NamedTuple):
    """One map's dream of the photo, its strength and whether it was dead."""

    map: int
    result: DreamResult
    strength: float
    dead: bool


def parse_maps(text: str, count: int) -> list[int]:
    """``all``, a range ``A-B`` (inclusive) or a list ``1,5,9`` of a layer's ``count`` maps.

    >>> parse_maps("2-4", 8), parse_maps("1,6", 8), len(parse_maps("all", 8))
    ([2, 3, 4], [1, 6], 8)
    """
    try:
        if text == "all":
            maps = list(range(count))
        elif "-" in text.strip("-"):
            low, high = (int(v) for v in text.split("-", 1))
            maps = list(range(low, high + 1))
        else:
            maps = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"--maps takes 'all', a range A-B or a list A,B,C; got {text!r}"
        ) from None
    bad = [m for m in maps if not 0 <= m < count]
    if not maps or bad:
        raise ConfigError(f"maps must be in 0..{count - 1}; got {text!r}")
    return maps


def explore(
    photo: ImageLike,
    layer: str,
    maps: Sequence[int],
    config: DreamConfig = DreamConfig(),
    *,
    model: CNN | None = None,
    params: Mapping | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[Explored]:
    """Dream ``photo`` once per map of ``layer`` (every tile carving that map; ``config``'s
    other settings) in one compiled call; strongest first. ``progress(iterations_done)`` as
    for ``dream``."""
    if params is None:
        model, params = load_model()
    model = model or model_from_params(params)
    levels = tuple(dataclasses.replace(lv, maps=None, objective=None) for lv in config.levels)
    config = config.replace(layer=layer, objective=None, map=int(maps[0]), levels=levels)
    config.check(model)
    count = activation_shapes(model)[layer][-1]
    if any(not 0 <= m < count for m in maps):
        raise ConfigError(f"maps of {layer} are 0..{count - 1}")
    loaded = load_photo(photo)
    shape = config.working_shape(loaded.gray.shape)
    gray = prepare(loaded, shape, config)
    knobs = [config.replace(map=int(m)).knobs() for m in maps]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *knobs)
    n = len(maps)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(config.seed), i))(
        jnp.zeros(n, jnp.int32)
    )
    execution = parallel.auto(n, config.tile_count())
    images = jnp.broadcast_to(jnp.asarray(gray), (n, *shape))
    call = DreamCall(config.spec(model, shape), params, images, stacked, keys, execution)
    if progress is None:
        out, _ = progress_call(carve_batch_each, tuple(call), (1, 2, 3, 4))
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
    gray: np.ndarray, layer: str, *, model: CNN, params: Mapping, count: int = 5
) -> list[int]:
    """The ``count`` maps of ``layer`` that respond most to a standardized photo: one OIP step
    on the photo at 28x28 for every map in one call, ranked by how far it moved the image (a
    cheap stand-in for a full ``explore``); maps that do not move it are left out."""
    from jaxdream.imageops import OIP_SIZE, resize, standardize
    from jaxdream.objectives import channel
    from jaxdream.oip import oip

    n = activation_shapes(model)[layer][-1]
    z = standardize(resize(jnp.asarray(gray), OIP_SIZE))
    out = oip(
        params,
        channel(layer, jnp.arange(n)),
        jnp.broadcast_to(z, (n, *OIP_SIZE)),
        steps=1,
        model=model,
    )
    moved = np.abs(np.asarray(out.images) - np.asarray(z)).mean(axis=(1, 2))
    order = [int(m) for m in np.argsort(-moved) if moved[m] > 0]
    return order[:count]
