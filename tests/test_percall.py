"""Per-call work of the public dream: what is fixed by the config is made once, the weights are
read once per file version, and the results keep the bytes of the path that makes everything
afresh."""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest

import jaxdream
from jaxdream import parallel as par
from jaxdream.carve import carve_batch
from jaxdream.checkpoint import load_checkpoint, load_model, save_checkpoint
from jaxdream.config import DreamConfig, Level
from jaxdream.dreaming import dream_call, prepare
from jaxdream.errors import CheckpointError
from jaxdream.imageio import load_photo
from jaxdream.model import init_params
from jaxdream.objectives import channel

SMALL = DreamConfig(
    size=32, map=5, iterations=2, steps=2, levels=(Level(0), Level(1, tiles=(0, 3)))
)


def _afresh(model, params, config: DreamConfig, photo) -> np.ndarray:
    """The dream with every piece made anew, as ``dream`` made them before they were kept."""
    p = load_photo(photo)
    gray = prepare(p, config.working_shape(p.gray.shape))[None]
    images = jax.numpy.asarray(gray, jax.numpy.float32)
    indices = jax.numpy.arange(1)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(config.seed), i))(indices)
    spec = config.spec(model, images.shape[1:])
    execution = par.resolve("auto", 1, config.tile_count())
    out, _ = carve_batch(spec, params, images, config.knobs(), keys, execution)
    return np.asarray(out[0])


@pytest.mark.parametrize("seed", [0, 7])
def test_repeated_dreams_keep_the_bytes_of_the_fresh_path(tiny, smooth_image, seed):
    model, params = tiny
    config = SMALL.replace(seed=seed)
    want = _afresh(model, params, config, smooth_image)
    for _ in range(3):  # the first call makes the fixed parts, the others reuse them
        got = jaxdream.dream(smooth_image, config, model=model, params=params).image
        assert got.tobytes() == want.tobytes()


def test_fixed_parts_are_made_once_per_config(tiny, smooth_image):
    model, params = tiny
    config = SMALL.replace(seed=123)
    images = np.zeros((2, 32, 32), np.float32)
    first = dream_call(model, params, config, images)
    again = dream_call(model, params, config, images)
    assert first.knobs is again.knobs and first.keys is again.keys and first.spec is again.spec
    other = dream_call(model, params, config.replace(epsilon=0.02), images)
    assert other.knobs is not first.knobs
    assert float(other.knobs.epsilon) == np.float32(0.02)
    # the indices pick the keys
    shifted = dream_call(model, params, config, images, indices=[1, 2])
    np.testing.assert_array_equal(
        jax.random.key_data(shifted.keys[0]), jax.random.key_data(first.keys[1])
    )


def test_an_objective_holding_a_numpy_array_is_read_each_call(tiny, smooth_image):
    """A numpy array may be written to by its owner: such a config's knobs are made anew."""
    model, params = tiny
    maps = np.array(3)
    config = SMALL.replace(objective=channel("conv3", maps), seed=5)
    images = np.zeros((1, 32, 32), np.float32)
    assert int(dream_call(model, params, config, images).knobs.objective.map[0]) == 3
    maps[...] = 5
    assert int(dream_call(model, params, config, images).knobs.objective.map[0]) == 5


def test_an_unhashable_setting_is_dreamt_uncached(tiny, smooth_image):
    model, params = tiny
    config = SMALL.replace(size=[32, 32], seed=9)
    with pytest.raises(TypeError):
        hash(config)
    a = jaxdream.dream(smooth_image, config, model=model, params=params).image
    b = jaxdream.dream(smooth_image, config.replace(size=(32, 32)), model=model, params=params)
    assert a.tobytes() == b.image.tobytes()


def test_a_bad_config_is_refused_every_call(tiny, smooth_image):
    model, params = tiny
    bad = SMALL.replace(steps=-1)
    for _ in range(2):
        with pytest.raises(jaxdream.ConfigError):
            jaxdream.dream(smooth_image, bad, model=model, params=params)


def test_weights_are_read_once_per_file_version(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "w.msgpack"
    save_checkpoint(path, model, params, {"n": 1})
    _, first, meta = load_checkpoint(path)
    _, again, _ = load_checkpoint(path)
    assert first is not again  # each caller has its own dictionaries ...
    assert first["conv1"]["kernel"] is again["conv1"]["kernel"]  # ... of the same arrays
    assert not first["conv1"]["kernel"].flags.writeable
    first["conv1"]["kernel"] = None  # a caller's change stays its own
    meta["n"] = 2
    _, third, meta3 = load_checkpoint(path)
    assert third["conv1"]["kernel"] is again["conv1"]["kernel"] and meta3["n"] == 1

    other = init_params(model, jax.random.key(1))
    save_checkpoint(path, model, other, {"n": 3})  # replaced: a new inode and mtime
    _, changed, meta4 = load_checkpoint(path)
    assert meta4["n"] == 3
    np.testing.assert_array_equal(changed["conv1"]["kernel"], other["conv1"]["kernel"])


def test_a_file_rewritten_in_place_is_read_again(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "w.msgpack"
    save_checkpoint(path, model, params, {"n": 1})
    load_checkpoint(path)
    good = path.read_bytes()
    with open(path, "wb") as f:  # the same inode, new contents
        f.write(b"not a checkpoint" + good[16:])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_deleted_checkpoint_is_not_served_from_memory(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "w.msgpack"
    save_checkpoint(path, model, params)
    load_checkpoint(path)
    path.unlink()
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_load_model_is_kept_per_path(bundled):
    model, params = load_model()
    again = load_model()[1]
    assert params["dense"]["kernel"] is again["dense"]["kernel"]
    assert model == bundled[0]


def test_dream_without_params_matches_the_bundled_weights(bundled, smooth_image):
    model, params = bundled
    config = DreamConfig(size=32, iterations=1, steps=2)
    a = jaxdream.dream(smooth_image, config).image
    b = jaxdream.dream(smooth_image, config, model=model, params=params).image
    assert a.tobytes() == b.tobytes()
    module = sys.modules["jaxdream.dreaming"]
    assert len(module._FIXED) <= module.KEEP_FIXED


def test_the_per_call_benchmark_measures_each_call(tiny, smooth_image):
    from benchmarks import percall

    model, params = tiny
    gray = prepare(load_photo(smooth_image), (32, 32))
    fns = percall.calls(SMALL, model, params, gray)
    fns.pop("api_no_params")  # the tiny model's maps, not the bundled one's
    record = percall.measure(fns, repeats=2)
    assert set(record) == {"core", "api"}
    assert all(r["wall_s"] > 0 and r["cpu_s"] >= 0 for r in record.values())
