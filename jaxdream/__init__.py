"""jaxdream: pattern-carving deep dreams with a small MNIST CNN, in JAX/Flax.

>>> import jaxdream
>>> model, params = jaxdream.load_model()
>>> result = jaxdream.dream("photo.jpg", jaxdream.DreamConfig(map=56))    # doctest: +SKIP
>>> pattern = jaxdream.oip(params, jaxdream.channel("conv3", 56),
...                        jaxdream.noise_image(jax.random.key(0)))      # doctest: +SKIP

The public names are imported when first used (PEP 562), so that ``import jaxdream`` and the
command line's ``--help`` do not start JAX.

No module of the package is named like a public function: importing a submodule sets the
package's attribute of its name, which would hide the function. The dream API lives in
``jaxdream.dreaming`` (what dreaming a photo takes: ``dream``, ``dream_many``, ``DreamResult``,
``DreamCall``), optimal input patterns in ``jaxdream.patterns`` (``oip``), the map survey in
``jaxdream.exploring`` (``explore``). ``zoom`` stays in ``jaxdream.motion`` and ``dream_video`` in
``jaxdream.video``: no public function has those modules' names (the command line's
``jaxdream.cli.zoom`` is below ``jaxdream.cli``, not this package).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from jaxdream._version import __version__ as __version__

# Where each public name lives: one table, read by __getattr__, __dir__ and __all__. What a user
# of the library needs: the dreams and renders, their settings and results, presets, objectives,
# photos in and pictures out, the model, the errors. The engine's parts (``carve_batch``,
# ``DreamSpec``, ``Knobs``, ``Stages``, ``dream_call``, ``resize``, ``init_params``, ...) are
# imported from their modules (``jaxdream.carve``, ``jaxdream.dreaming``, ...).
_EXPORTS = {
    "jaxdream.cache": ["enable_compilation_cache"],
    "jaxdream.checkpoint": ["load_model"],
    "jaxdream.config": ["DreamConfig", "Level"],
    "jaxdream.display": ["Display"],
    "jaxdream.dreaming": ["DreamResult", "dream", "dream_many"],
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
    "jaxdream.exploring": ["explore"],
    "jaxdream.imageio": ["load_photo", "save_image"],
    "jaxdream.loading": ["load_network", "load_weights", "save_weights"],
    "jaxdream.many": ["dream_photos"],
    "jaxdream.motion": ["Motion", "zoom"],
    "jaxdream.objectives": ["Objective", "channel", "layer", "logit", "neuron", "parse_objective"],
    "jaxdream.patterns": ["noise_image", "oip"],
    "jaxdream.presets": ["PRESETS", "preset_config"],
    "jaxdream.runtime": ["configure_cpu_devices"],
    "jaxdream.video": ["VideoError", "dream_video", "save_video"],
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
    "programs",
    "progress",
    "video",
]
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_WHERE, *_MODULES])


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
        programs,
        progress,
    )
    from jaxdream.cache import enable_compilation_cache  # noqa: F401
    from jaxdream.checkpoint import load_model  # noqa: F401
    from jaxdream.config import DreamConfig, Level  # noqa: F401
    from jaxdream.display import Display  # noqa: F401
    from jaxdream.dreaming import DreamResult, dream, dream_many  # noqa: F401
    from jaxdream.errors import (  # noqa: F401
        CheckpointError,
        ConfigError,
        DataError,
        ImageError,
        JaxdreamError,
        NumericalError,
        ObjectiveError,
        ResourceError,
    )
    from jaxdream.exploring import explore  # noqa: F401
    from jaxdream.imageio import load_photo, save_image  # noqa: F401
    from jaxdream.loading import load_network, load_weights, save_weights  # noqa: F401
    from jaxdream.many import dream_photos  # noqa: F401
    from jaxdream.motion import Motion, zoom  # noqa: F401
    from jaxdream.objectives import (  # noqa: F401
        Objective,
        channel,
        layer,
        logit,
        neuron,
        parse_objective,
    )
    from jaxdream.patterns import noise_image, oip  # noqa: F401
    from jaxdream.presets import PRESETS, preset_config  # noqa: F401
    from jaxdream.runtime import configure_cpu_devices  # noqa: F401
    from jaxdream.video import VideoError, dream_video, save_video  # noqa: F401
