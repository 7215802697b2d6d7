"""JAX's persistent compilation cache, in a user cache folder: a new process loads the compiled
dream program from disk instead of compiling it again.

The CLI turns it on by default; ``JAXDREAM_CACHE_DIR`` moves it, ``JAXDREAM_NO_CACHE=1`` turns
it off. Library users opt in with ``enable_compilation_cache()``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from pathlib import Path

import jax
import jaxlib
from jax import export

from jaxdream._files import atomic_write
from jaxdream._version import __version__
from jaxdream.errors import ResourceError


def default_cache_dir() -> Path:
    """``$JAXDREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxdream/xla``, else
    ``~/.cache/jaxdream/xla``."""
    if os.environ.get("JAXDREAM_CACHE_DIR"):
        return Path(os.environ["JAXDREAM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxdream" / "xla"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Cache every compiled program (however quick to compile) under ``path``; returns the folder,
    or ``None`` when it cannot be created (the cache is an optimisation, never an error)."""
    folder = Path(path) if path is not None else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


# The programs this cache holds, as jaxdream compiled them into it: JAX tells a cache hit only
# once the program is loaded, so to say beforehand whether a program will be compiled or loaded
# (the progress bar's "compiling" stage), jaxdream notes each program it wrote. A wrong guess
# (an entry JAX pruned, another jaxdream version's entry) is told right once the load is done.
PROGRAMS_INDEX = "jaxdream-programs.txt"


def cache_dir() -> Path | None:
    """The persistent cache's folder, where one is turned on."""
    folder = jax.config.jax_compilation_cache_dir
    return Path(folder) if folder else None


def program_key(program_text: str) -> str:
    """A digest of a lowered program and of everything besides it that its compiled form
    depends on: JAX, jaxlib, the devices and the XLA flags."""

    devices = jax.devices()
    parts = [
        jax.__version__,
        getattr(jaxlib, "__version__", ""),
        devices[0].platform,
        devices[0].device_kind,
        str(len(devices)),
        os.environ.get("XLA_FLAGS", ""),
        program_text,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


MAX_INDEX_BYTES = 16 << 20  # an index larger than this (or not a regular file) is not read


def holds_program(key: str) -> bool:
    """Whether jaxdream wrote the program ``key`` into the cache turned on now. An index that
    is not a regular file (a link to an endless device), is over ``MAX_INDEX_BYTES`` or holds
    bytes that are not text counts as not holding it: only the guess is lost."""

    folder = cache_dir()
    if folder is None:
        return False
    try:  # non-blocking: a FIFO in its place does not hold the open
        fd = os.open(folder / PROGRAMS_INDEX, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_INDEX_BYTES + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    if len(data) > MAX_INDEX_BYTES:
        return False
    return key in data.decode("ascii", errors="replace").split()


def note_program(key: str) -> None:
    """Note that the program ``key`` is now in the cache (one appended line: safe beside other
    processes; a note that cannot be written only costs a wrong guess later)."""
    folder = cache_dir()
    if folder is None:
        return

    try:  # never blocks on a FIFO put in its place, never appends to anything but a file
        fd = os.open(
            folder / PROGRAMS_INDEX, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
        )
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.write(fd, (key + "\n").encode())
    except OSError:
        pass
    finally:
        os.close(fd)


# Exported programs: a dream's program as ``jax.export`` serializes it (StableHLO in a
# flatbuffer: no pickle, nothing executed on load), so that a new process skips tracing and
# lowering the dream; its compiled form then comes from the persistent compilation cache. Each
# file is named by a digest of everything that fixes the program (``exported_key``) and holds
# a header with the digest of its key and its contents, checked before the bytes are handed to
# ``jax.export.deserialize``: a whole file of another dream's program (copied, or renamed by
# hand) fails it as a damaged one does; a file that fails any check is ignored (and written
# anew).
EXPORTED_FOLDER = "exported"
EXPORTED_MAGIC = b"jaxdream-exported-v2\n"
MAX_EXPORTED_BYTES = 256 << 20


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """A digest of jaxdream's own modules: a program depends on the code that traced it."""

    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(__file__).parent.glob("**/*.py")):
        digest.update(path.relative_to(Path(__file__).parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def exported_key(description: str) -> str:
    """The file name of the program ``description`` (its static arguments and argument
    shapes, as text) traced by this jaxdream, for this JAX and jaxlib, on these devices and
    XLA flags."""
    return program_key(f"{source_digest()}\0{description}")


def _exported_path(key: str) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / EXPORTED_FOLDER / f"{key}.jaxexport"


def _entry_digest(key: str, payload: bytes) -> bytes:
    """What an entry's header holds: a digest of the key it is for and of its bytes."""
    return hashlib.sha256(key.encode() + b"\0" + payload).digest()


def load_exported(key: str):
    """The ``jax.export.Exported`` saved under ``key`` in the cache turned on now, or ``None``
    (no cache, no such file, or a file that is not whole: a wrong header or digest)."""

    path = _exported_path(key)
    if path is None:
        return None
    try:
        if not path.is_file() or path.stat().st_size > MAX_EXPORTED_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    head = len(EXPORTED_MAGIC)
    if data[:head] != EXPORTED_MAGIC or len(data) < head + 32:
        return None
    digest, payload = data[head : head + 32], data[head + 32 :]
    if _entry_digest(key, payload) != digest:
        return None
    try:
        return export.deserialize(bytearray(payload))
    except Exception:  # a flatbuffer that does not parse: treated as absent
        return None


def save_exported(key: str, exported) -> bool:
    """Save ``exported`` under ``key`` (atomically; a cache that cannot be written only costs
    a trace in the next process). Returns whether it was saved."""

    path = _exported_path(key)
    if path is None:
        return False
    try:
        payload = bytes(exported.serialize())
        path.parent.mkdir(parents=True, exist_ok=True)
        data = EXPORTED_MAGIC + _entry_digest(key, payload) + payload
        atomic_write(path, lambda f: f.write(data), error=ResourceError)
    except (OSError, ResourceError, ImportError, ValueError):
        return False
    return True
