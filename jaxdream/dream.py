"""The dream API: a photo (path, PIL image or array) and a ``DreamConfig`` in, arrays out.

>>> import numpy as np
>>> photo = np.random.default_rng(0).random((64, 48))
>>> result = dream(photo, DreamConfig(size=64, iterations=1, steps=2))
>>> result.image.shape, result.to_uint8().dtype
((64, 48), dtype('uint8'))
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxdream.carve import DreamConfig, Knobs, carve_batch, images_per_chunk, resize
from jaxdream.checkpoint import load_model
from jaxdream.display import Display, colorize, render
from jaxdream.imageio import Photo, load_photo
from jaxdream.model import CNN, standardize
from jaxdream.oip import model_from_params

ImageLike = str | os.PathLike | Image.Image | np.ndarray


class DreamResult(NamedTuple):
    """A finished dream. ``image`` and ``gray`` are standardized ``(H, W)`` float arrays at the
    working size; ``frames`` ``(iterations, H, W)`` when asked for; ``rgb`` the photo resized to
    the working size (for colour output)."""

    image: np.ndarray
    gray: np.ndarray
    rgb: np.ndarray
    frames: np.ndarray | None
    config: DreamConfig

    def to_uint8(self, display: Display = Display(), color: bool = False) -> np.ndarray:
        """The dream as pixels: gray ``(H, W)``, or ``(H, W, 3)`` keeping the photo's chroma."""
        return self.render(self.image, display, color)

    def render(self, x: np.ndarray, display: Display = Display(), color: bool = False):
        gray = render(x, self.gray, display)
        return colorize(gray, self.rgb) if color else gray


def _knobs(config: DreamConfig) -> Knobs:
    return Knobs(
        maps=jnp.asarray(config.tile_maps(), jnp.int32),
        weights=jnp.asarray(config.tile_weights(), jnp.float32),
        epsilon=jnp.float32(config.epsilon),
        conv_criterion=jnp.float32(config.conv_criterion or 0.0),
    )


def carve_arguments(
    model: CNN,
    params: Mapping,
    config: DreamConfig,
    images: jax.Array,
    return_frames: bool = False,
    chunk: int | str | None = "auto",
) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of ``carve_batch`` for standardized working images ``(N, H, W)``:
    image ``i`` uses the key ``fold_in(key(config.seed), i)``."""
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(config.seed), i))(
        jnp.arange(images.shape[0])
    )
    kwargs = dict(
        chunk=images_per_chunk(len(config.tile_maps())) if chunk == "auto" else chunk,
        plan=config.plan(images.shape[1:]),
        layer=config.layer,
        iterations=config.iterations,
        steps=config.steps,
        schedule=config.schedule,
        shift_tiles=config.shift_tiles,
        return_frames=return_frames,
    )
    return (model, params, images, _knobs(config), keys), kwargs


def prepare(photo: Photo, shape: tuple[int, int]) -> tuple[jax.Array, np.ndarray]:
    """The standardized gray working image and the RGB photo, both resized to ``shape``."""
    gray = standardize(resize(jnp.asarray(photo.gray), shape))
    rgb = np.asarray(jax.image.resize(jnp.asarray(photo.rgb), (*shape, 3), "bicubic"))
    return gray, rgb


def dream_many(
    images: Sequence[ImageLike],
    config: DreamConfig = DreamConfig(),
    *,
    model: CNN | None = None,
    params: Mapping | None = None,
    return_frames: bool = False,
) -> list[DreamResult]:
    """Dream several photos in ONE compiled, vmapped call. All are resized to the working shape
    of the first; image ``i`` uses the key ``fold_in(key(seed), i)`` (``carve_arguments``)."""
    if params is None:
        model, params = load_model()
    model = model or model_from_params(params)
    config.check(model)
    photos = [load_photo(im) for im in images]
    shape = config.working_shape(photos[0].gray.shape)
    prepared = [prepare(p, shape) for p in photos]
    grays = jnp.stack([g for g, _ in prepared])
    args, kwargs = carve_arguments(model, params, config, grays, return_frames)
    out, frames = carve_batch(*args, **kwargs)
    out = np.asarray(out)
    frames = None if frames is None else np.asarray(frames)
    return [
        DreamResult(out[i], np.asarray(g), rgb, None if frames is None else frames[i], config)
        for i, (g, rgb) in enumerate(prepared)
    ]


def dream(
    image: ImageLike,
    config: DreamConfig = DreamConfig(),
    *,
    model: CNN | None = None,
    params: Mapping | None = None,
    return_frames: bool = False,
) -> DreamResult:
    """Carve ``config``'s map(s) into one photo. With no ``params``, the bundled weights."""
    return dream_many([image], config, model=model, params=params, return_frames=return_frames)[0]
