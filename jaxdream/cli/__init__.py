"""The ``jaxdream`` command line: a thin layer of flags over the library.

One module per command (``COMMANDS``), each with ``register(sub, preset)`` and ``run(args)``,
over a small shared core (``jaxdream.cli._core``: the dream flags written once, bars,
signals); the work is the library's. Adding a command is a new module and its name here.
Errors the user can fix (files, names, settings) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence

from jaxdream.cli._core import (
    Parser,
    join_option_values,
    join_run,
    on_sigint,
    on_sigterm,
    preset_named,
    stop,
)
from jaxdream.config import CONV_CHOICES, PRECISION_CHOICES
from jaxdream.errors import JaxdreamError

__all__ = ["COMMANDS", "CONV_CHOICES", "PRECISION_CHOICES", "build_parser", "main", "parse_args"]

# The commands, in the order ``--help`` lists them: each a module of this package.
COMMANDS = ("train", "info", "oip", "dream", "explore", "maps", "zoom", "video")


def build_parser(preset: str | None = None) -> Parser:
    """The parser; the dreaming commands' defaults are those of ``preset`` (default: ``vivid``)."""
    parser = Parser(
        prog="jaxdream",
        description="Carve the patterns of an MNIST CNN's feature maps into photos.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    for name in COMMANDS:
        importlib.import_module(f"jaxdream.cli.{name}").register(sub, preset)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` read by the parser of the preset it names; ``args.typed``: the destinations of
    the long options typed (the flags that win over the preset)."""
    argv = join_option_values(argv)
    args = build_parser(preset_named(argv)).parse_args(argv)
    if not isinstance(getattr(args, "typed", None), set):
        args.typed = set()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    from jaxdream.runtime import configure_cpu_devices

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
        signal.signal(signal.SIGINT, on_sigint)
        if hasattr(signal, "SIGXFSZ"):  # a file-size limit: let the write fail, not the process
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        join_run(args)  # before any JAX computation, also the CPU set-up's check
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
        stop(130, "interrupted")
