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
