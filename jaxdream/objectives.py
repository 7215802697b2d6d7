"""Composable objectives: what the ascent maximises, as functions of the named activations.

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
    if a.ndim == 0:
        return f"{a.item():g}"
    if a.size <= 6:
        return "[" + ",".join(f"{v:g}" for v in a.ravel()) + "]"
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
    if a.dtype.kind == "b" or not np.issubdtype(a.dtype, np.integer):
        raise ObjectiveError(f"{what} must be a whole number, got {value!r}")
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
        for w, t in self.terms:
            try:
                finite = bool(np.all(np.isfinite(np.asarray(w, np.float64))))
            except (jax.errors.TracerArrayConversionError, TypeError, ValueError):
                finite = True  # traced: checked where it was concrete
            if not finite:
                raise ObjectiveError(f"the weights of {self.name} must be finite numbers")
            t.validate(shapes)


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


def _split_terms(text: str) -> list[tuple[float, str]]:
    """``(sign, term)`` pairs of a sum such as ``conv3:56 - 0.1*logit:3``: a ``+`` or ``-`` is an
    operator unless it follows ``:`` or ``*`` (a negative number) or a number's ``e``."""
    s = "".join(text.split())
    pieces: list[tuple[float, str]] = []
    sign, current = 1.0, ""
    for i, ch in enumerate(s):
        before = s[i - 1] if i else ""
        exponent = before in "eE" and i >= 2 and (s[i - 2].isdigit() or s[i - 2] == ".")
        if ch in "+-" and before not in ":*" and not exponent:
            if current:
                pieces.append((sign, current))
                sign, current = 1.0, ""
            if ch == "-":
                sign = -sign
            continue
        current += ch
    if not current:
        raise ObjectiveError(
            f"cannot read objective {text!r}: "
            + ("it is empty" if not s else "it ends with an operator")
        )
    pieces.append((sign, current))
    return pieces


def parse_objective(text: str) -> Objective:
    """An objective from command-line text: ``conv3:56``, ``conv3`` (whole layer), ``logit:7``,
    ``conv3:56:1:2`` (a neuron) or ``mean_square:conv2``; ``+`` and ``-`` join terms, ``W*``
    weighs them (``conv3:-1`` is the whole layer as a channel).

    >>> parse_objective("0.5*conv3:56 + conv2").name
    '0.5*channel(conv3, 56) + layer(conv2)'
    >>> parse_objective("conv3:56 - 0.1*logit:3").name
    'channel(conv3, 56) + -0.1*logit(3)'
    """
    total = None
    for sign, part in _split_terms(text):
        weight = sign
        if "*" in part:
            w, part = part.split("*", 1)
            try:
                weight = sign * float(w)
            except ValueError:
                raise ObjectiveError(f"bad weight {w!r} in objective {text!r}") from None
            if not np.isfinite(weight):
                raise ObjectiveError(f"weight {w!r} in objective {text!r} is not a finite number")
        fields = part.strip().split(":")
        try:
            if fields[0] == "logit" and len(fields) == 2:
                term = logit(int(fields[1]))
            elif fields[0] == "mean_square" and len(fields) == 2:
                term = mean_square(fields[1])
            elif len(fields) == 1 and fields[0]:
                term = layer(fields[0])
            elif len(fields) == 2:
                term = channel(fields[0], int(fields[1]))
            elif len(fields) == 4:
                term = neuron(fields[0], *(int(f) for f in fields[1:]))
            else:
                raise ValueError
        except ValueError:
            raise ObjectiveError(
                f"cannot read objective {part!r}: use LAYER, LAYER:MAP, LAYER:MAP:Y:X, "
                "logit:CLASS or mean_square:LAYER"
            ) from None
        term = term if weight == 1.0 else weight * term
        total = term if total is None else total + term
    return total
