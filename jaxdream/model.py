"""The MNIST CNN whose feature maps the dreams carve, with its activations handed out by name.

The architecture is the one of the article series this project implements (a Keras MNIST CNN):

    28x28x1 -> conv 3x3 (32) -> ReLU -> max-pool 2 -> conv 3x3 (64) -> ReLU -> max-pool 2
            -> conv 3x3 (64) -> ReLU -> flatten -> dense (70) -> ReLU -> dense (10)

All convolutions are "valid" (no padding): 28 -> 26 -> 13 -> 11 -> 5 -> 3.

Every function here is written for ONE image of shape ``(28, 28)`` or ``(28, 28, 1)``; batch with
``jax.vmap``:

>>> import jax, jax.numpy as jnp
>>> model = CNN()
>>> params = init_params(model, jax.random.key(0))
>>> acts = jax.vmap(lambda x: activations(model, params, x))(jnp.zeros((4, 28, 28)))
>>> acts["conv3"].shape
(4, 3, 3, 64)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxdream import compute
from jaxdream.imageops import standardize  # noqa: F401  (re-exported: training uses it here)
from jaxdream.kernels import (  # noqa: F401  (the kernels' names, as before they moved)
    CONV_IMPLS,
    HIGHEST,
    conv3x3_fast,
    conv3x3_im2col,
    conv3x3_xla,
    max_pool_2x2,
)

Array = jax.Array

INPUT_SHAPE = (28, 28, 1)


class Conv3x3(nn.Module):
    """A 3x3 "valid" convolution of one ``(H, W, C)`` image; parameters ``kernel`` and ``bias``.

    ``impl`` picks the computation (``CONV_IMPLS``); all give the same numbers to float
    tolerance and share the parameters. ``precision``: of its products (``compute.PRECISIONS``).
    """

    features: int
    impl: str = "im2col"
    precision: str = "highest"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        conv = CONV_IMPLS[self.impl]
        return conv(x, kernel, compute.PRECISIONS[self.precision]) + bias


class CNN(nn.Module):
    """The MNIST CNN. ``__call__`` maps one image to a dict of named activations.

    Names: ``conv1``, ``conv2``, ``conv3``, ``dense`` (after ReLU), the same with ``_pre``
    (before ReLU), ``pool1``, ``pool2`` and ``logits``.

    The architecture is ``widths``, ``hidden`` and ``num_classes``; the other fields say how it
    computes, with the same numbers to float tolerance: ``conv`` (``CONV_IMPLS``, or ``"auto"``:
    the backend's choice, ``jaxdream.compute``), ``fusion_guard`` (a CPU workaround in the
    max-pool gradient; ``None``: the backend's choice) and ``precision`` of the matrix products
    (``"highest"``, full float32, by default on every backend).
    """

    widths: tuple[int, int, int] = (32, 64, 64)
    hidden: int = 70
    num_classes: int = 10
    conv: str = "auto"
    fusion_guard: bool | None = None
    precision: str = "highest"

    @property
    def architecture(self) -> tuple:
        """What the parameters must fit (checkpoints compare this, not the compute choices)."""
        return tuple(self.widths), self.hidden, self.num_classes

    def resolved(self) -> CNN:
        """This model with its ``"auto"`` choices made for the default backend (the dream and
        OIP entry points make them once, at the edge; a model used directly makes them when
        traced)."""
        return compute.resolve(self)

    # -- the engine's Network protocol (jaxdream.network): this model's own fast paths

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The input one image has: 28x28 gray."""
        return INPUT_SHAPE

    @property
    def classifier(self) -> str:
        """The layer of class scores (the objectives' ``logit:N``)."""
        return "logits"

    def activations(
        self, params: Mapping, image: Array, upto: str | None = None
    ) -> dict[str, Array]:
        """The named activations of one image (``activations``)."""
        return activations(self, params, image, upto)

    def activation_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every named activation of one 28x28 image (``activation_shapes``)."""
        return activation_shapes(self)

    def features(self, params: Mapping, image: Array) -> Features:
        """The activations of one image, each map of a convolution computable alone."""
        return Features(self, params, image)

    def needed_side(self, layers: Iterable[str]) -> int:
        """The smallest top-left crop ``layers`` need (``needed_side``)."""
        return needed_side(self, layers)

    def conv_fn(self):
        """The convolution ``(x, kernel) -> y`` this model computes with."""
        model = self.resolved()
        return functools.partial(
            CONV_IMPLS[model.conv], precision=compute.PRECISIONS[model.precision]
        )

    @nn.compact
    def __call__(self, image: Array, upto: str | None = None) -> dict[str, Array]:
        """The named activations of one image; with ``upto``, only those up to that layer."""
        made = self.resolved()
        x = jnp.asarray(image, jnp.float32)
        x = x.reshape(*x.shape[:2], 1)  # (H, W) or (H, W, 1); 28x28 or a top-left crop of it
        acts: dict[str, Array] = {}
        for i, width in enumerate(self.widths, start=1):
            conv = Conv3x3(width, impl=made.conv, precision=made.precision, name=f"conv{i}")
            pre = acts[f"conv{i}_pre"] = conv(x)
            x = acts[f"conv{i}"] = nn.relu(pre)
            if i < len(self.widths):
                # relu(pool(x)) == pool(relu(x)) (the ReLU is monotone): pool first, then the
                # ReLU acts on a quarter of the values.
                x = acts[f"pool{i}"] = nn.relu(max_pool_2x2(pre, made.fusion_guard))
            if upto in acts:
                return acts
        precision = compute.PRECISIONS[made.precision]
        dense = nn.Dense(self.hidden, precision=precision, name="dense")
        x = acts["dense_pre"] = dense(x.reshape(-1))
        x = acts["dense"] = nn.relu(x)
        logits = nn.Dense(self.num_classes, precision=precision, name="logits")
        acts["logits"] = logits(x)
        return acts


def init_params(model: CNN, key: Array) -> dict:
    """Fresh parameters for ``model`` (a plain nested dict of arrays)."""
    return model.init(key, jnp.zeros(INPUT_SHAPE))["params"]


def activations(
    model: CNN, params: Mapping, image: Array, upto: str | None = None
) -> dict[str, Array]:
    """All named activations of ``model`` for one image (with ``upto``: at least those up to
    that layer): pure in ``params`` and ``image``."""
    return model.apply({"params": params}, image, upto=upto)


class Features(Mapping):
    """The named activations of one image (a read-only mapping, as ``activations``) that can also
    compute one map of a convolution alone: ``features.channel("conv3", m)`` runs the last
    convolution for map ``m`` only, a 64th of its work and of its gradient's.

    Each activation is computed (traced) when asked for, through that layer only.

    >>> model = CNN(widths=(4, 4, 4), hidden=8)
    >>> params = init_params(model, jax.random.key(0))
    >>> f = Features(model, params, jnp.ones((28, 28)))
    >>> bool(jnp.allclose(f.channel("conv3", 2), f["conv3"][..., 2]))
    True
    """

    def __init__(self, model: CNN, params: Mapping, image: Array):
        self.model, self.params = model, params
        self.image = jnp.asarray(image, jnp.float32).reshape(*jnp.shape(image)[:2], 1)
        self._names = tuple(activation_shapes(model, self.image.shape))

    def __getitem__(self, name: str) -> Array:
        if name not in self._names:
            raise KeyError(name)
        # Nothing is kept between calls (no tracer can leak); XLA merges repeated layers.
        return activations(self.model, self.params, self.image, upto=name)[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def channel(self, layer: str, index: int | Array) -> Array:
        """Map ``index`` of ``layer``, ``(H, W)``; for ``convN`` and ``convN_pre`` computed
        alone from the convolution's input and one column of its kernel."""
        conv = layer.removesuffix("_pre")
        if not (conv.startswith("conv") and conv in self.params):
            return jnp.take(self[layer], index, axis=-1)
        i = int(conv.removeprefix("conv"))
        x = self[f"pool{i - 1}"] if i > 1 else self.image
        kernel = jax.lax.dynamic_slice_in_dim(self.params[conv]["kernel"], index, 1, axis=-1)
        bias = jax.lax.dynamic_slice_in_dim(self.params[conv]["bias"], index, 1)
        pre = (self.model.conv_fn()(x, kernel) + bias)[..., 0]
        return pre if layer.endswith("_pre") else nn.relu(pre)


def logits(model: CNN, params: Mapping, image: Array) -> Array:
    """Class scores for one image."""
    return activations(model, params, image)["logits"]


def activation_shapes(
    model: CNN, input_shape: tuple[int, ...] = INPUT_SHAPE
) -> dict[str, tuple[int, ...]]:
    """The shape of every named activation for one image of ``input_shape``, without computing
    anything (tests/test_model.py checks it against the model's own shapes).

    >>> activation_shapes(CNN())["conv3"]
    (3, 3, 64)
    """
    h, w = input_shape[:2]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, width in enumerate(model.widths, start=1):
        h, w = h - 2, w - 2
        shapes[f"conv{i}_pre"] = shapes[f"conv{i}"] = (h, w, width)
        if i < len(model.widths):
            h, w = h // 2, w // 2
            shapes[f"pool{i}"] = (h, w, width)
    shapes["dense_pre"] = shapes["dense"] = (model.hidden,)
    shapes["logits"] = (model.num_classes,)
    return shapes


def param_shapes(model: CNN) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, ``"layer/name"``, worked out from the architecture (no
    flax trace: loading a checkpoint checks against these; tests/test_model.py compares them
    with ``init_params``).

    >>> param_shapes(CNN())["conv2/kernel"], param_shapes(CNN())["dense/kernel"]
    ((3, 3, 32, 64), (576, 70))
    """
    acts = activation_shapes(model)
    shapes: dict[str, tuple[int, ...]] = {}
    channels = INPUT_SHAPE[-1] if len(INPUT_SHAPE) == 3 else 1
    for i, width in enumerate(model.widths, start=1):
        shapes[f"conv{i}/kernel"], shapes[f"conv{i}/bias"] = (3, 3, channels, width), (width,)
        channels = width
    flat = math.prod(acts[f"conv{len(model.widths)}"])
    shapes["dense/kernel"], shapes["dense/bias"] = (flat, model.hidden), (model.hidden,)
    shapes["logits/kernel"] = (model.hidden, model.num_classes)
    shapes["logits/bias"] = (model.num_classes,)
    return shapes


@functools.cache
def _needed_side(model: CNN, layers: frozenset[str]) -> int:
    side = INPUT_SHAPE[0]
    full = activation_shapes(model)
    # A dense layer sees all of the last spatial activation: judge it by that one.
    last_spatial = [n for n, sh in full.items() if len(sh) == 3][-1]
    layers = frozenset(n if len(full[n]) == 3 else last_spatial for n in layers)
    # Smaller crops give smaller (or equal) activations: walk down until one differs.
    while layers and side > 1:
        shapes = activation_shapes(model, (side - 1, side - 1))
        if any(shapes[n] != full[n] for n in layers):
            break
        side -= 1
    return side


def needed_side(model: CNN, layers: Iterable[str]) -> int:
    """The side of the smallest top-left crop of a 28x28 input from which ``layers`` come out
    the same as from the whole image.

    Valid convolutions and 2x2 pooling that drops odd edges never look at the last rows and
    columns for the deeper layers: for ``conv3`` (and all after it) the last 2 rows and columns
    of the input do not count, so the ascent computes on 26x26 and skips about a quarter of the
    work, with the same numbers (and the same zero gradient on those pixels) as on 28x28.

    >>> needed_side(CNN(), ["conv3"]), needed_side(CNN(), ["conv2"])
    (26, 28)
    """
    return _needed_side(model, frozenset(layers))


def param_count(params: Mapping) -> int:
    """Total number of scalars in a parameter tree."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))
