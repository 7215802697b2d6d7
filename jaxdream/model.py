"""The MNIST CNN whose feature maps the dreams carve, with its activations handed out by name.

The default architecture is the one of the article series this project implements (a Keras
MNIST CNN):

    28x28x1 -> conv 3x3 (32) -> ReLU -> max-pool 2 -> conv 3x3 (64) -> ReLU -> max-pool 2
            -> conv 3x3 (64) -> ReLU -> flatten -> dense (70) -> ReLU -> dense (10)

All convolutions are "valid" (no padding): 28 -> 26 -> 13 -> 11 -> 5 -> 3. The architecture is
data (``CNN``'s fields: any number of convolution widths, "valid" or "same" padding, the input
size and channels, which convolutions a 2x2 max-pool follows), written into checkpoints as a
plain dict (``architecture_dict``, ``model_from_architecture``).

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
from jaxdream.errors import ConfigError
from jaxdream.imageops import standardize
from jaxdream.kernels import (  # noqa: F401  (the kernels' names, as before they moved)
    CONV_IMPLS,
    HIGHEST,
    PADDINGS,
    conv3x3_fast,
    conv3x3_im2col,
    conv3x3_xla,
    max_pool_2x2,
    pad_same,
)

Array = jax.Array

INPUT_SHAPE = (28, 28, 1)


class Conv3x3(nn.Module):
    """A 3x3 convolution of one ``(H, W, C)`` image; parameters ``kernel`` and ``bias``.

    ``impl`` picks the computation (``CONV_IMPLS``); all give the same numbers to float
    tolerance and share the parameters. ``precision``: of its products (``compute.PRECISIONS``).
    ``padding``: ``"valid"`` (the output 2 smaller) or ``"same"`` (a border of zeros first, the
    output as large as the input: ``kernels.pad_same`` then the valid convolution).
    """

    features: int
    impl: str = "im2col"
    precision: str = "highest"
    padding: str = "valid"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        conv = CONV_IMPLS[self.impl]
        if self.padding == "same":
            x = pad_same(x)
        return conv(x, kernel, compute.PRECISIONS[self.precision]) + bias


class CNN(nn.Module):
    """The MNIST CNN. ``__call__`` maps one image to a dict of named activations.

    Names: ``conv1``, ``conv2``, ... (one per width), ``dense`` (after ReLU), the same with
    ``_pre`` (before ReLU), ``poolN`` after each pooled ``convN``, and ``logits``.

    The architecture (``ARCHITECTURE_FIELDS``): ``widths`` (one 3x3 convolution each, any
    number), ``hidden`` (the dense layer), ``num_classes``, ``padding`` of the convolutions
    (``"valid"`` or ``"same"``), ``input_size`` ``(H, W)``, ``channels`` of the input (1 or 3)
    and ``pool_after``: the convolutions (numbered from 1) a 2x2 max-pool follows; ``None``
    (the default): every one but the last, a pool between every two. The defaults are the
    article's network. The other fields say how it computes, with the same numbers to float
    tolerance: ``conv`` (``CONV_IMPLS``, or ``"auto"``: the backend's choice,
    ``jaxdream.compute``), ``fusion_guard`` (a CPU workaround in the max-pool gradient;
    ``None``: the backend's choice) and ``precision`` of the matrix products (``"highest"``,
    full float32, by default on every backend).
    """

    widths: tuple[int, ...] = (32, 64, 64)
    hidden: int = 70
    num_classes: int = 10
    conv: str = "auto"
    fusion_guard: bool | None = None
    precision: str = "highest"
    padding: str = "valid"
    input_size: tuple[int, int] = (28, 28)
    channels: int = 1
    pool_after: tuple[int, ...] | None = None

    @property
    def architecture(self) -> tuple:
        """What the parameters must fit (checkpoints compare this, not the compute choices)."""
        return tuple(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in architecture_dict(self).items()
        )

    @property
    def pools(self) -> tuple[int, ...]:
        """The convolutions (numbered from 1) a 2x2 max-pool follows."""
        if self.pool_after is None:
            return tuple(range(1, len(self.widths)))
        return tuple(sorted(set(self.pool_after)))

    def resolved(self) -> CNN:
        """This model with its ``"auto"`` choices made for the default backend (the dream and
        OIP entry points make them once, at the edge; a model used directly makes them when
        traced)."""
        return compute.resolve(self)

    # -- the engine's Network protocol (jaxdream.network): this model's own fast paths

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The input one image has: ``(*input_size, channels)`` (28x28 gray by default)."""
        return (*self.input_size, self.channels)

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
        """The shape of every named activation of one input image (``activation_shapes``)."""
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
        conv = functools.partial(
            CONV_IMPLS[model.conv], precision=compute.PRECISIONS[model.precision]
        )
        if self.padding == "same":
            return lambda x, kernel: conv(pad_same(x), kernel)
        return conv

    @nn.compact
    def __call__(self, image: Array, upto: str | None = None) -> dict[str, Array]:
        """The named activations of one image; with ``upto``, only those up to that layer."""
        made = self.resolved()
        x = jnp.asarray(image, jnp.float32)
        # (H, W) or (H, W, C); input_size or a top-left crop of it
        x = x.reshape(*x.shape[:2], self.channels)
        acts: dict[str, Array] = {}
        pools = self.pools
        for i, width in enumerate(self.widths, start=1):
            conv = Conv3x3(
                width,
                impl=made.conv,
                precision=made.precision,
                padding=self.padding,
                name=f"conv{i}",
            )
            pre = acts[f"conv{i}_pre"] = conv(x)
            x = acts[f"conv{i}"] = nn.relu(pre)
            if i in pools:
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


ARCHITECTURE_FIELDS = (
    "widths",
    "hidden",
    "num_classes",
    "padding",
    "input_size",
    "channels",
    "pool_after",
)
MAX_WIDTH = 65536
MAX_SIDE = 4096


def architecture_dict(model: CNN) -> dict:
    """``model``'s architecture as plain data (lists, ints, strings; what checkpoints and
    ``jaxdream train --arch FILE.json`` hold); ``pool_after`` written out.

    >>> architecture_dict(CNN())["pool_after"], architecture_dict(CNN())["input_size"]
    ([1, 2], [28, 28])
    """
    return {
        "widths": [int(w) for w in model.widths],
        "hidden": int(model.hidden),
        "num_classes": int(model.num_classes),
        "padding": model.padding,
        "input_size": [int(n) for n in model.input_size],
        "channels": int(model.channels),
        "pool_after": list(model.pools),
    }


def _whole(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be whole numbers in {low}..{high}, got {value!r}")
    return int(value)


def model_from_architecture(spec: Mapping, **compute_choices) -> CNN:
    """The ``CNN`` that an architecture dict (``architecture_dict``) describes; fields left
    out keep their defaults (the article's network). ``compute_choices``: ``conv``,
    ``precision``, ... Raises ``ConfigError`` for an unknown field or a value no network can
    have (``check_architecture``).

    >>> model_from_architecture({"widths": [8, 8, 8, 8], "padding": "same"}).pools
    (1, 2, 3)
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"an architecture is a mapping of fields, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(ARCHITECTURE_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown architecture field(s) {', '.join(map(repr, unknown))}; "
            f"the fields are {', '.join(ARCHITECTURE_FIELDS)}"
        )

    def numbers(name: str, count: int | None = None) -> tuple[int, ...]:
        value = spec[name]
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list of whole numbers, got {value!r}")
        if count is not None and len(value) != count:
            raise ConfigError(f"{name} must be {count} whole numbers, got {value!r}")
        return tuple(_whole(name, v, 0 if name == "pool_after" else 1, MAX_WIDTH) for v in value)

    fields: dict = {}
    if "widths" in spec:
        fields["widths"] = numbers("widths")
    for name in ("hidden", "num_classes", "channels"):
        if name in spec:
            fields[name] = _whole(name, spec[name], 1, MAX_WIDTH)
    if "padding" in spec:
        fields["padding"] = spec["padding"]
    if "input_size" in spec:
        fields["input_size"] = numbers("input_size", 2)
    if spec.get("pool_after") is not None:
        fields["pool_after"] = numbers("pool_after")
    model = CNN(**fields, **compute_choices)
    check_architecture(model)
    if model.pool_after is not None and model.pools == model.clone(pool_after=None).pools:
        model = model.clone(pool_after=None)  # the default layout: one model, one program
    return model


def check_architecture(model: CNN) -> None:
    """Raise ``ConfigError`` where ``model``'s architecture cannot be built: no convolution, a
    size out of range, an unknown padding, a channel count other than 1 or 3, a pool after a
    convolution that does not exist, or an input too small for its layers.

    >>> check_architecture(CNN(widths=(8,) * 4))
    Traceback (most recent call last):
    ...
    jaxdream.errors.ConfigError: a 28x28 input is too small for these layers: conv4 would be 0x0
    """
    if not model.widths:
        raise ConfigError("an architecture needs at least one convolution (widths)")
    for w in model.widths:
        _whole("widths", w, 1, MAX_WIDTH)
    _whole("hidden", model.hidden, 1, MAX_WIDTH)
    _whole("num_classes", model.num_classes, 1, MAX_WIDTH)
    if model.padding not in PADDINGS:
        raise ConfigError(f"padding must be one of {list(PADDINGS)}, got {model.padding!r}")
    if model.channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (gray) or 3 (color), got {model.channels!r}")
    size = tuple(model.input_size)
    if len(size) != 2:
        raise ConfigError(f"input_size must be (H, W), got {size!r}")
    for n in size:
        _whole("input_size", n, 1, MAX_SIDE)
    if model.pool_after is not None:
        for i in model.pool_after:
            _whole("pool_after", i, 1, len(model.widths))
    for name, shape in activation_shapes(model).items():
        if 0 in shape and not name.endswith("_pre"):
            h, w = size
            raise ConfigError(
                f"a {h}x{w} input is too small for these layers: {name} would be "
                f"{'x'.join(map(str, shape[:2]))}"
            )


def init_params(model: CNN, key: Array) -> dict:
    """Fresh parameters for ``model`` (a plain nested dict of arrays)."""
    return model.init(key, jnp.zeros((*model.input_size, model.channels)))["params"]


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
        shape = (*jnp.shape(image)[:2], model.channels)
        self.image = jnp.asarray(image, jnp.float32).reshape(shape)
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
        if i == 1:
            x = self.image
        else:
            x = self[f"pool{i - 1}" if i - 1 in self.model.pools else f"conv{i - 1}"]
        kernel = jax.lax.dynamic_slice_in_dim(self.params[conv]["kernel"], index, 1, axis=-1)
        bias = jax.lax.dynamic_slice_in_dim(self.params[conv]["bias"], index, 1)
        pre = (self.model.conv_fn()(x, kernel) + bias)[..., 0]
        return pre if layer.endswith("_pre") else nn.relu(pre)


def logits(model: CNN, params: Mapping, image: Array) -> Array:
    """Class scores for one image."""
    return activations(model, params, image)["logits"]


def activation_shapes(
    model: CNN, input_shape: tuple[int, ...] | None = None
) -> dict[str, tuple[int, ...]]:
    """The shape of every named activation for one image of ``input_shape`` (default: the one
    ``model`` is built for), without computing anything (tests/test_model.py checks it against
    the model's own shapes).

    >>> activation_shapes(CNN())["conv3"]
    (3, 3, 64)
    >>> activation_shapes(CNN(widths=(8, 8, 8, 8), padding="same", input_size=(56, 56)))["conv4"]
    (7, 7, 8)
    """
    h, w = (model.input_size if input_shape is None else input_shape)[:2]
    shrink = 2 if model.padding == "valid" else 0
    pools = model.pools
    shapes: dict[str, tuple[int, ...]] = {}
    for i, width in enumerate(model.widths, start=1):
        h, w = max(h - shrink, 0), max(w - shrink, 0)
        shapes[f"conv{i}_pre"] = shapes[f"conv{i}"] = (h, w, width)
        if i in pools:
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
    channels = model.channels
    for i, width in enumerate(model.widths, start=1):
        shapes[f"conv{i}/kernel"], shapes[f"conv{i}/bias"] = (3, 3, channels, width), (width,)
        channels = width
    last = len(model.widths)
    flat = math.prod(acts[f"pool{last}" if last in model.pools else f"conv{last}"])
    shapes["dense/kernel"], shapes["dense/bias"] = (flat, model.hidden), (model.hidden,)
    shapes["logits/kernel"] = (model.hidden, model.num_classes)
    shapes["logits/bias"] = (model.num_classes,)
    return shapes


@functools.cache
def _needed_side(model: CNN, layers: frozenset[str]) -> int:
    side, width = model.input_size
    if model.padding == "same" or side != width:
        # A border of zeros moves with the crop's edge: every pixel counts (and a crop of a
        # non-square input is not square): the whole input.
        return max(side, width)
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
    """The side of the smallest top-left crop of the model's input (28x28 by default) from which
    ``layers`` come out the same as from the whole image.

    With "same" padding (or a non-square input) that is the whole input. Valid convolutions and
    2x2 pooling that drops odd edges never look at the last rows and columns for the deeper
    layers: for ``conv3`` (and all after it) the last 2 rows and columns of the input do not
    count, so the ascent computes on 26x26 and skips about a quarter of the work, with the same
    numbers (and the same zero gradient on those pixels) as on 28x28.

    >>> needed_side(CNN(), ["conv3"]), needed_side(CNN(), ["conv2"])
    (26, 28)
    >>> needed_side(CNN(padding="same"), ["conv3"])
    28
    """
    return _needed_side(model, frozenset(layers))


def prepare_digits(images: Array, model: CNN) -> Array:
    """uint8 digits ``(B, h, w)`` -> ``model``'s input as it is trained: scaled to [0, 1],
    resized (bilinear) to its ``input_size`` where they differ, standardized per image
    (``standardize``), repeated over its ``channels``.

    >>> prepare_digits(jnp.zeros((2, 28, 28), jnp.uint8), CNN(input_size=(56, 56))).shape
    (2, 56, 56)
    """
    x = jnp.asarray(images, jnp.float32) / 255.0
    size = tuple(model.input_size)
    if x.shape[1:3] != size:
        x = jax.image.resize(x, (x.shape[0], *size), "bilinear")
    x = jax.vmap(standardize)(x)
    return x if model.channels == 1 else jnp.repeat(x[..., None], model.channels, axis=-1)


def param_count(params: Mapping) -> int:
    """Total number of scalars in a parameter tree."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(params))
