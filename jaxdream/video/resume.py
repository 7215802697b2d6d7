"""Resuming a render: its frames (numbered PNGs) and the dream's state kept as they are made
in the hidden folder ``.OUT.partial/`` beside the output ``OUT`` (``partial_folder``), so that
a render stopped by Ctrl-C, SIGTERM or a crash continues where it stopped.

The folder is made with the first frame kept, so a refused command leaves nothing; it is kept
on purpose until the output is whole (remove it to start afresh). A resumed render must have
the settings of the interrupted one (``settings.json``); a kept state is read as plain numeric
arrays only (never a pickle), and one that is damaged is named with what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from jaxdream import _files
from jaxdream._files import check_regular_file, check_writable
from jaxdream.video.common import VideoError

MAX_STATE_BYTES = 4 << 30  # a kept state (a working image, its carving or colours) is smaller


def iter_pngs(folder: Path) -> Iterator[np.ndarray]:
    """The numbered PNG frames of ``folder``, in order."""
    for p in sorted(folder.glob("frame_*.png")):
        with Image.open(p) as im:
            yield np.asarray(im.convert("RGB"))


def partial_folder(output: str | os.PathLike) -> Path:
    """Where an unfinished render keeps its frames: a hidden folder beside the output."""
    out = Path(str(output).rstrip("/" + os.sep))
    return out.parent / f".{out.name}.partial"


class Resumable:
    """The frames of a render kept as they are made (numbered PNGs in ``partial_folder``, and
    the dream's state where one carries), so that a render stopped by Ctrl-C, SIGTERM or a
    crash continues where it stopped (``resume``); ``finish()`` removes them once the output
    is whole. ``settings`` (JSON) must match the interrupted run's to resume it."""

    def __init__(self, output: str | os.PathLike, settings: dict, resume: bool):
        self.folder = partial_folder(output)
        self.settings = json.loads(json.dumps(settings))
        marker = self.folder / "settings.json"
        if self.folder.exists():
            if not resume:
                raise VideoError(
                    f"{self.folder} holds the frames of an unfinished render of {output}: add "
                    "--resume to continue it, or remove the folder"
                )
            try:
                with open(marker, "rb") as f:  # bounded: a settings file is small
                    saved = json.loads(f.read(1 << 20).decode())
            except (OSError, ValueError):
                saved = None
            if not isinstance(saved, dict):
                raise VideoError(
                    f"cannot resume {output}: {marker} is missing or damaged, so the settings "
                    f"of the unfinished render are unknown; remove {self.folder} to start again"
                )
            if saved != self.settings:
                changed = sorted(
                    k
                    for k in set(self.settings) | set(saved)
                    if saved.get(k) != self.settings.get(k)
                )
                raise VideoError(
                    f"cannot resume {output}: the unfinished render in {self.folder} was made "
                    f"with other settings ({', '.join(changed)})"
                )
        else:
            if resume:
                raise VideoError(f"nothing to resume: {self.folder} does not exist")
            check_writable(self.folder.parent / "x", VideoError)
        for stale in self.folder.glob("*.tmp"):  # what an interruption left half-written
            stale.unlink()

    def _make(self) -> None:
        """The folder and its settings, made with the first thing kept: a run refused or
        stopped before its first frame leaves nothing behind (and nothing to --resume)."""
        if (self.folder / "settings.json").exists():
            return
        try:
            self.folder.mkdir()
        except FileExistsError:
            raise VideoError(
                f"{self.folder} was made by another render of the same output: run one at a time"
            ) from None
        except OSError as e:
            raise VideoError(f"cannot make {self.folder}: {e.strerror}") from None
        text = json.dumps(self.settings, indent=1, sort_keys=True)
        _files.atomic_write(self.folder / "settings.json", lambda f: f.write(text.encode()))

    def done(self) -> int:
        """Frames kept, from frame 0 on without a gap, each whole: a kept frame that does not
        read back (truncated by a crash or a full disk) and those after it are made again."""
        n = 0
        while (self.folder / f"frame_{n:06d}.png").exists() and self._whole(n):
            n += 1
        return n

    def _whole(self, index: int) -> bool:
        try:
            with Image.open(self.folder / f"frame_{index:06d}.png") as im:
                im.load()  # every byte decoded: a truncated file fails here
            return True
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return False

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """The first ``count`` kept frames."""
        for k in range(count):
            with Image.open(self.folder / f"frame_{k:06d}.png") as im:
                yield np.asarray(im.convert("RGB") if im.mode != "L" else im)

    def times(self) -> dict[int, float]:
        """The kept frames' times (seconds), where ``keep`` was given them."""
        out: dict[int, float] = {}
        with contextlib.suppress(OSError):
            for line in (self.folder / "times.txt").read_text().splitlines():
                with contextlib.suppress(ValueError):
                    k, t = line.split()
                    out[int(k)] = float(t)
        return out

    def keep(
        self,
        index: int,
        frame: np.ndarray,
        time: float | None = None,
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Keep frame ``index`` (and its ``time``, where frames carry their own; and the
        ``state`` it carries into the next, kept before the frame and dropped only once the
        next frame is kept, so that ``state_at(done())`` is there after any interruption)."""
        self._make()
        if state is not None:
            self._save_npz(f"state_{index + 1:06d}.npz", state)
        tmp = self.folder / f"frame_{index:06d}.png.tmp"
        Image.fromarray(frame).save(tmp, format="PNG", compress_level=1)
        if time is not None:
            with open(self.folder / "times.txt", "a") as f:
                f.write(f"{index} {time!r}\n")
        os.replace(tmp, self.folder / f"frame_{index:06d}.png")
        if state is not None:
            with contextlib.suppress(OSError):
                (self.folder / f"state_{index:06d}.npz").unlink()

    def state_at(self, index: int, keys=()) -> dict[str, np.ndarray] | None:
        """The state kept for frame ``index`` to start from (see ``keep``), or ``None``;
        ``VideoError`` where it is damaged or lacks one of ``keys``."""
        return self._load_npz(f"state_{index:06d}.npz", keys)

    def _save_npz(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        self._make()
        tmp = self.folder / f"{name}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, self.folder / name)

    def _load_npz(self, name: str, keys=()) -> dict[str, np.ndarray] | None:
        """The arrays saved as ``name``, ``None`` where there is none, ``VideoError`` naming
        it where it is damaged: not a whole ``.npz`` of plain numeric arrays (never a pickle),
        or larger than a state can be."""
        path = self.folder / name
        if not path.exists():
            return None
        damaged = (
            f"{path} is damaged (a crash or a full disk, or written by hand): remove "
            f"{self.folder} to start the render again"
        )
        check_regular_file(path, MAX_STATE_BYTES, "a kept state", VideoError)
        try:
            with open(path, "rb") as f:  # this file object is closed whatever np.load does
                data = np.load(f, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):  # a bare array: not a state
                    raise VideoError(damaged)
                sizes = sum(i.file_size for i in data.zip.infolist())
                if sizes > MAX_STATE_BYTES:  # compressed: what it holds, not what it takes
                    raise VideoError(damaged)
                out = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            raise VideoError(damaged) from None
        if not all(a.dtype.kind in "biuf" for a in out.values()) or set(keys) - set(out):
            raise VideoError(damaged)
        return out

    def keep_state(self, state: Mapping[str, np.ndarray]) -> None:
        """The dream's state after frame ``state['next'] - 1`` (replaces the last one)."""
        self._save_npz("state.npz", state)

    def state(self) -> dict[str, np.ndarray] | None:
        return self._load_npz("state.npz")

    def finish(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
