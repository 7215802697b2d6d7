"""``jaxdream explore``: one photo dreamt with many maps in one batched call, on a contact
sheet, strongest first."""

from __future__ import annotations

import argparse
import time

from jaxdream.cli._core import (
    dream_config,
    load_network_flags,
    network_flags,
    preset_defaults,
    stage_bar,
)


def register(sub, preset: str | None) -> None:
    from jaxdream.presets import PRESETS

    preset, d = preset_defaults(preset)
    p = sub.add_parser(
        "explore",
        help="one photo dreamt with many maps at once: a contact sheet, strongest first",
        description="Dream one photo with many maps of a layer in one batched call and write a "
        "labelled contact sheet, ordered by how strongly each map took hold (the mean absolute "
        "change, in the photo's standard deviations); maps that gave no gradient are marked "
        "dead. The way to choose a map for a photo.",
    )
    p.add_argument("input", nargs="?", help="photo (default: a bundled sample photo)")
    p.add_argument("-o", "--output", default="sheet.png", help="contact sheet to write")
    p.add_argument("--layer", default="conv2", help="the layer whose maps are tried")
    p.add_argument("--maps", default="all", help="'all', a range A-B or a list A,B,C")
    p.add_argument(
        "--preset", choices=list(PRESETS), default=preset, help="the other settings of the dreams"
    )
    p.add_argument("--size", type=int, nargs="+", default=[280], metavar="N", help="working size")
    p.add_argument("--iterations", type=int, default=d["iterations"], help="carving rounds")
    p.add_argument("--steps", type=int, default=d["steps"], help="OIP steps per round and tile")
    p.add_argument("--columns", type=int, default=8, help="dreams per row of the sheet")
    p.add_argument("--cell", type=int, default=200, help="pixels per dream on the sheet")
    p.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="in the photo's colours (unset: as the preset)",
    )
    network_flags(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    taken = ("size", "layer", "iterations", "steps")
    p.set_defaults(func=run, **{k: v for k, v in d.items() if k not in taken})


def run(args: argparse.Namespace) -> int:

    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.exploring import check_sheet, check_work, explore, parse_maps
    from jaxdream.figures import labelled_grid
    from jaxdream.imageio import MAX_FILE_BYTES, check_output, photo_shape, save_image
    from jaxdream.objectives import channel
    from jaxdream.photos import check_distinct
    from jaxdream.presets import PRESETS

    source = args.input or bundled_sample_path()
    check_regular_file(source, MAX_FILE_BYTES)
    check_output(args.output, "RGB")
    check_distinct(source, [args.output])  # explore a.png -o a.png
    config = dream_config(args)
    network = load_network_flags(args)
    shapes = network.layer_shapes()
    if args.layer not in shapes:
        channel(args.layer, 0).validate(shapes)  # the error listing the layers
    maps = parse_maps(args.maps, shapes[args.layer][-1])
    # The whole of the work and the sheet, before any of it: each map is a dream.
    shape = config.working_shape(photo_shape(source))
    check_work(len(maps), config, shape)
    check_sheet(len(maps), args.columns, args.cell, shape)
    color = args.color if args.color is not None else PRESETS[args.preset].color
    t0 = time.perf_counter()
    doing = f"dreaming {len(maps)} maps at once"
    with stage_bar(config.iterations, args.quiet, doing) as (_, done):
        ranked = explore(source, args.layer, maps, config, **network.keywords(), progress=done)
        seconds = time.perf_counter() - t0
    pictures = [e.result.to_uint8(color=color) for e in ranked]
    labels = [f"map {e.map} {e.strength:.2f}" + (" dead" if e.dead else "") for e in ranked]
    save_image(args.output, labelled_grid(pictures, labels, columns=args.columns, cell=args.cell))
    dead = [e.map for e in ranked if e.dead]
    best = ", ".join(str(e.map) for e in ranked[:5])
    print(
        f"{len(maps)} maps of {args.layer} on {source} in one call ({seconds:.2f} s); strongest "
        f"first: {best}{f'; dead: {dead}' if dead else ''}; wrote {args.output}"
    )
    return 0
