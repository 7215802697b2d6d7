"""Objectives, what the ascent maximises, as functions of the named activations: their types,
their arithmetic, and their stacking for a batch of tiles or images.

An objective is a small pytree: layer names are static, numbers (map indices, neuron positions,
classes, weights) are array leaves. So a batch of tiles can maximise a different map each
(``channel("conv3", jnp.array([56, 12, 3]))`` vmapped over its leaves) inside ONE compiled call,
and changing a map never recompiles.

Objectives combine with arithmetic and carry a readable name:

>>> obj = 0.7 * channel("conv3", 56) + 0.3 * channel("conv3", 12)
>>> obj.name
'0.7*channel(conv3, 56) + 0.3*channel(conv3, 12)'
>>> (-layer("conv2")).name
'-1*layer(conv2)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ObjectiveError
from jaxdream.model import Features

Array = jax.Array
Activations = Mapping[str, Array]
Shapes = Mapping[str, tuple[int, ...]]


def _static(**kwargs):
    return dataclasses.field(metadata={"static": True}, **kwargs)


def _show(value) -> str:
    """A leaf as text: its number when concrete, ``?`` when traced, a list when per-image."""
    try:
        a = np.asarray(value)
    except (jax.errors.TracerArrayConversionError, TypeError):
        return "?"

    def one(v) -> str:
        if isinstance(v, int) and not -(10**15) < v < 10**15:
            return f"{str(v)[:6]}...({len(str(abs(v)))} digits)"
        try:
            return f"{v:g}"
        except (TypeError, ValueError):
            return "?"

    if a.ndim == 0:
        return one(a.item())
    if a.size <= 6:
        return "[" + ",".join(one(v) for v in a.ravel().tolist()) + "]"
    return f"[{a.size} values]"


def _check_layer(name: str, shapes: Shapes) -> tuple[int, ...]:
    if name not in shapes:
        raise ObjectiveError(f"unknown layer {name!r}; valid layers: {', '.join(shapes)}")
    return shapes[name]


def _check_index(what: str, value, size: int, allow_minus_one: bool = False) -> None:
    try:
        a = np.asarray(value)
    except (jax.errors.TracerArrayConversionError, TypeError):
        return  # traced: checked where it was concrete
    if a.dtype == object and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in a.ravel().tolist()
    ):
        raise ObjectiveError(f"{what} {_show(value)} is out of range: valid 0..{size - 1}")
    if a.dtype.kind == "b" or not np.issubdtype(a.dtype, np.integer):
        raise ObjectiveError(f"{what} must be a whole number, got {_show(value)}")
    low = -1 if allow_minus_one else 0
    bad = a[(a < low) | (a >= size)]
    if bad.size:
        extra = " (or -1 for the whole layer)" if allow_minus_one else ""
        raise ObjectiveError(f"{what} {bad.ravel()[0]} is out of range: valid 0..{size - 1}{extra}")


class Objective:
    """Base class: ``objective(activations) -> scalar`` for ONE image, with arithmetic."""

    def __call__(self, acts: Activations) -> Array:
        raise NotImplementedError

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def layers(self) -> frozenset[str]:
        """The names of the activations it reads (static: known without tracing)."""
        return frozenset({self.layer})

    def validate(self, shapes: Shapes) -> None:
        """Raise ``ObjectiveError`` if a layer is unknown or an index out of range."""
        raise NotImplementedError

    def __add__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return Sum(_terms(self) + _terms(other))

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-1.0) * other

    def __neg__(self) -> Objective:
        return (-1.0) * self

    def __mul__(self, weight) -> Objective:
        if isinstance(weight, Objective):
            return NotImplemented
        if isinstance(weight, str | bytes | bool) or weight is None:
            raise ObjectiveError(f"an objective's weight is a number, not {weight!r}")
        return Sum(tuple((w * weight, t) for w, t in _terms(self)))

    __rmul__ = __mul__

    def __truediv__(self, weight) -> Objective:
        return self * (1.0 / weight)

    def __repr__(self) -> str:
        return f"<objective {self.name}>"


def _terms(obj: Objective) -> tuple[tuple[float | Array, Objective], ...]:
    return obj.terms if isinstance(obj, Sum) else ((1.0, obj),)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Channel(Objective):
    """Mean over positions of map ``map`` of ``layer``; ``map = -1`` means the whole layer
    (the article's ``map_index = -1``), so one batch can mix both.

    ``may_be_whole`` (static) says whether some map may be ``-1``; left out, it is read off a
    concrete ``map`` (and is ``True`` for a traced one). Where it is ``False`` and the
    activations can compute one map alone (``jaxdream.model.Features``), only that map of the
    layer is computed.
    """

    layer: str = _static()
    map: int | Array = 0
    may_be_whole: bool | None = _static(default=None)

    def __post_init__(self):
        if self.may_be_whole is None:
            try:
                whole = bool(np.any(np.asarray(self.map) < 0))
            except (jax.errors.TracerArrayConversionError, TypeError):
                whole = True
            object.__setattr__(self, "may_be_whole", whole)

    def __call__(self, acts: Activations) -> Array:
        m = jnp.asarray(self.map)
        if not self.may_be_whole and isinstance(acts, Features):
            return jnp.mean(acts.channel(self.layer, m))
        a = acts[self.layer]
        one = jnp.mean(jnp.take(a, jnp.maximum(m, 0), axis=-1))
        return jnp.where(m < 0, jnp.mean(a), one)

    @property
    def name(self) -> str:
        return f"channel({self.layer}, {_show(self.map)})"

    def validate(self, shapes: Shapes) -> None:
        shape = _check_layer(self.layer, shapes)
        _check_index(f"map of {self.layer}", self.map, shape[-1], allow_minus_one=True)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Layer(Objective):
    """Mean over the whole layer."""

    layer: str = _static()

    def __call__(self, acts: Activations) -> Array:
        return jnp.mean(acts[self.layer])

    @property
    def name(self) -> str:
        return f"layer({self.layer})"

    def validate(self, shapes: Shapes) -> None:
        _check_layer(self.layer, shapes)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MeanSquare(Objective):
    """DeepDream's objective: the mean of the squared activations of a layer."""

    layer: str = _static()

    def __call__(self, acts: Activations) -> Array:
        return jnp.mean(jnp.square(acts[self.layer]))

    @property
    def name(self) -> str:
        return f"mean_square({self.layer})"

    def validate(self, shapes: Shapes) -> None:
        _check_layer(self.layer, shapes)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Neuron(Objective):
    """One unit: map ``map`` of ``layer`` at position ``(y, x)``."""

    layer: str = _static()
    map: int | Array = 0
    y: int | Array = 0
    x: int | Array = 0

    def __call__(self, acts: Activations) -> Array:
        return acts[self.layer][self.y, self.x, self.map]

    @property
    def name(self) -> str:
        return f"neuron({self.layer}, {_show(self.map)}, {_show(self.y)}, {_show(self.x)})"

    def validate(self, shapes: Shapes) -> None:
        shape = _check_layer(self.layer, shapes)
        if len(shape) != 3:
            raise ObjectiveError(f"neuron() needs a convolutional layer; {self.layer} is {shape}")
        _check_index(f"map of {self.layer}", self.map, shape[2])
        _check_index(f"y of {self.layer}", self.y, shape[0])
        _check_index(f"x of {self.layer}", self.x, shape[1])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Logit(Objective):
    """The score of class ``cls`` (class visualisation)."""

    cls: int | Array = 0

    def __call__(self, acts: Activations) -> Array:
        return acts["logits"][self.cls]

    @property
    def layers(self) -> frozenset[str]:
        return frozenset({"logits"})

    @property
    def name(self) -> str:
        return f"logit({_show(self.cls)})"

    def validate(self, shapes: Shapes) -> None:
        shape = _check_layer("logits", shapes)
        _check_index("class", self.cls, shape[-1])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Sum(Objective):
    """A weighted sum of objectives; built by ``+``, ``-`` and ``*`` rather than by hand."""

    terms: tuple[tuple[float | Array, Objective], ...] = ()

    def __call__(self, acts: Activations) -> Array:
        return sum(w * t(acts) for w, t in self.terms)

    @property
    def layers(self) -> frozenset[str]:
        return frozenset().union(*(t.layers for _, t in self.terms))

    @property
    def name(self) -> str:
        parts = []
        for w, t in self.terms:
            shown = _show(w)
            parts.append(t.name if shown == "1" else f"{shown}*{t.name}")
        return " + ".join(parts)

    def validate(self, shapes: Shapes) -> None:
        if len(self.terms) > MAX_TERMS:
            raise ObjectiveError(
                f"an objective of {len(self.terms)} terms: at most {MAX_TERMS} (each term adds "
                "to the dream's compile time)"
            )
        largest = 0.0
        for w, t in self.terms:
            if not isinstance(t, Objective):
                raise ObjectiveError(f"a term of a sum must be an Objective, not {t!r}")
            try:
                a = np.abs(np.asarray(w, np.float64))
            except (jax.errors.TracerArrayConversionError, TypeError, ValueError, OverflowError):
                if isinstance(w, jax.core.Tracer):
                    continue  # traced: checked where it was concrete
                raise ObjectiveError(f"the weights of {self.name} must be numbers") from None
            if not np.all(np.isfinite(a)):
                raise ObjectiveError(f"the weights of {self.name} must be finite numbers")
            if np.any(a > MAX_OBJECTIVE_WEIGHT):
                raise ObjectiveError(
                    f"a weight of {self.name} is over {MAX_OBJECTIVE_WEIGHT:g}: the loss would "
                    "overflow float32"
                )
            largest = max(largest, float(a.max(initial=0.0)))
            t.validate(shapes)
        if self.terms and largest < MIN_LARGEST_WEIGHT:
            raise ObjectiveError(
                f"the largest weight of {self.name} is {largest:g}: at least "
                f"{MIN_LARGEST_WEIGHT:g}, else the dream barely moves (falsely 'no gradient')"
            )


def channel(layer: str, map: int | Array) -> Channel:
    """Mean activation of one map of ``layer`` (``-1``: the whole layer)."""
    return Channel(layer, map)


def layer(name: str) -> Layer:
    """Mean activation of the whole layer ``name``."""
    return Layer(name)


def mean_square(name: str) -> MeanSquare:
    """Mean of the squared activations of ``name`` (DeepDream's loss)."""
    return MeanSquare(name)


def neuron(layer: str, map: int | Array, y: int | Array, x: int | Array) -> Neuron:
    """One unit of a convolutional layer."""
    return Neuron(layer, map, y, x)


def logit(cls: int | Array) -> Logit:
    """The logit of class ``cls``."""
    return Logit(cls)


def broadcast_objective(objective: Objective, batch: int) -> Objective:
    """Give every numeric leaf a leading axis of length ``batch`` (scalars are repeated), so the
    objective can be ``jax.vmap``-ed together with a batch of images.

    >>> broadcast_objective(channel("conv3", 5), 3).map.tolist()
    [5, 5, 5]
    """

    def expand(leaf):
        # Strong int32/float32 leaves: Python scalars (weakly typed) would otherwise retrace.
        leaf = jnp.asarray(leaf)
        leaf = leaf.astype(jnp.int32 if jnp.issubdtype(leaf.dtype, jnp.integer) else jnp.float32)
        if leaf.ndim == 0:
            return jnp.broadcast_to(leaf, (batch,))
        if leaf.shape != (batch,):
            raise ObjectiveError(
                f"a per-image objective value has shape {leaf.shape}; expected ({batch},) "
                "for a batch of that many images, or a scalar"
            )
        return leaf

    return jax.tree.map(expand, objective)


def _strong(a: np.ndarray) -> np.ndarray:
    """int32 or float32: the dtypes every objective leaf is traced with (no retrace)."""
    return a.astype(np.int32 if np.issubdtype(a.dtype, np.integer) else np.float32)


def _canonical(obj: Objective) -> Objective:
    """``obj`` with every ``Channel`` marked as possibly whole-layer, so that objectives that
    differ only in their numbers share one tree structure."""
    if isinstance(obj, Sum):
        return Sum(tuple((w, _canonical(t)) for w, t in obj.terms))
    if isinstance(obj, Channel):
        return Channel(obj.layer, obj.map, may_be_whole=True)
    return obj


def _refined(obj: Objective) -> Objective:
    """The inverse of ``_canonical`` for concrete numbers: ``Channel.may_be_whole`` read again
    off the (stacked) maps, so a batch with no ``-1`` map computes one map alone."""
    if isinstance(obj, Sum):
        return Sum(tuple((w, _refined(t)) for w, t in obj.terms))
    if isinstance(obj, Channel):
        return Channel(obj.layer, obj.map)
    return obj


def stacked_terms(objectives: Sequence[Objective]) -> int:
    """How many terms ONE stacked call of ``objectives`` computes (``stack_objectives``: every
    tile computes every structure present), the count ``MAX_TERMS`` bounds.

    >>> stacked_terms([channel("conv3", 5), channel("conv3", 7), logit(3) + layer("conv2")])
    3
    """
    seen: dict[jax.tree_util.PyTreeDef, int] = {}
    for o in objectives:
        o = _canonical(o)
        seen.setdefault(jax.tree.structure(o), len(o.terms) if isinstance(o, Sum) else 1)
    return sum(seen.values())


def stack_objectives(objectives: Sequence[Objective]) -> Objective:
    """ONE objective whose numeric leaves have a leading axis, one entry per objective, to be
    ``jax.vmap``-ed over a batch of tiles (or images) in one compiled call.

    Objectives of the same structure (the same kinds, layers and number of terms; they may
    differ in maps, classes, positions and weights) stack leaf by leaf. Where the structures
    differ (one tile ``logit(3)``, another ``channel("conv3", 56)``), the result is the sum of
    one stacked objective per structure, each weighted 1 for the tiles that use it and 0 for
    the others: still one compiled call, in which every tile computes every structure present
    (so mixing costs the union of their work), with each tile's gradient that of its own
    objective (the other terms contribute exactly zero).

    >>> s = stack_objectives([channel("conv3", 5), channel("conv3", 7)])
    >>> s.name, s.may_be_whole
    ('channel(conv3, [5,7])', False)
    >>> stack_objectives([logit(3), 0.5 * channel("conv2", 1)]).name
    '[1,0]*logit([3,3]) + [0,1]*[0.5,0.5]*channel(conv2, [1,1])'
    """
    if not objectives:
        raise ObjectiveError("no objective given")
    objectives = [_canonical(o) for o in objectives]
    groups: dict[jax.tree_util.PyTreeDef, list[int]] = {}
    for i, o in enumerate(objectives):
        groups.setdefault(jax.tree.structure(o), []).append(i)

    def stack(members: list[Objective]) -> Objective:
        columns = zip(*(jax.tree.leaves(m) for m in members), strict=True)
        stacked = [_strong(np.stack([np.asarray(v) for v in column])) for column in columns]
        return _refined(jax.tree.unflatten(jax.tree.structure(members[0]), stacked))

    if len(groups) == 1:
        return stack(objectives)
    n = len(objectives)
    terms = []
    for members in groups.values():
        # Tiles of other structures get a copy of this group's first member, weighted 0.
        filled = [objectives[i if i in members else members[0]] for i in range(n)]
        mask = np.isin(np.arange(n), members).astype(np.float32)
        terms.append((mask, stack(filled)))
    return Sum(tuple(terms))


# Bounds of an objective. Every term is compiled into the dream's program and compile time grows
# faster than the terms (measured on this 2-core CPU, shared, a 56-pixel dream of mixed terms:
# 1 term 7.7 s, 16 terms 17.8 s, 64 terms 121 s), so an objective holds at most ``MAX_TERMS``.
# Weights are float32 inside the dream: beyond ``MAX_OBJECTIVE_WEIGHT`` the loss overflows
# within a few steps. Where the largest weight is under ``MIN_LARGEST_WEIGHT``, the gradient
# falls toward the RMS guard (``oip.GRAD_EPS``): measured with the bundled CNN (conv3:56, 10
# steps), weight 1e-3 moves the photo 0.64x as far as weight 1, 1e-4 0.15x, 1e-6 less than
# the explorer's "dead" bound: the dream would stand still, falsely called "no gradient".
MAX_TERMS = 32
MAX_OBJECTIVE_WEIGHT = 1e6
MIN_LARGEST_WEIGHT = 1e-3
