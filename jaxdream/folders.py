"""Dreams written to files, the library beneath ``jaxdream dream``.

One photo: its output names checked before any work (``check_dream_files``), its dream's
files written (``write_dream``: the image, a GIF of the iterations, the stage figure), and the
maps to suggest where the dream left the photo as it was (``unchanged_maps``).

Many photos: a run over photos and folders planned before any dreaming (``plan_folder_run``:
the photos found, their outputs named, the output folders made, this process's share, the
outputs of an earlier run skipped), then dreamed (``dream_folder_run``), each dream's files
written on a thread while the next batch dreams.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from jaxdream import distributed
from jaxdream._files import check_regular_file
from jaxdream.config import DreamConfig
from jaxdream.display import Display
from jaxdream.dreaming import DreamResult
from jaxdream.errors import ImageError, JaxdreamError
from jaxdream.exploring import DEAD_BELOW, responding_maps
from jaxdream.figures import stage_figure
from jaxdream.imageio import MAX_FILE_BYTES, check_output, save_gif, save_image
from jaxdream.many import PhotoDreams, dream_photos
from jaxdream.network import Network, network_argument
from jaxdream.photos import (
    OutputFolders,
    check_distinct,
    damaged_output,
    find_photos,
    output_paths,
)

Paths = dict[str, str | None]  # a photo's outputs: "output", "gif", "figure" (None: not written)

# --------------------------------------------------------------------------- one photo


def check_dream_files(
    source: str | os.PathLike,
    output: str | os.PathLike,
    gif: str | os.PathLike | None = None,
    figure: str | os.PathLike | None = None,
    color: bool = False,
) -> None:
    """Refuse, before any work, a photo that is not a regular file (a FIFO, a device, a loop)
    and output names that cannot be written or would overwrite the photo or one another: a
    bad ``gif`` must not cost the dream (``ImageError``)."""
    check_regular_file(source, MAX_FILE_BYTES)
    outputs = [out for out in (output, gif, figure) if out]
    check_output(output, "RGB" if color else "L")
    if gif:
        if Path(gif).suffix.lower() != ".gif":
            raise ImageError(f"an animation must be written as .gif, not {Path(gif).name}")
        check_output(gif, "L")
    if figure:
        check_output(figure, "RGB")
    check_distinct(source, outputs)


def write_dream(
    result: DreamResult,
    photo_rgb: np.ndarray,
    paths: Paths,
    display: Display,
    color: bool,
    size: str,
) -> list[str]:
    """Write a dream's outputs (``output``, and ``gif``/``figure`` where named), atomically;
    returns the files written."""
    save_image(paths["output"], result.to_uint8(display, color=color, size=size))
    frames = (
        [] if result.frames is None else [result.render(f, display, color) for f in result.frames]
    )
    if paths.get("gif"):
        save_gif(paths["gif"], [result.render(result.gray, display, color), *frames])
    if paths.get("figure"):
        save_image(paths["figure"], stage_figure(result, photo_rgb, display, color=color))
    return [p for p in (paths["output"], paths.get("gif"), paths.get("figure")) if p]


def unchanged_maps(
    result: DreamResult, config: DreamConfig, model: Network, params: Mapping
) -> list[int] | None:
    """``None`` where the dream changed the photo; where it left it as it was (no gradient),
    the maps of ``config.layer`` that respond to the photo (``explore.responding_maps``; none
    where the dream follows an objective)."""
    if config.steps == 0 or np.abs(result.image - result.gray).mean() >= DEAD_BELOW:
        return None
    if config.objective is not None:
        return []
    return responding_maps(result.gray, config.layer, model=model, params=params)


# --------------------------------------------------------------------------- many photos


@dataclasses.dataclass(frozen=True)
class FolderPlan:
    """A run over many photos, planned: ``jobs`` holds this process's photos to dream, each
    with its outputs (``photos.output_paths``); ``missing`` the inputs that do not exist or
    cannot be read, with why; ``skipped`` counts the photos whose outputs an earlier run left
    whole; ``redone`` the ``(photo, output, why)`` of damaged outputs, dreamed again."""

    folders: OutputFolders
    jobs: list[tuple[str, Paths]]
    missing: list[tuple[str, str]]
    skipped: int = 0
    redone: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


def plan_folder_run(
    inputs: Sequence[str | os.PathLike],
    folders: OutputFolders,
    *,
    recursive: bool = False,
    skip_existing: bool = False,
) -> FolderPlan:
    """Plan dreaming the photos and folders ``inputs`` into ``folders`` (checked by
    ``photos.plan_output_folders``): the photos found (``photos.find_photos``, the output
    folders not walked), their outputs named (``ImageError`` where one would overwrite a
    photo), then the output folders made, and this process's share of the photos taken
    (``distributed.share``). With ``skip_existing``, photos whose outputs are whole are left
    out (``photos.damaged_output``)."""
    exclude = [folder for folder, _ in folders.named()]
    found, missing = find_photos(inputs, recursive=recursive, exclude=exclude)
    names = output_paths(found, folders.output, folders.gif, folders.figure)
    jobs = list(zip(found, names, strict=True))
    folders.make()
    jobs = distributed.share(jobs)
    skipped, redone = 0, []
    if skip_existing:
        todo = []
        for photo, paths in jobs:
            why = {p: damaged_output(p) for p in paths.values() if p}
            if not any(why.values()):
                continue
            redone += [(photo, p, r) for p, r in why.items() if r and r != "it is missing"]
            todo.append((photo, paths))
        skipped, jobs = len(jobs) - len(todo), todo
    return FolderPlan(folders, jobs, missing, skipped, redone)


class FolderDreams:
    """The iterator ``dream_folder_run`` returns: ``(photo, error)`` for each photo of the
    plan as it is done, ``error`` ``None`` once its files are written, else what kept it from
    being dreamed or written. ``dreams`` is the ``many.PhotoDreams`` beneath (its working
    shapes and programs)."""

    def __init__(
        self,
        plan: FolderPlan,
        dreams: PhotoDreams,
        display: Display,
        color: bool,
        size: str,
    ):
        self.plan, self.dreams = plan, dreams
        self.display, self.color, self.size = display, color, size
        self._iterator = self._run()

    def __iter__(self) -> Iterator[tuple[str, JaxdreamError | None]]:
        return self

    def __next__(self) -> tuple[str, JaxdreamError | None]:
        return next(self._iterator)

    def close(self) -> None:
        """Stop early: no photo is dreamed further; a file being written is finished."""
        self._iterator.close()

    def _write(self, result: DreamResult, photo: str, paths: Paths):
        try:
            write_dream(result, result.photo, paths, self.display, self.color, self.size)
        except JaxdreamError as e:
            return photo, e
        return photo, None

    def _run(self) -> Iterator[tuple[str, JaxdreamError | None]]:
        # Outputs are encoded and written by a thread while the next batch dreams (the
        # compiled program and zlib both release the GIL).
        with ThreadPoolExecutor(max_workers=1) as writer:
            pending = []
            for outcome in self.dreams:
                photo, paths = self.plan.jobs[outcome.index]
                if outcome.error is not None:
                    yield photo, outcome.error
                else:
                    pending.append(writer.submit(self._write, outcome.result, photo, paths))
                while pending and pending[0].done():
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()


def dream_folder_run(
    plan: FolderPlan,
    config: DreamConfig = DreamConfig(),
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    batch_size: int | None = None,
    display: Display = Display(),
    color: bool = False,
    size: str = "photo",
    model: Network | None = None,
) -> FolderDreams:
    """Dream the photos of ``plan`` (``many.dream_photos``, as each batch finishes) and write
    each one's files (``write_dream``; a GIF and stage figure where the plan's folders have
    them): an iterator of ``(photo, error)``. Settings are checked here, before any work.
    ``network``, ``params``, ``input_shape`` and ``preprocess`` as for ``dream`` (``model``:
    ``network``'s old name)."""
    dreams = dream_photos(
        [photo for photo, _ in plan.jobs],
        config,
        network=network_argument(network, model),
        params=params,
        input_shape=input_shape,
        preprocess=preprocess,
        batch_size=batch_size,
        return_frames=bool(plan.folders.gif),
        return_stages=bool(plan.folders.figure),
        ordered=False,
    )
    return FolderDreams(plan, dreams, display, color, size)
