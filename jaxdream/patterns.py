"""OIP, the "optimal input pattern": gradient ascent on an input image so that an objective of
the CNN's activations grows, exactly as the article does it:

    loss = objective(activations(params, x));  g = d loss / d x
    g <- g / (sqrt(mean(g**2)) + 1e-5);         x <- x + epsilon * g

All steps run inside one compiled program (``lax.while_loop``), written for one image and
vmapped over a batch, each image with its own objective values (e.g. its own map).

>>> import jax, jax.numpy as jnp
>>> from jaxdream.model import CNN, init_params
>>> from jaxdream.objectives import channel
>>> model = CNN(widths=(4, 4, 4), hidden=8)
>>> params = init_params(model, jax.random.key(0))
>>> start = noise_images(jax.random.key(1), 3)
>>> out = oip(params, channel("conv3", jnp.array([0, 1, 2])), start, steps=5, network=model)
>>> out.images.shape, out.losses.shape
((3, 28, 28), (3, 5))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.checks import number, whole_number
from jaxdream.errors import ConfigError, NumericalError
from jaxdream.imageops import standardize
from jaxdream.inputs import model_from_params  # noqa: F401  (its old place)
from jaxdream.network import (
    Network,
    features,
    input_size,
    layer_shapes,
    needed_side,
    network_argument,
    resolve,
    resolved,
)
from jaxdream.objectives import Objective, broadcast_objective
from jaxdream.parallel import Execution, Strategy, VMap
from jaxdream.parallel import resolve as resolve_parallel
from jaxdream.programs import run as run_program

Array = jax.Array

GRAD_EPS = 1e-5  # the article's guard in the RMS normalisation
MAX_STEPS = 100_000
MAX_EPSILON = 1000.0  # beyond, a step overflows float32 within a few steps


class OIPResult(NamedTuple):
    """``images`` after the ascent; ``losses[i, j]`` the objective before step ``j`` (NaN for
    steps an early-stopped image did not take); ``steps_run[i]`` how many steps it took."""

    images: Array
    losses: Array
    steps_run: Array


def normalized_gradient(g: Array) -> Array:
    """The article's RMS normalisation; a zero gradient stays zero (no NaN)."""
    return g / (jnp.sqrt(jnp.mean(jnp.square(g))) + GRAD_EPS)


def ascent_step(
    model: Network, params: Mapping, objective: Objective, image: Array, epsilon: float | Array
) -> tuple[Array, Array]:
    """One OIP step on one image: ``(new_image, loss_before_the_step)``.

    The bundled CNN sees only the part of the image the objective's layers depend on
    (``needed_side``: 26x26 for conv3 and deeper); the gradient is zero elsewhere, as it would
    be anyway. Another network sees the whole image.
    """
    side = needed_side(model, objective.layers)

    def loss_fn(x):
        return objective(features(model, params, x if side is None else x[:side, :side]))

    loss, g = jax.value_and_grad(loss_fn)(image)
    return image + epsilon * normalized_gradient(g), loss


def oip_single(
    model: Network,
    params: Mapping,
    objective: Objective,
    image: Array,
    epsilon: float | Array = 0.01,
    conv_criterion: float | Array = 0.0,
    *,
    steps: int = 30,
) -> OIPResult:
    """``steps`` ascent steps on ONE image, inside a ``lax.while_loop``.

    With ``conv_criterion > 0`` the loop stops after the step at which the loss changed by less
    than it (the article's convergence option); ``0`` never stops early.
    """
    image = jnp.asarray(image, jnp.float32)
    if steps == 0:
        return OIPResult(image, jnp.zeros((0,), jnp.float32), jnp.int32(0))

    def cond(carry):
        i, _, _, _, active = carry
        return (i < steps) & active

    def body(carry):
        i, x, prev_loss, losses, _ = carry
        x, loss = ascent_step(model, params, objective, x, epsilon)
        converged = (i > 0) & (jnp.abs(loss - prev_loss) < conv_criterion)
        return i + 1, x, loss, losses.at[i].set(loss), ~converged

    init = (jnp.int32(0), image, jnp.float32(0), jnp.full((steps,), jnp.nan), jnp.bool_(True))
    n, image, _, losses, _ = jax.lax.while_loop(cond, body, init)
    return OIPResult(image, losses, n)


@functools.partial(jax.jit, static_argnames=("model", "steps", "strategy"))
def oip_batch(
    model: Network,
    params: Mapping,
    objective: Objective,
    images: Array,
    epsilon: float | Array,
    conv_criterion: float | Array,
    steps: int,
    strategy: Strategy = VMap(),
) -> OIPResult:
    """The compiled OIP over ``images`` ``(B, H, W)`` (the network's input size), mapped over
    the batch by ``strategy`` (``jaxdream.parallel``); ``objective`` leaves of shape ``(B,)`` (see
    ``broadcast_objective``). Only ``model``, ``steps``, ``strategy`` and shapes retrace."""

    def run(args):
        obj, image = args
        return oip_single(model, params, obj, image, epsilon, conv_criterion, steps=steps)

    return strategy.map(run, (objective, images))


def oip(
    params: Mapping,
    objective: Objective,
    images: Array,
    steps: int = 30,
    epsilon: float = 0.01,
    conv_criterion: float | None = None,
    model: Network | None = None,
    parallel: Execution | str = "auto",
    *,
    network: Network | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
) -> OIPResult:
    """Run OIP on a batch of images of the network's input size (or one image), checking the
    objective first. ``network`` (the bundled CNN by default; ``jaxdream.network.as_network``
    takes a Flax module) with its ``params`` (``model``: ``network``'s old name);
    ``input_shape`` and ``preprocess``: the network's input shape and its own preprocessing
    (``jaxdream.network.resolve``).

    ``objective`` leaves may be scalars (all images alike) or length-``B`` arrays (one value per
    image). ``conv_criterion`` (e.g. the article's ``2e-4``) stops each image on its own.
    ``parallel``: how the batch is spread (``"auto"``: ``jaxdream.parallel.auto``; ``"vmap"``;
    or an ``Execution``, whose ``images`` strategy is used). The bundled CNN's ``"auto"``
    compute choices are made here, for the default backend (``jaxdream.compute``).
    """
    network = network_argument(network, model)
    model, params = resolve(network, params, input_shape, preprocess)
    model = resolved(model)
    objective.validate(layer_shapes(model))
    images = jnp.asarray(images, jnp.float32)
    one = image_shape(model)
    single = images.ndim == len(one)
    if single:
        images = images[None]
    if images.ndim != len(one) + 1 or images.shape[1:] != one:
        raise ConfigError(
            f"OIP needs {'x'.join(map(str, one))} images (the network's input), got {images.shape}"
        )
    if images.shape[0] == 0:
        raise ConfigError("OIP needs at least one image")
    if not bool(jnp.all(jnp.isfinite(images))):
        raise ConfigError("the start images hold NaN or infinite values")
    whole_number("steps", steps, 0, MAX_STEPS)
    number("epsilon", epsilon, -MAX_EPSILON, MAX_EPSILON)
    if conv_criterion is not None:
        number("conv_criterion", conv_criterion, 0, math.inf)
    strategy = resolve_parallel(parallel, images.shape[0]).images
    per_image = broadcast_objective(objective, images.shape[0])
    eps, crit = jnp.float32(epsilon), jnp.float32(conv_criterion or 0.0)
    args = (model, params, per_image, images, eps, crit, steps, strategy)
    out = run_program(oip_batch, args, (1, 2, 3, 4, 5))
    if not bool(jnp.all(jnp.isfinite(out.images))):
        raise NumericalError(
            f"OIP gave NaN or infinite values ({objective.name}, epsilon {epsilon}): lower "
            "epsilon or the objective's weights"
        )
    if single:
        out = OIPResult(out.images[0], out.losses[0], out.steps_run[0])
    return out


def dead(out: OIPResult) -> np.ndarray:
    """Which images of a batched ``OIPResult`` had a dead start: their loss stayed exactly 0
    (the objective's activations are zero everywhere there, so no gradient)."""
    losses = np.asarray(out.losses)
    steps_run = np.asarray(out.steps_run)
    taken = np.arange(losses.shape[1])[None, :] < steps_run[:, None]
    return (steps_run > 0) & np.all(np.where(taken, losses == 0, True), axis=1)


def oip_from_noise(
    params: Mapping,
    objective: Objective,
    key: Array,
    n: int,
    *,
    restarts: int = 8,
    amplitude: float = 0.1,
    **kwargs,
) -> tuple[OIPResult, np.ndarray]:
    """``oip`` of ``n`` noise starts (``objective`` leaves scalars or length ``n``); images
    with a dead start (``dead``) start again from new noise, up to ``restarts`` times, so a
    map is only reported dead when ``restarts + 1`` starts gave it no gradient. Returns the
    result and how many starts each image took (``restarts + 2`` where all were dead)."""
    objective = broadcast_objective(objective, n)
    network = network_argument(kwargs.pop("network", None), kwargs.pop("model", None))
    shape, preprocess = kwargs.pop("input_shape", None), kwargs.pop("preprocess", None)
    network, params = resolve(network, params, shape, preprocess)
    kwargs["network"] = network
    keys = jax.random.split(key, restarts + 1)
    start = _noise_starts(network, keys[0], n, amplitude)
    out = oip(params, objective, start, **kwargs)
    images, losses, steps_run = (np.array(a) for a in out)
    starts = np.ones(n, int)
    for attempt in range(1, restarts + 1):
        todo = dead(OIPResult(images, losses, steps_run))
        if not todo.any():
            break
        # The whole batch again (the same compiled program), new noise where the start was dead.
        fresh = _noise_starts(network, keys[attempt], n, amplitude)
        start = jnp.where(jnp.asarray(todo).reshape(-1, *[1] * (start.ndim - 1)), fresh, start)
        again = [np.asarray(a) for a in oip(params, objective, start, **kwargs)]
        images[todo], losses[todo], steps_run[todo] = (a[todo] for a in again)
        starts[todo] += 1
    starts[dead(OIPResult(images, losses, steps_run))] = restarts + 2
    return OIPResult(jnp.asarray(images), jnp.asarray(losses), jnp.asarray(steps_run)), starts


def image_shape(network: Network) -> tuple[int, ...]:
    """One image the network takes as OIP works on it: ``(H, W)`` gray, ``(H, W, 3)`` RGB."""
    h, w = input_size(network)
    c = int(network.input_shape[-1])
    return (h, w) if c == 1 else (h, w, c)


def _noise_starts(network: Network, key: Array, n: int, amplitude: float) -> Array:
    """``n`` noise starts of the network's input (``noise_images``), each colour channel one
    ``noise_image`` of its own."""
    shape = image_shape(network)
    if len(shape) == 2:
        return noise_images(key, n, size=shape, amplitude=amplitude)
    h, w, c = shape
    planes = noise_images(key, n * c, size=(h, w), amplitude=amplitude)
    return planes.reshape(n, c, h, w).transpose(0, 2, 3, 1)


def noise_scales(size: int | tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """The resolutions ``noise_image`` draws at for ``size``: the size, a half, a quarter and a
    seventh of it (28: 28, 14, 7 and 4, the article series' scales).

    >>> noise_scales(28)
    ((28, 28), (14, 14), (7, 7), (4, 4))
    """
    h, w = (size, size) if isinstance(size, int) else size
    return tuple((max(1, round(h / d)), max(1, round(w / d))) for d in (1, 2, 4, 7))


def noise_image(
    key: Array,
    size: int | tuple[int, int] = 28,
    scales: tuple[int | tuple[int, int], ...] | None = None,
    amplitude: float = 0.1,
) -> Array:
    """A start image of random fluctuations on several length scales (as the article series
    does): uniform noise drawn at each resolution in ``scales`` (default ``noise_scales``),
    upscaled bicubically to ``size`` (a side, or ``(H, W)``: a network's input size), summed,
    then standardized and scaled to standard deviation ``amplitude``."""
    shape = (size, size) if isinstance(size, int) else tuple(size)
    scales = noise_scales(size) if scales is None else scales
    total = jnp.zeros(shape, jnp.float32)
    for k, s in zip(jax.random.split(key, len(scales)), scales, strict=True):
        coarse_shape = (s, s) if isinstance(s, int) else tuple(s)
        coarse = jax.random.uniform(k, coarse_shape, minval=-1.0, maxval=1.0)
        total = total + jax.image.resize(coarse, shape, "bicubic")
    return amplitude * standardize(total)


def noise_images(key: Array, n: int, **kw) -> Array:
    """``n`` independent ``noise_image`` s, shape ``(n, H, W)``."""
    return jax.vmap(lambda k: noise_image(k, **kw))(jax.random.split(key, n))
