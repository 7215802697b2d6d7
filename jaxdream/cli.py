"""The ``jaxdream`` command line: a thin layer of flags over the library.

Errors the user can fix (files, names, settings) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from jaxdream.errors import ConfigError, ImageError, JaxdreamError

DEFAULT_WEIGHTS_NOTE = "the weights bundled with jaxdream"


def _versions() -> dict[str, str]:
    import flax
    import jax
    import numpy
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": numpy.__version__,
    }


# --------------------------------------------------------------------------- train


def _cmd_train(args: argparse.Namespace) -> int:
    from jaxdream._files import atomic_write, check_writable
    from jaxdream.checkpoint import model_card, save_checkpoint
    from jaxdream.data import load_split
    from jaxdream.errors import CheckpointError
    from jaxdream.model import param_count
    from jaxdream.train import TrainConfig, train_and_evaluate

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
    for path in (out, out.with_suffix(".md")):  # before minutes of training, not after
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
        "versions": _versions(),
    }
    save_checkpoint(out, result.model, result.params, metadata)
    card = out.with_suffix(".md")
    text = model_card(result, metadata, param_count(result.params)).encode()
    atomic_write(card, lambda f: f.write(text), error=CheckpointError)
    print(
        f"test accuracy {result.test_accuracy:.2%} after {config.epochs} epochs, "
        f"{seconds:.0f} s in all; wrote {out} and {card}"
    )
    return 0


# --------------------------------------------------------------------------- info


def _cmd_info(args: argparse.Namespace) -> int:
    import jax

    from jaxdream.checkpoint import bundled_weights_path, load_checkpoint
    from jaxdream.model import activation_shapes, param_count

    path = Path(args.weights) if args.weights else bundled_weights_path()
    model, params, meta = load_checkpoint(path)
    info = {
        "weights": str(path),
        "model": {"widths": list(model.widths), "hidden": model.hidden},
        "parameters": param_count(params),
        "test_accuracy": meta.get("test_accuracy"),
        "layers": {k: list(v) for k, v in activation_shapes(model).items()},
        "devices": [str(d) for d in jax.devices()],
        "versions": _versions(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    accuracy = info["test_accuracy"]
    layers = ", ".join(
        f"{k} {'x'.join(map(str, v))}" for k, v in info["layers"].items() if not k.endswith("_pre")
    )
    devices = jax.devices()
    print(
        "\n".join(
            [
                f"weights  {path}",
                f"model    conv widths {list(model.widths)}, dense {model.hidden}, "
                f"{info['parameters']:,} parameters"
                + (f", {accuracy:.2%} MNIST test accuracy" if accuracy is not None else ""),
                f"layers   {layers} (and *_pre before each ReLU)",
                f"devices  {len(devices)} x {devices[0].platform} ({jax.default_backend()} "
                f"backend)",
                "versions " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
                "(--json for all of it, as JSON)",
            ]
        )
    )
    return 0


# --------------------------------------------------------------------------- oip


def _load_weights(path: str | None):
    from jaxdream.checkpoint import load_model

    return load_model(path)


def _cmd_oip(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxdream.checks import number, whole_number
    from jaxdream.display import to_uint8
    from jaxdream.figures import labelled_grid
    from jaxdream.imageio import check_output, load_photo, save_image
    from jaxdream.imageops import standardize
    from jaxdream.model import activation_shapes
    from jaxdream.objectives import channel, parse_objective
    from jaxdream.oip import dead as dead_starts
    from jaxdream.oip import oip, oip_from_noise

    check_output(args.output)
    whole_number("--seed", args.seed, -(2**63), 2**63 - 1)
    number("--amplitude", args.amplitude, 0, 1e6)
    whole_number("--scale", args.scale, 1, 64)
    whole_number("--columns", args.columns, 1, 1024)
    model, params = _load_weights(args.weights)
    conv = {} if args.conv == "auto" else {"conv": args.conv}
    model = dataclasses.replace(model, precision=args.precision, **conv)
    shapes = activation_shapes(model)
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
    t0 = time.perf_counter()
    options = dict(
        steps=args.steps, epsilon=args.epsilon, conv_criterion=args.conv_criterion, model=model
    )
    restarted = 0
    doing = f"OIP of {n} image{'s' if n > 1 else ''}"
    with _stage_bar(1, args.quiet, doing, unit="call", report=False):
        if args.start:
            from jaxdream.imageops import resize

            photo = load_photo(args.start)
            start = standardize(resize(jnp.asarray(photo.gray), (28, 28)))
            out = oip(params, objective, jnp.broadcast_to(start, (n, 28, 28)), **options)
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


def _dream_config(args: argparse.Namespace):
    from jaxdream.presets import ARTICLE_FLAGS, config_from_flags

    return config_from_flags({k: getattr(args, k) for k in ARTICLE_FLAGS})


def _check_distinct(source: str | os.PathLike, outputs: list[str]) -> None:  # one photo
    """Refuse outputs that would overwrite the input photo or one another (nothing is lost to
    a slip such as ``jaxdream dream cat.jpg -o cat.jpg``)."""
    seen: dict[Path, str] = {}
    for out in outputs:
        key = Path(out).resolve()
        if key in seen:
            raise ImageError(f"{out} is named for two outputs ({seen[key]} and {out})")
        seen[key] = out
        if key == Path(source).resolve() or (
            Path(out).exists() and Path(source).exists() and os.path.samefile(out, source)
        ):
            raise ImageError(f"{out} is the input photo: choose another output name")


def _write_dream(
    result, photo_rgb, paths: dict[str, str | None], display, color: bool, photo_size: bool
) -> list[str]:
    """Write a dream's outputs (``output``, and ``gif``/``figure`` where named), atomically;
    returns the files written."""

    from jaxdream.figures import stage_figure
    from jaxdream.imageio import save_gif, save_image

    save_image(paths["output"], result.to_uint8(display, color=color, photo_size=photo_size))
    frames = (
        [] if result.frames is None else [result.render(f, display, color) for f in result.frames]
    )
    if paths.get("gif"):
        save_gif(paths["gif"], [result.render(result.gray, display, color), *frames])
    if paths.get("figure"):
        save_image(paths["figure"], stage_figure(result, photo_rgb, display, color=color))
    return [p for p in (paths["output"], paths.get("gif"), paths.get("figure")) if p]


def _warn_if_unchanged(result, config, model, params) -> None:
    """One line where the dream left the photo as it was (no gradient), naming maps that
    respond to it."""
    import numpy as np

    from jaxdream.explore import DEAD_BELOW, responding_maps

    if config.steps == 0 or np.abs(result.image - result.gray).mean() >= DEAD_BELOW:
        return
    layer = config.layer if config.objective is None else None
    hint = ""
    if layer is not None:
        maps = responding_maps(result.gray, layer, model=model, params=params)
        hint = f"; maps of {layer} that respond to this photo: {maps}" if maps else ""
    print(
        f"warning: {_describe(config)} gave no gradient on this photo: the dream is the photo "
        f"unchanged{hint}",
        file=sys.stderr,
    )


def _photo_size(args: argparse.Namespace) -> bool:
    return args.output_size == "photo"


def _describe(config) -> str:
    names = list(dict.fromkeys(o.name for o in config.tile_objectives()))
    return names[0] if len(names) == 1 else f"{len(names)} objectives"


def _folder_mode(args: argparse.Namespace) -> bool:
    """Several photos (or a folder) in, a folder out; one photo to one file otherwise."""
    inputs = args.input or []
    out = args.output
    return (
        len(inputs) > 1
        or any(os.path.isdir(p) for p in inputs)
        or os.path.isdir(out)
        or out.endswith(("/", os.sep))
    )


@contextlib.contextmanager
def _stage_bar(total: int, quiet: bool, doing: str, unit: str = "iteration", report=True):
    """A progress bar of ``total`` units: ``(bar, progress)``, ``progress`` the callback to give
    a dream when ``report`` (else ``None``). The compile stage is shown as it
    happens ("compiling", or "loading" a program from the cache, then how long it took); no bar
    with ``quiet`` or when standard error is not a terminal (tqdm's ``disable=None``)."""
    from tqdm.auto import tqdm

    from jaxdream import progress

    with tqdm(total=total, unit=unit, disable=True if quiet else None) as bar:
        if bar.disable:
            yield bar, None
            return
        bar.set_description("starting")

        def stage(event: str, seconds: float | None) -> None:
            if event == "compiling":
                bar.set_description("compiling")
            elif event == "loading":
                bar.set_description("loading the program from the cache")
            elif event == "compiled":
                bar.set_description(f"{doing} (compiled in {seconds:.1f} s)")
            else:
                bar.set_description(f"{doing} (program from the cache, {seconds:.2f} s)")

        def done(n: int) -> None:
            if n > bar.n:
                bar.update(n - bar.n)

        with progress.watching_compiles(stage):
            yield bar, (done if report else None)
        bar.update(total - bar.n)


def _cmd_dream(args: argparse.Namespace) -> int:
    if _folder_mode(args):
        return _cmd_dream_many(args)

    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.display import Display
    from jaxdream.dream import dream
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
    _check_distinct(source, outputs)
    config = _dream_config(args)
    if args.figure:
        from jaxdream.figures import check_stage_rows

        check_stage_rows(config.iterations, len(config.levels))
    display = Display(clip=not args.no_clip, centre_move=args.centre_move, fact=args.fact)
    photo = load_photo(source)  # bad input fails here, before any progress output
    model, params = _load_weights(args.weights)
    config.check(model)
    t0 = time.perf_counter()
    from jaxdream.progress import CALL_PER_ITERATION_FROM

    long = config.steps * config.tile_count() >= CALL_PER_ITERATION_FROM
    with _stage_bar(config.iterations, args.quiet, "dreaming", report=long) as (bar, done):
        result = dream(
            photo.rgb,
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
        written = _write_dream(result, photo.rgb, paths, display, args.color, _photo_size(args))
    _warn_if_unchanged(result, config, model, params)
    h, w = result.image.shape
    oh, ow = result.photo.shape[:2] if _photo_size(args) else (h, w)
    print(
        f"dreamed {source} at {w}x{h} (written at {ow}x{oh}), {_describe(config)}, "
        f"{config.tile_count()} tiles, {config.iterations} iterations x {config.steps} steps in "
        f"{seconds:.2f} s; wrote {', '.join(written)}"
    )
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:

    from jaxdream._files import check_regular_file
    from jaxdream.checkpoint import bundled_sample_path
    from jaxdream.explore import explore, parse_maps
    from jaxdream.figures import labelled_grid
    from jaxdream.imageio import MAX_FILE_BYTES, check_output, save_image
    from jaxdream.model import activation_shapes
    from jaxdream.objectives import channel
    from jaxdream.presets import PRESETS

    source = args.input or bundled_sample_path()
    check_regular_file(source, MAX_FILE_BYTES)
    check_output(args.output, "RGB")
    config = _dream_config(args)
    model, params = _load_weights(args.weights)
    shapes = activation_shapes(model)
    if args.layer not in shapes:
        channel(args.layer, 0).validate(shapes)  # the error listing the layers
    maps = parse_maps(args.maps, shapes[args.layer][-1])
    color = args.color if args.color is not None else PRESETS[args.preset].color
    t0 = time.perf_counter()
    doing = f"dreaming {len(maps)} maps at once"
    with _stage_bar(config.iterations, args.quiet, doing) as (_, done):
        ranked = explore(
            source, args.layer, maps, config, model=model, params=params, progress=done
        )
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


def _output_folder(path: str | None, what: str) -> Path | None:
    """``path`` as an output folder: made if missing (its parent must exist), refused if it
    cannot be written, before any work."""
    if not path:
        return None
    from PIL import Image

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ImageError(f"{what} {folder} must be a folder when several photos are dreamt")
    if not folder.exists() and folder.suffix.lower() in Image.registered_extensions():
        raise ImageError(
            f"{what} {folder} names an image file, but several photos (or a folder) are "
            "dreamt: give a folder to write into"
        )
    if not folder.exists():
        if not folder.parent.is_dir():
            raise ImageError(f"cannot make {what} folder {folder}: {folder.parent} does not exist")
        try:
            folder.mkdir(exist_ok=True)  # several processes may make it at once
        except OSError as e:
            raise ImageError(f"cannot make {what} folder {folder}: {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"cannot write into {what} folder {folder}")
    return folder


def _folder_stage(bar):
    """The folder bar's compile stage: each program compiled or loaded, as it happens."""

    def stage(event: str, seconds: float | None) -> None:
        if bar.disable:
            return
        if event in ("compiling", "loading"):
            what = "compiling a program" if event == "compiling" else "loading a program"
            bar.set_description(what if event == "compiling" else f"{what} from the cache")
        else:
            how = "compiled" if event == "compiled" else "from the cache"
            bar.set_description(f"dreaming (program {how} in {seconds:.1f} s)")

    return stage


def _cmd_dream_many(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    from jaxdream import distributed, progress
    from jaxdream.display import Display
    from jaxdream.many import dream_photos
    from jaxdream.photos import find_photos, output_names

    out_dir = _output_folder(args.output, "output")
    gif_dir = _output_folder(args.gif, "--gif")
    config = _dream_config(args)
    if args.figure:
        from jaxdream.figures import check_stage_rows

        check_stage_rows(config.iterations, len(config.levels))
    figure_dir = _output_folder(args.figure, "--figure")
    display = Display(clip=not args.no_clip, centre_move=args.centre_move, fact=args.fact)
    model, params = _load_weights(args.weights)
    config.check(model)
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    found, missing = find_photos(args.input, recursive=args.recursive)
    names = output_names(found)
    jobs = []
    for path, stem in zip(found, names, strict=True):
        paths = {
            "output": str(out_dir / f"{stem}.png"),
            "gif": str(gif_dir / f"{stem}.gif") if gif_dir else None,
            "figure": str(figure_dir / f"{stem}-stages.png") if figure_dir else None,
        }
        jobs.append((path, paths))
    inputs = {Path(p).resolve() for p in found}
    for _, paths in jobs:
        clash = [p for p in paths.values() if p and Path(p).resolve() in inputs]
        if clash:
            raise ImageError(f"{clash[0]} would overwrite an input photo: choose another folder")
    jobs = distributed.share(jobs)
    skipped = 0
    if args.skip_existing:
        todo = [j for j in jobs if not all(Path(p).exists() for p in j[1].values() if p)]
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
            _write_dream(result, result.photo, paths, display, args.color, _photo_size(args))
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
        progress.watching_compiles(_folder_stage(bar)),
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
        f"{seconds:.1f} s, {_describe(config)}, {len(run.shapes)} working shapes, "
        f"{run.compiled} programs ({run.new_programs - run.loaded_programs} compiled, "
        f"{run.loaded_programs} from the cache); wrote into {out_dir}"
    )
    return 1 if failed else 0


# --------------------------------------------------------------------------- parser


# The choices of ``jaxdream.compute`` and ``jaxdream.model``, written here so that ``--help``
# needs no JAX (tests/test_cli.py checks them against the library's).
CONV_CHOICES = ("auto", "fast", "im2col", "xla")
PRECISION_CHOICES = ("highest", "high", "default")


def _compute_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--conv",
        default="auto",
        choices=CONV_CHOICES,
        help="convolution (auto: im2col on CPUs, XLA's own on GPUs and TPUs)",
    )
    p.add_argument(
        "--precision",
        default="highest",
        choices=PRECISION_CHOICES,
        help="matrix-product precision (highest: full float32 on every backend; "
        "'default' lets GPUs use TF32 and TPUs bf16 passes)",
    )


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``dream``'s defaults are those of ``preset`` (default: ``vivid``)."""
    from jaxdream.presets import DEFAULT_PRESET, PRESETS

    preset = preset if preset in PRESETS else DEFAULT_PRESET
    d = PRESETS[preset].flag_values()
    parser = _Parser(
        prog="jaxdream",
        description="Carve the patterns of an MNIST CNN's feature maps into photos.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

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
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("info", help="describe the model, its layers and the devices")
    p.add_argument("--weights", help=f"checkpoint (unset: {DEFAULT_WEIGHTS_NOTE})")
    p.add_argument("--json", action="store_true", help="everything, as JSON")
    p.set_defaults(func=_cmd_info)

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
    _compute_flags(p)
    p.add_argument("--weights", help=f"checkpoint (unset: {DEFAULT_WEIGHTS_NOTE})")
    p.set_defaults(func=_cmd_oip)

    p = sub.add_parser(
        "dream",
        help="carve a map's patterns into photos",
        description=f"Dream photos. Defaults shown are preset {preset!r}'s: "
        + "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()),
    )
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=preset,
        help="named settings; flags given beside it override them",
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
    p.add_argument("--layer", default=d["layer"], help="the layer whose map is carved")
    p.add_argument(
        "--map", type=int, default=d["map"], help="map of the layer; -1: the whole layer"
    )
    p.add_argument(
        "--objective",
        default=d["objective"],
        help="every tile's objective instead of --layer/--map, as for 'jaxdream oip': e.g. "
        "'0.7*conv3:56 + 0.3*conv2:12', 'logit:9', 'conv3:56 - 0.1*logit:3'",
    )
    p.add_argument(
        "--levels",
        nargs="+",
        default=d["levels"],
        metavar="SPEC",
        help="tile levels, LEVEL[:TILE,...][/MAP,...][*WEIGHT]: 0 = whole image, "
        "1 = quadrants (tiles 0..3 row-major), 2 = 4x4 grid; e.g. '0 1' or "
        "'0 1/56,12,3,7 2*0.5' ('0 1:3' is the article's). Objectives per level or "
        "tile: LEVEL[:TILE,...][*WEIGHT]=OBJECTIVE[;OBJECTIVE...], e.g. '1=logit:3' or "
        "'1:0,3=conv2:5;logit:7'",
    )
    p.add_argument(
        "--overlap",
        type=float,
        default=d["overlap"],
        metavar="FRACTION",
        help="tiles of levels >= 1 overlap their neighbours by this fraction of a tile, "
        "their changes feathered together (hides seams; 0: the article's grid)",
    )
    p.add_argument("--iterations", type=int, default=d["iterations"], help="carving rounds")
    p.add_argument("--steps", type=int, default=d["steps"], help="OIP steps per round and tile")
    p.add_argument("--epsilon", type=float, default=d["epsilon"], help="OIP step size")
    p.add_argument(
        "--conv-criterion",
        type=float,
        default=d["conv_criterion"],
        help="stop OIP early (the article: 2e-4)",
    )
    p.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=d["size"],
        metavar="N",
        help="working size: longer side, or HEIGHT WIDTH",
    )
    p.add_argument(
        "--schedule",
        choices=["batched", "faithful"],
        default=d["schedule"],
        help="batched: all tiles in one call; faithful: the article's steps exactly",
    )
    p.add_argument(
        "--shift-tiles",
        action=argparse.BooleanOptionalAction,
        default=d["shift_tiles"],
        help="random tile offsets (seams)",
    )
    p.add_argument(
        "--color",
        action=argparse.BooleanOptionalAction,
        default=PRESETS[preset].color,
        help="keep the photo's colours",
    )
    p.add_argument("--seed", type=int, default=d["seed"], help="of the tile shifts")
    p.add_argument("--no-clip", action="store_true", help="skip the article's contrast clip")
    p.add_argument("--fact", type=float, default=0.2, help="display contrast factor")
    p.add_argument("--centre-move", type=float, default=0.5, help="display centre")
    p.add_argument(
        "--gif", help="also write the iterations as an animated GIF (a folder for many photos)"
    )
    p.add_argument("--figure", help="also write a figure of the stages (a folder for many photos)")
    p.add_argument(
        "--output-size",
        choices=["photo", "working"],
        default="photo",
        help="write the dream at the photo's size, or at the working size (--size)",
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
    _compute_flags(p)
    p.add_argument("--weights", help=f"checkpoint (unset: {DEFAULT_WEIGHTS_NOTE})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_dream)

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
    p.add_argument("--weights", help=f"checkpoint (unset: {DEFAULT_WEIGHTS_NOTE})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    taken = ("size", "layer", "iterations", "steps")
    p.set_defaults(func=_cmd_explore, **{k: v for k, v in d.items() if k not in taken})
    return parser


def distributed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run, the cluster found by JAX (SLURM, Open MPI, TPU pods)",
    )
    p.add_argument("--coordinator-address", metavar="HOST:PORT", help="multi-host: process 0's")
    p.add_argument("--num-processes", type=int, metavar="N", help="multi-host: processes in all")
    p.add_argument("--process-id", type=int, metavar="I", help="multi-host: this one, 0..N-1")


class _Parser(argparse.ArgumentParser):
    """Argument errors in the promised form: one line, ``jaxdream: error: ...``, code 2; every
    option's help shows its default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"jaxdream: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _stop(code: int, message: str):
    """Leave at once (a compiled program may still be running): no partial file stays."""
    from jaxdream._files import remove_partial_files

    remove_partial_files()
    with contextlib.suppress(Exception):
        print(f"jaxdream: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _on_sigterm(signum, frame):
    """SIGTERM: stop here and now (no unwinding through a running dream)."""
    _stop(143, "terminated")


def _on_sigint(signum, frame):
    """Ctrl-C: the same, with the shell's code for it."""
    _stop(130, "interrupted")


def _preset_named(argv: Sequence[str]) -> str | None:
    """The ``--preset`` value in ``argv``, if any (it sets the other flags' defaults)."""
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_preset_named(argv)).parse_args(argv)
    from jaxdream.runtime import configure_cpu_devices

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, _on_sigint)
        if hasattr(signal, "SIGXFSZ"):  # a file-size limit: let the write fail, not the process
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        if getattr(args, "distributed", False) or getattr(args, "coordinator_address", None):
            from jaxdream import distributed

            distributed.initialize(
                args.coordinator_address, args.num_processes, args.process_id
            )  # before any JAX computation, also the CPU set-up's check
        configure_cpu_devices()  # before any computation; a no-op where XLA_FLAGS is set
        if os.environ.get("JAXDREAM_NO_CACHE", "") in ("", "0"):
            from jaxdream.cache import enable_compilation_cache

            enable_compilation_cache()
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled
        return code
    except JaxdreamError as e:
        print(f"jaxdream: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of standard output went away (``| head``)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a file problem no check foresaw: still one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"jaxdream: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # where the handler could not be installed (not the main thread)
        _stop(130, "interrupted")


if __name__ == "__main__":
    sys.exit(main())
