"""``jaxdream oip``: the optimal input pattern of a map (or of every map of a layer), from
noise or from a photo."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from jaxdream.cli._core import (
    compute_flags,
    load_network_flags,
    network_flags,
    stage_bar,
)
from jaxdream.errors import ConfigError


def register(sub, preset: str | None) -> None:
    p = sub.add_parser("oip", help="the optimal input pattern of a map, from noise")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", default="pattern.png", help="image to write")
    p.add_argument("--layer", default="conv3", help="the layer whose map is maximised")
    p.add_argument("--map", default="56", help="a map index, or 'all' for a labelled grid")
    p.add_argument(
        "--objective",
        help="instead of --layer/--map: e.g. '0.7*conv3:56+0.3*conv3:12'"
        ", 'logit:7', 'conv2' (whole layer), 'mean_square:conv3', 'conv3:56:1:1'",
    )
    p.add_argument("--steps", type=int, default=30, help="ascent steps")
    p.add_argument("--epsilon", type=float, default=0.01, help="step size")
    p.add_argument("--conv-criterion", type=float, help="stop early (the article: 2e-4)")
    p.add_argument("--seed", type=int, default=0, help="of the start noise")
    p.add_argument("--amplitude", type=float, default=0.1, help="std of the start noise")
    p.add_argument("--start", help="start from this image instead of noise")
    p.add_argument("--scale", type=int, default=8, help="pixels per pattern pixel in the output")
    p.add_argument("--columns", type=int, default=8, help="patterns per row of the grid")
    compute_flags(p)
    network_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdream.checks import number, whole_number
    from jaxdream.display import to_uint8
    from jaxdream.figures import labelled_grid
    from jaxdream.imageio import check_output, load_photo, save_image
    from jaxdream.imageops import standardize
    from jaxdream.objectives import channel, parse_objective
    from jaxdream.patterns import dead as dead_starts
    from jaxdream.patterns import oip, oip_from_noise
    from jaxdream.photos import check_distinct

    check_output(args.output)
    if args.start:
        from jaxdream._files import check_regular_file
        from jaxdream.imageio import MAX_FILE_BYTES

        check_regular_file(args.start, MAX_FILE_BYTES)
        check_distinct(args.start, [args.output])  # oip --start a.png -o a.png
    whole_number("--seed", args.seed, -(2**63), 2**63 - 1)
    number("--amplitude", args.amplitude, 0, 1e6)
    whole_number("--scale", args.scale, 1, 64)
    whole_number("--columns", args.columns, 1, 1024)
    network = load_network_flags(args)
    params = network.params
    if network.user:  # --conv and --precision are the bundled CNN's compute choices
        chosen = {"network": network.network}
    else:
        conv = {} if args.conv == "auto" else {"conv": args.conv}
        chosen = {"network": dataclasses.replace(network.model, precision=args.precision, **conv)}
    side = tuple(chosen["network"].input_shape[:2])
    shapes = network.layer_shapes()
    if args.objective:
        objective, labels = parse_objective(args.objective), None
        objective.validate(shapes)
        n = 1
    elif args.map == "all":
        if args.layer not in shapes:
            channel(args.layer, 0).validate(shapes)  # raises the error listing the layers
        n = shapes[args.layer][-1]
        objective = channel(args.layer, jnp.arange(n))
        labels = [f"map {k}" for k in range(n)]
    else:
        try:
            k = int(args.map)
        except ValueError:
            raise ConfigError(f"--map takes a number or 'all', not {args.map!r}") from None
        objective, labels, n = channel(args.layer, k), None, 1
        if network.user:  # its layers, before any work (the bundled CNN's: as the OIP starts)
            objective.validate(shapes)
    t0 = time.perf_counter()
    options = dict(
        steps=args.steps, epsilon=args.epsilon, conv_criterion=args.conv_criterion, **chosen
    )
    restarted = 0
    doing = f"OIP of {n} image{'s' if n > 1 else ''}"
    with stage_bar(1, args.quiet, doing, unit="call", report=False):
        if args.start:
            from jaxdream.imageops import resize

            photo = load_photo(args.start)
            start = standardize(resize(jnp.asarray(photo.gray), side))
            out = oip(params, objective, jnp.broadcast_to(start, (n, *side)), **options)
            dead_mask = dead_starts(out)
        else:
            key = jax.random.key(args.seed)
            out, starts = oip_from_noise(
                params, objective, key, n, amplitude=args.amplitude, **options
            )
            dead_mask = dead_starts(out)
            restarted = int(np.sum((starts > 1) & ~dead_mask))
        out.images.block_until_ready()
    seconds = time.perf_counter() - t0
    losses = np.asarray(out.losses)
    final = losses[np.arange(n), np.maximum(np.asarray(out.steps_run) - 1, 0)]
    dead = [int(i) for i in np.flatnonzero(dead_mask)]
    pictures = [to_uint8(np.asarray(x)) for x in out.images]
    again = f"; {restarted} restarted from new noise after a dead start" if restarted else ""
    if labels is None:
        name = objective.name
        img = np.kron(pictures[0], np.ones((args.scale, args.scale), np.uint8))
        save_image(args.output, img)
        print(
            f"{name}: loss {losses[0, 0]:.4f} -> {final[0]:.4f} in {int(out.steps_run[0])} "
            f"steps ({seconds:.2f} s{again}); wrote {args.output}"
        )
    else:
        # Strongest first (the final objective value), as 'jaxdream explore' orders; dead last.
        order = sorted(range(n), key=lambda i: (i in dead, -final[i]))
        labels = [labels[i] + (" dead" if i in dead else "") for i in order]
        pictures = [pictures[i] for i in order]
        sheet = labelled_grid(pictures, labels, columns=args.columns, cell=28 * args.scale // 4)
        save_image(args.output, sheet)
        print(
            f"{n} maps of {args.layer} in one call ({seconds:.2f} s{again}), strongest first; "
            f"wrote {args.output}"
        )
    if dead:
        which = objective.name if labels is None else f"{len(dead)} of {n} maps ({dead})"
        print(
            f"warning: {which} stayed at loss 0 (a dead start: the map is zero everywhere and "
            "gives no gradient). Try another --seed, a larger --amplitude, or the layer's "
            "pre-activation ('_pre').",
            file=sys.stderr,
        )
    return 0


# --------------------------------------------------------------------------- dream
