"""``jaxdream maps``: which map of a layer answers which digit, measured on MNIST."""

from __future__ import annotations

import argparse
import json

from jaxdream.cli._core import load_weights, weights_flag


def register(sub, preset: str | None) -> None:
    p = sub.add_parser(
        "maps",
        help="which map of a layer answers which digit (a selectivity study on MNIST)",
        description="Measure each map's mean activation for the MNIST digits of each class and "
        "its selectivity index (its top class's mean over the others'), and name the map most "
        "selective for each digit: the article's map 56 of conv3, 'strongly triggered by "
        "handwritten 9s', is a different map in every training run. With --save, the tables "
        "of conv1-conv3 are stored beside the weights, for 'jaxdream info' and the model card.",
    )
    p.add_argument("--layer", default="conv3", help="the layer whose maps are measured")
    p.add_argument("--split", default="test", help="MNIST split, TFDS slicing allowed")
    p.add_argument("--data-dir", help="TFDS data folder (unset: $TFDS_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="the whole table, as JSON")
    p.add_argument(
        "--save",
        action="store_true",
        help="store the tables of conv1-conv3 beside the weights (NAME.maps.json; and in "
        "NAME.md, the model card, where there is one)",
    )
    weights_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxdream.maps import maps_card, mnist_map_table, write_beside

    model, params = load_weights(args.weights)
    if args.save:
        path = write_beside(args.weights, args.data_dir, args.split)
        print(f"wrote {path}")
        return 0
    from jaxdream.model import activation_shapes
    from jaxdream.objectives import channel

    shapes = activation_shapes(model)
    if args.layer not in shapes:
        channel(args.layer, 0).validate(shapes)  # the error listing the layers
    table = mnist_map_table(
        args.layer, args.split, model=model, params=params, data_dir=args.data_dir
    )
    if args.json:
        print(json.dumps(table.to_dict(), indent=1))
        return 0
    print(maps_card({args.layer: table}, layer=args.layer))
    return 0
