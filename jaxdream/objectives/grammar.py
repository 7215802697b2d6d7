"""The objectives' text grammar, as the command line and presets write them:
``parse_objective("0.5*conv3:56 + conv2")`` gives the objective of ``jaxdream.objectives``'
types, or an ``ObjectiveError`` that says where the text leaves the grammar and what it takes.

>>> parse_objective("conv3:56 - 0.1*logit:3").name
'channel(conv3, 56) + -0.1*logit(3)'
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from jaxdream.errors import ObjectiveError
from jaxdream.objectives.algebra import (
    MAX_OBJECTIVE_WEIGHT,
    MAX_TERMS,
    MIN_LARGEST_WEIGHT,
    Objective,
    channel,
    layer,
    logit,
    mean_square,
    neuron,
)

# The longest text read (the terms are bounded by ``MAX_TERMS``), and the largest index.
MAX_OBJECTIVE_CHARS = 4096
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
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_/]*)|(?P<op>[-+*:]))",
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
