"""jaxdream: pattern-carving deep dreams with a small MNIST CNN, in JAX/Flax.

>>> import jaxdream
>>> model, params = jaxdream.load_model()
>>> result = jaxdream.dream("photo.jpg", jaxdream.DreamConfig(map=56))    # doctest: +SKIP
>>> pattern = jaxdream.oip(params, jaxdream.channel("conv3", 56),
...                        jaxdream.noise_image(jax.random.key(0)))      # doctest: +SKIP
"""

from jaxdream import compute, distributed, layouts, parallel
from jaxdream.cache import enable_compilation_cache
from jaxdream.carve import DreamSpec, Knobs, carve, carve_batch
from jaxdream.checkpoint import load_checkpoint, load_model, save_checkpoint
from jaxdream.config import ARTICLE_LEVELS, DreamConfig, Level, parse_level
from jaxdream.display import Display, colorize, contrast_clip, to_uint8
from jaxdream.dream import DreamCall, DreamResult, dream, dream_call, dream_many
from jaxdream.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    ImageError,
    JaxdreamError,
    ObjectiveError,
    ResourceError,
)
from jaxdream.imageio import load_photo, save_gif, save_image
from jaxdream.imageops import resize, standardize
from jaxdream.layouts import Grid, Overlap
from jaxdream.many import Outcome, dream_photos
from jaxdream.model import CNN, activation_shapes, activations, init_params
from jaxdream.objectives import (
    Objective,
    channel,
    layer,
    logit,
    mean_square,
    neuron,
    parse_objective,
    stack_objectives,
)
from jaxdream.oip import OIPResult, noise_image, noise_images, oip
from jaxdream.parallel import Execution
from jaxdream.runtime import configure_cpu_devices

__version__ = "0.1.0"

__all__ = [
    "ARTICLE_LEVELS",
    "CNN",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Display",
    "DreamCall",
    "DreamConfig",
    "DreamResult",
    "DreamSpec",
    "Execution",
    "Grid",
    "ImageError",
    "JaxdreamError",
    "Knobs",
    "Level",
    "OIPResult",
    "Objective",
    "ObjectiveError",
    "Outcome",
    "Overlap",
    "ResourceError",
    "activation_shapes",
    "activations",
    "carve",
    "carve_batch",
    "channel",
    "colorize",
    "compute",
    "configure_cpu_devices",
    "contrast_clip",
    "distributed",
    "dream",
    "dream_call",
    "dream_many",
    "dream_photos",
    "enable_compilation_cache",
    "init_params",
    "layer",
    "layouts",
    "load_checkpoint",
    "load_model",
    "load_photo",
    "logit",
    "mean_square",
    "neuron",
    "noise_image",
    "noise_images",
    "oip",
    "parallel",
    "parse_level",
    "parse_objective",
    "resize",
    "save_checkpoint",
    "save_gif",
    "save_image",
    "stack_objectives",
    "standardize",
    "to_uint8",
]
