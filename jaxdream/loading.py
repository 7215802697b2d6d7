"""A user's own Flax network, loaded for dreaming: the module named by ``FILE.py:NAME`` or
``package.module:NAME`` (``load_network``), its weights from a Flax msgpack file
(``load_weights``, written by ``save_weights``), and its layers' names and shapes
(``describe_layers``).

Loading a network runs its code: ``FILE.py`` is imported as Python (nothing is unpickled, but
the file can do whatever Python can), so load only files you trust.

Every refusal is one line of the project's errors (``ConfigError`` for the network and its
input shape, ``CheckpointError`` for its weights file), raised before any heavy compilation:
the network and its weights are only traced for their shapes (``jax.eval_shape``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import itertools
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import nnx, serialization, traverse_util

from jaxdream._files import atomic_write, check_regular_file
from jaxdream.errors import CheckpointError, ConfigError
from jaxdream.inputs import (
    COMMON_SIDES,
    check_channels,
    check_preprocess,
    checked_shape,
    first_conv_channels,
)
from jaxdream.inputs import infer_input_shape as _infer
from jaxdream.network import named_shapes

__all__ = [
    "MAX_WEIGHTS_BYTES",
    "SIDES",
    "check_input_shape",
    "describe_layers",
    "infer_input_shape",
    "load_network",
    "load_preprocess",
    "load_weights",
    "save_weights",
    "weight_shapes",
]

# The sides tried, in this order, where a network's input side is not given
# (``jaxdream.inputs.infer_input_shape``, the one inference).
SIDES = COMMON_SIDES
MAX_WEIGHTS_BYTES = 4 << 30
_FILE_MODULES = itertools.count()  # private module names of the imported files

Module = nn.Module | nnx.Module


def _one_line(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# --------------------------------------------------------------------------- the network


def _import_file(path: Path, spec: str, flag: str = "--network") -> Any:
    """The Python file ``path`` imported under a private module name (its code runs)."""
    if not path.is_file():
        raise ConfigError(f"{flag} {spec}: {path} does not exist")
    name = f"_jaxdream_network_{next(_FILE_MODULES)}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{flag} {spec}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling of its classes look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise ConfigError(f"{flag} {spec}: importing {path} failed: {_one_line(e)}") from e
    return module


def _import_module(name: str, spec: str, flag: str = "--network") -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"{flag} {spec}: no module named {e.name or name!r}") from e
    except Exception as e:
        raise ConfigError(f"{flag} {spec}: importing {name} failed: {_one_line(e)}") from e


def _named(spec: str, flag: str) -> tuple[Any, str]:
    """``(the object, its name)`` that ``spec`` (``FILE.py:NAME`` or ``package.module:NAME``)
    names; the file or module is imported (its code runs)."""
    if not isinstance(spec, str) or spec.count(":") < 1 or not spec.rsplit(":", 1)[1]:
        raise ConfigError(f"{flag} takes FILE.py:NAME or package.module:NAME, got {spec!r}")
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py") or os.sep in where or "/" in where:  # a file
        source = _import_file(Path(where), spec, flag)
    else:
        source = _import_module(where, spec, flag)
    if not hasattr(source, name):
        public = sorted(k for k in vars(source) if not k.startswith("_"))
        raise ConfigError(
            f"{flag} {spec}: {where} has no {name!r} (it has: {', '.join(public) or 'nothing'})"
        )
    return getattr(source, name), name


def load_preprocess(spec: str) -> Callable:
    """The network's own preprocessing named by ``spec`` (``FILE.py:NAME`` or
    ``package.module:NAME``, as ``load_network``): a function from the carving's standardized
    tile ``(H, W, C)`` to the network's input (``jaxdream.network.Preprocessed``), taken as it
    is. The file is imported (its code runs). ``ConfigError`` naming what is wrong (no such
    file, module or name, something that is not a function); the function itself is checked
    against the network's input shape where the network is made (``check_preprocess``)."""
    found, name = _named(spec, "--preprocess")
    if not callable(found):
        raise ConfigError(
            f"--preprocess {spec}: {name} is of type {type(found).__name__}, not a function "
            "from the standardized tile (H, W, C) to the network's input"
        )
    return found


def load_network(spec: str) -> Module:
    """The Flax module named by ``spec``: ``FILE.py:NAME`` or ``package.module:NAME``, where
    ``NAME`` is a Linen or NNX module instance, or a callable of no argument (a function, a
    class) returning one. The file is imported under a private module name: its code runs.
    Raises ``ConfigError`` naming what is wrong (no such file, module or name, a factory that
    raised, something that is not a network)."""
    found, name = _named(spec, "--network")
    if not isinstance(found, nn.Module | nnx.Module) and callable(found):
        try:
            found = found()
        except Exception as e:
            raise ConfigError(f"--network {spec}: {name}() raised {_one_line(e)}") from e
    if not isinstance(found, nn.Module | nnx.Module):
        raise ConfigError(
            f"--network {spec}: {name} is of type {type(found).__name__}, not a Flax Linen or "
            "NNX module (nor a function of no argument that returns one)"
        )
    return found


# --------------------------------------------------------------------------- shapes


def _nnx_weights(module: nnx.Module) -> nnx.State:
    """An NNX module's state without its random-number state: what its weights file holds."""
    return nnx.state(module, nnx.Not(nnx.RngState))


def weight_shapes(module: Module, input_shape: tuple[int, int, int]) -> Any:
    """The shapes of ``module``'s weights at ``input_shape`` (Linen: its ``params`` collection,
    from ``jax.eval_shape`` of its ``init``; NNX: its own state), as a plain nested dict."""
    if isinstance(module, nnx.Module):
        return jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), nnx.to_pure_dict(_nnx_weights(module))
        )
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: module.init(jax.random.key(0), x), x)
    return dict(variables.get("params", {}))


def _arrays(out: Any, kinds: list[str]) -> Any:
    """``out`` with each leaf that is not an array replaced by ``None``, its type's name noted
    in ``kinds`` (``jax.eval_shape`` takes arrays only)."""

    def keep(leaf: Any) -> Any:
        if isinstance(leaf, jax.Array):
            return leaf
        kinds.append(type(leaf).__name__)
        return None

    return jax.tree.map(keep, out)


def _call(
    module: Module, params: Any, input_shape: tuple[int, int, int]
) -> tuple[Any, dict[str, tuple[int, ...]], list[str]]:
    """``(output, layers, kinds)`` of ``module`` called on a batch of one zero image of
    ``input_shape``, traced only (``params``: Linen ``params`` or an NNX state; ``None``: fresh
    ones): the shapes of its output, its layers' shapes in the order it computes them
    (``_layer_shapes``), and the types of its outputs that are not arrays."""
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)  # traced only: nothing compiled
    kinds: list[str] = []
    layers: dict[str, tuple[int, ...]] = {}

    def seen(out: Any, inter: Mapping) -> Any:
        """Note the layers while the call is traced (the captured values are in the order of
        the call there; ``jax.eval_shape`` would give them back sorted by name)."""
        out = _arrays(out, kinds)
        layers.update(_layer_shapes(out, _arrays(inter, [])))
        return out

    if isinstance(module, nnx.Module):
        graphdef, weights, rest = nnx.split(module, nnx.Not(nnx.RngState), nnx.RngState)
        if params is not None:
            weights = params

        def run(weights, x):
            m = nnx.merge(graphdef, weights, rest)
            out, inter = nnx.capture(m, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
            return seen(out, nnx.to_pure_dict(inter))

        return jax.eval_shape(run, weights, x), layers, kinds

    called: list[str] = []  # Linen gives its captured values back sorted by name

    def note(call, args, kwargs, context):
        out = call(*args, **kwargs)
        if context.method_name == "__call__":
            called.append("/".join(map(str, context.module.path)))
        return out

    def apply(params, x):
        if params is None:
            params = module.init(jax.random.key(0), x)["params"]
        with nn.intercept_methods(note):
            out, state = module.apply(
                {"params": params}, x, capture_intermediates=True, mutable=["intermediates"]
            )
        out = seen(out, dict(state.get("intermediates", {})))
        ordered = sorted(layers.items(), key=lambda item: _call_order(item[0], called))
        layers.clear()
        layers.update(ordered)
        return out

    if params is None:
        return jax.eval_shape(lambda x: apply(None, x), x), layers, kinds
    return jax.eval_shape(apply, params, x), layers, kinds


def _call_order(name: str, called: list[str]) -> tuple[int, int]:
    """Where layer ``name`` comes in a Linen call whose modules finished in the order
    ``called`` (their paths, the whole network's ``""`` last): a module's output when it
    finished, a value it ``sow``ed just before."""
    base = "" if name == "output" else name
    again = re.fullmatch(r"(.*)_call(\d+)", base)  # a module's later call: ``name_callN``
    if base not in called and again and again.group(1) in called:
        calls = [i for i, path in enumerate(called) if path == again.group(1)]
        return calls[min(int(again.group(2)), len(calls) - 1)], 1
    if base in called:
        return called.index(base), 1
    parent = base.rsplit("/", 1)[0] if "/" in base else ""
    return (called.index(parent) if parent in called else len(called)), 0


def _pure(params: Any) -> Any:
    return nnx.to_pure_dict(params) if isinstance(params, nnx.State) else params


def _runs(module: Module, params: Any, input_shape: tuple[int, int, int]) -> bool:
    """Whether ``module`` runs on ``input_shape``; ``ConfigError`` for outputs that are not
    arrays (no input shape mends them)."""
    try:
        out, _, kinds = _call(module, params, input_shape)
    except Exception:  # a shape that does not fit: Flax and JAX raise several types
        return False
    _check_arrays(module, out, kinds)
    return True


def _check_arrays(module: Module, out: Any, kinds: list[str]) -> None:
    if kinds or not jax.tree.leaves(out):
        what = ", ".join(dict.fromkeys(kinds)) or "no array"
        raise ConfigError(
            f"{type(module).__name__} returns {what}, not arrays: its output must be an array "
            "(or a dict or tuple of arrays)"
        )


def _fresh_channels(module: nn.Module) -> int | None:
    """The first convolution's input channels of a Linen module's fresh weights (made for gray
    inputs at the first common side it initializes at: 1, or ``None`` for no convolution)."""
    for side in SIDES:
        try:
            shapes = weight_shapes(module, (side, side, 1))
        except Exception:  # too small for its layers: Flax and JAX raise several types
            continue
        return first_conv_channels(shapes)
    return 1


def infer_input_shape(module: Module, params: Any = None) -> tuple[int, int, int]:
    """The input shape ``(H, W, C)`` of ``module``, as ``jaxdream.inputs.infer_input_shape``
    infers it: channels from its first convolution's kernel (a Linen module without
    ``params``: gray, 1 channel), the first common side at which it runs with these weights (a
    dense head after a flatten fixes it; without weights, fresh ones are made for the side, and
    the first side it runs at is taken). ``ConfigError`` (give ``input_shape``) where no side
    fits or several do, and for a module with no convolution."""
    if isinstance(module, nnx.Module) and params is None:
        params = _nnx_weights(module)
    channels = _fresh_channels(module) if params is None else first_conv_channels(_pure(params))
    return _infer(
        functools.partial(_runs, module, params),
        channels,
        type(module).__name__,
        fixed=params is not None,
    )


def check_input_shape(
    module: Module, params: Any = None, input_shape: Any = None
) -> tuple[int, int, int]:
    """``module`` checked as a network jaxdream can dream with, at ``input_shape`` (inferred
    where ``None``: ``infer_input_shape``); returns the shape. Refused with ``ConfigError``: a
    network with no convolution, 2- or 4-channel inputs, an input shape it cannot run at or
    at which a layer has no pixels left (too small), outputs that are not arrays."""
    return _checked(module, params, input_shape)[0]


def _checked(
    module: Module, params: Any, input_shape: Any
) -> tuple[tuple[int, int, int], dict[str, tuple[int, ...]]]:
    """``(input shape, layer shapes)`` of ``module``, checked (``check_input_shape``) with one
    traced call."""
    shape = infer_input_shape(module, params) if input_shape is None else checked_shape(input_shape)
    try:
        out, layers, kinds = _call(module, params, shape)
    except Exception as e:  # a shape that does not fit: Flax and JAX raise several types
        raise ConfigError(
            f"{type(module).__name__} does not run on an input of shape {shape} (too small, or "
            f"not its shape: give --input-shape H W C): {_one_line(e)}"
        ) from e
    weights = params if params is not None else weight_shapes(module, shape)
    if first_conv_channels(_pure(weights)) is None:
        raise ConfigError(
            f"{type(module).__name__} has no convolution (no 4-D kernel): jaxdream carves the "
            "maps of a convolutional network"
        )
    _check_arrays(module, out, kinds)
    empty = [name for name, s in layers.items() if 0 in s]
    if empty:
        raise ConfigError(
            f"the input shape {shape} is too small for {type(module).__name__}: layer "
            f"{empty[0]} has no pixels left (give a larger --input-shape)"
        )
    return shape, layers


def _layer_shapes(out: Any, inter: Mapping) -> dict[str, tuple[int, ...]]:
    """The named activations' shapes of one example from a call's captured intermediates (in
    their order), named as the engine names them (``jaxdream.network``'s Linen and NNX
    networks): every submodule's output by its module path joined by ``/``, sown values by
    their path and name, the whole network's output as ``output`` (last)."""
    tree = dict(inter)
    tree.setdefault("__call__", (out,))
    shapes = named_shapes(tree)
    if "output" in shapes:
        shapes["output"] = shapes.pop("output")
    return shapes


def describe_layers(
    module: Module, params: Any = None, input_shape: Any = None
) -> dict[str, tuple[int, ...]]:
    """Every named activation of ``module`` with its shape for one image (no batch axis), found
    by tracing one call (``jax.eval_shape``: nothing computed): Linen's
    ``capture_intermediates`` and NNX's ``nnx.capture`` (every submodule's output, named by
    its path joined by ``/``, and ``sow``n values), the network's own output as ``output``.

    >>> import flax.linen as nn
    >>> net = nn.Sequential([nn.Conv(2, (3, 3), padding="VALID"), nn.relu])
    >>> describe_layers(net, input_shape=(8, 8, 1))
    {'layers_0': (6, 6, 2), 'output': (6, 6, 2)}
    """
    return _checked(module, params, input_shape)[1]


# --------------------------------------------------------------------------- weights


def _restore(path: str | os.PathLike) -> Any:
    check_regular_file(path, MAX_WEIGHTS_BYTES, "a weights file", error=CheckpointError)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read weights {path}: {e.strerror}") from e
    try:
        return serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        raise CheckpointError(
            f"weights {path} are not a Flax msgpack file ({type(e).__name__})"
        ) from e


def _check_tree(path: Any, have: Any, want: Any) -> None:
    """Refuse weights whose layers or shapes differ from the network's, naming the first
    parameter that differs, and weights that are not finite real numbers."""
    if not isinstance(have, Mapping):
        raise CheckpointError(f"weights {path} are not a mapping of layers")
    have_flat = {"/".join(map(str, k)): v for k, v in traverse_util.flatten_dict(have).items()}
    want_flat = {"/".join(map(str, k)): v for k, v in traverse_util.flatten_dict(want).items()}
    for k, w in want_flat.items():
        if k not in have_flat:
            raise CheckpointError(f"weights {path} do not fit the network: no {k}")
        a = np.asarray(have_flat[k])
        if a.shape != tuple(w.shape):
            raise CheckpointError(
                f"weights {path} do not fit the network (another architecture?): {k} has "
                f"shape {a.shape}, the network's is {tuple(w.shape)}"
            )
        if a.dtype.kind not in "fiu" or a.dtype.kind == "b":
            raise CheckpointError(f"weights {path}: {k} holds {a.dtype} values, not real numbers")
        if not np.all(np.isfinite(a)):
            raise CheckpointError(f"weights {path}: {k} holds NaN or infinite values")
    extra = sorted(have_flat.keys() - want_flat.keys())
    if extra:
        raise CheckpointError(f"weights {path} do not fit the network: {extra[0]} is not in it")


def load_weights(module: Module, path: str | os.PathLike, input_shape: Any = None) -> Any:
    """The weights of ``module`` read from ``path`` (Flax msgpack, ``save_weights``): a Linen
    module's ``params`` collection, or an NNX module's state (an ``nnx.State``). They are
    checked against the module's own parameter shapes at ``input_shape`` (inferred where
    ``None``): ``CheckpointError`` for a file that is not msgpack, weights of another
    architecture (naming the first parameter that differs), NaN or infinite values."""
    have = _restore(path)
    if isinstance(module, nnx.Module):
        want = weight_shapes(module, (1, 1, 1))  # its own state: no input needed
        _check_tree(path, have, want)
        state = _nnx_weights(module)
        nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, have))
        return state
    if input_shape is None:
        channels = first_conv_channels(have) or 1
        check_channels(channels)
        shape = next(
            ((s, s, channels) for s in SIDES if _runs_with_shapes(module, have, (s, s, channels))),
            (SIDES[0], SIDES[0], channels),
        )
    else:
        shape = checked_shape(input_shape)
    try:
        want = weight_shapes(module, shape)
    except Exception as e:
        raise ConfigError(
            f"{type(module).__name__} does not run on an input of shape {shape}: {_one_line(e)}"
        ) from e
    _check_tree(path, have, want)
    return jax.tree.map(lambda a: np.asarray(a, np.float32), have)


def _runs_with_shapes(module: nn.Module, have: Any, shape: tuple[int, int, int]) -> bool:
    """Whether ``module``'s parameters at ``shape`` have the shapes of ``have``."""
    try:
        want = weight_shapes(module, shape)
    except Exception:
        return False
    flat_want = traverse_util.flatten_dict(want)
    flat_have = traverse_util.flatten_dict(have) if isinstance(have, Mapping) else {}
    return all(
        k in flat_have and np.shape(flat_have[k]) == tuple(v.shape) for k, v in flat_want.items()
    )


def save_weights(path: str | os.PathLike, params: Any) -> None:
    """Write a network's weights to ``path`` as Flax msgpack, atomically (a reader sees the
    old file or the whole new one): a Linen module's ``params`` collection, or an NNX
    module's state (``nnx.state(module)``; its random-number state is left out)."""
    if isinstance(params, nnx.State):
        params = nnx.to_pure_dict(params.filter(nnx.Not(nnx.RngState)))
    tree = jax.tree.map(np.asarray, dict(params))
    data = serialization.msgpack_serialize(tree)
    atomic_write(path, lambda f: f.write(data), error=CheckpointError)


def load(
    spec: str,
    weights: str | os.PathLike | None = None,
    input_shape: Any = None,
    fresh: bool = True,
    preprocess: Callable | None = None,
) -> tuple[Module, Any, tuple[int, int, int]]:
    """``(module, params, input_shape)`` of the network ``spec`` (``load_network``) with the
    weights file ``weights``, checked (``check_input_shape``; and its own ``preprocess``,
    ``jaxdream.inputs.check_preprocess``) before any work: the command line's loading.
    Without ``weights``, an NNX module's params are its own state and a Linen module's fresh
    ones (one compiled ``init``), or ``None`` where ``fresh`` is false (only its shapes are
    wanted)."""
    module = load_network(spec)
    if input_shape is not None:
        input_shape = checked_shape(input_shape)
    if weights is None and not isinstance(module, nnx.Module):
        shape = check_input_shape(module, None, input_shape)
        if preprocess is not None:
            check_preprocess(preprocess, shape)
        if not fresh:
            return module, None, shape
        x = np.zeros((1, *shape), np.float32)
        params = jax.jit(module.init)(jax.random.key(0), x)["params"]  # one program
        return module, params, shape
    own = weights is None  # an NNX module's own state
    params = _nnx_weights(module) if own else load_weights(module, weights, input_shape)
    shape = check_input_shape(module, params, input_shape)
    if preprocess is not None:
        check_preprocess(preprocess, shape)
    return module, params, shape
