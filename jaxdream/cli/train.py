"""``jaxdream train``: train the MNIST CNN on MNIST from TFDS; write a checkpoint and its
model card."""

from __future__ import annotations

import argparse
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
    p.add_argument(
        "--widths", type=int, nargs=3, default=[32, 64, 64], metavar="N", help="conv widths"
    )
    p.add_argument("--hidden", type=int, default=70, help="width of the dense layer")
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


def run(args: argparse.Namespace) -> int:
    from jaxdream._files import atomic_write, check_writable
    from jaxdream.checkpoint import save_checkpoint
    from jaxdream.data import load_split
    from jaxdream.errors import CheckpointError
    from jaxdream.maps import TABLE_LAYERS, map_table, save_beside
    from jaxdream.model import param_count
    from jaxdream.train import TrainConfig, model_card, train_and_evaluate

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_epochs=args.warmup_epochs,
        weight_decay=args.weight_decay,
        seed=args.seed,
        widths=tuple(args.widths),
        hidden=args.hidden,
        conv=args.conv,
    )
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
    )
    metadata = {
        "test_accuracy": result.test_accuracy,
        "test_loss": result.history[-1].test_loss,
        "train_config": {
            k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()
        },
        "command": command,
        "versions": versions(),
    }
    save_checkpoint(out, result.model, result.params, metadata)
    # Which map answers which digit, on the test split (jaxdream.maps): for the card and info.
    tables = {
        name: map_table(result.model, result.params, test.images, test.labels, name)
        for name in TABLE_LAYERS
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
