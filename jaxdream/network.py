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

The input shape is found once for every caller (``jaxdream.inputs.infer_input_shape``; the
command line's loading, ``jaxdream.loading``, asks the same), or given (``input_shape=`` to
``as_network``, ``resolve`` and every entry point). A network trained on inputs other than the
carving's standardized tiles is given its own preprocessing (``preprocess=``: ``Preprocessed``
here, ``jaxdream.inputs.normalized``), traced into the programs and part of their keys.

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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ConfigError
from jaxdream.inputs import (
    check_preprocess,
    checked_shape,
    first_conv_channels,
    infer_input_shape,
    model_from_params,
    preprocess_text,
    runs_at,
)
from jaxdream.model import CNN
from jaxdream.programs import Bounded

Array = jax.Array

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


def named_shapes(tree: Mapping) -> dict[str, tuple[int, ...]]:
    """The shapes (one example's) of the activations that a call's captured intermediates
    ``tree`` hold, named as ``LinenNetwork`` and ``NNXNetwork`` name them: the one naming of
    layers (``jaxdream.loading.describe_layers`` lists the same names)."""
    return {name: tuple(v.shape) for name, v in _named(tree).items()}


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


# -- input shapes: the one place they are checked and inferred (``jaxdream.loading`` too)


@dataclasses.dataclass(frozen=True)
class Preprocessed:
    """``network`` fed its own preprocessing: ``preprocess`` maps the carving's standardized
    tile ``(H, W, C)`` (float32) to the network's input, traced into the program (gradients
    flow through it). A ``Network`` of its own: hashable (``preprocess`` by its own hash) and
    part of the program store's keys, so two preprocessings never share a program."""

    network: Network
    preprocess: Callable

    def __repr__(self) -> str:
        text = preprocess_text(self.preprocess, tuple(self.input_shape))
        return f"Preprocessed({self.network!r}, {text})"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.network.input_shape

    @property
    def classifier(self) -> str | None:
        return self.network.classifier

    def _input(self, image: Array) -> Array:
        c = self.input_shape[-1]
        x = jnp.asarray(image, jnp.float32).reshape(*jnp.shape(image)[:2], c)
        return self.preprocess(x)

    def activations(self, params: Any, image: Array, upto: str | None = None) -> dict[str, Array]:
        """The named activations of one standardized image ``(H, W, C)``, preprocessed."""
        return self.network.activations(params, self._input(image), upto)

    def activation_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.network.activation_shapes()

    def features(self, params: Any, image: Array) -> Mapping:
        """The activations as the objectives read them, of the preprocessed image."""
        return features(self.network, params, self._input(image))

    def needed_side(self, layers: Iterable[str]) -> int | None:
        """The network's smallest crop where the preprocessing is ``pointwise`` (each value of
        its own pixel), else the whole input."""
        if getattr(self.preprocess, "pointwise", False):
            return needed_side(self.network, layers)
        return None

    def resolved(self) -> Preprocessed:
        return dataclasses.replace(self, network=resolved(self.network))


def with_preprocess(network: Network, preprocess: Callable | None) -> Network:
    """``network`` fed ``preprocess`` (``Preprocessed``), checked; ``network`` itself where
    ``preprocess`` is ``None``."""
    if preprocess is None:
        return network
    if isinstance(network, Preprocessed):
        if network.preprocess == preprocess:
            return network
        raise ConfigError("the network has a preprocessing of its own: give one, not two")
    check_preprocess(preprocess, tuple(network.input_shape))
    return Preprocessed(network, preprocess)


# -- making one


def _check_weights(params: Any) -> None:
    leaves = jax.tree.leaves(params)
    for leaf in leaves:
        a = np.asarray(leaf)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ConfigError("the network's weights hold NaN or infinite values")


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

    shape = input_shape or infer_input_shape(
        functools.partial(runs_at, apply), first_conv_channels(params)
    )
    if input_shape is not None and not runs_at(apply, shape):
        raise ConfigError(f"the network does not run on {shape} with these params")
    network = LinenNetwork(module, shape)
    _check_outputs(network)
    return network


def _nnx_network(graphdef: Any, params: Any, input_shape) -> NNXNetwork:
    from flax import nnx

    def apply(x):
        return nnx.merge(graphdef, params)(x)

    plain = nnx.to_pure_dict(params) if hasattr(nnx, "to_pure_dict") else params
    shape = input_shape or infer_input_shape(
        functools.partial(runs_at, apply), first_conv_channels(plain)
    )

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
    net: Any,
    params: Any = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
) -> tuple[Network, Any]:
    """``(network, params)`` for the bundled ``CNN`` (with its ``params``), a Linen module
    (with its ``params``), an NNX module (``params=None``: its state) or a ``Network``. The
    input shape is inferred unless given (see the module docstring); a network of a fixed
    shape (the bundled CNN, a ``Network`` other than Linen's and NNX's) refuses another one.
    ``preprocess``: the network's own preprocessing (``Preprocessed``, ``normalized``); unset,
    the network sees the carving's standardized tiles. ``ConfigError`` where the shape cannot
    be inferred, for a network with no convolution, outputs that are not arrays, weights that
    are not finite, inputs of other than 1 or 3 channels, or a bad preprocessing."""
    input_shape = None if input_shape is None else checked_shape(input_shape)
    network, params = _made(net, params, input_shape)
    if input_shape is not None and tuple(network.input_shape) != input_shape:
        raise ConfigError(
            f"the network takes inputs of shape {tuple(network.input_shape)}, not the "
            f"input_shape given, {input_shape}"
        )
    return with_preprocess(network, preprocess), params


def _made(net: Any, params: Any, input_shape: tuple[int, int, int] | None) -> tuple[Network, Any]:
    if isinstance(net, LinenNetwork | NNXNetwork) and input_shape not in (None, net.input_shape):
        if params is None:
            raise ConfigError(f"{type(net).__name__} needs its params")
        if isinstance(net, LinenNetwork):
            return _linen_network(net.module, params, input_shape), params
        return _nnx_network(net.graphdef, params, input_shape), params
    if isinstance(net, CNN | LinenNetwork | NNXNetwork | Preprocessed):
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


def resolve(
    network: Any = None,
    params: Any = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
) -> tuple[Network, Any]:
    """The network and parameters an entry point dreams with: the bundled one
    (``jaxdream.load_model()``) where neither is given, the bundled CNN's architecture read off
    ``params`` where only they are (``model_from_params``), else ``as_network(network, params,
    input_shape, preprocess)``; checked to be one the carving takes (``check_carvable``).
    ``input_shape`` and ``preprocess`` as ``as_network`` takes them (the bundled CNN refuses an
    ``input_shape`` other than its own)."""
    if network is None:
        if params is None:
            from jaxdream.checkpoint import load_model

            network, params = load_model()
        else:
            network = model_from_params(params)
    network, params = as_network(network, params, input_shape, preprocess)
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
