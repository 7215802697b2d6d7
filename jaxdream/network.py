"""The seam between the engine and a network: what the carving, OIP and the map studies ask of
the network they dream with, and the adapters that give it for any Flax network.

A ``Network`` is hashable (it is a static argument of the compiled programs and part of the
program store's keys), knows its ``input_shape`` ``(H, W, C)`` and hands out the named
activations of ONE example (batch with ``jax.vmap``). The bundled CNN (``jaxdream.model.CNN``)
is one natively, with its fast paths (one map of a convolution computed alone, the smallest
crop a layer needs, the backend's compute choices); any other Flax network is one through
``as_network``:

- ``LinenNetwork(module, input_shape)``: a Linen module whose ``__call__`` takes a batch
  ``(N, H, W, C)``; its activations are every submodule's output (``capture_intermediates``),
  named by the module path joined by ``/`` (``Conv_0``, ``block2/conv``), and the values it
  ``sow`` s; ``output`` is the module's own output.
- ``NNXNetwork(graphdef, input_shape)``: an NNX module split by ``nnx.split``; its activations
  are its submodules' outputs (``nnx.capture``) and the ``nnx.Intermediate`` s it sows.

Layer names are the network's own. The names the bundled CNN's presets use (``conv1``,
``conv2``, ``conv3``, their ``_pre``, ``logits``) are read by another network as
``layer_aliases`` says: ``conv3`` its deepest spatial activation, ``conv1`` its first,
``conv2`` the one in the middle, ``logits`` its ``classifier``.

>>> import jax, jax.numpy as jnp, flax.linen as nn
>>> class Tiny(nn.Module):
...     @nn.compact
...     def __call__(self, x):
...         x = nn.relu(nn.Conv(4, (3, 3))(x))
...         return nn.Dense(3)(x.reshape(x.shape[0], -1))
>>> module = Tiny()
>>> params = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))["params"]
>>> network, params = as_network(module, params)
>>> network.input_shape, network.classifier
((16, 16, 1), 'output')
>>> network.activation_shapes()["Conv_0"]
(16, 16, 4)
>>> layer_aliases(network)["conv3"]
'Conv_0'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ConfigError
from jaxdream.model import CNN
from jaxdream.programs import Bounded

Array = jax.Array

# The sides ``as_network`` tries for a network with a flatten and dense head, most common first
# (each try traces the network once, without computing).
COMMON_SIDES = (28, 32, 64, 224, 96, 128, 256, 16, 48, 56, 112, 160, 192, 227, 299, 384, 512)
# Channels a network's input may have: gray (1) or RGB (3); the carving takes both.
CHANNELS = (1, 3)
CARVED_CHANNELS = (1, 3)
# The bundled CNN's layer names, read by another network as ``layer_aliases`` says.
BUNDLED_LAYERS = ("conv1", "conv2", "conv3")


@runtime_checkable
class Network(Protocol):
    """What the engine asks of a network (see the module docstring)."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...

    @property
    def classifier(self) -> str | None: ...

    def activations(
        self, params: Any, image: Array, upto: str | None = None
    ) -> dict[str, Array]: ...

    def activation_shapes(self) -> dict[str, tuple[int, ...]]: ...


class Activations(Mapping):
    """The named activations of one image for a network without fast paths (the bundled CNN's
    are ``jaxdream.model.Features``): each computed when asked for; names of
    ``layer_aliases`` read the layer they stand for."""

    def __init__(self, network: Network, params: Any, image: Array):
        self.network, self.params = network, params
        c = network.input_shape[-1]
        self.image = jnp.asarray(image, jnp.float32).reshape(*jnp.shape(image)[:2], c)
        self._aliases = layer_aliases(network)
        self._names = tuple(network.activation_shapes())

    def __getitem__(self, name: str) -> Array:
        own = self._aliases.get(name, name)
        if own not in self._names:
            raise KeyError(name)
        return self.network.activations(self.params, self.image, upto=own)[own]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def channel(self, layer: str, index: int | Array) -> Array:
        """Map ``index`` of ``layer``, ``(H, W)``."""
        return jnp.take(self[layer], index, axis=-1)


def features(network: Network, params: Any, image: Array) -> Mapping:
    """The activations of one image as the objectives read them: the network's own
    ``features`` where it has one (the bundled CNN's), else ``Activations``."""
    own = getattr(network, "features", None)
    return own(params, image) if own is not None else Activations(network, params, image)


def needed_side(network: Network, layers: Iterable[str]) -> int | None:
    """The side of the smallest top-left crop from which ``layers`` come out as from the whole
    input (the bundled CNN's ``needed_side``); ``None``: the whole input (other networks)."""
    own = getattr(network, "needed_side", None)
    return own(layers) if own is not None else None


def resolved(network: Network) -> Network:
    """``network`` with its compute choices made for the default backend (the bundled CNN's
    ``resolved``; other networks are left as they are)."""
    own = getattr(network, "resolved", None)
    return own() if own is not None else network


@functools.cache
def layer_aliases(network: Network) -> dict[str, str]:
    """The bundled CNN's layer names that ``network`` does not have, mapped to its own: the
    presets and the defaults name ``conv1`` .. ``conv3``, and a user expects them to carve the
    same depths of another network: ``conv3`` its deepest spatial (3-D) activation, ``conv1``
    its first, ``conv2`` the middle one (``convN_pre`` as ``convN``: a Linen or NNX network's
    convolution output is already before its nonlinearity), ``logits`` its ``classifier``.
    Empty for the bundled CNN."""
    shapes = network.activation_shapes()
    spatial = [n for n, s in shapes.items() if len(s) == 3 and n != "input"]
    aliases: dict[str, str] = {}
    if spatial:
        picks = (spatial[0], spatial[(len(spatial) - 1) // 2], spatial[-1])
        for name, pick in zip(BUNDLED_LAYERS, picks, strict=True):
            for alias in (name, f"{name}_pre"):
                if alias not in shapes:
                    aliases[alias] = pick
    if network.classifier is not None and "logits" not in shapes:
        aliases["logits"] = network.classifier
    return aliases


def layer_shapes(network: Network) -> dict[str, tuple[int, ...]]:
    """The shapes the objectives are checked against: the network's own layers, then the
    ``layer_aliases`` it reads."""
    shapes = dict(network.activation_shapes())
    for alias, own in layer_aliases(network).items():
        shapes[alias] = shapes[own]
    return shapes


# -- Linen


def _named(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[str, Array]:
    """Captured intermediates ``{path: {"__call__": (out, ...)}, "name": (sown, ...)}`` as
    ``{"path/name": array}``; an output that is not an array is left out, a second call of one
    module is ``name_call1``."""
    out: dict[str, Array] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_named(value, (*prefix, key)))
            continue
        path = prefix if key == "__call__" else (*prefix, key)
        name = "/".join(path) or "output"
        values = value if isinstance(value, tuple | list) else (value,)
        for i, v in enumerate(values):
            if isinstance(v, jax.Array | np.ndarray) and v.ndim >= 1 and v.shape[0] == 1:
                out[name if i == 0 else f"{name}_call{i}"] = v[0]
    return out


@functools.cache
def _computation_digest(network: LinenNetwork) -> str:
    """A short digest of what ``network`` computes (the text of its program, traced once for
    abstract parameters; its class's source where it cannot be traced): two modules of one
    class name and fields but other code are other networks in the exported-program cache."""
    module = network.module
    x = jax.ShapeDtypeStruct((1, *network.input_shape), jnp.float32)
    try:
        params = jax.eval_shape(module.init, jax.random.key(0), x)
        text = str(jax.make_jaxpr(module.apply)(params, x))
    except Exception:
        try:
            text = inspect.getsource(type(module))
        except (OSError, TypeError):
            text = ""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class LinenNetwork:
    """A Flax Linen module as a ``Network`` (see the module docstring); its parameters are its
    ``params`` collection."""

    module: nn.Module
    input_shape: tuple[int, int, int]

    def __repr__(self) -> str:
        kind = type(self.module)
        return (
            f"LinenNetwork({kind.__module__}.{kind.__qualname__}@{_computation_digest(self)}, "
            f"{self.module!r}, {self.input_shape})"
        )

    def activations(self, params: Any, image: Array, upto: str | None = None) -> dict[str, Array]:
        """The named activations of one image ``(H, W, C)``."""
        x = jnp.asarray(image, jnp.float32).reshape(self.input_shape)[None]
        _, state = self.module.apply(
            {"params": params}, x, capture_intermediates=True, mutable=["intermediates"]
        )
        return _named(state["intermediates"])

    def activation_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every named activation of one image (``jax.eval_shape``: no compute)."""
        return dict(_linen_shapes(self))

    @property
    def classifier(self) -> str | None:
        """``output`` where the module's output is one vector per image, else ``None``."""
        shape = self.activation_shapes().get("output")
        return "output" if shape is not None and len(shape) == 1 else None


@functools.cache
def _linen_shapes(network: LinenNetwork) -> tuple[tuple[str, tuple[int, ...]], ...]:
    def run():
        x = jnp.zeros((1, *network.input_shape), jnp.float32)
        _, state = network.module.init_with_output(
            jax.random.key(0), x, capture_intermediates=True, mutable=["params", "intermediates"]
        )
        return _named(state["intermediates"])

    return tuple((k, tuple(v.shape)) for k, v in jax.eval_shape(run).items())


# -- NNX


@dataclasses.dataclass(frozen=True)
class NNXNetwork:
    """An NNX module, split into ``graphdef`` and its state (the parameters), as a
    ``Network`` (see the module docstring). ``shapes``: its activations' shapes, which
    ``as_network`` works out once from the state (a graph definition has no arrays)."""

    graphdef: Any
    input_shape: tuple[int, int, int]
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = dataclasses.field(
        default=(), compare=False, repr=False
    )

    def activations(self, params: Any, image: Array, upto: str | None = None) -> dict[str, Array]:
        """The named activations of one image ``(H, W, C)``."""
        return _nnx_activations(self.graphdef, self.input_shape, params, image)

    def activation_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every named activation of one image (worked out by ``as_network``)."""
        if not self.shapes:
            raise ConfigError("an NNXNetwork's shapes are worked out by as_network: make it there")
        return dict(self.shapes)

    @property
    def classifier(self) -> str | None:
        """``output`` where the module's output is one vector per image, else ``None``."""
        shape = dict(self.shapes).get("output")
        return "output" if shape is not None and len(shape) == 1 else None


def _nnx_activations(graphdef, input_shape, state, image) -> dict[str, Array]:
    from flax import nnx

    module = nnx.merge(graphdef, state)
    x = jnp.asarray(image, jnp.float32).reshape(input_shape)[None]
    output, captured = nnx.capture(module, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    named: dict[str, Any] = {}
    for path, variable in nnx.to_flat_state(captured):
        value = variable.get_value() if hasattr(variable, "get_value") else variable.value
        named["/".join(str(p) for p in path)] = value
    tree: dict[str, Any] = {}
    for path, value in named.items():
        *parents, leaf = path.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    tree.setdefault("__call__", (output,))
    return _named(tree)


# -- making one


def model_from_params(params: Mapping) -> CNN:
    """The bundled ``CNN`` whose parameters ``params`` are (widths and sizes read off the
    shapes)."""
    convs = sorted(k for k in params if k.startswith("conv"))
    return CNN(
        widths=tuple(int(params[k]["kernel"].shape[-1]) for k in convs),
        hidden=int(params["dense"]["kernel"].shape[-1]),
        num_classes=int(params["logits"]["kernel"].shape[-1]),
    )


def _check_weights(params: Any) -> None:
    leaves = jax.tree.leaves(params)
    for leaf in leaves:
        a = np.asarray(leaf)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ConfigError("the network's weights hold NaN or infinite values")


def _first_conv_channels(params: Any) -> int | None:
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if np.ndim(leaf) == 4 and "kernel" in jax.tree_util.keystr(path):
            return int(np.shape(leaf)[2])
    return None


def _fits(apply, shape: tuple[int, int, int]) -> bool:
    try:
        jax.eval_shape(apply, jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    except Exception:
        return False
    return True


def _infer_shape(apply, params: Any) -> tuple[int, int, int]:
    channels = _first_conv_channels(params)
    if channels is None:
        raise ConfigError(
            "the network has no convolution: jaxdream carves with convolutional networks "
            "(and finds the input's channels from the first convolution's kernel)"
        )
    fitting = []
    for side in COMMON_SIDES:
        if _fits(apply, (side, side, channels)):
            fitting.append(side)
            if len(fitting) > 1:
                raise ConfigError(
                    "the network takes inputs of several sizes, so its input size cannot be "
                    f"known: give input_shape=(H, W, C), e.g. input_shape=({fitting[0]}, "
                    f"{fitting[0]}, {channels})"
                )
        elif fitting:
            break
    if not fitting:
        raise ConfigError(
            "no square input of a common side fits the network, so its input size cannot be "
            "known: give input_shape=(H, W, C)"
        )
    return fitting[0], fitting[0], channels


def _check_shape(shape: Any) -> tuple[int, int, int]:
    try:
        h, w, c = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be (H, W, C), got {shape!r}") from None
    if min(h, w) < 1:
        raise ConfigError(f"input_shape must be (H, W, C) of positive sizes, got {shape!r}")
    if c not in CHANNELS:
        raise ConfigError(
            f"a network's input has {c} channels: jaxdream takes {' or '.join(map(str, CHANNELS))}"
            " (gray or RGB)"
        )
    return h, w, c


def _check_outputs(network: Network) -> None:
    try:
        shapes = network.activation_shapes()
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"the network does not run on {network.input_shape}: {e}") from None
    if not shapes:
        raise ConfigError("the network's outputs are not arrays: it has no activation to carve")


# The networks ``as_network`` made, by module, parameter structure and the shape given: an entry
# point called again infers nothing again.
_MADE = Bounded(32)


def _structure(params: Any) -> tuple:
    leaves, tree = jax.tree.flatten(params)
    return tree, tuple((np.shape(a), str(np.asarray(a).dtype)) for a in leaves)


def _linen_network(module: nn.Module, params: Any, input_shape) -> LinenNetwork:
    def apply(x):
        return module.apply({"params": params}, x)

    shape = _check_shape(input_shape or _infer_shape(apply, params))
    network = LinenNetwork(module, shape)
    _check_outputs(network)
    return network


def _nnx_network(graphdef: Any, params: Any, input_shape) -> NNXNetwork:
    from flax import nnx

    def apply(x):
        return nnx.merge(graphdef, params)(x)

    plain = nnx.to_pure_dict(params) if hasattr(nnx, "to_pure_dict") else params
    shape = _check_shape(input_shape or _infer_shape(apply, plain))

    def run():
        return _nnx_activations(graphdef, shape, params, jnp.zeros(shape))

    try:
        found = jax.eval_shape(run)
    except Exception as e:
        raise ConfigError(f"the network does not run on {shape}: {e}") from None
    network = NNXNetwork(graphdef, shape, tuple((k, tuple(v.shape)) for k, v in found.items()))
    _check_outputs(network)
    return network


def as_network(
    net: Any, params: Any = None, input_shape: tuple[int, int, int] | None = None
) -> tuple[Network, Any]:
    """``(network, params)`` for the bundled ``CNN`` (with its ``params``), a Linen module
    (with its ``params``), an NNX module (``params=None``: its state) or a ``Network``. The
    input shape is inferred unless given (see the module docstring); ``ConfigError`` where it
    cannot be, for a network with no convolution, outputs that are not arrays, weights that are
    not finite, or inputs of other than 1 or 3 channels."""
    input_shape = None if input_shape is None else _check_shape(input_shape)
    if isinstance(net, CNN | LinenNetwork | NNXNetwork):
        if params is None:
            raise ConfigError(f"{type(net).__name__} needs its params")
        return net, params
    if isinstance(net, nn.Module):
        if params is None:
            raise ConfigError("a Linen module needs its params (its 'params' collection)")
        if isinstance(params, Mapping) and set(params) == {"params"}:
            params = params["params"]
        _check_weights(params)
        key = (net, _structure(params), input_shape)
        if key not in _MADE:
            _MADE.put(key, _linen_network(net, params, input_shape))
        return _MADE[key], params
    from flax import nnx

    if isinstance(net, nnx.Module):
        graphdef, state = nnx.split(net)
        params = state if params is None else params
        _check_weights(params)
        key = (graphdef, _structure(params), input_shape)
        if key not in _MADE:
            _MADE.put(key, _nnx_network(graphdef, params, input_shape))
        return _MADE[key], params
    if isinstance(net, Network):
        return net, params
    raise ConfigError(
        f"network must be a jaxdream CNN, a Flax Linen or NNX module, or a Network, not "
        f"{type(net).__name__}"
    )


def check_carvable(network: Network) -> None:
    """``ConfigError`` for a network the carving cannot take (other than 1 or 3 channels)."""
    c = network.input_shape[-1]
    if c not in CARVED_CHANNELS:
        raise ConfigError(
            f"a network's input has {c} channels: jaxdream carves with 1 (gray) or 3 (RGB)"
        )


def is_color(network: Network) -> bool:
    """Whether ``network`` takes RGB: its dreams carve the photo's colours, ``(H, W, 3)``."""
    return int(network.input_shape[-1]) == 3


def check_schedule(network: Network, schedule: str) -> None:
    """``ConfigError`` for a colour network in the faithful schedule (which replaces gray
    tiles in place): a colour network carves in the batched schedule only."""
    if is_color(network) and schedule != "batched":
        raise ConfigError(
            f"a 3-channel (RGB) network carves in the batched schedule only, not {schedule!r}"
        )


def check_gray(network: Network, what: str) -> None:
    """``ConfigError`` where ``what`` (e.g. ``"my study"``), work that takes gray images only,
    is asked of a colour network. jaxdream's own entry points (the stills, OIP, a zoom, a
    video) all carve in colour; the faithful schedule's refusal is ``check_schedule``."""
    if is_color(network):
        raise ConfigError(
            f"{what} with a 3-channel (RGB) network is not supported: give a gray (1-channel) "
            "network"
        )


def resolve(network: Any = None, params: Any = None) -> tuple[Network, Any]:
    """The network and parameters an entry point dreams with: the bundled one
    (``jaxdream.load_model()``) where neither is given, the bundled CNN's architecture read off
    ``params`` where only they are, else ``as_network(network, params)``; checked to be one
    the carving takes (``check_carvable``)."""
    if network is None:
        if params is None:
            from jaxdream.checkpoint import load_model

            network, params = load_model()
        else:
            network = model_from_params(params)
    network, params = as_network(network, params)
    check_carvable(network)
    return network, params


def network_argument(network: Any = None, model: Any = None) -> Any:
    """``network``, or the old keyword ``model`` (a ``DeprecationWarning``) in its place."""
    if model is None:
        return network
    warnings.warn("model= is deprecated: use network=", DeprecationWarning, stacklevel=3)
    if network is not None:
        raise ConfigError("give network= (model= is its old name), not both")
    return model


def input_size(network: Network) -> tuple[int, int]:
    """The ``(H, W)`` the network sees: what a tile is resized to."""
    h, w = network.input_shape[:2]
    return int(h), int(w)
