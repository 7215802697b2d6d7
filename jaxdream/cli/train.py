"""``jaxdream train``: train the MNIST CNN (the bundled architecture, or one given by flags or an
``--arch FILE.json``) on MNIST from TFDS; write a checkpoint and its model card."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from jaxdream.cli._core import versions


def register(sub, preset: str | None) -> None:
    p = sub.add_parser("train", help="train the MNIST CNN (needs MNIST via TFDS)")
    p.add_argument("-o", "--output", default="mnist_cnn.msgpack", help="checkpoint to write")
    p.add_argument("--epochs", type=int, default=12, help="passes over the training split")
    p.add_argument("--batch-size", type=int, default=128, help="images per training step")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW's peak rate")
    p.add_argument(
        "--warmup-epochs", type=float, default=0.5, help="linear warm-up before cosine decay"
    )
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW's weight decay")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling")
    arch = p.add_argument_group(
        "architecture", "unset: the bundled network's, or the --arch file's where one is given"
    )
    arch.add_argument(
        "--arch",
        metavar="FILE.json",
        help="the architecture as JSON: widths, hidden, num_classes, padding, input_size, "
        "channels, pool_after (fields left out: the bundled network's; flags override it)",
    )
    arch.add_argument(
        "--widths", type=int, nargs="+", metavar="N", help="conv widths, one per 3x3 convolution"
    )
    arch.add_argument("--hidden", type=int, help="width of the dense layer (70)")
    arch.add_argument("--padding", choices=["valid", "same"], help="of the convolutions (valid)")
    arch.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="input image size; the 28x28 digits are resized to it (28 28)",
    )
    arch.add_argument(
        "--channels", type=int, choices=[1, 3], help="input channels, the gray digit repeated (1)"
    )
    arch.add_argument(
        "--pool-after",
        type=int,
        nargs="*",
        metavar="I",
        help="the convolutions (from 1) a 2x2 max-pool follows; none given: no pooling "
        "(unset: after every convolution but the last)",
    )
    p.add_argument(
        "--conv",
        default="im2col",
        choices=["im2col", "fast", "xla"],
        help="convolution implementation used in training",
    )
    p.add_argument("--train-split", default="train", help="TFDS split, e.g. 'train[:5000]'")
    p.add_argument("--test-split", default="test", help="TFDS split to evaluate on")
    p.add_argument("--data-dir", help="TFDS data folder (unset: $TFDS_DATA_DIR)")
    p.add_argument(
        "--download",
        action="store_true",
        help="download and prepare MNIST if missing (needs the 'train' extra)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


ARCH_FLAGS = ("widths", "hidden", "padding", "input_size", "channels", "pool_after")


def architecture(args: argparse.Namespace) -> dict:
    """The architecture fields of a run: the ``--arch`` file's, overridden by the flags given."""
    import json

    from jaxdream.errors import ConfigError
    from jaxdream.model import architecture_dict, model_from_architecture

    spec: dict = {}
    if args.arch:
        try:
            spec = json.loads(Path(args.arch).read_text())
        except OSError as e:
            raise ConfigError(f"cannot read the architecture {args.arch}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"the architecture {args.arch} is not JSON: {e}") from None
        if not isinstance(spec, dict):
            raise ConfigError(f"the architecture {args.arch} is not a JSON object of fields")
    spec.update({k: getattr(args, k) for k in ARCH_FLAGS if getattr(args, k) is not None})
    model = model_from_architecture(spec)  # checks it: unknown fields, sizes, padding
    return architecture_dict(model)


def run(args: argparse.Namespace) -> int:
    from jaxdream._files import atomic_write, check_writable
    from jaxdream.checkpoint import save_checkpoint
    from jaxdream.data import load_split
    from jaxdream.errors import CheckpointError
    from jaxdream.maps import map_table, save_beside, table_layers
    from jaxdream.model import param_count
    from jaxdream.train import TrainConfig, model_card, train_and_evaluate

    arch = architecture(args)
    if arch.get("num_classes", 10) != 10:
        from jaxdream.errors import ConfigError

        raise ConfigError(f"MNIST has 10 classes, the architecture {arch['num_classes']}")
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        seed=args.seed,
        widths=tuple(arch["widths"]),
        hidden=arch["hidden"],
        conv=args.conv,
        padding=arch["padding"],
        input_size=tuple(arch["input_size"]),
        channels=arch["channels"],
        pool_after=tuple(arch["pool_after"]),
    )
    if config.model().pools == config.model().clone(pool_after=None).pools:
        config = dataclasses.replace(config, pool_after=None)  # the default layout: as before
    config.check()
    out = Path(args.output)
    # before minutes of training, not after
    for path in (out, out.with_suffix(".md"), out.with_suffix(".maps.json")):
        check_writable(path, error=CheckpointError)
    start = time.perf_counter()
    train = load_split(args.train_split, args.data_dir, args.download)
    test = load_split(args.test_split, args.data_dir, args.download)
    print(f"MNIST: {len(train.labels)} training and {len(test.labels)} test images")
    result = train_and_evaluate(config, train, test, progress=not args.quiet)
    seconds = time.perf_counter() - start
    command = "jaxdream train " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in sorted(vars(config).items())
        if v is not None
    )
    for flag, split, default in (
        ("--train-split", args.train_split, "train"),
        ("--test-split", args.test_split, "test"),
    ):
        if split != default:
            command += f" {flag} '{split}'"
    metadata = {
        "test_accuracy": result.test_accuracy,
        "test_loss": result.history[-1].test_loss,
        "train_config": {
            k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()
        },
        "command": command,
        "versions": versions(),
        "data": {
            "train_split": args.train_split,
            "train_images": len(train.labels),
            "test_split": args.test_split,
            "test_images": len(test.labels),
        },
    }
    save_checkpoint(out, result.model, result.params, metadata)
    # Which map answers which digit, on the test split (jaxdream.maps): for the card and info.
    tables = {
        name: map_table(result.model, result.params, test.images, test.labels, name)
        for name in table_layers(result.model)
    }
    card = out.with_suffix(".md")
    text = model_card(result, metadata, param_count(result.params), tables).encode()
    atomic_write(card, lambda f: f.write(text), error=CheckpointError)
    save_beside(out, tables, args.test_split)
    print(
        f"test accuracy {result.test_accuracy:.2%} after {config.epochs} epochs, "
        f"{seconds:.0f} s in all; wrote {out} and {card}"
    )
    return 0


# --------------------------------------------------------------------------- info
