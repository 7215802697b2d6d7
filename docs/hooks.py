"""The site's build hooks (mkdocs.yml, ``hooks:``).

- The command line's reference is generated: a line ``<!-- jaxdream-cli: NAME -->`` in a page
  becomes the ``--help`` of ``jaxdream NAME`` (``jaxdream`` alone: the top level), formatted by
  the parsers themselves, so the page cannot drift from the flags. Every command of
  ``jaxdream.cli.COMMANDS`` must have one, or the build fails.
- Every public name of ``jaxdream`` (``jaxdream.__all__``) must have an entry in the API
  reference (a ``::: jaxdream.MODULE.NAME`` line, or ``::: jaxdream.MODULE`` for a public
  submodule), or the build fails, naming what is missing.

Importing ``jaxdream`` and ``jaxdream.cli`` starts no JAX, so both stay cheap here.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
CLI_MARK = re.compile(r"^<!-- jaxdream-cli: (\S+) -->$", re.MULTILINE)
API_ENTRY = re.compile(r"^::: (jaxdream(?:\.\w+)*)\s*$", re.MULTILINE)
HELP_COLUMNS = "96"


def _jaxdream():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import jaxdream

    return jaxdream


def cli_help() -> dict[str, str]:
    """``--help`` of the top level and of every command, as the parsers format it."""
    _jaxdream()
    from jaxdream.cli import COMMANDS, build_parser

    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps to the terminal: a fixed width here
    try:
        parser = build_parser()
        (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        helps = {"jaxdream": parser.format_help()}
        helps.update({name: commands.choices[name].format_help() for name in COMMANDS})
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before
    return helps


def public_entries() -> dict[str, str]:
    """Each public name of ``jaxdream`` and the entry that documents it."""
    jaxdream = _jaxdream()
    return {
        name: f"jaxdream.{name}" if name in jaxdream._MODULES else f"{jaxdream._WHERE[name]}.{name}"
        for name in jaxdream.__all__
    }


def missing_entries(pages: dict[str, str]) -> list[str]:
    """The public names none of ``pages`` (path -> Markdown) has an entry for."""
    documented = {m for text in pages.values() for m in API_ENTRY.findall(text)}
    return sorted(
        f"{name} (write '::: {entry}')"
        for name, entry in public_entries().items()
        if entry not in documented and f"jaxdream.{name}" not in documented
    )


def on_files(files, config):
    pages = {
        f.src_uri: Path(f.abs_src_path).read_text(encoding="utf-8")
        for f in files.documentation_pages()
        if f.src_uri.endswith(".md")
    }
    missing = missing_entries(pages)
    if missing:
        raise PluginError("public names with no entry in the API reference: " + ", ".join(missing))
    marked = {m for text in pages.values() for m in CLI_MARK.findall(text)}
    unmarked = sorted(set(cli_help()) - marked)
    if unmarked:
        raise PluginError(
            "commands with no reference page: "
            + ", ".join(f"{n} (write '<!-- jaxdream-cli: {n} -->')" for n in unmarked)
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if not CLI_MARK.search(markdown):
        return markdown
    helps = cli_help()

    def replace(match):
        name = match.group(1)
        if name not in helps:
            raise PluginError(f"{page.file.src_uri}: no command {name!r} (known: {sorted(helps)})")
        return f"```text\n{helps[name].rstrip()}\n```"

    return CLI_MARK.sub(replace, markdown)
