"""Named settings: presets are ``DreamConfig`` values (the article's, ``DreamConfig()``, with
changes), on the command line ``--preset NAME`` (flags given beside a preset override it). No
JAX is imported here: ``jaxdream --help`` shows a preset's values.

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

from jaxdream.config import DreamConfig, Level, config_from_flags, flag_values
from jaxdream.errors import ConfigError

__all__ = [
    "ARTICLE_FLAGS",
    "DEFAULT_PRESET",
    "PRESETS",
    "Preset",
    "config_from_flags",
    "preset_config",
]

# The article's settings as the command line's flag values (``DreamConfig()``'s, as flags).
ARTICLE_FLAGS: dict[str, Any] = flag_values(DreamConfig())
LEVELS_0_2 = (Level(0), Level(1), Level(2))


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named dream: its ``config``, and whether it is in colour."""

    description: str
    config: DreamConfig = DreamConfig()
    color: bool = False

    def flag_values(self) -> dict[str, Any]:
        """Every dream setting as a command-line value (``config.flag_values``)."""
        return flag_values(self.config)

    def changed_flags(self) -> dict[str, Any]:
        """The flag values that differ from the article's."""
        return {k: v for k, v in self.flag_values().items() if v != ARTICLE_FLAGS[k]}


PRESETS: dict[str, Preset] = {
    "vivid": Preset(
        "every map of conv3, levels 0-2 overlapping, 6 iterations, in colour",
        DreamConfig().replace(map=-1, levels=LEVELS_0_2, overlap=0.5, iterations=6),
        color=True,
    ),
    "article": Preset(
        "the article's settings exactly: map 56 of conv3, full image + quadrant 3, the photo "
        "prepared as the article does",
        DreamConfig().replace(prepare="article"),
    ),
    "emboss": Preset(
        "DeepDream's mean of squares of conv2, levels 0-2 overlapping, in colour",
        DreamConfig().replace(objective="mean_square:conv2", levels=LEVELS_0_2, overlap=0.5),
        color=True,
    ),
    "ripples": Preset(
        "map 5 of conv2 down to 8x8 tiles, overlapping: sand ripples, in colour",
        DreamConfig().replace(
            layer="conv2",
            map=5,
            levels=(*LEVELS_0_2, Level(3, weight=0.5)),
            overlap=0.5,
            iterations=6,
        ),
        color=True,
    ),
}
DEFAULT_PRESET = "vivid"


def preset_config(name: str) -> DreamConfig:
    """The ``DreamConfig`` of preset ``name`` (``ConfigError`` naming the presets if unknown)."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name].config
