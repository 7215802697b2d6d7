"""Named settings: presets are data (plain values, in the command line's own terms), usable from
Python as ``DreamConfig`` s and on the command line as ``--preset NAME`` (flags given beside a
preset override it). No JAX is imported here: ``jaxdream --help`` shows a preset's values.

- ``vivid`` (the command line's default): every map of ``conv3`` at once (map -1), the whole
  image, its quadrants and the 4x4 grid, overlapping feathered tiles, 6 iterations, in the
  photo's colours: rich stroke textures that keep the subject. Chosen by looking at the two
  bundled photos dreamt with nine candidate settings (maps and layers of conv2 and conv3,
  DeepDream's mean of squares, levels 0-3, with and without overlap, 4 and 6 iterations).
- ``article``: the article's settings exactly (``DreamConfig(prepare="article")``): map 56 of
  ``conv3``, the whole image and the lower-right quadrant, 4 iterations of 30 steps, gray, the
  photo prepared as the article does (resized in colour as uint8, then gray).
- ``emboss``: DeepDream's mean of squares of ``conv2``: soft embossed blobs.
- ``ripples``: map 5 of ``conv2`` down to 8x8 tiles: sand-ripple stripes.

>>> preset_config("article").prepare, preset_config("vivid").prepare
('article', 'gray')
>>> preset_config("vivid").map, preset_config("vivid").overlap, PRESETS["vivid"].color
(-1, 0.5, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The article's settings as the command line's flag values: the base every preset changes.
# tests/test_cli.py checks them against ``DreamConfig()``'s defaults (no default twice).
ARTICLE_FLAGS: dict[str, Any] = {
    "size": [560],
    "layer": "conv3",
    "map": 56,
    "objective": None,
    "levels": ["0", "1:3"],
    "overlap": 0.0,
    "iterations": 4,
    "steps": 30,
    "epsilon": 0.01,
    "conv_criterion": None,
    "schedule": "batched",
    "shift_tiles": False,
    "seed": 0,
    "conv": "auto",
    "precision": "highest",
    "prepare": "gray",
    "strength": 1.0,
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named dream: ``flags`` changed from the article's, and whether it is in colour."""

    description: str
    flags: tuple[tuple[str, Any], ...] = ()
    color: bool = False

    def flag_values(self) -> dict[str, Any]:
        """Every dream setting as a command-line value: the article's, with this one's."""
        return {**ARTICLE_FLAGS, **dict(self.flags)}


PRESETS: dict[str, Preset] = {
    "vivid": Preset(
        "every map of conv3, levels 0-2 overlapping, 6 iterations, in colour",
        (("map", -1), ("levels", ["0", "1", "2"]), ("overlap", 0.5), ("iterations", 6)),
        color=True,
    ),
    "article": Preset(
        "the article's settings exactly: map 56 of conv3, full image + quadrant 3, the photo "
        "prepared as the article does",
        (("prepare", "article"),),
    ),
    "emboss": Preset(
        "DeepDream's mean of squares of conv2, levels 0-2 overlapping, in colour",
        (
            ("objective", "mean_square:conv2"),
            ("levels", ["0", "1", "2"]),
            ("overlap", 0.5),
        ),
        color=True,
    ),
    "ripples": Preset(
        "map 5 of conv2 down to 8x8 tiles, overlapping: sand ripples, in colour",
        (
            ("layer", "conv2"),
            ("map", 5),
            ("levels", ["0", "1", "2", "3*0.5"]),
            ("overlap", 0.5),
            ("iterations", 6),
        ),
        color=True,
    ),
}
DEFAULT_PRESET = "vivid"


def config_from_flags(values: dict[str, Any]):
    """A ``DreamConfig`` from command-line values (``ARTICLE_FLAGS``'s keys)."""
    from jaxdream.config import DreamConfig, parse_level
    from jaxdream.errors import ConfigError

    if not isinstance(values, dict):
        raise ConfigError(f"flag values are a dict, not {type(values).__name__}")
    unknown = [k for k in values if k not in ARTICLE_FLAGS]
    if unknown:
        raise ConfigError(f"no dream setting {unknown[0]!r}; settings: {', '.join(ARTICLE_FLAGS)}")
    values = {**ARTICLE_FLAGS, **values}
    levels = values["levels"]
    if not isinstance(levels, list | tuple) or not all(isinstance(t, str) for t in levels):
        raise ConfigError(f"levels are a list of texts such as ['0', '1:3'], not {levels!r}")
    size = values["size"]
    if not isinstance(size, list | tuple) or len(size) not in (1, 2):
        raise ConfigError("--size takes one number (longer side) or two (height width)")
    return DreamConfig(
        size=size[0] if len(size) == 1 else (size[0], size[1]),
        levels=tuple(parse_level(t) for t in values["levels"]),
        **{k: v for k, v in values.items() if k not in ("size", "levels")},
    )


def preset_config(name: str):
    """The ``DreamConfig`` of preset ``name`` (``ConfigError`` naming the presets if unknown)."""
    if not isinstance(name, str) or name not in PRESETS:
        from jaxdream.errors import ConfigError

        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return config_from_flags(PRESETS[name].flag_values())
