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
import re
import unicodedata
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


# Bounds of the grammar. Every term is compiled into the dream's program and compile time grows
# faster than the terms (measured on this 2-core CPU, shared, a 56-pixel dream of mixed terms:
# 1 term 7.7 s, 16 terms 17.8 s, 64 terms 121 s), so an objective holds at most ``MAX_TERMS``.
# Weights are float32 inside the dream: beyond ``MAX_OBJECTIVE_WEIGHT`` the loss overflows
# within a few steps. Where the largest weight is under ``MIN_LARGEST_WEIGHT``, the gradient
# falls toward the RMS guard (``oip.GRAD_EPS``): measured with the bundled CNN (conv3:56, 10
# steps), weight 1e-3 moves the photo 0.64x as far as weight 1, 1e-4 0.15x, 1e-6 less than
# the explorer's "dead" bound: the dream would stand still, falsely called "no gradient".
MAX_TERMS = 32
MAX_OBJECTIVE_CHARS = 4096
MAX_OBJECTIVE_WEIGHT = 1e6
MIN_LARGEST_WEIGHT = 1e-3
_MAX_INDEX = 2**31 - 1

# Characters that look like the grammar's but are not ASCII: named in the error.
_LOOK_ALIKES = {
    "\u2212": "-",  # minus sign
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\ufe63": "-",
    "\uff0d": "-",
    "\uff0b": "+",
    "\u00d7": "*",  # multiplication sign
    "\u2217": "*",
    "\u22c5": "*",
    "\u00b7": "*",
    "\uff0a": "*",
    "\uff1a": ":",
    "\u2236": ":",
}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*:]))",
    re.ASCII,
)


def _brief(text: str) -> str:
    """``text`` quoted, cut short where it is long (an error message stays one short line)."""
    return repr(text) if len(text) <= 60 else f"{text[:50]!r}... ({len(text):,} characters)"


_GRAMMAR = "use LAYER, LAYER:MAP, LAYER:MAP:Y:X, logit:CLASS or mean_square:LAYER"


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, position)`` of every token: ``number``, ``name`` or ``op``."""
    for i, ch in enumerate(text):
        if not ch.isascii():
            what = unicodedata.name(ch, f"U+{ord(ch):04X}")
            hint = f": write {_LOOK_ALIKES[ch]!r}" if ch in _LOOK_ALIKES else ""
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: {ch!r} ({what}) at position {i} "
                f"is not part of the grammar{hint}"
            )
    out, i, end = [], 0, len(text.rstrip())
    while i < end:
        m = _TOKEN.match(text, i)
        if m is None or m.end() == i:
            j = i + len(text[i:]) - len(text[i:].lstrip())
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: {text[j]!r} at position {j} is not part of "
                f"the grammar; {_GRAMMAR}, joined by + and -, weighed by W*"
            )
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        i = m.end()
    return out


def _index(text: str, token: tuple[str, str, int] | None, sign: int, what: str) -> int:
    if token is None or token[0] != "number" or not token[1].isdigit():
        shown = "nothing" if token is None else repr(token[1])
        raise ObjectiveError(
            f"cannot read objective {_brief(text)}: {what} must be a whole number, got {shown}"
        )
    digits = token[1].lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > _MAX_INDEX:
        shown = digits if len(digits) <= 12 else f"{digits[:6]}...({len(digits)} digits)"
        raise ObjectiveError(
            f"cannot read objective {_brief(text)}: {what} {'-' if sign < 0 else ''}{shown} is out "
            "of range (a layer has at most a few thousand maps)"
        )
    return sign * int(digits)


def _split(text: str) -> list[tuple[int, list[tuple[str, str, int]]]]:
    """The terms of ``text`` as ``(sign, tokens)``: a sign joins every term but the first, and
    each term may carry one sign of its own (``-conv3:56``, ``conv3:56 - -logit:3``)."""
    tokens = _tokens(text)
    if not tokens:
        raise ObjectiveError(f"cannot read objective {_brief(text)}: it is empty")
    terms: list[tuple[int, list]] = []
    i, n = 0, len(tokens)
    while i < n:
        sign = 1
        if terms:  # the operator joining this term to the one before
            kind, tok, pos = tokens[i]
            if tok not in "+-" or kind != "op":
                raise ObjectiveError(
                    f"cannot read objective {_brief(text)}: expected + or - at position {pos}, got "
                    f"{tok!r}; {_GRAMMAR}"
                )
            sign = -1 if tok == "-" else 1
            i += 1
        if i < n and tokens[i][1] in ("+", "-") and tokens[i][0] == "op":
            sign *= -1 if tokens[i][1] == "-" else 1
            i += 1
        if i >= n:
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: it ends with an operator, not a term"
            )
        if tokens[i][1] in ("+", "-", "*", ":") and tokens[i][0] == "op":
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: {tokens[i][1]!r} at position "
                f"{tokens[i][2]} follows another operator; a term may have one sign"
            )
        j = i
        while j < n and not (tokens[j][0] == "op" and tokens[j][1] in "+-" and j > i):
            if tokens[j][1] == ":" and j + 1 < n and tokens[j + 1][1] in "+-":
                j += 2  # a signed number after ':' (conv3:-1) belongs to the term
                continue
            j += 1
        terms.append((sign, tokens[i:j]))
        if len(terms) > MAX_TERMS:
            raise ObjectiveError(
                f"objective {_brief(text)} has more than {MAX_TERMS} terms: each term adds "
                "to the dream's compile time; combine or drop terms"
            )
        i = j
    return terms


def _weight(text: str, tokens: list, sign: int) -> tuple[float, list]:
    """The weight ``W*`` in front of a term (1 if none) and the term's remaining tokens."""
    if len(tokens) >= 2 and tokens[1] == ("op", "*", tokens[1][2]):
        kind, w, _ = tokens[0]
        if kind == "name" and w.lower() in ("nan", "inf", "infinity"):
            raise ObjectiveError(f"weight {w!r} in objective {_brief(text)} is not a finite number")
        if kind != "number":
            raise ObjectiveError(
                f"bad weight {w!r} in objective {_brief(text)}: a weight is a number"
            )
        weight = sign * float(w)
        if not np.isfinite(weight) or abs(weight) > MAX_OBJECTIVE_WEIGHT:
            raise ObjectiveError(
                f"weight {_brief(w)} in objective {_brief(text)} is too large: at most "
                f"{MAX_OBJECTIVE_WEIGHT:g} (the loss would overflow float32)"
            )
        rest = tokens[2:]
        if not rest:
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: a weight with no term after *"
            )
        if any(t[1] == "*" for t in rest):
            raise ObjectiveError(f"cannot read objective {_brief(text)}: one weight W* per term")
        return weight, rest
    if any(t[1] == "*" for t in tokens):
        where = next(t for t in tokens if t[1] == "*")
        raise ObjectiveError(
            f"cannot read objective {_brief(text)}: '*' at position {where[2]} must follow a "
            "number weight (W*TERM)"
        )
    return float(sign), tokens


def _term(text: str, tokens: list) -> Objective | None:
    """One term's objective (``None`` for a constant, which adds nothing to the gradient)."""
    fields: list[list] = [[]]
    for t in tokens:
        if t == ("op", ":", t[2]):
            fields.append([])
        else:
            fields[-1].append(t)

    def one(field: list, what: str):
        if len(field) == 1:
            return field[0], 1
        if len(field) == 2 and field[0][1] in "+-" and field[0][0] == "op":
            return field[1], -1 if field[0][1] == "-" else 1
        shown = " ".join(t[1] for t in field) or "nothing"
        raise ObjectiveError(
            f"cannot read objective {_brief(text)}: bad {what} {shown!r}; {_GRAMMAR}"
        )

    head, _ = one(fields[0], "term")
    if head[0] == "number":
        if len(fields) > 1:
            raise ObjectiveError(f"cannot read objective {_brief(text)}: {_GRAMMAR}")
        return None
    name = head[1]

    def layer_name(field) -> str:
        tok, sign = one(field, "layer name")
        if tok[0] != "name" or sign < 0:
            shown = ("-" if sign < 0 else "") + tok[1]
            raise ObjectiveError(
                f"cannot read objective {_brief(text)}: {shown!r} is not a layer name; {_GRAMMAR}"
            )
        return tok[1]

    def idx(field, what: str) -> int:
        tok, sign = one(field, what)
        return _index(text, tok, sign, what)

    if name == "logit" and len(fields) == 2:
        return logit(idx(fields[1], "class"))
    if name == "mean_square" and len(fields) == 2:
        return mean_square(layer_name(fields[1]))
    if len(fields) == 1:
        return layer(name)
    if len(fields) == 2:
        return channel(name, idx(fields[1], f"map of {name}"))
    if len(fields) == 4:
        return neuron(
            name,
            *(idx(f, f"{w} of {name}") for f, w in zip(fields[1:], ("map", "y", "x"), strict=True)),
        )
    raise ObjectiveError(
        f"cannot read objective {_brief(text)}: {len(fields) - 1} ':' in one term; {_GRAMMAR}"
    )


def parse_objective(text: str) -> Objective:
    """An objective from command-line text: ``conv3:56``, ``conv3`` (whole layer), ``logit:7``,
    ``conv3:56:1:2`` (a neuron) or ``mean_square:conv2``; ``+`` and ``-`` join terms, ``W*``
    weighs them (``conv3:-1`` is the whole layer as a channel). A term may carry a sign
    (``-conv3:56`` is ``0 - conv3:56``); a number alone is a constant, which changes no
    gradient and is left out. ASCII only; at most ``MAX_TERMS`` terms, weights in
    at most ``MAX_OBJECTIVE_WEIGHT``, the largest at least ``MIN_LARGEST_WEIGHT``. Anything
    else: ``ObjectiveError``.

    >>> parse_objective("0.5*conv3:56 + conv2").name
    '0.5*channel(conv3, 56) + layer(conv2)'
    >>> parse_objective("conv3:56 - 0.1*logit:3").name
    'channel(conv3, 56) + -0.1*logit(3)'
    >>> parse_objective("-conv3:56").name == parse_objective("0 - conv3:56").name
    True
    """
    if not isinstance(text, str):
        raise ObjectiveError(f"an objective's text must be a str, not {type(text).__name__}")
    if len(text) > MAX_OBJECTIVE_CHARS:
        raise ObjectiveError(
            f"objective text is {len(text):,} characters: at most {MAX_OBJECTIVE_CHARS:,}"
        )
    parts: list[tuple[float, Objective]] = []
    for sign, tokens in _split(text):
        weight, tokens = _weight(text, tokens, sign)
        term = _term(text, tokens)
        if term is not None:
            parts.append((weight, term))
    if not parts:
        raise ObjectiveError(f"objective {_brief(text)} has no term that reads a layer: {_GRAMMAR}")
    _check_not_zero(text, parts)
    total = None
    for weight, term in parts:
        term = term if weight == 1.0 else weight * term
        total = term if total is None else total + term
    return total


def _check_not_zero(text: str, parts: list[tuple[float, Objective]]) -> None:
    """Refuse an objective that is 0 everywhere (every weight 0, or terms that cancel): it has
    no gradient on any photo; and one whose largest weight is under ``MIN_LARGEST_WEIGHT``."""
    sums: dict[str, float] = {}
    for weight, term in parts:
        sums[term.name] = sums.get(term.name, 0.0) + weight
    largest = max(abs(w) for w in sums.values())
    if largest == 0:
        raise ObjectiveError(
            f"objective {_brief(text)} is 0 everywhere (its terms weigh 0 or cancel): it has "
            "no gradient"
        )
    if largest < MIN_LARGEST_WEIGHT:
        raise ObjectiveError(
            f"the largest weight of objective {_brief(text)} is {largest:g}: at least "
            f"{MIN_LARGEST_WEIGHT:g}, else the dream barely moves (falsely 'no gradient')"
        )
