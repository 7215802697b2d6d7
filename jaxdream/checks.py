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


def whole_number(name: str, value, low: int, high: int) -> int:
    """``value`` if it is an integer in ``low..high``, else ``ConfigError`` saying so."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in {low}..{high:,}, got {value:,}")
    return int(value)


def number(name: str, value, low: float, high: float) -> float:
    """``value`` if it is a finite real number in ``[low, high]``, else ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
    return float(value)
