"""Progress: iterations reported from inside the program once per iteration of the batch, and
the compile stage told as it happens (compiled, or loaded from the persistent cache)."""

import json
import subprocess
import sys

import numpy as np

from jaxdream import parallel, progress
from jaxdream.config import DreamConfig, Level
from jaxdream.dream import dream, dream_many


def test_each_iteration_is_told_once_for_a_padded_chunked_batch(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(size=40, iterations=3, steps=2, levels=(Level(0), Level(1)))
    photos = [smooth_image, smooth_image[::-1].copy(), smooth_image[:, ::-1].copy()]
    seen = []
    # Chunks of 2 over 3 photos: the last chunk is padded with a copy, which reports too.
    execution = parallel.Execution(parallel.Chunked(2))
    results = dream_many(photos, cfg, params=params, parallel=execution, progress=seen.append)
    assert seen == [1, 2, 3]
    plain = dream_many(photos, cfg, params=params, parallel=execution)
    for a, b in zip(results, plain, strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_listener_counts_images_and_ignores_repeats():
    seen = []
    with progress.listening(seen.append, images=2):
        for image, iteration in [(0, 0), (0, 0), (1, 0), (1, 1), (1, 1), (0, 1), (0, 2)]:
            progress.iteration_done(image, iteration)
    assert seen == [1, 2]  # the third iteration of image 1 never came
    progress.iteration_done(0, 5)  # no listener: nothing happens, nothing fails


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
from jaxdream import DreamConfig, dream, progress
from jaxdream.cache import enable_compilation_cache
enable_compilation_cache()
events = []
with progress.watching_compiles(lambda event, seconds: events.append(event)):
    dream(np.linspace(0, 1, 36 * 36).reshape(36, 36), DreamConfig(size=36, iterations=1, steps=1))
print(json.dumps(events))
"""


def test_a_new_process_loads_the_program_and_says_so_beforehand(tmp_path):
    env = {"JAXDREAM_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run():
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    assert run() == ["compiling", "compiled"]
    assert run() == ["loading", "loaded"]
    (tmp_path / "jaxdream-programs.txt").unlink()  # a cache jaxdream did not note: told after
    assert run() == ["compiling", "loaded"]
