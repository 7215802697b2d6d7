"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one.

A file is written under a hidden temporary name beside it, ``.NAME.HOST-PID.XXXXXXXX.SUFFIX``,
and moved over ``NAME`` once whole. Stopped by Ctrl-C or SIGTERM, a run removes its temporary
files (and folders: ``register_partial``) itself; killed outright (SIGKILL, a power cut) it
cannot, and its temporary file stays until the next write of the same ``NAME`` on the same
host, which removes those whose process (the ``PID`` in their name) is no longer running. By
hand: ``rm .NAME.*`` beside the output, once no run writes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from jaxdream.errors import ImageError, JaxdreamError

# Temporary files being written now: removed by ``remove_partial_files`` when the process is
# stopped by a signal (an interrupted write must leave nothing behind).
_PARTIAL: set[str] = set()
_PARTIAL_LOCK = threading.Lock()


def remove_partial_files() -> None:
    """Remove every temporary file an ``atomic_open`` is still writing, and every folder
    registered with ``register_partial``."""
    with _PARTIAL_LOCK:
        for tmp in list(_PARTIAL):
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                _remove_tree(tmp)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        _PARTIAL.clear()


def _remove_tree(path: str, tries: int = 100) -> None:
    """A folder removed even where another thread is writing into it (a render's encoding
    thread, when a signal stops the render): first renamed, so that no file can be made under
    its name any more (such a thread's next write fails: its folder is missing), then removed,
    again while it is still there (a file being made as it was renamed lands in it)."""
    doomed = f"{path}.{os.getpid()}.removing"
    try:
        os.rename(path, doomed)
    except OSError:
        doomed = path
    for _ in range(tries):
        shutil.rmtree(doomed, ignore_errors=True)
        if not os.path.lexists(doomed):
            return
        time.sleep(0.002)


def register_partial(path: str | os.PathLike, partial: bool = True) -> None:
    """Note (or, ``partial=False``, forget) a file or folder being written, for
    ``remove_partial_files`` to remove when the process is stopped by a signal."""
    with _PARTIAL_LOCK:
        if partial:
            _PARTIAL.add(os.fspath(path))
        else:
            _PARTIAL.discard(os.fspath(path))


def _host() -> str:
    name = "".join(c for c in socket.gethostname() if c.isalnum() or c == "-")
    return name[:32] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike, suffix: str) -> list[Path]:
    """Remove the temporary files of earlier writes of ``path`` (``atomic_path``'s names) that
    their process, killed, could not: those of this host whose process is not running.
    Returns what was removed."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    head = f".{path.name}.{_host()}-"
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(head) and name.endswith(suffix)):
            continue
        pid_text = name[len(head) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def check_regular_file(
    path: str | os.PathLike, max_bytes: int, what: str = "an image", error=ImageError
) -> int:
    """Fail before reading where ``path`` is not a regular file of at most ``max_bytes``: a
    FIFO or a device (which would block or never end), a folder, a symlink loop, a name the
    file system refuses. Returns the size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path} does not exist") from None
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path} is a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path} is not a regular file (a pipe, device or socket), not {what}")
    if st.st_size > max_bytes:
        raise error(
            f"{path} is {st.st_size:,} bytes: more than {what} may be ({max_bytes:,} bytes)"
        )
    try:  # the true reason where it cannot be read (else it would read as corrupt)
        os.close(os.open(path, os.O_RDONLY))
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror}") from None
    return st.st_size


def check_writable(path: str | os.PathLike, error: type[JaxdreamError] = ImageError) -> Path:
    """Fail early, before any work, where ``path`` cannot be written: it is a directory, or its
    folder is missing or not writable (``error`` names which)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if path.is_dir():
            raise error(f"{path} is a directory, not a file name")
        if not folder.is_dir():
            raise error(f"cannot write {path}: folder {folder} does not exist")
    except OSError as e:  # a name too long, a loop of links
        raise error(f"cannot write {path}: {e.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise error(f"cannot write {path}: folder {folder} is not writable")
    probe_folder(folder, f"cannot write {path}", error)
    return path


def probe_folder(
    folder: str | os.PathLike, doing: str, error: type[JaxdreamError] = ImageError
) -> None:
    """Make and remove a hidden file in ``folder``: the kernel's word on whether it can be
    written, where mode bits say yes and it says no (``/proc``, a read-only mount, root's
    ``os.access``). Nothing is left behind."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".jaxdream-probe.", dir=folder)
    except OSError as e:
        raise error(f"{doing}: folder {folder} cannot be written ({e.strerror})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, error: type[JaxdreamError] = ImageError, suffix: str = ".tmp"
) -> Iterator[Path]:
    """A temporary file's path beside ``path`` for a writer that needs a name (FFmpeg); on
    success the file replaces ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was; so is it
    when the process is stopped by a signal (``remove_partial_files``). A folder that does not
    exist or cannot be written, or a write that fails (a full disk), raises ``error`` naming
    ``path``. ``suffix`` ends the temporary name (a writer may choose its format by it).
    """
    path = check_writable(path, error)
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale_temporaries(path, suffix)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=suffix, dir=folder
        )
    except OSError as e:
        raise error(f"cannot write {path}: {e.strerror}") from e
    os.close(fd)
    with _PARTIAL_LOCK:
        _PARTIAL.add(tmp)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a file-size limit: one line, nothing left
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise error(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _PARTIAL_LOCK:
            _PARTIAL.discard(tmp)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, error: type[JaxdreamError] = ImageError
) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``
    (``atomic_path``: removed on any exception or signal, ``path`` left as it was)."""
    with atomic_path(path, error) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], **kw) -> None:
    """Call ``write(file)`` on a temporary file and move it over ``path`` when it succeeds."""
    with atomic_open(path, **kw) as f:
        write(f)
