"""Checks of user-given numbers: the right type, finite, in range, else ``ConfigError``.

>>> whole_number("steps", 30, 0, 100), number("epsilon", 0.01, -1, 1)
(30, 0.01)
>>> number("fact", float("nan"), 0, 1)
Traceback (most recent call last):
...
jaxdream.errors.ConfigError: fact must be a finite number, got nan
"""

from __future__ import annotations

import math

import numpy as np

from jaxdream.errors import ConfigError


def shown(value) -> str:
    """``value`` for a message: a huge whole number as its first digits and its length.

    >>> shown(10**400), shown(12345), shown("x" * 100)[-16:]
    ('100000...(401 digits)', '12,345', '(102 characters)')
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        digits = str(abs(int(value)))
        if len(digits) > 15:
            return f"{'-' if value < 0 else ''}{digits[:6]}...({len(digits)} digits)"
        return f"{int(value):,}"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text):,} characters)"


def whole_number(name: str, value, low: int, high: int) -> int:
    """``value`` if it is an integer in ``low..high``, else ``ConfigError`` saying so."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number, got {shown(value)}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in {low}..{high:,}, got {shown(value)}")
    return int(value)


def one_of(name: str, value, choices) -> str:
    """``value`` if it is one of the strings ``choices``, else ``ConfigError`` naming them.

    >>> one_of("conv", ["fast"], ("auto", "fast"))
    Traceback (most recent call last):
    ...
    jaxdream.errors.ConfigError: conv must be one of 'auto', 'fast'; got ['fast']
    """
    if not isinstance(value, str) or value not in choices:
        names = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name} must be one of {names}; got {shown(value)}")
    return value


def flag(name: str, value) -> bool:
    """``value`` if it is a bool (``numpy.bool_`` too), else ``ConfigError``: a string such as
    ``"no"`` would count as true."""
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def number(name: str, value, low: float, high: float) -> float:
    """``value`` if it is a finite real number in ``[low, high]``, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} must be a number, got {shown(value)}")
    if isinstance(value, int) and abs(value) > 2**1023:
        raise ConfigError(f"{name} must be in [{low:g}, {high:g}], got {shown(value)}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
    return float(value)
