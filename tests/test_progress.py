"""Progress: a dream told iteration by iteration (one call each, the same bytes as the whole
program), and the compile stage told as it happens (compiled, or loaded from the cache)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxdream import parallel, progress
from jaxdream.config import DreamConfig, Level
from jaxdream.dreaming import dream, dream_many


@pytest.mark.parametrize("schedule", ["batched", "faithful"])
def test_a_dream_told_iteration_by_iteration_gives_the_same_bytes(bundled, smooth_image, schedule):
    _, params = bundled
    levels = (Level(0), Level(1, (0, 3)))
    cfg = DreamConfig(size=40, iterations=3, steps=2, levels=levels, schedule=schedule)
    seen = []
    told = dream(smooth_image, cfg, params=params, progress=seen.append, return_stages=True)
    whole = dream(smooth_image, cfg, params=params, return_stages=True)
    assert seen == [1, 2, 3]
    np.testing.assert_array_equal(told.image, whole.image)
    np.testing.assert_array_equal(told.frames, whole.frames)
    for a, b in zip(told.stages, whole.stages, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_batch_told_by_iteration_over_padded_chunks_and_a_single_iteration(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(size=40, iterations=3, steps=2, levels=(Level(0), Level(1)))
    photos = [smooth_image, smooth_image[::-1].copy(), smooth_image[:, ::-1].copy()]
    execution = parallel.Execution(parallel.Chunked(2))  # 3 photos: the last chunk padded
    seen = []
    told = dream_many(photos, cfg, params=params, parallel=execution, progress=seen.append)
    assert seen == [1, 2, 3]
    for a, b in zip(told, dream_many(photos, cfg, params=params, parallel=execution), strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    one = cfg.replace(iterations=1)  # one iteration: one call (XLA inlines a loop of one)
    seen = []
    a = dream(smooth_image, one, params=params, progress=seen.append)
    assert seen == [1]
    np.testing.assert_array_equal(a.image, dream(smooth_image, one, params=params).image)


def test_compile_stage_is_told_once_per_program_in_a_process(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(size=44, iterations=1, steps=2)  # a shape no other test compiles
    events = []
    with progress.watching_compiles(lambda event, seconds: events.append(event)):
        first = dream(smooth_image, cfg, params=params)
        again = dream(smooth_image, cfg, params=params)
    assert events == ["compiling", "compiled"]  # the second dream reuses the program
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.image, dream(smooth_image, cfg, params=params).image)


SCRIPT = """
import json, numpy as np
from jaxdream import DreamConfig, dream, dream_photos, progress
from jaxdream.cache import enable_compilation_cache
enable_compilation_cache()
events = []
photo = np.linspace(0, 1, 36 * 36).reshape(36, 36)
with progress.watching_compiles(lambda event, seconds: events.append(event)):
    dream(photo, DreamConfig(size=36, iterations=1, steps=1))
    run = dream_photos([photo], DreamConfig(size=36, iterations=2, steps=1))
    list(run)
print(json.dumps([events, run.new_programs, run.loaded_programs]))
"""


def test_a_new_process_loads_the_programs_and_says_so_beforehand(tmp_path):
    env = {"JAXDREAM_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run():
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    assert run() == [["compiling", "compiled"] * 2, 1, 0]
    assert run() == [["loading", "loaded"] * 2, 1, 1]
    (tmp_path / "jaxdream-programs.txt").unlink()  # a cache jaxdream did not note: told after
    assert run() == [["compiling", "loaded"] * 2, 1, 1]
