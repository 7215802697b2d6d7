"""The photo files of a run and the files it writes, before any dreaming: the photos found in
folders (``find_photos``), each photo's output names (``output_paths``), the checks of output
names and folders made before any work (``check_distinct``, ``plan_folder``,
``plan_output_folders``), and whether an earlier run's output is whole (``damaged_output``).
Nothing here imports JAX.

>>> ".jpg" in image_suffixes() and ".png" in image_suffixes()
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from jaxdream._files import probe_folder
from jaxdream.errors import ImageError


def image_suffixes() -> frozenset[str]:
    """File name endings Pillow can read (``.jpg``, ``.png``, ``.tif``, ...)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


# --------------------------------------------------------------------------- finding photos


def find_photos(
    inputs: Sequence[str | os.PathLike],
    recursive: bool = False,
    exclude: Sequence[str | os.PathLike] = (),
) -> tuple[list[str], list[tuple[str, str]]]:
    """The photos named in ``inputs``: files as given, folders' image files sorted by name
    (hidden files and folders skipped; subfolders with ``recursive``; symlinked folders not
    followed). Folders in ``exclude`` (the run's output folders) are not walked: a rerun
    with its output folder inside an input folder does not take its own dreams for photos.
    Returns ``(found, problems)``, ``problems`` holding ``(path, why)`` for inputs that do not
    exist and folders that cannot be listed, with the system's reason."""
    suffixes = image_suffixes()
    skip = {os.path.realpath(p) for p in exclude if p}
    found: list[str] = []
    problems: list[tuple[str, str]] = []

    def listing(folder: str) -> tuple[list[str], list[str]]:
        files, folders = [], []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                        elif os.path.splitext(entry.name)[1].lower() in suffixes:
                            if entry.is_file():
                                files.append(entry.path)
                            elif not os.path.exists(entry.path):
                                problems.append((entry.path, "it is a broken link"))
                    except OSError as e:
                        problems.append((entry.path, f"cannot read it: {e.strerror}"))
        except OSError as e:
            problems.append((folder, f"cannot list the folder: {e.strerror}"))
        return files, folders

    def readable(paths: list[str]) -> list[str]:
        """The files that can be opened; the others reported with the system's reason (an
        unreadable photo would later read as 'corrupt')."""
        ok = []
        for p in paths:
            try:
                os.close(os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
            except OSError as e:
                problems.append((p, f"cannot read it: {e.strerror}"))
                continue
            ok.append(p)
        return ok

    for given in inputs:
        path = os.fspath(given)
        if os.path.isdir(path):
            pending, files = [path], []
            while pending:
                folder = pending.pop()
                if os.path.realpath(folder) in skip:
                    continue
                more, subfolders = listing(folder)
                files += more
                if recursive:
                    pending += subfolders
            found += readable(sorted(files))
        elif os.path.lexists(path):
            found += readable([path]) if os.path.isfile(path) else [path]
        else:
            problems.append((path, "it does not exist"))
    return found, problems


def output_paths(
    photos: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    gif: str | os.PathLike | None = None,
    figure: str | os.PathLike | None = None,
) -> list[dict[str, str | None]]:
    """Each photo's outputs in the folders ``output`` (``STEM.png``), ``gif`` (``STEM.gif``)
    and ``figure`` (``STEM-stages.png``): no two outputs of one run share a name, whichever
    photos they come from (``b-stages.png`` beside ``b.png`` with the figures in the output
    folder: the later photo's stem gets ``-2``, ``-3``, ...). The same photos give the same
    names, which ``--skip-existing`` and several processes rely on. An output that would be an
    input photo raises ``ImageError``.

    >>> [p["output"] for p in output_paths(["a/cat.jpg", "b/cat.png"], "out")]
    ['out/cat.png', 'out/cat-2.png']
    >>> [p["output"] for p in output_paths(["b.jpg", "b-stages.jpg"], "o", figure="o")]
    ['o/b.png', 'o/b-stages-2.png']
    """
    inputs = {os.path.realpath(p) for p in photos}
    taken: set[str] = set()
    jobs = []
    for photo in photos:
        stem = Path(photo).stem or "photo"
        k = 1
        while True:
            name = stem if k == 1 else f"{stem}-{k}"
            paths = {
                "output": os.path.join(output, f"{name}.png"),
                "gif": os.path.join(gif, f"{name}.gif") if gif else None,
                "figure": os.path.join(figure, f"{name}-stages.png") if figure else None,
            }
            keys = [os.path.realpath(p) for p in paths.values() if p]
            if not taken.intersection(keys) and len(set(keys)) == len(keys):
                break
            k += 1
        for p in paths.values():
            if p and os.path.realpath(p) in inputs:
                raise ImageError(f"{p} would overwrite an input photo: choose another folder")
        taken.update(keys)
        jobs.append(paths)
    return jobs


def damaged_output(path: str | os.PathLike) -> str | None:
    """Why the output ``path`` of an earlier run does not count as done (``None``: it does):
    it is missing, empty, or not a whole image (an interrupted copy, a file of another kind).
    ``--skip-existing`` redoes such outputs rather than counting them as done."""
    if not os.path.lexists(path):
        return "it is missing"
    try:
        if not os.path.isfile(path):
            return "it is not a file"
        if os.path.getsize(path) == 0:
            return "it is empty"
        with Image.open(path) as im:
            im.verify()  # the whole file: every chunk's checksum, for PNG
        with Image.open(path) as im:
            im.load()
    except OSError as e:
        return f"it cannot be read ({e.strerror})" if e.strerror else "it is not a whole image"
    except Exception:  # Pillow's decoders raise many types for damaged data
        return "it is not a whole image"
    return None


# --------------------------------------------------------------------------- output checks


def check_distinct(source: str | os.PathLike, outputs: Sequence[str]) -> None:
    """Refuse outputs that would overwrite the input or one another (nothing is lost to a slip
    such as ``jaxdream dream cat.jpg -o cat.jpg``)."""
    seen: dict[Path, str] = {}
    for out in outputs:
        key = Path(out).resolve()
        if key in seen:
            raise ImageError(f"{out} is named for two outputs ({seen[key]} and {out})")
        seen[key] = out
        if key == Path(source).resolve() or (
            Path(out).exists() and Path(source).exists() and os.path.samefile(out, source)
        ):
            raise ImageError(f"{out} is the input photo: choose another output name")


def plan_folder(path: str | os.PathLike | None, what: str) -> Path | None:
    """``path`` as an output folder, checked but not made: it is a folder that can be written
    (tried, not read off mode bits), or it can be made in a folder that can. ``what`` names it
    in errors (``output``, ``--gif``)."""
    if not path:
        return None
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ImageError(f"{what} {folder} must be a folder when several photos are dreamt")
    if not folder.exists() and folder.suffix.lower() in Image.registered_extensions():
        raise ImageError(
            f"{what} {folder} names an image file, but several photos (or a folder) are "
            "dreamt: give a folder to write into"
        )
    if not folder.exists():
        if not folder.parent.is_dir():
            raise ImageError(f"cannot make {what} folder {folder}: {folder.parent} does not exist")
        probe_folder(folder.parent, f"cannot make {what} folder {folder}")
        return folder
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"cannot write into {what} folder {folder}")
    probe_folder(folder, f"cannot write into {what} folder {folder}")
    return folder


def make_folder(folder: Path, what: str) -> None:
    """Make the output folder ``plan_folder`` checked (once every check has passed: nothing
    is made before a refusal)."""
    try:
        folder.mkdir(exist_ok=True)  # several processes may make it at once
    except OSError as e:
        raise ImageError(f"cannot make {what} folder {folder}: {e.strerror}") from None


def output_folder(path: str | os.PathLike | None, what: str) -> Path | None:
    """``path`` as an output folder: made if missing (its parent must exist), refused if it
    cannot be written, before any work."""
    folder = plan_folder(path, what)
    if folder is not None:
        make_folder(folder, what)
    return folder


@dataclasses.dataclass(frozen=True)
class OutputFolders:
    """The folders a run over many photos writes into: ``output`` (``STEM.png``), ``gif``
    (``STEM.gif``) and ``figure`` (``STEM-stages.png``), ``None`` where not written; ``names``
    says each in errors (the command line's: ``output``, ``--gif``, ``--figure``)."""

    output: Path | None
    gif: Path | None = None
    figure: Path | None = None
    names: tuple[str, str, str] = ("output", "gif", "figure")

    def named(self) -> list[tuple[Path, str]]:
        """``(folder, name)`` of each folder written."""
        folders = (self.output, self.gif, self.figure)
        return [(f, what) for f, what in zip(folders, self.names, strict=True) if f is not None]

    def make(self) -> None:
        """Make the folders that are missing (once every check has passed)."""
        for folder, what in self.named():
            make_folder(folder, what)


def plan_output_folders(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike | None,
    gif: str | os.PathLike | None = None,
    figure: str | os.PathLike | None = None,
    names: tuple[str, str, str] = ("output", "gif", "figure"),
) -> OutputFolders:
    """The output folders of a run over the photos and folders ``inputs``, checked before any
    work but not made (``plan_folder``; ``OutputFolders.make`` makes them). An output folder
    that is an input folder is refused: its dreams could overwrite an input photo, and a rerun
    would take them for photos (a folder inside an input folder is fine: the walk skips it)."""
    planned = [plan_folder(p, what) for p, what in zip((output, gif, figure), names, strict=True)]
    folders = OutputFolders(*planned, names=names)
    given = {os.path.realpath(p) for p in inputs or [] if os.path.isdir(p)}
    for folder, what in folders.named():
        if os.path.realpath(folder) in given:
            raise ImageError(
                f"{what} folder {folder} is an input folder: its dreams could overwrite an input "
                "photo, and a rerun would take them for photos; write into another folder (one "
                "inside it is fine)"
            )
    return folders


def is_folder_run(inputs: Sequence[str | os.PathLike], output: str) -> bool:
    """Whether a run dreams many photos into a folder: several inputs or a folder in, or an
    existing folder (or a name ending in ``/``) out; else one photo is dreamed into one file.

    >>> is_folder_run(["a.jpg"], "dream.png"), is_folder_run(["a.jpg", "b.jpg"], "out")
    (False, True)
    """
    return (
        len(inputs) > 1
        or any(os.path.isdir(p) for p in inputs)
        or os.path.isdir(output)
        or output.endswith(("/", os.sep))
    )
