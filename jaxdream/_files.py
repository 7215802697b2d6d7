"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from jaxdream.errors import ImageError, JaxdreamError


def check_writable(path: str | os.PathLike, error: type[JaxdreamError] = ImageError) -> Path:
    """Fail early, before any work, where ``path`` cannot be written: it is a directory, or its
    folder is missing or not writable (``error`` names which)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise error(f"{path} is a directory, not a file name")
    if not folder.is_dir():
        raise error(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise error(f"cannot write {path}: folder {folder} is not writable")
    return path


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, error: type[JaxdreamError] = ImageError
) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. A folder
    that does not exist or cannot be written raises ``error`` naming it.
    """
    path = check_writable(path, error)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], **kw) -> None:
    """Call ``write(file)`` on a temporary file and move it over ``path`` when it succeeds."""
    with atomic_open(path, **kw) as f:
        write(f)
