"""jaxdream: pattern-carving deep dreams with a small MNIST CNN, in JAX/Flax.

>>> import jaxdream
>>> model, params = jaxdream.load_model()
>>> result = jaxdream.dream("photo.jpg", jaxdream.DreamConfig(map=56))    # doctest: +SKIP
>>> pattern = jaxdream.oip(params, jaxdream.channel("conv3", 56),
...                        jaxdream.noise_image(jax.random.key(0)))      # doctest: +SKIP

The public names are imported when first used (PEP 562), so that ``import jaxdream`` and the
command line's ``--help`` do not start JAX.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

from jaxdream._version import __version__ as __version__

# Where each public name lives: one table, read by __getattr__, __dir__ and __all__.
_EXPORTS = {
    "jaxdream.cache": ["enable_compilation_cache"],
    "jaxdream.carve": [
        "DreamSpec",
        "Knobs",
        "Stages",
        "carve",
        "carve_batch",
        "carve_batch_part",
        "carve_batch_stages",
        "carve_part",
        "carve_stages",
    ],
    "jaxdream.checkpoint": ["load_checkpoint", "load_model", "save_checkpoint"],
    "jaxdream.config": ["ARTICLE_LEVELS", "DreamConfig", "Level", "parse_level"],
    "jaxdream.display": ["Display", "colorize", "contrast_clip", "to_uint8"],
    "jaxdream.dream": [
        "DreamCall",
        "DreamResult",
        "dream",
        "dream_call",
        "dream_in_parts",
        "dream_many",
    ],
    "jaxdream.errors": [
        "CheckpointError",
        "ConfigError",
        "DataError",
        "ImageError",
        "JaxdreamError",
        "NumericalError",
        "ObjectiveError",
        "ResourceError",
    ],
    "jaxdream.imageio": ["load_photo", "prepare_photo", "save_gif", "save_image"],
    "jaxdream.imageops": ["resize", "standardize"],
    "jaxdream.layouts": ["Grid", "Overlap"],
    "jaxdream.many": ["Outcome", "dream_photos"],
    "jaxdream.model": ["CNN", "activation_shapes", "activations", "init_params"],
    "jaxdream.motion": ["Motion", "zoom"],
    "jaxdream.objectives": [
        "Objective",
        "channel",
        "layer",
        "logit",
        "mean_square",
        "neuron",
        "parse_objective",
        "stack_objectives",
    ],
    "jaxdream.oip": ["OIPResult", "noise_image", "noise_images", "oip"],
    "jaxdream.parallel": ["Execution"],
    "jaxdream.presets": ["PRESETS", "preset_config"],
    "jaxdream.runtime": ["configure_cpu_devices"],
    "jaxdream.video": ["VideoError", "dream_video", "flicker", "probe", "save_video"],
}
# public submodules
_MODULES = [
    "compute",
    "distributed",
    "figures",
    "folders",
    "layouts",
    "maps",
    "motion",
    "parallel",
    "photos",
    "presets",
    "progress",
    "video",
]
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_WHERE, *_MODULES])


# Functions named like the module they live in (``jaxdream.dream.dream``): importing the
# module would set the package's attribute to the module, hiding the function, so the package
# keeps the function (``jaxdream.dream`` is the function; the module is
# ``sys.modules["jaxdream.dream"]``, and ``from jaxdream.dream import ...`` works as ever).
_SHADOWED = frozenset(name for name, module in _WHERE.items() if module == f"jaxdream.{name}")


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"jaxdream.{name}")
    else:
        raise AttributeError(f"module 'jaxdream' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from jaxdream import (  # noqa: F401
        compute,
        distributed,
        figures,
        folders,
        layouts,
        maps,
        parallel,
        photos,
        progress,
    )
    from jaxdream.cache import enable_compilation_cache  # noqa: F401
    from jaxdream.carve import DreamSpec, Knobs, Stages, carve, carve_part, carve_stages  # noqa: F401
    from jaxdream.checkpoint import load_checkpoint, load_model, save_checkpoint  # noqa: F401
    from jaxdream.config import ARTICLE_LEVELS, DreamConfig, Level, parse_level  # noqa: F401
    from jaxdream.dream import DreamResult, dream, dream_call, dream_in_parts, dream_many  # noqa: F401
    from jaxdream.many import Outcome, dream_photos  # noqa: F401
    from jaxdream.model import CNN  # noqa: F401
    from jaxdream.motion import Motion, zoom  # noqa: F401
    from jaxdream.objectives import Objective, channel, parse_objective  # noqa: F401
    from jaxdream.oip import noise_image, noise_images, oip  # noqa: F401
    from jaxdream.video import VideoError, dream_video, flicker, probe, save_video  # noqa: F401
