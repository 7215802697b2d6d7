"""A dream as data: ``Level`` and ``DreamConfig``, and their command-line forms.

A ``DreamConfig`` is the one source of truth for a dream's settings (the CLI's flags are read
into one). It turns into the two halves of the core's arguments (``jaxdream.carve``): ``spec``,
everything that fixes the compiled program, and ``knobs``, the traced numbers (every tile's
objective, level weights, epsilon), so that changing maps, objective weights, epsilon or seeds
never recompiles.

Objectives
    Every taking-part tile maximises an objective (``jaxdream.objectives``). The short way is
    ``layer`` and ``map`` (and a level's ``maps``): ``channel(layer, map)``, ``-1`` for the whole
    layer. ``objective`` (an ``Objective`` or its text, ``"0.7*conv3:56 + 0.3*conv2:12"``) sets
    every tile's default instead, and a level's ``objective`` its own tiles' (one for all, or
    one per tile). Tiles whose objectives differ only in their numbers run in one compiled
    call; tiles of different structure too, each computing the union of the structures
    (``stack_objectives``).

Flags
    Each field's metadata holds its command-line flag: ``help`` and argparse's keywords
    (``type``, ``choices``, ``nargs``, ``metavar``, ``action``); ``flag_values`` and
    ``config_from_flags`` turn a config into the flags' values and back. The dreaming commands'
    flags are made from these fields (``jaxdream.cli._core.dream_flags``), their defaults a
    preset's (``jaxdream.presets``, ``DreamConfig`` values).

>>> cfg = DreamConfig(levels=(Level(0), Level(1, objective="logit:3")), objective="conv2:5")
>>> [o.name for o in cfg.tile_objectives()]
['channel(conv2, 5)', 'logit(3)', 'logit(3)', 'logit(3)', 'logit(3)']
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import TYPE_CHECKING, Any, Literal

from jaxdream.errors import ConfigError, ImageError, ObjectiveError

# The engine (JAX, NumPy, the model, the objectives) is imported inside the methods that use
# it: ``jaxdream --help`` reads this module (the flags are made from DreamConfig's fields, their
# defaults the presets', DreamConfig values) and must not start JAX. Measured on a 2-core
# machine: ``jaxdream dream --help`` 0.18 s, and 1.3-1.7 s with the engine imported.
if TYPE_CHECKING:
    from jaxdream.carve import DreamSpec, Knobs
    from jaxdream.layouts import Grid, Overlap
    from jaxdream.network import Network
    from jaxdream.objectives import Objective

ObjectiveLike = "Objective | str"


def as_objective(objective: ObjectiveLike) -> Objective:
    """An ``Objective``, or one parsed from text (``parse_objective``)."""
    from jaxdream.objectives import Objective, parse_objective

    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, str):
        return parse_objective(objective)
    raise ObjectiveError(f"an objective is an Objective or its text, not {objective!r}")


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of tiles taking part in the dream.

    ``tiles``: row-major indices of the tiles that take part (``None``: all ``4**level``).
    ``maps``: one map for every tile of the level, one per chosen tile, or ``None`` for the
    dream's default objective; ``-1`` means the whole layer. ``objective``: instead of ``maps``,
    one objective (or its text) for every tile, or a tuple of one per chosen tile. ``weight``
    scales the level's changes in the batched schedule.

    >>> Level(1, tiles=(3,))          # the article: the lower-right quadrant only
    Level(level=1, tiles=(3,), maps=None, weight=1.0, objective=None)
    """

    level: int
    tiles: tuple[int, ...] | None = None
    maps: int | tuple[int, ...] | None = None
    weight: float = 1.0
    objective: ObjectiveLike | tuple[ObjectiveLike, ...] | None = None

    def tile_indices(self) -> tuple[int, ...]:
        n = 4**self.level
        if self.tiles is None:
            return tuple(range(n))
        return tuple(self.tiles)

    def check(self) -> None:
        import numpy as np

        from jaxdream.checks import whole_number

        whole_number("level", self.level, 0, 6)
        if self.tiles is not None and not (
            isinstance(self.tiles, tuple | list)
            and all(isinstance(t, int | np.integer) and not isinstance(t, bool) for t in self.tiles)
        ):
            raise ConfigError(f"level {self.level}: tiles must be a tuple of whole numbers")
        if self.maps is not None:
            maps = self.maps if isinstance(self.maps, tuple | list) else (self.maps,)
            for m in maps:
                whole_number(f"level {self.level}'s map", m, -1, 2**31 - 1)
        n = 4**self.level
        idx = self.tile_indices()
        if not idx:
            raise ConfigError(f"level {self.level} has no tiles")
        if len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= n:
            raise ConfigError(
                f"level {self.level} has tiles 0..{n - 1} (row-major); got {list(idx)}"
            )
        for what, value in (("maps", self.maps), ("objectives", self.objective)):
            if isinstance(value, tuple) and len(value) != len(idx):
                raise ConfigError(
                    f"level {self.level}: {len(value)} {what} for {len(idx)} tiles; give one "
                    "or one per tile"
                )
        if self.maps is not None and self.objective is not None:
            raise ConfigError(f"level {self.level}: give maps or an objective, not both")


ARTICLE_LEVELS = (Level(0), Level(1, tiles=(3,)))
MAX_SIDE = 8192
MAX_ITERATIONS = 1000
MAX_STEPS = 100_000
# Iterations x steps x tiles of one dream: 100 million is hours on a CPU (16,000 tile steps/s
# here), a few minutes on a GPU; the article's dream is 600.
MAX_TILE_STEPS = 100_000_000
# Finite values far beyond any useful setting overflow float32 inside the dream (a step of
# 1e30, a weight of 1e40): refused. The article's epsilon is 0.01, its weights 1.
MAX_EPSILON = 1000.0
MAX_WEIGHT = 1e6
MAX_STRENGTH = 10.0  # of the carving's change in the written picture (1: the whole dream)
COMMON_ASPECTS = (1.0, 5 / 4, 4 / 3, 3 / 2, 16 / 10, 16 / 9, 2.0, 21 / 9, 3.0)
ASPECT_STEP = 0.02  # other aspect ratios lie on a log grid of 2% steps
# The convolutions and matrix-product precisions by name, for the flags' choices without JAX
# (tests/test_cli.py checks them against ``model.CONV_IMPLS`` and ``compute.PRECISIONS``).
CONV_CHOICES = ("auto", "fast", "im2col", "xla")
PRECISION_CHOICES = ("highest", "high", "default")
TILE_ASPECTS = ("image", "network")
# Settings added after renders could be resumed, with their defaults (``resume_text``).
LATER_SETTINGS = {"tile_aspect": "image"}


def setting(default, help: str, **flag) -> Any:
    """A ``DreamConfig`` field with its command-line flag: ``help``, and ``flag``, argparse's
    keywords (``type``, ``choices``, ``nargs``, ``metavar``, ``action``)."""
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag})


@dataclasses.dataclass(frozen=True)
class DreamConfig:
    """A dream, as data. The defaults are the article's settings.

    ``size``: working size, an int for the longer side (aspect kept) or ``(height, width)``.
    ``layer``/``map``: the default objective, ``channel(layer, map)`` (``map = -1``: the whole
    layer); ``objective`` replaces it (an ``Objective`` or its text). ``conv_criterion``: stop a
    tile's OIP early when its loss changes by less (the article's ``2e-4``; off by default).
    ``shift_tiles``: move the tile grid of levels >= 1 by a random offset each iteration
    (wrapping around), to hide seams. ``overlap``: tiles of levels >= 1 overlap their
    neighbours by this fraction of a tile, their changes feathered together (``layouts.Overlap``;
    0: the article's disjoint grid). ``tile_aspect``: ``"image"``, tiles of levels >= 1 are
    the cells of the image's grid, squeezed into the network's input as the whole image is (the
    article's); ``"network"``, each is grown across its cell to the network's input aspect
    (``layouts.Overlap(aspect=...)``), so a network sees its tiles unsqueezed. ``conv``: the
    convolution (``"auto"``: the backend's choice, ``jaxdream.compute``); ``precision`` of the
    matrix products (``"highest"``: full float32 on every backend). ``prepare``: how the photo
    becomes the gray working image (``jaxdream.imageio.prepare_photo``): ``"gray"``, gray first
    and resized in float, or ``"article"``, the article's (the colour photo resized as uint8 by
    PIL, then gray). ``strength``: how much of the carving's change the written picture shows
    (0: the photo, 1: the whole dream; above 1 exaggerates it; ``DreamResult.to_uint8``). It
    changes only how a dream is shown, never the dream's numbers or its compiled program.
    """

    size: int | tuple[int, int] = setting(
        560, "working size: longer side, or HEIGHT WIDTH", type=int, nargs="+", metavar="N"
    )
    layer: str = setting("conv3", "the layer whose map is carved")
    map: int = setting(56, "map of the layer; -1: the whole layer", type=int)
    levels: tuple[Level, ...] = setting(
        ARTICLE_LEVELS,
        "tile levels, LEVEL[:TILE,...][/MAP,...][*WEIGHT]: 0 = whole image, "
        "1 = quadrants (tiles 0..3 row-major), 2 = 4x4 grid; e.g. '0 1' or "
        "'0 1/56,12,3,7 2*0.5' ('0 1:3' is the article's). Objectives per level or "
        "tile: LEVEL[:TILE,...][*WEIGHT]=OBJECTIVE[;OBJECTIVE...], e.g. '1=logit:3' or "
        "'1:0,3=conv2:5;logit:7'",
        nargs="+",
        metavar="SPEC",
    )
    iterations: int = setting(4, "carving rounds", type=int)
    steps: int = setting(30, "OIP steps per round and tile", type=int)
    epsilon: float = setting(0.01, "OIP step size", type=float)
    conv_criterion: float | None = setting(None, "stop OIP early (the article: 2e-4)", type=float)
    schedule: Literal["batched", "faithful"] = setting(
        "batched",
        "batched: all tiles in one call; faithful: the article's steps exactly",
        choices=["batched", "faithful"],
    )
    shift_tiles: bool = setting(
        False, "random tile offsets (seams)", action=argparse.BooleanOptionalAction
    )
    seed: int = setting(0, "of the tile shifts", type=int)
    objective: Objective | str | None = setting(  # noqa: RUF009 (a dataclasses.field)
        None,
        "every tile's objective instead of --layer/--map, as for 'jaxdream oip': e.g. "
        "'0.7*conv3:56 + 0.3*conv2:12', 'logit:9', 'conv3:56 - 0.1*logit:3'",
    )
    overlap: float = setting(
        0.0,
        "tiles of levels >= 1 overlap their neighbours by this fraction of a tile, "
        "their changes feathered together (hides seams; 0: the article's grid)",
        type=float,
        metavar="FRACTION",
    )
    tile_aspect: str = setting(
        "image",
        "tiles of levels >= 1: image, cells of the image's grid squeezed into the network's "
        "input (the article's); network, each grown across its cell to the network's input "
        "aspect, overlapping and feathered",
        choices=TILE_ASPECTS,
    )
    conv: str = setting(
        "auto",
        "convolution (auto: im2col on CPUs, XLA's own on GPUs and TPUs)",
        choices=CONV_CHOICES,
    )
    precision: str = setting(
        "highest",
        "matrix-product precision (highest: full float32 on every backend; "
        "'default' lets GPUs use TF32 and TPUs bf16 passes)",
        choices=PRECISION_CHOICES,
    )
    prepare: str = setting(
        "gray",
        "how the photo becomes the gray working image: gray, gray first and resized in "
        "float; article, the article's (resized in colour as uint8 by PIL, then gray)",
        choices=["article", "gray"],
    )
    strength: float = setting(
        1.0,
        "how much of the carving's change the picture shows: 0 the photo, 1 the whole "
        "dream, above 1 exaggerated",
        type=float,
        metavar="S",
    )

    def resume_text(self) -> str:
        """``repr(self)`` as a render's resume keeps it (``jaxdream.video.render``): settings
        added since renders could be resumed (``LATER_SETTINGS``) are left out while at their
        defaults, so that a render begun before they existed still resumes.

        >>> DreamConfig().resume_text() == repr(DreamConfig()).replace(", tile_aspect='image'", "")
        True
        """
        text = repr(self)
        for name, default in LATER_SETTINGS.items():
            if getattr(self, name) == default:
                text = text.replace(f", {name}={default!r}", "", 1)
        return text

    def replace(self, **changes) -> DreamConfig:
        """A copy with ``changes`` (``ConfigError`` for a name that is not a field)."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in changes if k not in fields]
        if unknown:
            raise ConfigError(
                f"DreamConfig has no field {unknown[0]!r}; fields: {', '.join(fields)}"
            )
        return dataclasses.replace(self, **changes)

    def check(self, model: Network) -> None:
        """Raise ``ConfigError`` (or ``ObjectiveError``) for any value of the wrong type or out
        of its range, and for work too large to finish (``MAX_TILE_STEPS``); the objectives'
        layers are ``model``'s (a ``jaxdream.network.Network``: the bundled CNN, or another
        network, which reads the bundled CNN's names as ``layer_aliases`` says)."""
        from jaxdream.checks import flag, number, one_of, shown, whole_number
        from jaxdream.compute import PRECISIONS
        from jaxdream.imageio import PREPARATIONS
        from jaxdream.model import CONV_IMPLS
        from jaxdream.network import layer_shapes
        from jaxdream.objectives import MAX_TERMS, stacked_terms

        if self.schedule not in ("batched", "faithful"):
            raise ConfigError(f"schedule must be 'batched' or 'faithful', got {self.schedule!r}")
        _size(self.size)
        if not isinstance(self.layer, str):
            raise ConfigError(f"layer must be a layer's name, got {shown(self.layer)}")
        if self.objective is None:
            whole_number("map", self.map, -1, 2**31 - 1)
        flag("shift_tiles", self.shift_tiles)
        one_of("conv", self.conv, ("auto", *sorted(CONV_IMPLS)))
        one_of("precision", self.precision, tuple(PRECISIONS))
        whole_number("iterations", self.iterations, 1, MAX_ITERATIONS)
        whole_number("steps", self.steps, 0, MAX_STEPS)
        whole_number("seed", self.seed, -(2**63), 2**63 - 1)
        number("epsilon", self.epsilon, -MAX_EPSILON, MAX_EPSILON)
        if self.conv_criterion is not None:
            number("conv_criterion", self.conv_criterion, 0, math.inf)
        if not isinstance(self.levels, tuple | list) or not all(
            isinstance(lv, Level) for lv in self.levels
        ):
            raise ConfigError(f"levels must be a tuple of Level, got {self.levels!r}")
        for lv in self.levels:
            number(f"level weights (level {lv.level})", lv.weight, -MAX_WEIGHT, MAX_WEIGHT)
        if not self.levels:
            raise ConfigError("at least one level is needed")
        for lv in self.levels:
            lv.check()
        depths = [lv.level for lv in self.levels]
        if len(set(depths)) != len(depths):
            raise ConfigError(f"each level may appear once, got levels {depths}")
        if self.schedule == "faithful" and depths != sorted(depths):
            raise ConfigError("the faithful schedule runs levels in order: list them ascending")
        if self.schedule == "faithful" and self.shift_tiles:
            raise ConfigError("shift_tiles is not part of the faithful schedule")
        number("overlap", self.overlap, 0, 1)
        if not 0 <= self.overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.schedule == "faithful" and self.overlap:
            raise ConfigError("overlap is not part of the faithful schedule (it replaces tiles)")
        one_of("tile_aspect", self.tile_aspect, TILE_ASPECTS)
        if self.schedule == "faithful" and self.tile_aspect != "image":
            raise ConfigError(
                "tile_aspect='network' is not part of the faithful schedule (it replaces tiles)"
            )
        one_of("prepare", self.prepare, tuple(PREPARATIONS))
        number("strength", self.strength, 0, MAX_STRENGTH)
        shapes = layer_shapes(model)
        objectives = self.tile_objectives()
        for objective in objectives:
            objective.validate(shapes)
        terms = stacked_terms(objectives)
        if terms > MAX_TERMS:
            raise ConfigError(
                f"the tiles' objectives make {terms} different terms, which every tile computes "
                f"in one call: at most {MAX_TERMS} (each adds to the compile time)"
            )
        work = self.tile_steps()
        if work > MAX_TILE_STEPS:
            raise ConfigError(
                f"{self.iterations} iterations x {self.steps} steps x {self.tile_count()} tiles "
                f"= {work:,} tile steps is more than one dream may take ({MAX_TILE_STEPS:,}; "
                "the article's is 240): lower iterations, steps or the tiles"
            )

    def default_objective(self) -> Objective:
        """Every tile's objective unless its level says otherwise."""
        from jaxdream.objectives import channel

        if self.objective is not None:
            return as_objective(self.objective)
        return channel(self.layer, self.map)

    def tile_objectives(self) -> list[Objective]:
        """The objective of every taking-part tile, level after level."""
        from jaxdream.objectives import channel

        default = self.default_objective()
        out: list[Objective] = []
        for lv in self.levels:
            n = len(lv.tile_indices())
            if lv.objective is not None:
                given = lv.objective if isinstance(lv.objective, tuple) else (lv.objective,) * n
                out += [as_objective(o) for o in given]
            elif lv.maps is not None:
                maps = lv.maps if isinstance(lv.maps, tuple) else (lv.maps,) * n
                out += [channel(self.layer, m) for m in maps]
            else:
                out += [default] * n
        return out

    def tile_count(self) -> int:
        return sum(len(lv.tile_indices()) for lv in self.levels)

    def tile_steps(self) -> int:
        """The dream's work: OIP steps over all tiles and iterations (the article's: 240)."""
        return self.iterations * self.steps * self.tile_count()

    def tile_weights(self) -> list[float]:
        return [lv.weight for lv in self.levels for _ in lv.tile_indices()]

    def layout(self, model: Network | None = None) -> Grid | Overlap:
        """The tile layout, by name from ``layouts.LAYOUTS``: ``"overlap"`` where tiles
        overlap or are cut at the network's (``model``'s) input aspect (``tile_aspect``), else
        the article's ``"grid"``."""
        from jaxdream.layouts import LAYOUTS

        if self.tile_aspect == "network" and model is not None:
            h, w = model.input_shape[:2]
            return LAYOUTS["overlap"](float(self.overlap), aspect=w / h)
        if self.overlap:
            return LAYOUTS["overlap"](float(self.overlap))
        return LAYOUTS["grid"]()

    def model_for(self, model: Network) -> Network:
        """``model`` with this config's compute choices (``conv``, ``precision``) made for the
        default backend: the one place a dream's compute is decided. They are the bundled
        CNN's; another network computes as it is written."""
        from jaxdream.model import CNN

        if not isinstance(model, CNN):
            return model
        changes = {"precision": self.precision}
        if self.conv != "auto":
            changes["conv"] = self.conv
        return dataclasses.replace(model, **changes).resolved()

    def spec(
        self,
        model: Network,
        image_shape: tuple[int, int],
        return_frames: bool = False,
    ) -> DreamSpec:
        """The static half of the dream of working images of ``image_shape``."""
        from jaxdream.carve import DreamSpec

        return DreamSpec(
            model=self.model_for(model),
            shape=(int(image_shape[0]), int(image_shape[1])),
            levels=tuple((lv.level, lv.tile_indices()) for lv in self.levels),
            iterations=self.iterations,
            steps=self.steps,
            layout=self.layout(model),
            schedule=self.schedule,
            shift_tiles=self.shift_tiles,
            return_frames=return_frames,
        )

    def knobs(self) -> Knobs:
        """The traced half: every tile's objective, level weights, epsilon, the criterion."""
        # Made in numpy and put on the device in one transfer: each eager jnp conversion
        # compiled a program of its own in a new process (23 ms of its first dream).
        import jax
        import numpy as np

        from jaxdream.carve import Knobs
        from jaxdream.objectives import stack_objectives

        return jax.device_put(
            Knobs(
                objective=stack_objectives(self.tile_objectives()),
                weights=np.asarray(self.tile_weights(), np.float32),
                epsilon=np.float32(self.epsilon),
                conv_criterion=np.float32(self.conv_criterion or 0.0),
            )
        )

    def working_shape(self, image_shape: tuple[int, int]) -> tuple[int, int]:
        """``(height, width)`` the photo is resized to: the longer side ``size``, the aspect
        ratio snapped (``snap_aspect``: to a common ratio within 1%, else to a 2% step), both
        sides divisible by the deepest grid; no side over ``MAX_SIDE`` (a typo such as
        ``--size 56000`` would exhaust memory). No photo's aspect changes by more than about 1%
        (plus the grid's rounding), and a folder of mixed photos falls into few shapes: few
        compiled programs.

        >>> DreamConfig().working_shape((3000, 4000)), DreamConfig().working_shape((2990, 4000))
        ((420, 560), (420, 560))
        """
        import numpy as np

        grid = 2 ** max(lv.level for lv in self.levels)
        sides = self.size if isinstance(self.size, tuple | list) else (self.size,)
        if any(isinstance(s, int | np.integer) and s > MAX_SIDE for s in sides):
            raise ConfigError(f"size {self.size} is too large: at most {MAX_SIDE} pixels a side")
        _size(self.size)
        if isinstance(self.size, tuple | list):
            h, w = (int(s) for s in self.size)
            if h % grid or w % grid or h < grid or w < grid:
                raise ConfigError(f"size {h}x{w} is not divisible by the {grid}x{grid} tile grid")
            return h, w
        if self.size < grid:
            raise ConfigError(f"size {self.size} is smaller than the {grid}x{grid} tile grid")
        h0, w0 = image_shape
        if min(h0, w0) < 1:
            raise ImageError(f"the photo is empty: {h0}x{w0} pixels")
        ratio = snap_aspect(h0 / w0)
        h, w = (self.size, self.size / ratio) if ratio >= 1 else (self.size * ratio, self.size)

        def snap(v: float) -> int:
            return max(grid, round(v / grid) * grid)

        return snap(h), snap(w)


def _size(size) -> None:
    from jaxdream.checks import whole_number

    if isinstance(size, tuple | list):
        if len(size) != 2:
            raise ConfigError(
                f"size is one number (the longer side) or (height, width), not {size!r}"
            )
        for side in size:
            whole_number("size", side, 1, MAX_SIDE)
    else:
        whole_number("size", size, 1, MAX_SIDE)


def snap_aspect(ratio: float) -> float:
    """A height/width ratio snapped to the nearest of ``COMMON_ASPECTS`` (either orientation)
    within 1%, else to the log grid of ``ASPECT_STEP``.

    >>> snap_aspect(0.7475), snap_aspect(1080 / 1920) == 9 / 16, round(snap_aspect(0.41), 4)
    (0.75, True, 0.4066)
    """
    for common in COMMON_ASPECTS:
        for c in (common, 1 / common):
            if abs(math.log(ratio / c)) < 0.01:
                return c
    return math.exp(round(math.log(ratio) / ASPECT_STEP) * ASPECT_STEP)


def parse_level(text: str) -> Level:
    """A ``Level`` from command-line text ``LEVEL[:TILE,...][/MAP,...][*WEIGHT]``, or with
    objectives instead of maps, ``LEVEL[:TILE,...][*WEIGHT]=OBJECTIVE[;OBJECTIVE...]`` (one
    objective for every tile, or one per tile, in ``parse_objective``'s grammar).

    >>> parse_level("1:3")
    Level(level=1, tiles=(3,), maps=None, weight=1.0, objective=None)
    >>> parse_level("1/56,12,3,7*0.5")
    Level(level=1, tiles=None, maps=(56, 12, 3, 7), weight=0.5, objective=None)
    >>> parse_level("1:0,3=logit:3;conv3:56 - 0.1*logit:3").objective
    ('logit:3', 'conv3:56 - 0.1*logit:3')
    """
    from jaxdream.checks import shown
    from jaxdream.objectives import parse_objective

    help_text = (
        "use LEVEL[:TILE,...][/MAP,...][*WEIGHT] or LEVEL[:TILE,...][*WEIGHT]=OBJECTIVE[;...], "
        "e.g. 0, 1:3, 1/56,12,3,7, 2*0.5 or '1:3=logit:7'"
    )
    if not isinstance(text, str):
        raise ConfigError(f"a level is text such as '1:3', not {shown(text)}")
    objective = None
    if "=" in text:
        text, objective_text = text.split("=", 1)
        parts = tuple(p.strip() for p in objective_text.split(";"))
        if not all(parts):
            raise ConfigError(f"cannot read level {text!r}: an objective is empty; {help_text}")
        for p in parts:
            parse_objective(p)  # a bad objective fails here, naming itself
        objective = parts[0] if len(parts) == 1 else parts
    rest, weight = text.split("*", 1) if "*" in text else (text, "1")
    rest, maps = rest.split("/", 1) if "/" in rest else (rest, "")
    level, tiles = rest.split(":", 1) if ":" in rest else (rest, "")
    try:
        map_list = tuple(int(m) for m in maps.split(",")) if maps else None
        return Level(
            level=int(level),
            tiles=tuple(int(t) for t in tiles.split(",")) if tiles else None,
            maps=map_list[0] if map_list and len(map_list) == 1 else map_list,
            weight=float(weight),
            objective=objective,
        )
    except ValueError:
        raise ConfigError(f"cannot read level {shown(text)}: {help_text}") from None


def format_level(level: Level) -> str:
    """``level`` as the command line writes it: ``parse_level``'s text (objectives as text).

    >>> format_level(Level(1, tiles=(0, 3), weight=0.5, objective=("logit:3", "conv2:5")))
    '1:0,3*0.5=logit:3;conv2:5'
    >>> parse_level(format_level(Level(2, maps=(1, 2) * 8))) == Level(2, maps=(1, 2) * 8)
    True
    """
    text = str(level.level)
    if level.tiles is not None:
        text += ":" + ",".join(str(t) for t in level.tiles)
    if level.maps is not None:
        maps = level.maps if isinstance(level.maps, tuple | list) else (level.maps,)
        text += "/" + ",".join(str(m) for m in maps)
    if level.weight != 1:
        text += f"*{float(level.weight)!r}"
    if level.objective is not None:
        given = level.objective if isinstance(level.objective, tuple) else (level.objective,)
        if not all(isinstance(o, str) for o in given):
            raise ConfigError(f"level {level.level}: only objectives given as text have flags")
        text += "=" + ";".join(given)
    return text


SETTINGS = tuple(f.name for f in dataclasses.fields(DreamConfig))


def flag_values(config: DreamConfig) -> dict[str, Any]:
    """``config`` as the command line's flag values: ``size`` and ``levels`` as lists (of
    numbers, of ``parse_level`` texts), the other fields as they are.

    >>> flag_values(DreamConfig())["levels"], flag_values(DreamConfig(size=(48, 64)))["size"]
    (['0', '1:3'], [48, 64])
    """
    values = {name: getattr(config, name) for name in SETTINGS}
    size = values["size"]
    values["size"] = list(size) if isinstance(size, tuple | list) else [size]
    values["levels"] = [format_level(lv) for lv in values["levels"]]
    return values


def config_from_flags(values: dict[str, Any]) -> DreamConfig:
    """A ``DreamConfig`` from command-line values (``flag_values``' keys; those left out are
    the article's)."""
    if not isinstance(values, dict):
        raise ConfigError(f"flag values are a dict, not {type(values).__name__}")
    unknown = [k for k in values if k not in SETTINGS]
    if unknown:
        raise ConfigError(f"no dream setting {unknown[0]!r}; settings: {', '.join(SETTINGS)}")
    changes = dict(values)
    if "levels" in changes:
        levels = changes["levels"]
        if not isinstance(levels, list | tuple) or not all(isinstance(t, str) for t in levels):
            raise ConfigError(f"levels are a list of texts such as ['0', '1:3'], not {levels!r}")
        changes["levels"] = tuple(parse_level(t) for t in levels)
    if "size" in changes:
        size = changes["size"]
        if not isinstance(size, list | tuple) or len(size) not in (1, 2):
            raise ConfigError("--size takes one number (longer side) or two (height width)")
        changes["size"] = size[0] if len(size) == 1 else (size[0], size[1])
    return DreamConfig(**changes)
