"""``jaxdream dream``: carve a map's patterns into a photo, or into every photo of folders
(batched over every device, several hosts with ``--distributed``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from jaxdream.cli._core import (
    check_distinct,
    describe,
    display,
    display_flags,
    distributed_flags,
    dream_config,
    dream_flags,
    folder_stage,
    load_weights,
    make_folder,
    plan_folder,
    preset_defaults,
    quiet_flag,
    stage_bar,
)
from jaxdream.errors import ImageError, JaxdreamError


def register(sub, preset: str | None) -> None:
    from jaxdream.presets import PRESETS

    preset, _ = preset_defaults(preset)
    p = sub.add_parser(
        "dream",
        help="carve a map's patterns into photos",
        description=f"Dream photos. Defaults shown are preset {preset!r}'s: "
        + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument(
        "input",
        nargs="*",
        help="photos or folders of photos (default: a bundled sample photo); with several, "
        "or a folder, -o names an output folder",
    )
    p.add_argument(
        "-o",
        "--output",
        default="dream.png",
        help="image to write, or the folder to write into (one PHOTO.png per photo)",
    )
    dream_flags(p, preset)
    display_flags(p)
    p.add_argument(
        "--gif", help="also write the iterations as an animated GIF (a folder for many photos)"
    )
    p.add_argument("--figure", help="also write a figure of the stages (a folder for many photos)")
    p.add_argument(
        "--output-size",
        choices=["photo", "enlarged", "working"],
        default="photo",
        help="photo: at the photo's size, the carving's change applied to the photo at its own "
        "resolution where it is larger than the working size (its detail kept); enlarged: "
        "the whole dream enlarged to the photo's size (the article's look); working: at the "
        "working size (--size)",
    )
    p.add_argument("--recursive", action="store_true", help="look for photos in subfolders")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="with an output folder: skip photos whose outputs exist (resume a run)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="photos dreamt at once (default: from the device's memory)",
    )
    distributed_flags(p)
    quiet_flag(p)
    p.set_defaults(func=run)


def folder_mode(args: argparse.Namespace) -> bool:
    """Several photos (or a folder) in, a folder out; one photo to one file otherwise."""
    inputs = args.input or []
    out = args.output
    return (
        len(inputs) > 1
        or any(os.path.isdir(p) for p in inputs)
        or os.path.isdir(out)
        or out.endswith(("/", os.sep))
    )


def write_dream(
    result, photo_rgb, paths: dict[str, str | None], display, color: bool, size: str
) -> list[str]:
    """Write a dream's outputs (``output``, and ``gif``/``figure`` where named), atomically;
    returns the files written."""

    from jaxdream.figures import stage_figure
    from jaxdream.imageio import save_gif, save_image

    save_image(paths["output"], result.to_uint8(display, color=color, size=size))
    frames = (
        [] if result.frames is None else [result.render(f, display, color) for f in result.frames]
    )
    if paths.get("gif"):
        save_gif(paths["gif"], [result.render(result.gray, display, color), *frames])
    if paths.get("figure"):
        save_image(paths["figure"], stage_figure(result, photo_rgb, display, color=color))
    return [p for p in (paths["output"], paths.get("gif"), paths.get("figure")) if p]


def warn_if_unchanged(result, config, model, params) -> None:
    """One line where the dream left the photo as it was (no gradient), naming maps that
    respond to it."""
    import numpy as np

    from jaxdream.exploring import DEAD_BELOW, responding_maps

    if config.steps == 0 or np.abs(result.image - result.gray).mean() >= DEAD_BELOW:
        return
    layer = config.layer if config.objective is None else None
    hint = ""
    if layer is not None:
        maps = responding_maps(result.gray, layer, model=model, params=params)
        hint = f"; maps of {layer} that respond to this photo: {maps}" if maps else ""
    print(
        f"warning: {describe(config)} gave no gradient on this photo: the dream is the photo "
        f"unchanged{hint}",
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    if folder_mode(args):
        return run_many(args)

    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.dreaming import dream
    from jaxdream.imageio import MAX_FILE_BYTES, check_output, load_photo

    source = args.input[0] if args.input else bundled_sample_path()
    check_regular_file(source, MAX_FILE_BYTES)  # a FIFO, a device, a loop: before anything
    outputs = [out for out in (args.output, args.gif, args.figure) if out]
    # Every output name is checked before any work (a bad --gif must not cost the dream).
    check_output(args.output, "RGB" if args.color else "L")
    if args.gif:
        if Path(args.gif).suffix.lower() != ".gif":
            raise ImageError(f"an animation must be written as .gif, not {Path(args.gif).name}")
        check_output(args.gif, "L")
    if args.figure:
        check_output(args.figure, "RGB")
    check_distinct(source, outputs)
    config = dream_config(args)
    if args.figure:
        from jaxdream.figures import check_stage_rows

        check_stage_rows(config.iterations, len(config.levels))
    shown = display(args)
    photo = load_photo(source)  # bad input fails here, before any progress output
    model, params = load_weights(args.weights)
    config.check(model)
    t0 = time.perf_counter()
    from jaxdream.progress import CALL_PER_ITERATION_FROM

    long = config.steps * config.tile_count() >= CALL_PER_ITERATION_FROM
    with stage_bar(config.iterations, args.quiet, "dreaming", report=long) as (bar, done):
        result = dream(
            photo,
            config,
            model=model,
            params=params,
            return_frames=bool(args.gif),
            return_stages=bool(args.figure),
            progress=done,
        )
        seconds = time.perf_counter() - t0
        bar.set_description("writing")
        paths = {"output": args.output, "gif": args.gif, "figure": args.figure}
        written = write_dream(result, photo.rgb, paths, shown, args.color, args.output_size)
    warn_if_unchanged(result, config, model, params)
    h, w = result.image.shape
    oh, ow = (h, w) if args.output_size == "working" else result.photo.shape[:2]
    print(
        f"dreamed {source} at {w}x{h} (written at {ow}x{oh}), {describe(config)}, "
        f"{config.tile_count()} tiles, {config.iterations} iterations x {config.steps} steps in "
        f"{seconds:.2f} s; wrote {', '.join(written)}"
    )
    return 0


def run_many(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from jaxdream import distributed, progress
    from jaxdream.checks import whole_number
    from jaxdream.many import (
        MAX_BATCH,
        damaged_output,
        dream_photos,
        find_photos,
        output_paths,
    )

    # Every output folder is checked before any work and made only once every check passed.
    folders = [
        (plan_folder(path, what), what)
        for path, what in ((args.output, "output"), (args.gif, "--gif"), (args.figure, "--figure"))
    ]
    (out_dir, _), (gif_dir, _), (figure_dir, _) = folders
    given = {os.path.realpath(p) for p in args.input or [] if os.path.isdir(p)}
    for folder, what in folders:
        if folder is not None and os.path.realpath(folder) in given:
            raise ImageError(
                f"{what} folder {folder} is an input folder: its dreams could overwrite an input "
                "photo, and a rerun would take them for photos; write into another folder (one "
                "inside it is fine)"
            )
    config = dream_config(args)
    if args.figure:
        from jaxdream.figures import check_stage_rows

        check_stage_rows(config.iterations, len(config.levels))
    shown = display(args)
    model, params = load_weights(args.weights)
    config.check(model)
    if args.batch_size is not None:
        whole_number("--batch-size", args.batch_size, 1, MAX_BATCH)
    found, missing = find_photos(
        args.input, recursive=args.recursive, exclude=[f for f, _ in folders if f]
    )
    jobs = list(zip(found, output_paths(found, out_dir, gif_dir, figure_dir), strict=True))
    for folder, what in folders:
        if folder is not None:
            make_folder(folder, what)
    jobs = distributed.share(jobs)
    skipped = 0
    if args.skip_existing:
        todo = []
        for job in jobs:
            why = {p: damaged_output(p) for p in job[1].values() if p}
            if not any(why.values()):
                continue
            for p, reason in why.items():
                if reason and reason != "it is missing":
                    print(f"jaxdream: redoing {job[0]}: {p} {reason}", file=sys.stderr)
            todo.append(job)
        skipped, jobs = len(jobs) - len(todo), todo
    for path, why in missing:
        print(f"jaxdream: skipped {path}: {why}", file=sys.stderr)
    failed, done = len(missing), 0
    t0 = time.perf_counter()
    run = dream_photos(
        [p for p, _ in jobs],
        config,
        model=model,
        params=params,
        batch_size=args.batch_size,
        return_frames=bool(gif_dir),
        return_stages=bool(figure_dir),
        ordered=False,
    )

    def report(path, error) -> None:
        nonlocal failed, done
        if error is None:
            done += 1
        else:
            failed += 1
            tqdm.write(f"jaxdream: skipped {path}: {error}", file=sys.stderr)
        bar.update()

    def write(result, path, paths):
        try:
            write_dream(result, result.photo, paths, shown, args.color, args.output_size)
        except JaxdreamError as e:
            return path, e
        return path, None

    # Outputs are encoded and written by a thread while the next batch dreams (the compiled
    # program and zlib both release the GIL).
    with (
        tqdm(
            total=len(jobs), disable=True if args.quiet else None, unit="photo", dynamic_ncols=True
        ) as bar,
        ThreadPoolExecutor(max_workers=1) as writer,
        progress.watching_compiles(folder_stage(bar)),
    ):
        pending = []
        for outcome in run:
            path, paths = jobs[outcome.index]
            if outcome.error is not None:
                report(path, outcome.error)
            else:
                pending.append(writer.submit(write, outcome.result, path, paths))
            while pending and pending[0].done():
                report(*pending.pop(0).result())
        for future in pending:
            report(*future.result())
    seconds = time.perf_counter() - t0
    share = distributed.describe()
    print(
        f"dreamed {done} photos{share} ({skipped} skipped as done, {failed} failed) in "
        f"{seconds:.1f} s, {describe(config)}, {len(run.shapes)} working shapes, "
        f"{run.compiled} programs ({run.new_programs - run.loaded_programs} compiled, "
        f"{run.loaded_programs} from the cache); wrote into {out_dir}"
    )
    return 1 if failed else 0
