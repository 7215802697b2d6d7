"""The same dream, with the same weights, in the frameworks a user would otherwise run.

One algorithm, written once (``dream_iteration``) over a small table of backend operations, so
every peer computes exactly jaxdream's batched schedule for the benchmark workload: the full
image and its 4 quadrants cut from the same image, downscaled to 28x28 (bicubic, antialias),
standardized per tile, one batched OIP run of ``steps`` RMS-normalised steps, the changes
upscaled and added back, the image standardized.

- ``tf-eager``: the article notebook's style, a Keras model and a ``tf.GradientTape`` per step,
  run eagerly, one tile at a time;
- ``tf-function``: the same Keras model with the whole iteration in one ``tf.function``;
- ``torch-eager``: PyTorch, eager, ``torch.autograd.grad`` per step.

Each peer's first OIP run and the faithful schedule's correction tensors are compared with
jaxdream's in ``check``. TensorFlow and PyTorch are imported only when a peer is built (the
``bench`` extra, or ``pip install tensorflow-cpu torch==2.13.0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

LAYERS = 3
TILE = 28


def _np(params: Mapping) -> dict:
    return {
        k: {n: np.array(v, np.float32) for n, v in layer.items()} for k, layer in params.items()
    }


class TorchOps:
    name = "torch-eager"

    def __init__(self, params: Mapping):
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        p = _np(params)
        self.weights = [
            (
                torch.from_numpy(
                    np.ascontiguousarray(p[f"conv{i}"]["kernel"].transpose(3, 2, 0, 1))
                ),
                torch.from_numpy(p[f"conv{i}"]["bias"]),
            )
            for i in range(1, LAYERS + 1)
        ]

    def tensor(self, x):
        return self.torch.from_numpy(np.array(x, np.float32))  # a writable copy

    def numpy(self, x):
        return x.detach().numpy()

    def resize(self, x, shape):
        out = self.F.interpolate(x[:, None], size=tuple(shape), mode="bicubic", antialias=True)
        return out[:, 0]

    def cat(self, xs, axis=0):
        return self.torch.cat(xs, dim=axis)

    def stats(self, x):
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True, unbiased=False)
        return mean, self.torch.clamp(std, min=1.0 / math.sqrt(x.shape[1] * x.shape[2]))

    def features(self, x):
        for i, (w, b) in enumerate(self.weights):
            x = self.F.relu(self.F.conv2d(x, w, b))
            if i < LAYERS - 1:
                x = self.F.max_pool2d(x, 2)
        return x

    def oip(self, z, maps, steps, epsilon):
        torch = self.torch
        x = z[:, None].clone()
        rows = torch.arange(x.shape[0])
        maps = torch.as_tensor(maps)
        for _ in range(steps):
            x.requires_grad_(True)
            loss = self.features(x)[rows, maps].mean(dim=(1, 2)).sum()
            (g,) = torch.autograd.grad(loss, x)
            with torch.no_grad():
                rms = g.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
                x = (x + epsilon * g / (rms + 1e-5)).detach()
        return x[:, 0]

    batch_oip = oip


class TFOps:
    """TensorFlow with a Keras model of the CNN up to ``conv3``; eager unless ``compiled``."""

    def __init__(self, params: Mapping, compiled: bool = False):
        import tensorflow as tf

        self.tf = tf
        self.name = "tf-function" if compiled else "tf-eager"
        p = _np(params)
        layers = [tf.keras.Input((TILE, TILE, 1))]
        for i in range(1, LAYERS + 1):
            layers.append(
                tf.keras.layers.Conv2D(
                    p[f"conv{i}"]["kernel"].shape[-1], 3, activation="relu", name=f"conv{i}"
                )
            )
            if i < LAYERS:
                layers.append(tf.keras.layers.MaxPooling2D(2))
        self.model = tf.keras.Sequential(layers)
        for i in range(1, LAYERS + 1):
            self.model.get_layer(f"conv{i}").set_weights(
                [p[f"conv{i}"]["kernel"], p[f"conv{i}"]["bias"]]
            )
        if compiled:
            self.iteration = tf.function(self._iteration, reduce_retracing=True)
            self.batch_oip = tf.function(self.oip, reduce_retracing=True)
        else:  # the article notebook's way: one tile at a time, eagerly
            self.iteration = self._iteration
            self.batch_oip = self.oip

    def oip_per_tile(self, z, maps, steps, epsilon):
        return self.tf.concat(
            [self.oip(z[i : i + 1], maps[i : i + 1], steps, epsilon) for i in range(len(maps))],
            axis=0,
        )

    def _iteration(self, x, maps, steps, epsilon, quadrants=(0, 1, 2, 3)):
        if self.name == "tf-eager":
            oip = self.oip_per_tile
            return dream_iteration(self, x, maps, steps, epsilon, oip=oip, quadrants=quadrants)
        return dream_iteration(self, x, maps, steps, epsilon, quadrants=quadrants)

    def tensor(self, x):
        return self.tf.constant(np.asarray(x, np.float32))

    def numpy(self, x):
        return x.numpy()

    def resize(self, x, shape):
        out = self.tf.image.resize(x[..., None], tuple(shape), method="bicubic", antialias=True)
        return out[..., 0]

    def cat(self, xs, axis=0):
        return self.tf.concat(xs, axis=axis)

    def stats(self, x):
        tf = self.tf
        mean = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        std = tf.math.reduce_std(x, axis=(1, 2), keepdims=True)
        return mean, tf.maximum(std, 1.0 / math.sqrt(x.shape[1] * x.shape[2]))

    def oip(self, z, maps, steps, epsilon):
        tf = self.tf
        x = z[..., None]
        index = tf.stack([tf.range(tf.shape(x)[0]), tf.cast(maps, tf.int32)], axis=1)

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                acts = tf.transpose(self.model(x), (0, 3, 1, 2))  # (B, maps, 3, 3)
                loss = tf.reduce_sum(tf.reduce_mean(tf.gather_nd(acts, index), axis=(1, 2)))
            g = tape.gradient(loss, x)
            rms = tf.sqrt(tf.reduce_mean(tf.square(g), axis=(1, 2, 3), keepdims=True))
            return x + epsilon * g / (rms + 1e-5)

        for _ in range(steps):  # inside tf.function this loop is traced into the graph
            x = step(x)
        return x[..., 0]


def dream_iteration(ops, x, maps, steps: int, epsilon: float, oip=None, quadrants=(0, 1, 2, 3)):
    """One iteration of jaxdream's batched schedule for the full image + its ``quadrants``
    (row-major; the article's: ``(3,)``), on an ``(H, W)`` backend tensor (``oip``: the
    backend's batched OIP unless given)."""
    h, w = x.shape
    quads = _quadrants(ops, x)
    chosen = (
        quads
        if tuple(quadrants) == (0, 1, 2, 3)
        else ops.cat([quads[k : k + 1] for k in quadrants])
    )
    tiles28 = ops.cat([ops.resize(x[None], (TILE, TILE)), ops.resize(chosen, (TILE, TILE))])
    mean, scale = ops.stats(tiles28)
    z = (tiles28 - mean) / scale
    change = ((oip or ops.oip)(z, maps, steps, epsilon) - z) * scale
    full = ops.resize(change[:1], (h, w))[0]
    q = ops.resize(change[1:], (h // 2, w // 2))
    parts = {k: q[i] for i, k in enumerate(quadrants)}
    zero = q[0] * 0.0
    b = [parts.get(k, zero) for k in range(4)]
    quads = ops.cat([ops.cat([b[0], b[1]], axis=1), ops.cat([b[2], b[3]], axis=1)])
    x = x + full + quads
    mean, scale = ops.stats(x[None])
    return (x - mean[0]) / scale[0]


def _quadrants(ops, x):
    """The 4 quadrants of an ``(H, W)`` tensor, row-major, as ``(4, H/2, W/2)``."""
    h, w = x.shape
    return ops.cat(
        [
            x[None, r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2]
            for r in range(2)
            for c in range(2)
        ]
    )


def set_threads(name: str, threads: int | None) -> None:
    """The peer's intra-op thread count (before its first operation); ``None``: its default."""
    if threads is None:
        return
    if name == "torch-eager":
        import torch

        torch.set_num_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)


def build(name: str, params: Mapping, threads: int | None = None):
    """A peer by name: ``torch-eager``, ``tf-eager`` or ``tf-function``, with ``threads``
    intra-op threads (``None``: the library's default)."""
    if name not in ("torch-eager", "tf-eager", "tf-function"):
        raise ValueError(f"unknown peer {name!r}")
    set_threads(name, threads)
    if name == "torch-eager":
        return TorchOps(params)
    if name in ("tf-eager", "tf-function"):
        return TFOps(params, compiled=name == "tf-function")
    raise ValueError(f"unknown peer {name!r}")


def dream(
    ops,
    image: np.ndarray,
    maps,
    iterations: int,
    steps: int,
    epsilon: float,
    quadrants=(0, 1, 2, 3),
):
    """The whole dream of a standardized ``(H, W)`` numpy image; returns numpy."""
    x = ops.tensor(image)
    iteration = getattr(ops, "iteration", None) or (
        lambda x, m, s, e, q: dream_iteration(ops, x, m, s, e, quadrants=q)
    )
    for _ in range(iterations):
        x = iteration(x, maps, steps, epsilon, tuple(quadrants))
    return ops.numpy(x)


def faithful_corrections(ops, image: np.ndarray):
    """The article's correction tensors for the full image and its 4 quadrants."""
    x = ops.tensor(image)
    h, w = image.shape

    def std(t):
        mean, scale = ops.stats(t)
        return (t - mean) / scale

    img28 = std(ops.resize(x[None], (TILE, TILE)))
    full = x - std(ops.resize(img28, (h, w)))[0]
    quads = _quadrants(ops, x)
    q = quads - std(ops.resize(ops.resize(quads, (TILE, TILE)), (h // 2, w // 2)))
    return ops.numpy(full), ops.numpy(q)
