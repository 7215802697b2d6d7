"""What every command shares: the parser class, the dream flags (made from ``DreamConfig``'s
fields, their defaults a preset's), the compute and multi-host flags, weights, progress bars,
and the signals that stop a run. The checks of output names and folders are the library's
(``jaxdream.photos``).

A command is a module of this package with ``register(sub, preset)`` (adds its subparser, its
``func`` set to the module's ``run``) and ``run(args) -> int``; it is named once in the
package's ``COMMANDS``. Nothing here imports JAX at import time: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import platform
import sys
from collections.abc import Sequence

from jaxdream._files import remove_partial_files
from jaxdream.config import LATER_SETTINGS, DreamConfig, config_from_flags
from jaxdream.errors import ConfigError
from jaxdream.presets import DEFAULT_PRESET, PRESETS

DEFAULT_WEIGHTS_NOTE = "the weights bundled with jaxdream"
BUNDLED_NAMES = ("mnist_cnn", "mnist_cnn56")  # jaxdream.checkpoint.BUNDLED, without its JAX
SETTINGS = {f.name: f for f in dataclasses.fields(DreamConfig)}
# The order ``--help`` lists the dream flags in (``--color`` is the preset's, not a setting);
# a setting not named here is listed after them.
DREAM_FLAG_ORDER = (
    *("layer", "map", "objective", "levels", "overlap", "iterations", "steps", "epsilon"),
    *("conv_criterion", "size", "schedule", "shift_tiles", "color", "seed", "prepare"),
    "strength",
)
COMPUTE_SETTINGS = ("conv", "precision")
# Flags left out of a render's settings (``run_settings``) while unset: a render interrupted
# before they existed resumes with the same settings.
OMITTED_UNSET = ("network", "input_shape", "preprocess", "input_norm")


class Parser(argparse.ArgumentParser):
    """Argument errors in the promised form: one line, ``jaxdream: error: ...``, code 2; every
    option's help shows its default. The long options typed are recorded as they are parsed:
    ``args.typed`` holds their destinations (``--no-color`` is ``color``), so that flags typed
    beside a preset can win over it."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def _add_action(self, action: argparse.Action) -> argparse.Action:
        if action.option_strings and action.dest != argparse.SUPPRESS:
            action.__class__ = _recording(type(action))
        return super()._add_action(action)

    def error(self, message: str):
        print(f"jaxdream: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


@functools.cache
def _recording(kind: type) -> type:
    """``kind`` of argparse action, recording its destination in ``namespace.typed`` when a
    long option is typed (a subcommand's namespace is copied into the command line's)."""

    class Recording(kind):
        def __call__(self, parser, namespace, values, option_string=None):
            if option_string and option_string.startswith("--"):
                typed = getattr(namespace, "typed", None)
                if not isinstance(typed, set):
                    typed = set()
                    namespace.typed = typed
                typed.add(self.dest)
            super().__call__(parser, namespace, values, option_string)

    Recording.__name__ = Recording.__qualname__ = kind.__name__
    return Recording


class _Refused(Exception):
    pass


class _PresetParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise _Refused(message)


def preset_named(argv: Sequence[str]) -> str | None:
    """The ``--preset`` value in ``argv`` as argparse reads it (given twice, the last; an
    abbreviation too), if any: it sets the other flags' defaults, so it is read before the
    command line's parser is made. A mistake is left to that parser to report.

    >>> preset_named(["dream", "--preset", "article", "--preset=emboss"])
    'emboss'
    """
    reader = _PresetParser(add_help=False)
    reader.add_argument("--preset")
    try:
        return reader.parse_known_args(list(argv))[0].preset
    except _Refused:
        return None


def versions() -> dict[str, str]:
    """The versions that fix a result: Python's and the libraries'."""
    import flax  # these four import JAX: not at the top, where --help would pay for them
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


# --------------------------------------------------------------------------- flags


def preset_defaults(preset: str | None) -> tuple[str, dict]:
    """``(name, flag values)`` of ``preset`` (the default preset where it is not one)."""
    name = preset if preset in PRESETS else DEFAULT_PRESET
    return name, PRESETS[name].flag_values()


def weights_flag(p: argparse.ArgumentParser, network: bool = False) -> None:
    """``--weights``; with ``network``, beside ``--network`` (``network_flags``)."""
    mine = "; with --network, its weights (Flax msgpack: jaxdream.loading.save_weights)"
    p.add_argument(
        "--weights",
        help=f"checkpoint, or a bundled network's name: {', '.join(BUNDLED_NAMES)} "
        f"(unset: {DEFAULT_WEIGHTS_NOTE}){mine if network else ''}",
    )


def network_flags(p: argparse.ArgumentParser) -> None:
    """``--weights``, ``--network``, ``--input-shape`` and the network's own preprocessing
    (``--preprocess``, ``--input-norm``): the network a command works with."""
    weights_flag(p, network=True)
    p.add_argument(
        "--network",
        metavar="SPEC",
        help="your own Flax network: FILE.py:NAME or package.module:NAME, a Linen or NNX module "
        "or a function of no argument returning one (its code runs; unset: the bundled CNN)",
    )
    p.add_argument(
        "--input-shape",
        type=int,
        nargs=3,
        metavar=("H", "W", "C"),
        help="with --network: its input shape (unset: inferred from the network)",
    )
    p.add_argument(
        "--preprocess",
        metavar="SPEC",
        help="with --network: its own preprocessing, FILE.py:NAME or package.module:NAME, a "
        "function from the standardized tile (H, W, C) to the network's input (its code runs; "
        "unset: the network sees the standardized tiles)",
    )
    p.add_argument(
        "--input-norm",
        type=float,
        nargs="+",
        metavar="X",
        help="with --network, trained on pixels in [0, 1] normalized per channel: MEAN STD, or "
        "three means then three stds (jaxdream.inputs.normalized)",
    )


def quiet_flag(p: argparse.ArgumentParser, what: str = "no progress bar") -> None:
    p.add_argument("-q", "--quiet", action="store_true", help=what)


def setting_flag(p: argparse.ArgumentParser, name: str, default) -> None:
    """The flag of ``DreamConfig``'s field ``name`` (its help and argparse keywords are the
    field's metadata), its default ``default``."""
    meta = SETTINGS[name].metadata
    p.add_argument(
        f"--{name.replace('_', '-')}", default=default, help=meta["help"], **meta["flag"]
    )


def compute_flags(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """``--conv`` and ``--precision``, their defaults ``defaults``' (unset: ``DreamConfig()``'s)."""
    for name in COMPUTE_SETTINGS:
        setting_flag(p, name, (defaults or {}).get(name, SETTINGS[name].default))


def dream_flags(p: argparse.ArgumentParser, preset: str | None, **defaults) -> None:
    """The settings of a dream (``DreamConfig``'s fields, ``--preset``, ``--color``): every
    dreaming command takes them. Their defaults are ``preset``'s, then ``defaults``'."""
    name, d = preset_defaults(preset)
    d = {**d, "color": PRESETS[name].color, **defaults}
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=name,
        help="named settings; flags given beside it override them",
    )
    rest = [k for k in SETTINGS if k not in DREAM_FLAG_ORDER and k not in COMPUTE_SETTINGS]
    for key in (*DREAM_FLAG_ORDER, *rest):
        if key == "color":
            p.add_argument(
                "--color",
                action=argparse.BooleanOptionalAction,
                default=d["color"],
                help="keep the photo's colours",
            )
        else:
            setting_flag(p, key, d[key])
    compute_flags(p, d)
    network_flags(p)


def display_flags(p: argparse.ArgumentParser) -> None:
    """How a dream is shown: the article's contrast clip and its factors."""
    p.add_argument("--no-clip", action="store_true", help="skip the article's contrast clip")
    p.add_argument("--fact", type=float, default=0.2, help="display contrast factor")
    p.add_argument("--centre-move", type=float, default=0.5, help="display centre")


def distributed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run, the cluster found by JAX (SLURM, Open MPI, TPU pods)",
    )
    p.add_argument("--coordinator-address", metavar="HOST:PORT", help="multi-host: process 0's")
    p.add_argument("--num-processes", type=int, metavar="N", help="multi-host: processes in all")
    p.add_argument("--process-id", type=int, metavar="I", help="multi-host: this one, 0..N-1")


def dream_config(args: argparse.Namespace):
    """The ``DreamConfig`` the dream flags in ``args`` name. Flags typed beside a preset win
    over it (``args.typed``, recorded by ``Parser``): ``--layer``/``--map`` typed beside a preset
    that sets an objective drop the preset's objective (it would silently replace them), and
    ``--objective`` typed with ``--layer`` or ``--map`` is refused (one would be ignored)."""
    values = {k: getattr(args, k) for k in SETTINGS}
    typed = getattr(args, "typed", set())
    if "objective" in typed and typed & {"layer", "map"}:
        both = " and ".join(f"--{k}" for k in ("layer", "map") if k in typed)
        raise ConfigError(f"--objective replaces {both}: give one or the other")
    if "objective" not in typed and typed & {"layer", "map"}:
        values["objective"] = None
    return config_from_flags(values)


def join_option_values(argv: Sequence[str], options=("--objective",)) -> list[str]:
    """``argv`` with ``--objective -conv3:56`` written ``--objective=-conv3:56``: argparse takes
    a value that starts with ``-`` for an option, but a negated objective is one. A short
    option (``-q``) after the flag stays an option (the value is then missing, as typed).

    >>> join_option_values(["oip", "--objective", "-conv3:56", "-q"])
    ['oip', '--objective=-conv3:56', '-q']
    """
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in options and nxt and nxt[0] == "-" and nxt[1:2] != "-" and len(nxt) > 2:
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def join_run(args: argparse.Namespace) -> None:
    """Join a multi-process run where the flags ask for one (any of the four: one or two of
    the three hand-given ones are refused, never ignored), before any JAX computation."""
    from jaxdream import distributed  # with NumPy: 0.15 s that --help does without

    flags = [getattr(args, k, None) for k in ("coordinator_address", "num_processes", "process_id")]
    if distributed.check_flags(getattr(args, "distributed", False), *flags):
        distributed.initialize(*flags)


def run_settings(args: argparse.Namespace, skip: Sequence[str]) -> dict:
    """The flags of ``args`` but ``skip`` (those that only say how a run goes), as JSON values:
    what a resumed render must match. Sets (``args.typed``, the flags typed) become sorted
    lists, without the skipped flags (``--resume`` typed or not, the render is the same).
    Flags added since renders could be resumed are left out while unset (``OMITTED_UNSET``)
    or at their defaults (``jaxdream.config.LATER_SETTINGS``): an earlier render resumes."""
    return {
        k: sorted(set(v) - set(skip)) if isinstance(v, set | frozenset) else v
        for k, v in sorted(vars(args).items())
        if k not in skip
        and not (k in OMITTED_UNSET and v is None)
        and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])
    }


def display(args: argparse.Namespace):
    """The ``Display`` the display flags in ``args`` name."""
    from jaxdream.display import Display  # with NumPy: 0.15 s that --help does without

    return Display(clip=not args.no_clip, centre_move=args.centre_move, fact=args.fact)


def describe(config) -> str:
    """A dream's objective in a few words: its one name, or how many there are."""
    names = list(dict.fromkeys(o.name for o in config.tile_objectives()))
    return names[0] if len(names) == 1 else f"{len(names)} objectives"


def load_weights(path: str | None):
    """``(model, params)`` of a checkpoint (the bundled one where ``path`` is unset)."""
    from jaxdream.checkpoint import load_model  # imports JAX, which --help does without

    return load_model(path)


@dataclasses.dataclass(frozen=True)
class LoadedNetwork:
    """The network a command works with: the bundled CNN and a jaxdream checkpoint's params
    (``user`` false), or a user's Flax module (``--network``) with its weights and input
    shape, loaded and checked before any work (``jaxdream.loading``)."""

    model: object
    params: object
    user: bool = False
    input_shape: tuple[int, int, int] | None = None  # the user's network's, given or inferred
    given_shape: tuple[int, int, int] | None = None  # --input-shape as typed
    preprocess: object = None  # --preprocess or --input-norm: the network's own preprocessing

    def keywords(self) -> dict:
        """The library call's keywords: ``network=`` and ``params=`` (a user's network as the
        engine's ``Network``, ``jaxdream.network.as_network``, its input shape known)."""
        return {"network": self.network, "params": self.params}

    @property
    def network(self):
        """The engine's ``Network``: the bundled CNN, or a user's module made one."""
        if not self.user:
            return self.model
        from jaxdream.network import as_network  # imports JAX, which --help does without

        return as_network(self.model, self.params, self.input_shape, self.preprocess)[0]

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every named activation's shape for one image (with the names the presets read,
        ``jaxdream.network.layer_aliases``, where the network has its own)."""
        if not self.user or self.params is not None:
            from jaxdream.network import layer_shapes

            return layer_shapes(self.network)
        from jaxdream.loading import describe_layers  # no weights: the module's own shapes

        return describe_layers(self.model, self.params, self.input_shape)

    def check(self, config) -> None:
        """``config`` checked against the network before any work (``DreamConfig.check``)."""
        config.check(self.network)


def load_network_flags(args: argparse.Namespace, fresh: bool = True) -> LoadedNetwork:
    """The network ``--network``, ``--weights`` and ``--input-shape`` name (the bundled CNN and
    its weights where ``--network`` is unset), loaded and checked before any work. A Linen
    network without ``--weights`` gets fresh ones, or none where ``fresh`` is false (its
    shapes are all that is wanted: ``params`` is then ``None``)."""
    spec = getattr(args, "network", None)
    shape = getattr(args, "input_shape", None)
    own = {"--input-shape": shape}
    own["--preprocess"] = getattr(args, "preprocess", None)
    own["--input-norm"] = getattr(args, "input_norm", None)
    if spec is None:
        for flag, value in own.items():
            if value is not None:
                what = "input shape" if flag == "--input-shape" else "own preprocessing"
                raise ConfigError(f"{flag} is the {what} of a --network: give both")
        model, params = load_weights(args.weights)
        return LoadedNetwork(model, params)
    from jaxdream.loading import load  # imports JAX and Flax, which --help does without

    preprocess = preprocess_flags(own["--preprocess"], own["--input-norm"])
    given = tuple(shape) if shape is not None else None
    module, params, inferred = load(spec, args.weights, given, fresh, preprocess)
    return LoadedNetwork(module, params, True, inferred, given, preprocess)


def preprocess_flags(spec: str | None, norm: Sequence[float] | None):
    """The preprocessing ``--preprocess`` or ``--input-norm`` names (``None``: neither).

    >>> preprocess_flags(None, [0.5, 0.25])
    Normalized(mean=(0.5,), std=(0.25,), pixel_mean=0.5, pixel_std=0.25)
    """
    if spec is not None and norm is not None:
        raise ConfigError("--preprocess and --input-norm are two preprocessings: give one")
    if spec is not None:
        from jaxdream.loading import load_preprocess  # imports JAX, which --help does without

        return load_preprocess(spec)
    if norm is None:
        return None
    half = len(norm) // 2
    if len(norm) % 2 or half not in (1, 3):
        raise ConfigError(
            "--input-norm takes the means then the stds, one or three of each (MEAN STD, or "
            f"R G B R G B), got {len(norm)} numbers"
        )
    from jaxdream.inputs import normalized  # imports JAX, which --help does without

    return normalized(norm[:half], norm[half:])


# --------------------------------------------------------------------------- progress


@contextlib.contextmanager
def stage_bar(total: int, quiet: bool, doing: str, unit: str = "iteration", report=True):
    """A progress bar of ``total`` units: ``(bar, progress)``, ``progress`` the callback to give
    a dream when ``report`` (else ``None``). The compile stage is shown as it
    happens ("compiling", or "loading" a program from the cache, then how long it took); no bar
    with ``quiet`` or when standard error is not a terminal (tqdm's ``disable=None``)."""
    from tqdm.auto import tqdm  # 0.08 s, which --help does without

    from jaxdream import progress  # imports JAX, which --help does without

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


def folder_stage(bar, doing: str = "dreaming"):
    """A many-item bar's compile stage: each program compiled or loaded, as it happens."""

    def stage(event: str, seconds: float | None) -> None:
        if bar.disable:
            return
        if event in ("compiling", "loading"):
            what = "compiling a program" if event == "compiling" else "loading a program"
            bar.set_description(what if event == "compiling" else f"{what} from the cache")
        else:
            how = "compiled" if event == "compiled" else "from the cache"
            bar.set_description(f"{doing} (program {how} in {seconds:.1f} s)")

    return stage


def frame_bar(quiet: bool, doing: str = "dreaming"):
    """A render's ``Progress`` (``jaxdream.background``): a bar of frames, started at those an
    interrupted run made, with the compile stage (``folder_stage``); none with ``quiet`` or when
    standard error is not a terminal."""

    @contextlib.contextmanager
    def progress(total: int, done: int):
        from tqdm.auto import tqdm

        with tqdm(
            total=total,
            initial=done,
            unit="frame",
            disable=True if quiet else None,
            dynamic_ncols=True,
        ) as bar:
            yield bar, folder_stage(bar, doing)

    return progress


# --------------------------------------------------------------------------- stopping


def stop(code: int, message: str):
    """Leave at once (a compiled program may still be running): no partial file stays."""
    remove_partial_files()
    with contextlib.suppress(Exception):
        print(f"jaxdream: {message}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def on_sigterm(signum, frame):
    """SIGTERM: stop here and now (no unwinding through a running dream)."""
    stop(143, "terminated")


def on_sigint(signum, frame):
    """Ctrl-C: the same, with the shell's code for it."""
    stop(130, "interrupted")


# Allocations of at least this many bytes are mapped on their own and given back when freed, in a
# render of large frames (``jaxdream video`` and ``zoom``; glibc's ``M_MMAP_THRESHOLD``): its
# default rises to the size of the frames freed (a 4K frame's 25 MB), after which they are carved
# out of the threads' heaps and their holes kept; a 24-frame 4K render peaked 190 MB lower so.
MAPPED_BYTES = 4 * 2**20


def map_large_allocations() -> None:
    """Large allocations mapped on their own from now on, in this process (glibc only: a no-op
    elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
    except OSError:
        return
    if mallopt is not None and getattr(libc, "gnu_get_libc_version", None) is not None:
        mallopt(-3, MAPPED_BYTES)  # M_MMAP_THRESHOLD
