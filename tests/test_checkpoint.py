import jax
import numpy as np
import pytest
from flax import serialization

from jaxdream.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    bundled_weights_path,
    load_checkpoint,
    load_model,
    save_checkpoint,
    validate_params,
)
from jaxdream.errors import CheckpointError
from jaxdream.model import CNN, init_params


def test_round_trip_is_exact(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "c.msgpack"
    save_checkpoint(path, model, params, {"note": "x", "accuracy": 0.5})
    model2, params2, meta = load_checkpoint(path, model)
    assert model2 == model and meta == {"note": "x", "accuracy": 0.5}
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params2), strict=True):
        np.testing.assert_array_equal(a, b)
        assert b.dtype == np.float32


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"not a checkpoint at all", lambda b: b""],
    ids=["truncated", "garbage", "empty"],
)
def test_corrupt_file_names_the_file(tmp_path, tiny, damage):
    model, params = tiny
    path = tmp_path / "bad.msgpack"
    save_checkpoint(path, model, params)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=r"bad\.msgpack"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.msgpack")


def test_other_architecture_is_refused(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "tiny.msgpack"
    save_checkpoint(path, model, params)
    with pytest.raises(CheckpointError, match=r"tiny\.msgpack"):
        load_checkpoint(path, CNN())


def test_wrong_shape_and_missing_layer_are_named(tiny):
    model, params = tiny
    bad = jax.tree.map(lambda a: a, params)
    bad["conv2"] = dict(bad["conv2"], kernel=np.zeros((3, 3, 4, 7), np.float32))
    del bad["dense"]
    with pytest.raises(CheckpointError) as err:
        validate_params(bad, model, source="test.msgpack")
    msg = str(err.value)
    assert "test.msgpack" in msg and "conv2/kernel has shape (3, 3, 4, 7)" in msg
    assert "missing dense/kernel" in msg


def test_failed_save_keeps_the_old_file(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "keep.msgpack"
    save_checkpoint(path, model, params)
    before = path.read_bytes()
    broken = dict(params, conv1={"kernel": object(), "bias": params["conv1"]["bias"]})
    with pytest.raises(Exception):  # noqa: B017 - any failure must leave the file alone
        save_checkpoint(path, model, broken)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.msgpack"]


def test_bundled_weights_load_with_no_argument():
    model, params = load_model()
    assert model == CNN()
    _, _, meta = load_checkpoint(bundled_weights_path())
    assert meta["test_accuracy"] >= 0.992
    assert meta["command"].startswith("jaxdream train")
    template = init_params(CNN(), jax.random.key(0))
    assert jax.tree.structure(template) == jax.tree.structure(params)


# --------------------------------------------------------------------------- checkpoints that lie


def _checkpoint(path, model_spec, params):
    state = {"format": FORMAT, "version": FORMAT_VERSION, "model": model_spec, "params": params}
    path.write_bytes(serialization.msgpack_serialize(state))


def test_checkpoints_that_lie(tmp_path, tiny):
    from jaxdream.errors import CheckpointError

    model, params = tiny
    spec = {"widths": [-4, 6, 8], "hidden": 12, "num_classes": 10}
    _checkpoint(tmp_path / "neg.msgpack", spec, {k: dict(v) for k, v in params.items()})
    with pytest.raises(CheckpointError, match="model description"):
        load_checkpoint(tmp_path / "neg.msgpack")
    good = {"widths": list(model.widths), "hidden": model.hidden, "num_classes": 10}
    weird = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in params.items()}
    weird["conv1"]["kernel"] = weird["conv1"]["kernel"].astype(np.complex64)
    _checkpoint(tmp_path / "complex.msgpack", good, weird)
    with pytest.raises(CheckpointError, match="complex64 values"):
        load_checkpoint(tmp_path / "complex.msgpack")
