"""Finding the photos of a run and naming their outputs (the command line's folder mode).

>>> output_names(["a/cat.jpg", "b/cat.png", "dog.jpg", "a/cat.webp"])
['cat', 'cat-2', 'dog', 'cat-3']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image


def image_suffixes() -> frozenset[str]:
    """File name endings Pillow can read (``.jpg``, ``.png``, ``.tif``, ...)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def find_photos(
    inputs: Sequence[str | os.PathLike], recursive: bool = False
) -> tuple[list[str], list[tuple[str, str]]]:
    """The photos named in ``inputs``: files as given, folders' image files sorted by name
    (hidden files skipped; subfolders with ``recursive``). Returns ``(found, missing)``,
    ``missing`` holding ``(path, why)`` for inputs that do not exist."""
    suffixes = image_suffixes()
    found: list[str] = []
    missing: list[tuple[str, str]] = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files = path.rglob("*") if recursive else path.iterdir()
            found += sorted(
                str(f)
                for f in files
                if f.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and f.is_file()
            )
        elif path.exists():
            found.append(str(path))
        else:
            missing.append((str(path), "it does not exist"))
    return found, missing


def output_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Each photo's output name: its stem, with ``-2``, ``-3``, ... for later photos of the
    same stem, so that no two outputs overwrite each other (the same list gives the same names,
    which ``--skip-existing`` and several processes rely on)."""
    seen: dict[str, int] = {}
    taken: set[str] = set()
    names = []
    for p in paths:
        stem = Path(p).stem or "photo"
        name = stem
        while name in taken:
            seen[stem] = seen.get(stem, 1) + 1
            name = f"{stem}-{seen[stem]}"
        taken.add(name)
        names.append(name)
    return names
