"""The program store: every route into a compiled program (``dream``, ``dream_many``,
``dream_photos`` and the video that dreams through it, ``explore``, ``oip``, ``zoom``) gets it
here, and here it is traced, compiled, exported into and loaded from the persistent cache, and
kept for the process.

- ``compiled(jitted, args, dynamic)`` and ``run(...)``: a jitted function with its static
  arguments bound; JAX's own cache keeps its programs, unless ``jaxdream.progress`` listens,
  when it is compiled ahead and the listener told whether it was compiled or loaded.
- ``ahead(jitted, args, dynamic)``: compiled ahead for abstract arguments (``abstract``), for a
  caller that reads the program's memory analysis before running it (``dream_photos``).
- ``exported(name, jitted, args, dynamic)``: the program ``jax.export`` saved in the persistent
  cache (``jaxdream.cache``), exported there first where it is missing: a new process does not
  trace it again.
- ``compiled_count(fn)``: the programs this process made for a jitted function (tests use it
  to check that numbers never make a new program).

Whatever is kept is kept in a ``Bounded`` cache, the one type for anything that must stay
bounded (the checkpoints read, a dream's fixed arguments).

>>> import jax, numpy as np
>>> add = jax.jit(lambda x, y: x + y)
>>> before = compiled_count(add)
>>> float(run(add, (np.float32(1), np.float32(2)), (0, 1)))
3.0
>>> compiled_count(add) - before
1
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from jaxdream import cache
from jaxdream.parallel import run as run_interruptible
from jaxdream.progress import LISTENERS


class Bounded(dict):
    """A dict of at most ``keep`` entries: ``put`` drops the oldest entry to make room. Reads
    are the dict's own (``get``, ``in``, ``[]``): nothing is added to a lookup.

    >>> kept = Bounded(2)
    >>> for k in "abc":
    ...     _ = kept.put(k, k.upper())
    >>> sorted(kept)
    ['b', 'c']
    """

    def __init__(self, keep: int):
        super().__init__()
        self.keep = keep

    def put(self, key: Hashable, value: Any) -> Any:
        """Keep ``value`` under ``key`` (the oldest entry dropped where full); returns it."""
        if key not in self and len(self) >= self.keep:
            del self[next(iter(self))]
        self[key] = value
        return value


# Programs compiled ahead in this process, by signature: for ``watching_compiles``' listener
# (``compiled``) and for callers that read the memory analysis (``ahead``).
KEEP_WATCHED = 16
KEEP_AHEAD = 32
_WATCHED = Bounded(KEEP_WATCHED)
_AHEAD = Bounded(KEEP_AHEAD)

# The exported programs this process took from (or put into) the persistent cache, by their
# description; ``None`` for one that could not be exported (it is then traced as ever).
KEEP_EXPORTED = 32
_EXPORTED = Bounded(KEEP_EXPORTED)


# -- counts


_TRACES: dict[str, int] = {}
_CACHE_HITS = [0]


def _on_duration(event: str, seconds: float, **kwargs) -> None:
    if event == "/jax/core/compile/jaxpr_trace_duration":
        name = str(kwargs.get("fun_name", ""))
        _TRACES[name] = _TRACES.get(name, 0) + 1


def _on_event(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _CACHE_HITS[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_duration)
jax.monitoring.register_event_listener(_on_event)


def compiled_count(fn: Callable | str) -> int:
    """The programs made in this process (each traced once, then compiled or loaded from the
    persistent cache) for the jitted function ``fn`` (or its name), at the top level: a
    function jitted inside another's program is part of that program."""
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    return _TRACES.get(name, 0)


def cache_hits() -> int:
    """Programs loaded from JAX's persistent compilation cache in this process so far."""
    return _CACHE_HITS[0]


# -- compiled, told


def _signature(jitted, args: tuple, dynamic: tuple[int, ...]):
    static = tuple(a for i, a in enumerate(args) if i not in dynamic)
    leaves, treedef = jax.tree.flatten([args[i] for i in dynamic])
    shapes = tuple(
        (np.shape(a), str(getattr(a, "dtype", type(a))), getattr(a, "weak_type", False))
        for a in leaves
    )
    return id(jitted), static, treedef, shapes


def _merge(args: tuple, dynamic: tuple[int, ...], values: tuple) -> tuple:
    merged = list(args)
    for i, v in zip(dynamic, values, strict=True):
        merged[i] = v
    return tuple(merged)


def compiled(jitted, args: tuple, dynamic: tuple[int, ...]):
    """``jitted`` with ``args``' static arguments bound (``dynamic``: the positions of the
    others): a function of the dynamic arguments. Where ``jaxdream.progress.watching_compiles``
    listens, the program is compiled now, the listener told whether it was compiled or loaded
    from the persistent cache; a program this process compiled before is reused, and nothing
    is told."""
    if not LISTENERS:
        return lambda *values: jitted(*_merge(args, dynamic, values))
    signature = _signature(jitted, args, dynamic)
    program = _WATCHED.get(signature)
    if program is None:
        program = _WATCHED.put(signature, compile_lowered(jitted.lower(*args)))
    return program


def run(jitted, args: tuple, dynamic: tuple[int, ...]):
    """``jitted(*args)`` computed by ``jaxdream.parallel.run`` (interruptible), compiled as
    ``compiled`` says."""

    def go():
        fn = compiled(jitted, args, dynamic)
        return jax.block_until_ready(fn(*(args[i] for i in dynamic)))

    return run_interruptible(go)


def compile_lowered(lowered):
    """``lowered.compile()``, told to the innermost ``watching_compiles`` listener, if any:
    ``"loading"`` where jaxdream noted the program in the persistent cache, else
    ``"compiling"``, then what it was (JAX's cache-hit event) and how long it took."""
    if not LISTENERS:
        return lowered.compile()
    tell = LISTENERS[-1]
    key = cache.program_key(lowered.as_text())
    tell("loading" if cache.holds_program(key) else "compiling", None)
    hits, t0 = cache_hits(), time.perf_counter()
    program = lowered.compile()
    loaded = cache_hits() > hits
    if not loaded:
        cache.note_program(key)
    tell("loaded" if loaded else "compiled", time.perf_counter() - t0)
    return program


# -- compiled ahead, for abstract arguments


class Made(NamedTuple):
    """A program compiled ahead: whether it is ``new`` to this process, and whether it was
    then ``loaded`` from the persistent cache instead of compiled."""

    program: Any
    new: bool
    loaded: bool


def abstract(tree):
    """``tree`` with each leaf an abstract value of its shape and dtype (as JAX takes it)."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype), tree)


def ahead(jitted, args: tuple, dynamic: tuple[int, ...]) -> Made:
    """``jitted`` compiled for ``args`` (its dynamic ones abstract values, e.g. ``abstract``'s,
    with the shardings the program takes), kept for the process: a later call with the same
    static arguments and shapes compiles nothing."""
    signature = _signature(jitted, args, dynamic)
    program = _AHEAD.get(signature)
    if program is not None:
        return Made(program, False, False)
    hits = cache_hits()
    program = compile_lowered(jitted.lower(*args))
    loaded = cache_hits() > hits
    return Made(_AHEAD.put(signature, program), True, loaded)


# -- exported into the persistent cache


def _is_key(a) -> bool:
    return isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def _dtype(a) -> np.dtype:
    """The dtype JAX gives ``a`` as an argument (float64 becomes float32 without x64)."""
    return jax.dtypes.canonicalize_dtype(a.dtype if hasattr(a, "dtype") else np.result_type(a))


_STATIC_TEXT = Bounded(64)


def _static_text(static: tuple) -> str:
    """``repr`` of the static arguments, made once (a model's and a mesh's ``repr`` are slow)."""
    text = _STATIC_TEXT.get(static)
    if text is None:
        text = _STATIC_TEXT.put(static, repr(static))
    return text


def describe(name: str, args: tuple, dynamic: tuple[int, ...]) -> str:
    """Everything besides jaxdream's code, JAX and the devices that fixes the program ``name``
    of ``args``: its static arguments and the structure, shapes and dtypes of the others (key
    arrays by their shape and implementation)."""
    static = tuple(a for i, a in enumerate(args) if i not in dynamic)
    values = [args[i] for i in dynamic]
    keys = tuple((np.shape(a), str(jax.random.key_impl(a))) for a in values if _is_key(a))
    leaves, tree = jax.tree.flatten([a for a in values if not _is_key(a)])
    shapes = [(np.shape(a), _dtype(a).str) for a in leaves]
    # JAX settings that change what a trace produces
    settings = (jax.config.jax_enable_x64, jax.config.jax_default_matmul_precision)
    return repr((name, _static_text(static), str(tree), shapes, keys, settings))


def _fits(exported, avals) -> bool:
    """Whether a loaded program takes these arguments on this backend (its file name says so;
    this checks that the file says the same)."""
    have = [(tuple(a.shape), a.dtype) for a in exported.in_avals]
    want = [(tuple(a.shape), a.dtype) for a in avals]
    return have == want and jax.default_backend() in exported.platforms


def exported(name: str, jitted, args: tuple, dynamic: tuple[int, ...], mesh=None):
    """A jitted function of ``args``' dynamic arguments with ``jitted(*args)``'s results (the
    same bytes): the program ``jax.export`` saved in the persistent cache under a key of
    ``describe(name, args, dynamic)`` (``jaxdream.cache.load_exported``), exported and saved
    there first where it is missing or does not fit; a program of several devices runs over
    ``mesh``. ``None`` where no persistent cache is on or the program cannot be exported."""
    if cache.cache_dir() is None:
        return None
    description = describe(name, args, dynamic)
    if description in _EXPORTED:
        return _EXPORTED[description]
    try:
        program = _exported(jitted, args, dynamic, mesh, cache.exported_key(description))
    except Exception:  # an optimisation only: the program is traced as ever
        program = None
    return _EXPORTED.put(description, program)


def _exported(jitted, args: tuple, dynamic: tuple[int, ...], mesh, key: str):
    values = [args[i] for i in dynamic]
    impls = [jax.random.key_impl(a) if _is_key(a) else None for a in values]

    def plain(values):  # key arrays as their data: what an exported program takes
        pairs = zip(values, impls, strict=True)
        return [v if impl is None else jax.random.key_data(v) for v, impl in pairs]

    leaves, tree = jax.tree.flatten(plain(values))
    avals = [jax.ShapeDtypeStruct(np.shape(a), _dtype(a)) for a in leaves]

    saved = cache.load_exported(key)
    if saved is not None and not _fits(saved, avals):
        saved = None
    if saved is None:

        def flat(*leaves):
            data = jax.tree.unflatten(tree, leaves)
            values = [
                d if impl is None else jax.random.wrap_key_data(d, impl=impl)
                for d, impl in zip(data, impls, strict=True)
            ]
            return jitted(*_merge(args, dynamic, tuple(values)))

        saved = export.export(jax.jit(flat))(*avals)
        cache.save_exported(key, saved)

    shardings = None
    if saved.nr_devices > 1:
        if mesh is None or mesh.size != saved.nr_devices:
            return None
        shardings = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def program(*values):
        return saved.call(*jax.tree.leaves(plain(values)))

    return jax.jit(program, in_shardings=shardings)
