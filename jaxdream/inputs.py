"""A network's input: its shape, given or found (the channels from its first convolution's
kernel, the side where a flatten and dense head fixes it), the bundled CNN's architecture read
off its parameters, and the network's own preprocessing, the function from the carving's
standardized tile to what the network was trained on (``normalized``: the usual per-channel
normalization). ``jaxdream.network`` makes networks with them; the command line's loading
(``jaxdream.loading``) asks the same.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ConfigError
from jaxdream.model import CNN
from jaxdream.programs import Bounded

Array = jax.Array

# The sides ``as_network`` tries for a network with a flatten and dense head, most common first
# (each try traces the network once, without computing).
COMMON_SIDES = (
    *(28, 32, 64, 224, 96, 128, 256, 16, 48, 56, 112, 160, 192, 227, 299, 384, 512),
    *(320, 448),
)
# Channels a network's input may have: gray (1) or RGB (3); the carving takes both.
CHANNELS = (1, 3)


def check_channels(channels: int) -> None:
    """``ConfigError`` for an input of other than 1 (gray) or 3 (RGB) channels."""
    if channels not in CHANNELS:
        raise ConfigError(
            f"the network takes {channels}-channel inputs: jaxdream dreams gray or RGB images "
            f"({' or '.join(map(str, CHANNELS))} channels)"
        )


def checked_shape(shape: Any) -> tuple[int, int, int]:
    """``shape`` as ``(H, W, C)`` of whole positive sizes and 1 or 3 channels, else
    ``ConfigError``.

    >>> checked_shape([28, 28, 1])
    (28, 28, 1)
    """
    try:
        found = tuple(int(n) for n in shape)
        whole = tuple(shape) == found
    except (TypeError, ValueError):
        found, whole = (), False
    if len(found) != 3 or min(found) < 1 or not whole:
        raise ConfigError(f"input shape must be three whole numbers (H, W, C), got {shape!r}")
    check_channels(found[2])
    return found


def first_conv_channels(params: Any) -> int | None:
    """The input channels of the first convolution kernel (a 4-D ``kernel``, ``(kh, kw, in,
    out)``) in ``params``' order; ``None`` where it has none."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if np.ndim(leaf) == 4 and "kernel" in jax.tree_util.keystr(path):
            return int(np.shape(leaf)[2])
    return None


def infer_input_shape(
    runs: Callable[[tuple[int, int, int]], bool],
    channels: int | None,
    name: str = "the network",
    fixed: bool = True,
) -> tuple[int, int, int]:
    """The input shape of a network: ``channels`` (its first convolution's, ``None``: it has
    none, refused) and the first side of ``COMMON_SIDES`` at which ``runs((side, side,
    channels))`` (a dense head after a flatten fixes it). With ``fixed`` (its weights are
    given), a network that also runs at the next side takes several sizes and is refused: its
    size cannot be known; without (fresh weights are made for the side), the first side is
    taken. ``runs`` may raise ``ConfigError`` for what no side mends. The one inference of
    ``as_network`` and ``jaxdream.loading``.

    >>> infer_input_shape(lambda s: s[0] % 7 == 0, 1)
    (28, 28, 1)
    """
    if channels is None:
        raise ConfigError(
            f"{name} has no convolution: jaxdream carves with convolutional networks "
            "(and finds the input's channels from the first convolution's kernel)"
        )
    check_channels(channels)
    fitting: list[int] = []
    for side in COMMON_SIDES:
        if runs((side, side, channels)):
            fitting.append(side)
            if not fixed:
                break
            if len(fitting) > 1:
                raise ConfigError(
                    f"{name} takes inputs of several sizes, so its input size cannot be known: "
                    f"give input_shape=(H, W, C) (--input-shape H W C), e.g. "
                    f"input_shape=({fitting[0]}, {fitting[0]}, {channels})"
                )
        elif fitting:
            break
    if not fitting:
        raise ConfigError(
            f"no square input of a common side ({min(COMMON_SIDES)}..{max(COMMON_SIDES)}) fits "
            f"{name}, so its input size cannot be known: give input_shape=(H, W, C) "
            "(--input-shape H W C)"
        )
    return fitting[0], fitting[0], channels


def runs_at(apply, shape: tuple[int, int, int]) -> bool:
    """Whether ``apply`` of a batch ``(1, *shape)`` traces (no computing): a shape it takes."""
    try:
        jax.eval_shape(apply, jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    except Exception:  # a shape that does not fit: Flax and JAX raise several types
        return False
    return True


# -- the bundled CNN from its parameters alone


def _conv_names(params: Mapping) -> list[str]:
    names = [k for k in params if k.startswith("conv") and k[4:].isdigit()]
    return sorted(names, key=lambda k: int(k[4:]))


def model_from_params(params: Mapping) -> CNN:
    """The bundled ``CNN`` whose parameters ``params`` are: widths, hidden units, classes and
    input channels read off the kernels' shapes; padding (``valid`` or ``same``) and a square
    input side of ``COMMON_SIDES`` the ones (with a 2x2 pool after every convolution but the
    last) at which the convolutions' output has as many values as the dense layer takes.
    Parameters alone cannot tell the architecture where none or several fit (other pools, a
    side not in ``COMMON_SIDES``): ``ConfigError`` then (give the network itself, e.g.
    ``jaxdream.load_model``'s).

    >>> from jaxdream.model import init_params
    >>> wide = CNN(widths=(4, 4, 4, 4), hidden=8, padding="same", input_size=(56, 56))
    >>> model_from_params(init_params(wide, jax.random.key(0))) == wide
    True
    """
    from jaxdream.model import activation_shapes

    convs = _conv_names(params)
    if not convs or "dense" not in params or "logits" not in params:
        raise ConfigError(
            "params are not the bundled CNN's (conv1.., dense, logits): give network= with them"
        )
    kernel = np.shape(params[convs[0]]["kernel"])
    base = CNN(
        widths=tuple(int(np.shape(params[k]["kernel"])[-1]) for k in convs),
        hidden=int(np.shape(params["dense"]["kernel"])[-1]),
        num_classes=int(np.shape(params["logits"]["kernel"])[-1]),
        channels=int(kernel[2]),
    )
    flat = int(np.shape(params["dense"]["kernel"])[0])
    found = []
    for padding in ("valid", "same"):
        for side in COMMON_SIDES:
            model = dataclasses.replace(base, padding=padding, input_size=(side, side))
            shape = activation_shapes(model)[f"conv{len(convs)}"]
            if len(model.pools) == len(convs) - 1 and math.prod(shape) == flat > 0:
                found.append(model)
    if len(found) != 1:
        what = "no" if not found else "several"
        raise ConfigError(
            f"the bundled CNN's architecture cannot be read off these params ({what} padding "
            "and input side fit): give network= with them (e.g. jaxdream.load_model's)"
        )
    return found[0]


# -- the network's own preprocessing


@dataclasses.dataclass(frozen=True)
class Normalized:
    """The usual per-channel normalization as a preprocessing (``normalized`` makes one)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    pixel_mean: float = 0.5
    pixel_std: float = 0.25

    # Each output value depends on its input value alone: a layer's smallest crop is kept.
    pointwise = True

    def __call__(self, tile: Array) -> Array:
        """The network's input for the standardized tile ``tile`` ``(H, W, C)``."""
        c = jnp.shape(tile)[-1]
        mean = jnp.broadcast_to(jnp.asarray(self.mean, jnp.float32), (c,))
        std = jnp.broadcast_to(jnp.asarray(self.std, jnp.float32), (c,))
        pixels = jnp.asarray(tile, jnp.float32) * self.pixel_std + self.pixel_mean
        return (pixels - mean) / std


def _floats(name: str, values: Any) -> tuple[float, ...]:
    try:
        found = tuple(float(v) for v in np.atleast_1d(np.asarray(values, np.float64)))
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numbers, got {values!r}") from None
    if len(found) not in CHANNELS:
        raise ConfigError(f"{name} must be 1 or 3 numbers (one per channel), got {len(found)}")
    if not all(math.isfinite(v) for v in found):
        raise ConfigError(f"{name} must be finite numbers, got {values!r}")
    return found


def normalized(mean: Any, std: Any, pixel_mean: float = 0.5, pixel_std: float = 0.25) -> Normalized:
    """A preprocessing for a network trained on pixels in [0, 1] normalized per channel,
    ``(pixels - mean) / std`` (``mean=0, std=1``: the plain pixels): the carving's standardized
    tile ``t`` (zero mean, unit spread) is read as pixels ``t * pixel_std + pixel_mean`` (by
    default mid-gray, most values within [0, 1]), and channel ``c`` of the network's input is

        (t[..., c] * pixel_std + pixel_mean - mean[c]) / std[c]

    ``mean`` and ``std``: one number, or one per channel. ``ConfigError`` for numbers that are
    not finite, a ``std`` or ``pixel_std`` not above 0.

    >>> import jax.numpy as jnp
    >>> norm = normalized([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    >>> [round(float(v), 3) for v in norm(jnp.zeros((1, 1, 3)))[0, 0]]
    [0.066, 0.196, 0.418]
    >>> float(normalized(0.0, 1.0)(jnp.full((1, 1, 1), 2.0))[0, 0, 0])
    1.0
    """
    mean, std = _floats("mean", mean), _floats("std", std)
    pixel_mean, pixel_std = _floats("pixel_mean", pixel_mean), _floats("pixel_std", pixel_std)
    if min(std) <= 0 or pixel_std[0] <= 0:
        raise ConfigError(f"std and pixel_std must be above 0, got {std} and {pixel_std[0]}")
    return Normalized(mean, std, pixel_mean[0], pixel_std[0])


@functools.cache
def preprocess_text(preprocess: Callable, shape: tuple[int, int, int]) -> str:
    """``preprocess`` as text that names what it computes (its program and constants traced
    for a tile of ``shape``): two preprocessings of one name but other code or numbers are
    other networks in the exported-program cache."""
    if isinstance(preprocess, Normalized):
        return repr(preprocess)
    kind = getattr(preprocess, "__qualname__", type(preprocess).__qualname__)
    where = getattr(preprocess, "__module__", type(preprocess).__module__)
    try:
        closed = jax.make_jaxpr(preprocess)(jax.ShapeDtypeStruct(shape, jnp.float32))
        digest = hashlib.sha256(str(closed.jaxpr).encode())
        for const in closed.consts:
            digest.update(np.asarray(const).tobytes())
        text = digest.hexdigest()[:12]
    except Exception:
        text = "untraced"
    return f"{where}.{kind}@{text}"


_CHECKED_PREPROCESS = Bounded(32)


def check_preprocess(preprocess: Any, shape: tuple[int, int, int]) -> None:
    """``ConfigError`` for a preprocessing that is not a hashable callable, that does not map a
    tile of ``shape`` to an array of ``shape``, or gives values that are not finite."""
    if not callable(preprocess):
        raise ConfigError(
            "preprocess must be a function from the standardized tile (H, W, C) to the "
            f"network's input, not {type(preprocess).__name__}"
        )
    try:
        key = (preprocess, shape)
        hash(key)
    except TypeError:
        raise ConfigError(
            "preprocess must be hashable (a function, or a frozen dataclass): it is part of "
            "the compiled program's key"
        ) from None
    if key in _CHECKED_PREPROCESS:
        return
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    try:
        out = jax.eval_shape(preprocess, x)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"preprocess does not run on a tile of shape {shape}: {type(e).__name__}: {first}"
        ) from None
    if not isinstance(out, jax.ShapeDtypeStruct) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, jax.ShapeDtypeStruct) else type(out).__name__
        raise ConfigError(
            f"preprocess gives {got} for a tile of {shape}: the network takes {shape}"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise ConfigError(f"preprocess gives {out.dtype} values, not floating-point ones")
    sample = jnp.linspace(-3, 3, math.prod(shape), dtype=jnp.float32).reshape(shape)
    if not np.all(np.isfinite(np.asarray(jax.jit(preprocess)(sample)))):
        raise ConfigError("preprocess gives NaN or infinite values for a standardized tile")
    _CHECKED_PREPROCESS.put(key, True)
