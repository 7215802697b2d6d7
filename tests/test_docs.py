"""The documentation site (docs/, mkdocs.yml): its code examples run, its build hooks catch what
they promise, and the whole site builds with warnings as errors (internal links and anchors
checked, every public name in the API reference, the command line's reference generated)."""

from __future__ import annotations

import doctest
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _docs_module(name):
    """``docs/NAME.py`` as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples(page: Path) -> doctest.DocTest:
    """The page's ``>>>`` examples; a fence's closing line ends an example's expected output."""
    text = "\n".join(
        "" if line.strip().startswith("```") else line
        for line in page.read_text(encoding="utf-8").splitlines()
    )
    return doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)


def test_the_pages_are_there():
    names = {p.stem for p in PAGES}
    assert {"index", "getting-started", "cli", "api", "performance", "contributing"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_examples_of_a_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what an example writes lands here
    test = examples(page)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    assert runner.failures == 0, f"{page.name}: {runner.failures} example(s) failed (above)"


def test_a_fence_ends_the_expected_output(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("```pycon\n>>> 1 + 1\n2\n```\n\nText.\n")
    (example,) = examples(page).examples
    assert example.want == "2\n"


def test_the_api_check_names_a_public_name_with_no_entry():
    hooks = _docs_module("hooks")
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert hooks.missing_entries({"api.md": api}) == []
    without = api.replace("::: jaxdream.dreaming.dream_many\n", "")
    assert hooks.missing_entries({"api.md": without}) == [
        "dream_many (write '::: jaxdream.dreaming.dream_many')"
    ]
    # a public submodule needs its own entry
    without = api.replace("::: jaxdream.figures\n", "")
    assert hooks.missing_entries({"api.md": without}) == ["figures (write '::: jaxdream.figures')"]


def test_the_command_reference_is_every_parser_help():
    hooks = _docs_module("hooks")
    from jaxdream.cli import COMMANDS

    helps = hooks.cli_help()
    assert set(helps) == {"jaxdream", *COMMANDS}
    assert helps["dream"].startswith("usage: jaxdream dream")
    assert "--preset" in helps["dream"]
    width = int(hooks.HELP_COLUMNS)
    assert all(len(line) <= width for h in helps.values() for line in h.split("\n"))


def test_doctest_examples_in_docstrings_are_fenced_for_markdown():
    fence = _docs_module("griffe_doctest").fence_doctests
    text = "Carve a photo.\n\n>>> x = 1\n>>> x\n1\n\nMore text.\n    >>> y\n    2"
    assert fence(text) == (
        "Carve a photo.\n\n```pycon\n>>> x = 1\n>>> x\n1\n```\n\nMore text.\n\n"
        "    ```pycon\n    >>> y\n    2\n    ```"
    )


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """What CI builds: ``mkdocs build --strict``; a warning (a broken link or anchor, a public
    name with no entry, a docstring griffe cannot read) fails it."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("index.html", "api.html", "cli.html", "notebooks/article.html"):
        assert (site / page).is_file(), page
    api = (site / "api.html").read_text(encoding="utf-8")
    assert 'id="jaxdream.dreaming.dream"' in api
    cli = (site / "cli.html").read_text(encoding="utf-8")
    assert "usage: jaxdream dream" in cli


def where_things_live() -> list[tuple[str, str]]:
    """The rows of the contributing page's "Where things live" table: (what, where)."""
    text = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")
    section = text.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return [(what.strip(), where.strip()) for what, where in rows[1:] if "---" not in what]


def test_where_things_live_names_files_and_names_that_exist():
    """Each row's files exist (``NAME`` in a path: any file there), and every plain name in
    backticks is found in one of the row's files: a table that drifts from the code fails."""
    import re

    rows = where_things_live()
    assert len(rows) >= 10
    for what, where in rows:
        ticked = re.findall(r"`([^`]+)`", where)
        paths = [t for t in ticked if t.startswith(("jaxdream/", "pyproject"))]
        assert paths, f"{what!r}: no file named"
        files = []
        for path in paths:
            found = sorted(ROOT.glob(path.replace("NAME", "*")))
            assert found, f"{what!r}: {path} does not exist"
            files += [f for f in found if f.is_file()] + [
                g for f in found if f.is_dir() for g in f.rglob("*.py")
            ]
        source = "\n".join(f.read_text(encoding="utf-8") for f in files)
        for name in ticked:
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                assert re.search(rf"\b{name}\b", source), f"{what!r}: {name} not in {paths}"
