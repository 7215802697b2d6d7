"""JAX's persistent compilation cache, in a user cache folder: a new process loads the compiled
dream program from disk instead of compiling it again.

The CLI turns it on by default; ``JAXDREAM_CACHE_DIR`` moves it, ``JAXDREAM_NO_CACHE=1`` turns
it off. Library users opt in with ``enable_compilation_cache()``.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax


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
    import hashlib

    import jaxlib

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


def holds_program(key: str) -> bool:
    """Whether jaxdream wrote the program ``key`` into the cache turned on now."""
    folder = cache_dir()
    if folder is None:
        return False
    try:
        return key in (folder / PROGRAMS_INDEX).read_text().split()
    except OSError:
        return False


def note_program(key: str) -> None:
    """Note that the program ``key`` is now in the cache (one appended line: safe beside other
    processes; a note that cannot be written only costs a wrong guess later)."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        with open(folder / PROGRAMS_INDEX, "a") as f:
            f.write(key + "\n")
    except OSError:
        pass
