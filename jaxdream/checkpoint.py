"""Checkpoints: flax msgpack (no pickle), written atomically, loaded with validation.

A checkpoint holds the model's architecture (as plain data: ``jaxdream.model.architecture_dict``;
format version 2, version 1 files, which held widths, hidden and num_classes only, still read),
its parameters and free-form metadata:

>>> import jax, tempfile, os
>>> from jaxdream.model import init_params
>>> model = CNN(widths=(4, 4, 4), hidden=8)
>>> params = init_params(model, jax.random.key(0))
>>> path = os.path.join(tempfile.mkdtemp(), "tiny.msgpack")
>>> save_checkpoint(path, model, params, {"seed": 0})
>>> model2, params2, meta = load_checkpoint(path)
>>> model2 == model, meta["seed"]
(True, 0)
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization, traverse_util

from jaxdream._files import atomic_write, check_regular_file
from jaxdream.errors import CheckpointError, ConfigError
from jaxdream.model import CNN, architecture_dict, model_from_architecture, param_shapes
from jaxdream.programs import Bounded

FORMAT = "jaxdream-cnn"
# 2: the whole architecture (``architecture_dict``); 1: widths, hidden and num_classes only
# (the bundled mnist_cnn.msgpack), the other fields the article network's.
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
BUNDLED_WEIGHTS = "mnist_cnn.msgpack"
# The networks shipped in jaxdream/weights/, by name (``load_model(name)``, ``--weights NAME``).
BUNDLED = {
    "mnist_cnn": "mnist_cnn.msgpack",
    "mnist_cnn56": "mnist_cnn56.msgpack",
}


def save_checkpoint(
    path: str | os.PathLike, model: CNN, params: Mapping, metadata: Mapping | None = None
) -> None:
    """Write ``model``'s architecture, ``params`` and ``metadata`` to ``path`` atomically."""
    state = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": architecture_dict(model),
        "params": jax.tree.map(np.asarray, dict(params)),
        "metadata": dict(metadata or {}),
    }
    data = serialization.msgpack_serialize(state)
    atomic_write(path, lambda f: f.write(data), error=CheckpointError)


MAX_CHECKPOINT_BYTES = 256 << 20  # the bundled one is 388 KB


def _read_state(path: Path) -> dict:
    check_regular_file(path, MAX_CHECKPOINT_BYTES, "a checkpoint", error=CheckpointError)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror}") from e
    try:
        state = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a jaxdream checkpoint ({type(e).__name__})"
        ) from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jaxdream checkpoint (no '{FORMAT}' header)")
    if state.get("version") not in READ_VERSIONS:
        raise CheckpointError(
            f"checkpoint {path} has format version {state.get('version')}, "
            f"this jaxdream reads versions {', '.join(map(str, READ_VERSIONS))}"
        )
    return state


def _plain(value: Any) -> Any:
    """msgpack's restored numbers and sequences as Python ones (ints, lists)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        return [int(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) and k.isdigit() for k in value):
        return [_plain(value[k]) for k in sorted(value, key=int)]  # a list flax stored as a dict
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _model_from_state(path: Path, spec: Any, version: int) -> CNN:
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"checkpoint {path} has no valid model description (no 'model')")
    spec = {k: _plain(v) for k, v in spec.items()}
    needed = ("widths", "hidden", "num_classes")
    if version >= 2:
        needed = tuple(k for k in architecture_dict(CNN()) if k != "pool_after")
    missing = [k for k in needed if k not in spec]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} has no valid model description: missing {', '.join(missing)}"
        )
    if version == 1 and len(spec["widths"]) != 3:
        raise CheckpointError(
            f"checkpoint {path} has no valid model description: a version 1 checkpoint holds 3 "
            f"widths, not {spec['widths']!r}"
        )
    try:
        return model_from_architecture(spec)
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path} has no valid model description: {e}") from None


def first_difference(
    want: Mapping[str, tuple[int, ...]], have: Mapping[str, tuple[int, ...]]
) -> str | None:
    """The first parameter, in the network's order (``param_shapes``), that is missing from
    ``have`` or has another shape there, with both shapes; ``None`` when none differs.

    >>> first_difference(param_shapes(CNN()), param_shapes(CNN(widths=(32, 64, 128))))
    'conv3/kernel: (3, 3, 64, 64) needed, (3, 3, 64, 128) given'
    """
    for name, shape in want.items():
        if name not in have:
            return f"{name}: {shape} needed, missing"
        if tuple(have[name]) != tuple(shape):
            return f"{name}: {shape} needed, {tuple(have[name])} given"
    extra = [k for k in have if k not in want]
    return f"{extra[0]}: not in the network" if extra else None


def validate_params(params: Any, model: CNN, source: str = "parameters") -> dict:
    """Check that ``params`` has exactly the layers and shapes ``model`` needs; return arrays.

    Raises ``CheckpointError`` naming ``source`` and every missing, extra or misshapen entry.
    """
    want = param_shapes(model)  # from the architecture: no flax trace
    if not isinstance(params, Mapping):
        raise CheckpointError(f"{source}: parameters are not a mapping of layers")
    have = {"/".join(k): v for k, v in traverse_util.flatten_dict(dict(params)).items()}
    differs = first_difference(want, {k: tuple(np.shape(v)) for k, v in have.items()})
    problems = [f"missing {k}" for k in sorted(want.keys() - have.keys())]
    problems += [f"unexpected {k}" for k in sorted(have.keys() - want.keys())]
    for k in sorted(want.keys() & have.keys()):
        shape = tuple(np.shape(have[k]))
        dtype = np.asarray(have[k]).dtype
        if dtype.kind == "b" or not (
            np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
        ):
            problems.append(f"{k} holds {dtype} values, not real numbers")
        elif shape != want[k]:
            problems.append(f"{k} has shape {shape}, the model needs {want[k]}")
        elif not np.all(np.isfinite(have[k])):
            problems.append(f"{k} holds NaN or infinite values")
    if problems:
        first = f" (the first parameter that differs: {differs})" if differs else ""
        raise CheckpointError(f"{source} does not fit the model{first}: " + "; ".join(problems))
    return jax.tree.map(lambda a: np.asarray(a, np.float32), dict(params))


class _Loaded(NamedTuple):
    """A checkpoint as read and validated once: its file's identity, the model it describes,
    its parameters (read-only arrays, shared by every caller) and its metadata."""

    identity: tuple
    model: CNN
    params: dict
    metadata: dict


# Checkpoints read in this process, by resolved path: a file is read again only when its
# identity (device, inode, size, modification time) changes. A handful of paths at most.
KEEP_LOADED = 8
_LOADED: Bounded = Bounded(KEEP_LOADED)


def _file_identity(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _read_only(params: dict) -> dict:
    def freeze(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a

    return jax.tree.map(freeze, params)


def _loaded(path: Path) -> _Loaded:
    """``path``'s checkpoint, read and validated once per process and per version of the
    file (``_LOADED``)."""
    key = path.resolve()
    identity = _file_identity(key)
    hit = _LOADED.get(key)
    if hit is not None and identity is not None and hit.identity == identity:
        return hit
    state = _read_state(path)
    stored = _model_from_state(path, state.get("model"), state["version"])
    params = validate_params(state.get("params"), stored, source=f"checkpoint {path}")
    loaded = _Loaded(identity, stored, _read_only(params), dict(state.get("metadata") or {}))
    # The identity is taken before the read: a file replaced while it was read is read again
    # on the next call, never served stale. No identity (a file that vanished): not kept.
    if identity is not None and identity == _file_identity(key):
        _LOADED.put(key, loaded)
    return loaded


def _with_model(path: Path, stored: CNN, model: CNN | None) -> CNN:
    if model is None:
        return stored
    if model.architecture != stored.architecture:
        differs = first_difference(param_shapes(model), param_shapes(stored))
        raise CheckpointError(
            f"checkpoint {path} holds {architecture_dict(stored)}, but "
            f"{architecture_dict(model)} was asked for"
            + (f" (the first parameter that differs: {differs})" if differs else "")
        )
    return model  # same architecture; keep the caller's compute choices


def load_checkpoint(path: str | os.PathLike, model: CNN | None = None) -> tuple[CNN, dict, dict]:
    """Read ``(model, params, metadata)`` from ``path``.

    With ``model`` given, the checkpoint must describe that same architecture. Any problem
    (missing or corrupt file, wrong layers or shapes) raises ``CheckpointError`` naming the file.
    The file is read and validated once per process and per version of it (its inode, size and
    modification time): each call returns its own dictionaries, of the same read-only arrays.
    """
    path = Path(path)
    loaded = _loaded(path)
    stored = _with_model(path, loaded.model, model)
    params = jax.tree.map(lambda a: a, loaded.params)
    return stored, params, copy.deepcopy(loaded.metadata)


def bundled_weights_path(name: str | None = None) -> Path:
    """Where the weights shipped inside the package lie: the default network's, or those
    named ``name`` (``BUNDLED``: ``"mnist_cnn"``, ``"mnist_cnn56"``).

    >>> bundled_weights_path("mnist_cnn56").name
    'mnist_cnn56.msgpack'
    """
    if name is not None and name not in BUNDLED:
        raise CheckpointError(
            f"no bundled network is named {name!r}; the bundled ones: {', '.join(BUNDLED)}"
        )
    file = BUNDLED_WEIGHTS if name is None else BUNDLED[name]
    return Path(str(resources.files("jaxdream") / "weights" / file))


def weights_path(weights: str | os.PathLike | None) -> Path:
    """A checkpoint given as a path or as a bundled network's name (``BUNDLED``); ``None``:
    the default bundled weights. A path that exists wins over a name.

    >>> weights_path("mnist_cnn56") == bundled_weights_path("mnist_cnn56")
    True
    """
    if weights is None:
        return bundled_weights_path()
    path = Path(weights)
    if isinstance(weights, str) and weights in BUNDLED and not path.exists():
        return bundled_weights_path(weights)
    return path


def bundled_sample_path() -> Path:
    """The public-domain sample photo that ``jaxdream dream`` uses with no input."""
    return Path(str(resources.files("jaxdream") / "assets" / "astronaut.jpg"))


def load_model(path: str | os.PathLike | None = None) -> tuple[CNN, dict]:
    """The trained MNIST CNN and its parameters: the bundled weights unless ``path`` is given,
    a checkpoint's path or a bundled network's name (``weights_path``).

    >>> model, params = load_model()
    >>> model.widths
    (32, 64, 64)
    >>> load_model("mnist_cnn56")[0].input_size
    (56, 56)
    """
    model, params, _ = load_checkpoint(weights_path(path))
    return model, params
