"""Start-up: with the persistent cache on, a dream's program is exported there (jax.export's
flatbuffer) and a later process takes it from there instead of tracing the dream again; a file
that is damaged, foreign or for other arguments is never used."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import jaxdream
from jaxdream import cache
from jaxdream.config import DreamConfig, Level

SMALL = DreamConfig(size=32, map=5, iterations=2, steps=2, levels=(Level(0), Level(1, tiles=(3,))))
DREAM = importlib.import_module("jaxdream.dreaming")
PROGRAMS = importlib.import_module("jaxdream.programs")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A persistent cache of its own, and no program remembered by this process."""
    import jax

    before = jax.config.jax_compilation_cache_dir
    cache.enable_compilation_cache(tmp_path / "xla")
    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))
    yield tmp_path / "xla"
    jax.config.update("jax_compilation_cache_dir", before)


def _exported_files(folder):
    return sorted((folder / cache.EXPORTED_FOLDER).glob("*.jaxexport"))


def _no_tracing(monkeypatch):
    """Make tracing the dream fail: only a program taken from the cache can dream."""

    def refuse(*args, **kwargs):
        raise AssertionError("the dream was traced again")

    monkeypatch.setattr(DREAM, "carve_batch", refuse)


def test_the_exported_program_gives_the_same_bytes(tiny, smooth_image, fresh_cache):
    model, params = tiny
    got = jaxdream.dream(smooth_image, SMALL, model=model, params=params)
    assert len(_exported_files(fresh_cache)) == 1
    import jax

    jax.config.update("jax_compilation_cache_dir", None)  # the plain path: traced as ever
    want = jaxdream.dream(smooth_image, SMALL, model=model, params=params)
    assert got.image.tobytes() == want.image.tobytes()


def test_a_later_dream_takes_the_program_from_the_cache(
    tiny, smooth_image, fresh_cache, monkeypatch
):
    model, params = tiny
    want = jaxdream.dream(smooth_image, SMALL, model=model, params=params, return_frames=True)
    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))  # as in a new process
    _no_tracing(monkeypatch)
    got = jaxdream.dream(smooth_image, SMALL, model=model, params=params, return_frames=True)
    assert got.image.tobytes() == want.image.tobytes()
    assert got.frames.tobytes() == want.frames.tobytes()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-10] + b"0123456789",  # its digest no longer matches
        lambda data: b"\x80\x04pickle" + data,  # not our header
        lambda data: b"",
    ],
)
def test_a_damaged_file_is_ignored_and_written_anew(
    tiny, smooth_image, fresh_cache, monkeypatch, damage
):
    model, params = tiny
    want = jaxdream.dream(smooth_image, SMALL, model=model, params=params)
    (path,) = _exported_files(fresh_cache)
    path.write_bytes(damage(path.read_bytes()))
    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))
    assert cache.load_exported(path.stem) is None
    got = jaxdream.dream(smooth_image, SMALL, model=model, params=params)
    assert got.image.tobytes() == want.image.tobytes()
    assert cache.load_exported(path.stem) is not None  # written anew


def test_a_valid_program_for_other_arguments_is_not_used(
    tiny, smooth_image, fresh_cache, monkeypatch
):
    """A well-formed file under the wrong name (another shape's program) fails the check."""
    model, params = tiny
    jaxdream.dream(smooth_image, SMALL, model=model, params=params)
    (small,) = _exported_files(fresh_cache)
    jaxdream.dream(smooth_image, SMALL.replace(size=64), model=model, params=params)
    (large,) = [p for p in _exported_files(fresh_cache) if p != small]
    want = jaxdream.dream(smooth_image, SMALL, model=model, params=params).image
    small.write_bytes(large.read_bytes())
    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))
    got = jaxdream.dream(smooth_image, SMALL, model=model, params=params).image
    assert got.tobytes() == want.tobytes()


def test_a_whole_program_of_another_dream_under_this_name_is_not_run(
    tiny, smooth_image, fresh_cache, monkeypatch
):
    """Another dream's entry (same shapes, other static settings: it fits every argument)
    copied over this one's: the header's digest covers the key, so it is refused, not run."""
    model, params = tiny
    want = jaxdream.dream(smooth_image, SMALL, model=model, params=params).image
    (mine,) = _exported_files(fresh_cache)
    jaxdream.dream(smooth_image, SMALL.replace(map=-1, steps=3), model=model, params=params)
    (other,) = [p for p in _exported_files(fresh_cache) if p != mine]
    mine.write_bytes(other.read_bytes())
    assert cache.load_exported(mine.stem) is None and cache.load_exported(other.stem) is not None
    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))
    got = jaxdream.dream(smooth_image, SMALL, model=model, params=params).image
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("kind", ["random bytes", "endless device", "fifo", "folder"])
def test_a_damaged_programs_index_costs_only_the_guess(fresh_cache, kind):
    import os
    import threading

    index = fresh_cache / cache.PROGRAMS_INDEX
    if kind == "random bytes":
        index.write_bytes(np.random.default_rng(0).bytes(4096) + b"\nabc\n")
    elif kind == "endless device":
        index.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(index)
    else:
        index.mkdir()
    said = []
    worker = threading.Thread(
        target=lambda: said.extend(
            [cache.holds_program("abc"), cache.note_program("def"), cache.holds_program("def")]
        ),
        daemon=True,
    )
    worker.start()
    worker.join(60)  # a read without a bound never ends
    assert not worker.is_alive()
    assert said == [kind == "random bytes", None, kind == "random bytes"]


def test_keys_name_everything_that_fixes_the_program(tiny):
    model, params = tiny
    images = np.zeros((1, 32, 32), np.float32)
    describe = lambda call: PROGRAMS.describe("dream", tuple(call), (1, 2, 3, 4))
    base = describe(DREAM.dream_call(model, params, SMALL, images))
    for other in (
        DREAM.dream_call(model, params, SMALL.replace(steps=3), images),
        DREAM.dream_call(model, params, SMALL, np.zeros((1, 32, 64), np.float32)),
        DREAM.dream_call(model, params, SMALL, images, return_frames=True),
        DREAM.dream_call(model, params, SMALL.replace(map=-1), images),  # a static field
    ):
        assert describe(other) != base
    # the numbers of the knobs are not part of it (they are traced)
    same = describe(DREAM.dream_call(model, params, SMALL.replace(map=6, epsilon=0.5), images))
    assert same == base
    assert cache.exported_key(base) != cache.exported_key(base + " ")


def test_no_cache_no_export(tiny, smooth_image, tmp_path, monkeypatch):
    import jax

    monkeypatch.setattr(PROGRAMS, "_EXPORTED", PROGRAMS.Bounded(8))
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        model, params = tiny
        call = DREAM.dream_call(model, params, SMALL, np.zeros((1, 32, 32), np.float32))
        assert DREAM.exported_program(call) is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


@pytest.mark.slow
def test_a_new_process_on_two_devices_dreams_from_the_cache(tmp_path):
    """Two single-threaded CPU devices (the CLI's setting: one image replicated, its tiles
    split): the second process loads the exported program, traces nothing, and the bytes
    equal those of a process without the cache."""
    script = """
import sys
from jaxdream.runtime import configure_cpu_devices
assert configure_cpu_devices(2)
import numpy as np
import jaxdream
from jaxdream import cache
from jaxdream.config import DreamConfig
if sys.argv[1] != "none":
    cache.enable_compilation_cache(sys.argv[1])
import importlib
dream = importlib.import_module("jaxdream.dreaming")
if sys.argv[2] == "refuse":
    def refuse(*a, **k):
        raise AssertionError("traced")
    dream.carve_batch = refuse
photo = np.linspace(0, 1, 48 * 64).reshape(48, 64)
r = jaxdream.dream(photo, DreamConfig(size=64, iterations=1, steps=2))
sys.stdout.write(r.image.tobytes().hex())
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "XLA_FLAGS"}
    folder = str(tmp_path / "xla")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=300,
        ).stdout

    plain = run("none", "trace")
    first = run(folder, "trace")
    second = run(folder, "refuse")
    assert plain == first == second
