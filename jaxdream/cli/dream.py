"""``jaxdream dream``: carve a map's patterns into a photo, or into every photo of folders
(batched over every device, several hosts with ``--distributed``). The work is the library's
(``jaxdream.folders``, ``jaxdream.photos``); this module reads the flags and reports."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from jaxdream.cli._core import (
    describe,
    display,
    display_flags,
    distributed_flags,
    dream_config,
    dream_flags,
    folder_stage,
    load_network_flags,
    preset_defaults,
    quiet_flag,
    stage_bar,
)
from jaxdream.presets import PRESETS


def register(sub, preset: str | None) -> None:
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


def run(args: argparse.Namespace) -> int:
    # The library is imported by the run functions, not at the top: jaxdream.folders imports
    # JAX (1 s measured on this CPU), which --help must not (tests/test_cli.py).
    from jaxdream.photos import is_folder_run

    if is_folder_run(args.input or [], args.output):
        return run_many(args)

    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.dreaming import dream
    from jaxdream.figures import check_stage_rows
    from jaxdream.folders import check_dream_files, unchanged_maps, write_dream
    from jaxdream.imageio import load_photo
    from jaxdream.progress import CALL_PER_ITERATION_FROM

    source = args.input[0] if args.input else bundled_sample_path()
    check_dream_files(source, args.output, args.gif, args.figure, color=args.color)
    config = dream_config(args)
    if args.figure:
        check_stage_rows(config.iterations, len(config.levels))
    shown = display(args)
    photo = load_photo(source)  # bad input fails here, before any progress output
    network = load_network_flags(args)
    network.check(config)
    t0 = time.perf_counter()
    long = config.steps * config.tile_count() >= CALL_PER_ITERATION_FROM
    with stage_bar(config.iterations, args.quiet, "dreaming", report=long) as (bar, done):
        result = dream(
            photo,
            config,
            **network.keywords(),
            return_frames=bool(args.gif),
            return_stages=bool(args.figure),
            progress=done,
        )
        seconds = time.perf_counter() - t0
        bar.set_description("writing")
        paths = {"output": args.output, "gif": args.gif, "figure": args.figure}
        written = write_dream(result, photo.rgb, paths, shown, args.color, args.output_size)
    # Which maps respond to the photo: asked of the bundled CNN only.
    maps = None if network.user else unchanged_maps(result, config, network.model, network.params)
    if maps is not None:
        hint = f"; maps of {config.layer} that respond to this photo: {maps}" if maps else ""
        print(
            f"warning: {describe(config)} gave no gradient on this photo: the dream is the "
            f"photo unchanged{hint}",
            file=sys.stderr,
        )
    h, w = result.image.shape[:2]
    oh, ow = (h, w) if args.output_size == "working" else result.photo.shape[:2]
    print(
        f"dreamed {source} at {w}x{h} (written at {ow}x{oh}), {describe(config)}, "
        f"{config.tile_count()} tiles, {config.iterations} iterations x {config.steps} steps in "
        f"{seconds:.2f} s; wrote {', '.join(written)}"
    )
    return 0


def run_many(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from jaxdream import distributed, progress
    from jaxdream.checks import whole_number
    from jaxdream.figures import check_stage_rows
    from jaxdream.folders import dream_folder_run, plan_folder_run
    from jaxdream.many import MAX_BATCH
    from jaxdream.photos import plan_output_folders

    # Every output folder is checked before any work and made only once every check passed.
    folders = plan_output_folders(
        args.input, args.output, args.gif, args.figure, names=("output", "--gif", "--figure")
    )
    config = dream_config(args)
    if args.figure:
        check_stage_rows(config.iterations, len(config.levels))
    shown = display(args)
    network = load_network_flags(args)
    network.check(config)
    if args.batch_size is not None:
        whole_number("--batch-size", args.batch_size, 1, MAX_BATCH)
    plan = plan_folder_run(
        args.input, folders, recursive=args.recursive, skip_existing=args.skip_existing
    )
    for photo, path, why in plan.redone:
        print(f"jaxdream: redoing {photo}: {path} {why}", file=sys.stderr)
    for path, why in plan.missing:
        print(f"jaxdream: skipped {path}: {why}", file=sys.stderr)
    failed, done = len(plan.missing), 0
    t0 = time.perf_counter()
    run = dream_folder_run(
        plan,
        config,
        **network.keywords(),
        batch_size=args.batch_size,
        display=shown,
        color=args.color,
        size=args.output_size,
    )
    with (
        tqdm(
            total=len(plan.jobs),
            disable=True if args.quiet else None,
            unit="photo",
            dynamic_ncols=True,
        ) as bar,
        contextlib.closing(run),
        progress.watching_compiles(folder_stage(bar)),
    ):
        for path, error in run:
            if error is None:
                done += 1
            else:
                failed += 1
                tqdm.write(f"jaxdream: skipped {path}: {error}", file=sys.stderr)
            bar.update()
    seconds = time.perf_counter() - t0
    share = distributed.describe()
    dreams = run.dreams
    print(
        f"dreamed {done} photos{share} ({plan.skipped} skipped as done, {failed} failed) in "
        f"{seconds:.1f} s, {describe(config)}, {len(dreams.shapes)} working shapes, "
        f"{dreams.compiled} programs ({dreams.new_programs - dreams.loaded_programs} compiled, "
        f"{dreams.loaded_programs} from the cache); wrote into {folders.output}"
    )
    return 1 if failed else 0
