"""``jaxdream maps``: which map of a layer answers which digit (class), measured on MNIST or
another labelled TFDS data set of images."""

from __future__ import annotations

import argparse
import json

from jaxdream.cli._core import load_network_flags, network_flags


def register(sub, preset: str | None) -> None:
    p = sub.add_parser(
        "maps",
        help="which map of a layer answers which digit (a selectivity study on MNIST)",
        description="Measure each map's mean activation for the MNIST digits of each class and "
        "its selectivity index (its top class's mean over the others'), and name the map most "
        "selective for each digit: the article's map 56 of conv3, 'strongly triggered by "
        "handwritten 9s', is a different map in every training run. With --save, the tables "
        "of conv1-conv3 are stored beside the weights, for 'jaxdream info' and the model card. "
        "With --dataset, another labelled TFDS data set of images (prepared in the data folder: "
        "never downloaded) is read for a network of any input: its images resized to the "
        "network's input, gray repeated over RGB or RGB made gray, standardized.",
    )
    p.add_argument("--layer", default="conv3", help="the layer whose maps are measured")
    p.add_argument(
        "--dataset",
        default="mnist",
        help="a TFDS data set with 'image' and 'label' features (default: mnist)",
    )
    p.add_argument("--split", default="test", help="the data set's split, TFDS slicing allowed")
    p.add_argument("--data-dir", help="TFDS data folder (unset: $TFDS_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="the whole table, as JSON")
    p.add_argument(
        "--save",
        action="store_true",
        help="store the tables of conv1-conv3 beside the weights (NAME.maps.json; and in "
        "NAME.md, the model card, where there is one); MNIST and a jaxdream checkpoint only",
    )
    network_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxdream.data import DATASET
    from jaxdream.errors import ConfigError
    from jaxdream.maps import labelled_split, map_table, maps_card, write_beside
    from jaxdream.objectives import channel

    if args.save and (args.network is not None or args.dataset != DATASET):
        raise ConfigError(
            "--save stores the MNIST tables of a jaxdream checkpoint beside it: not with "
            "--network or --dataset"
        )
    network = load_network_flags(args)
    if args.save:
        path = write_beside(args.weights, args.data_dir, args.split)
        print(f"wrote {path}")
        return 0
    shapes = network.layer_shapes()
    if args.layer not in shapes:
        channel(args.layer, 0).validate(shapes)  # the error listing the layers
    data = labelled_split(args.dataset, args.split, args.data_dir)  # its errors before the work
    keywords = network.keywords()
    table = map_table(
        keywords["network"],
        keywords["params"],
        data.images,
        data.labels,
        args.layer,
        names=data.names,
    )
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
        return 0
    other = None if args.dataset == DATASET else f"{args.dataset} {args.split}"
    print(maps_card({args.layer: table}, layer=args.layer, data=other))
    return 0
