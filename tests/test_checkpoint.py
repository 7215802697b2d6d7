import jax
import numpy as np
import pytest
from flax import serialization

from jaxdream.checkpoint import (
    BUNDLED,
    FORMAT,
    FORMAT_VERSION,
    bundled_weights_path,
    load_checkpoint,
    load_model,
    save_checkpoint,
    validate_params,
    weights_path,
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


def _checkpoint(path, model_spec, params, version=FORMAT_VERSION):
    state = {"format": FORMAT, "version": version, "model": model_spec, "params": params}
    path.write_bytes(serialization.msgpack_serialize(state))


def test_checkpoints_that_lie(tmp_path, tiny):
    from jaxdream.errors import CheckpointError

    model, params = tiny
    spec = {"widths": [-4, 6, 8], "hidden": 12, "num_classes": 10}
    _checkpoint(tmp_path / "neg.msgpack", spec, {k: dict(v) for k, v in params.items()}, 1)
    with pytest.raises(CheckpointError, match="model description"):
        load_checkpoint(tmp_path / "neg.msgpack")
    good = {"widths": list(model.widths), "hidden": model.hidden, "num_classes": 10}
    weird = {k: {n: np.asarray(a) for n, a in v.items()} for k, v in params.items()}
    weird["conv1"]["kernel"] = weird["conv1"]["kernel"].astype(np.complex64)
    _checkpoint(tmp_path / "complex.msgpack", good, weird, 1)
    with pytest.raises(CheckpointError, match="complex64 values"):
        load_checkpoint(tmp_path / "complex.msgpack")


# --------------------------------------------------------------------------- architectures


def test_any_architecture_round_trips_and_is_written_as_data(tmp_path):
    model = CNN(widths=(3, 4, 5, 6), padding="same", input_size=(20, 24), channels=3)
    model = model.clone(pool_after=(1, 3), hidden=9)
    params = init_params(model, jax.random.key(0))
    path = tmp_path / "arch.msgpack"
    save_checkpoint(path, model, params)
    state = serialization.msgpack_restore(path.read_bytes())
    assert state["version"] == FORMAT_VERSION == 2
    assert state["model"]["padding"] == "same" and list(state["model"]["input_size"]) == [20, 24]
    loaded, params2, _ = load_checkpoint(path)
    assert loaded == model and jax.tree.structure(params2) == jax.tree.structure(params)


def test_a_version_1_checkpoint_still_loads(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "old.msgpack"
    spec = {"widths": list(model.widths), "hidden": model.hidden, "num_classes": 10}
    state = {"format": FORMAT, "version": 1, "model": spec, "params": params, "metadata": {}}
    path.write_bytes(serialization.msgpack_serialize(state))
    assert load_checkpoint(path)[0] == model
    bundled = serialization.msgpack_restore(bundled_weights_path().read_bytes())
    assert bundled["version"] == 1  # the bundled file, as it was written
    for version, widths in ((1, [4, 6, 8, 8]), (3, list(model.widths))):
        state = dict(state, version=version, model=dict(spec, widths=widths))
        path.write_bytes(serialization.msgpack_serialize(state))
        with pytest.raises(CheckpointError, match="version"):
            load_checkpoint(path)


def test_an_invalid_architecture_is_refused_with_the_file_named(tmp_path, tiny):
    model, params = tiny
    good = {"widths": list(model.widths), "hidden": 12, "num_classes": 10, "padding": "valid"}
    good |= {"input_size": [28, 28], "channels": 1, "pool_after": [1, 2]}
    for change, message in (
        ({"padding": "reflect"}, "padding"),
        ({"channels": 2}, "channels"),
        ({"layers": 5}, "unknown architecture field"),
        ({"input_size": [4, 4]}, "too small"),
        ({"pool_after": [7]}, "pool_after"),
    ):
        _checkpoint(tmp_path / "arch.msgpack", good | change, params)
        with pytest.raises(CheckpointError, match=rf"arch\.msgpack.*{message}"):
            load_checkpoint(tmp_path / "arch.msgpack")
    spec = dict(good)
    del spec["padding"]
    _checkpoint(tmp_path / "arch.msgpack", spec, params)
    with pytest.raises(CheckpointError, match="missing padding"):
        load_checkpoint(tmp_path / "arch.msgpack")


def test_weights_of_another_architecture_name_the_first_parameter_that_differs(tmp_path, tiny):
    model, params = tiny
    path = tmp_path / "tiny.msgpack"
    save_checkpoint(path, model, params)
    with pytest.raises(CheckpointError, match=r"first parameter that differs: conv1/kernel"):
        load_checkpoint(path, CNN())
    same_pad = model.clone(padding="same")
    with pytest.raises(CheckpointError, match=r"differs: dense/kernel: \(\d+, 12\) needed"):
        load_checkpoint(path, same_pad)
    wider = model.clone(widths=(4, 6, 9))
    with pytest.raises(CheckpointError, match=r"differs: conv3/kernel: \(3, 3, 6, 9\) needed"):
        validate_params(params, wider, source="w.msgpack")


def test_bundled_networks_by_name():
    assert weights_path(None) == bundled_weights_path() == bundled_weights_path("mnist_cnn")
    assert weights_path("mnist_cnn56") == bundled_weights_path("mnist_cnn56")
    with pytest.raises(CheckpointError, match="mnist_cnn56"):
        bundled_weights_path("mnist_cnn99")
    from jaxdream.cli._core import BUNDLED_NAMES

    assert tuple(BUNDLED) == BUNDLED_NAMES


def test_the_second_bundled_network_describes_itself_and_has_its_tables():
    from jaxdream.maps import load_tables

    model, params = load_model("mnist_cnn56")
    assert model.widths == (8, 16, 32, 64) and model.padding == "same"
    assert model.input_size == (56, 56) and model.pools == (1, 2, 3)
    _, _, meta = load_checkpoint(bundled_weights_path("mnist_cnn56"))
    assert meta["test_accuracy"] >= 0.985 and "--padding same" in meta["command"]
    tables = load_tables(bundled_weights_path("mnist_cnn56"))  # None where stale
    assert tables is not None and list(tables) == ["conv1", "conv2", "conv3", "conv4"]
    assert params["dense"]["kernel"].shape == (7 * 7 * 64, 70)
