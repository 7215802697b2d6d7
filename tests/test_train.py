import numpy as np
import pytest

from jaxdream.data import Split, load_split
from jaxdream.errors import ConfigError, DataError
from jaxdream.train import TrainConfig, evaluate, train_and_evaluate


def _quadrant_digits(n: int, seed: int) -> Split:
    """A learnable toy task: the label is the bright quadrant (0..3), on noisy 28x28 images."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n).astype(np.int32)
    images = rng.integers(0, 80, (n, 28, 28)).astype(np.uint8)
    for i, lab in enumerate(labels):
        r, c = divmod(int(lab), 2)
        images[i, r * 14 : r * 14 + 14, c * 14 : c * 14 + 14] += 150
    return Split(images, labels)


def test_tiny_training_lowers_the_loss():
    train, test = _quadrant_digits(256, 0), _quadrant_digits(128, 1)
    cfg = TrainConfig(epochs=5, batch_size=32, learning_rate=1e-2, widths=(4, 4, 4), hidden=8)
    before, _ = evaluate(cfg.model(), _initial_params(cfg), test)
    result = train_and_evaluate(cfg, train, test, progress=False)
    assert len(result.history) == 5
    assert result.history[-1].test_loss < 0.5 * before, (before, result.history)
    assert result.test_accuracy > 0.9


def _initial_params(cfg):
    import jax

    from jaxdream.model import init_params

    return init_params(cfg.model(), jax.random.split(jax.random.key(cfg.seed))[0])


def test_training_is_reproducible():
    data = _quadrant_digits(64, 2)
    cfg = TrainConfig(epochs=1, batch_size=16, widths=(4, 4, 4), hidden=8, seed=5)
    a = train_and_evaluate(cfg, data, data, progress=False).params
    b = train_and_evaluate(cfg, data, data, progress=False).params
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"batch_size": 0},
        {"learning_rate": float("nan")},
        {"learning_rate": -1e-3},
        {"warmup_epochs": 12},
        {"warmup_epochs": -1},
        {"weight_decay": float("inf")},
        {"widths": (4, 0, 4)},
        {"hidden": 0},
        {"conv": "winograd"},
    ],
)
def test_bad_training_settings_are_refused_before_any_work(bad):
    # Each once reached optax or the batching loop and failed there with a bare traceback.
    data = Split(np.zeros((8, 28, 28), np.uint8), np.zeros(8, np.int32))
    with pytest.raises(ConfigError, match=next(iter(bad))):
        train_and_evaluate(TrainConfig(**bad), data, data, progress=False)


def test_missing_data_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="TFDS_DATA_DIR"):
        load_split("test", data_dir=str(tmp_path))


def test_real_mnist_split_reads(mnist_dir):
    split = load_split("test[:100]", data_dir=mnist_dir)
    assert split.images.shape == (100, 28, 28) and split.images.dtype == np.uint8
    assert set(np.unique(split.labels)) <= set(range(10))
    with pytest.raises(DataError, match="split"):
        load_split("trian", data_dir=mnist_dir)


@pytest.mark.slow
def test_bundled_weights_reach_99_2_percent_on_real_mnist(mnist_dir, bundled):
    model, params = bundled
    test = load_split("test", data_dir=mnist_dir)
    assert len(test.labels) == 10_000
    _, accuracy = evaluate(model, params, test)
    assert accuracy >= 0.992, f"test accuracy {accuracy:.4f}"


def test_an_architecture_trains_on_resized_digits():
    train = _quadrant_digits(64, 3)
    cfg = TrainConfig(
        epochs=1,
        batch_size=32,
        widths=(4, 4, 4, 4),
        hidden=8,
        padding="same",
        input_size=(40, 40),
        pool_after=(1, 2, 3),
    )
    result = train_and_evaluate(cfg, train, train, progress=False)
    assert result.model.input_size == (40, 40) and result.model.padding == "same"
    assert result.params["dense"]["kernel"].shape == (5 * 5 * 4, 8)
    with pytest.raises(ConfigError, match="too small"):
        TrainConfig(widths=(4,) * 6, padding="valid").check()


def test_train_arch_on_a_slice_of_real_mnist_writes_a_self_describing_checkpoint(
    tmp_path, mnist_dir, capsys
):
    import json

    from jaxdream.checkpoint import load_checkpoint
    from jaxdream.cli import main
    from jaxdream.model import architecture_dict

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"widths": [4, 4, 4, 4], "padding": "same", "hidden": 8}))
    out = tmp_path / "w.msgpack"
    argv = ["train", "--data-dir", mnist_dir, "--train-split", "train[:256]"]
    argv += ["--test-split", "test[:64]", "--epochs", "1", "--batch-size", "64", "-q"]
    argv += ["--arch", str(arch), "--input-size", "36", "36", "--pool-after", "1", "2", "3"]
    assert main([*argv, "-o", str(out)]) == 0
    model, _, meta = load_checkpoint(out)
    assert architecture_dict(model) == {
        "widths": [4, 4, 4, 4],
        "hidden": 8,
        "num_classes": 10,
        "padding": "same",
        "input_size": [36, 36],
        "channels": 1,
        "pool_after": [1, 2, 3],
    }
    assert "--input-size 36 36" in meta["command"] and "--padding same" in meta["command"]
    card = out.with_suffix(".md").read_text()
    assert "36x36x1 -> conv 3x3 (4)" in card and "resized (bilinear) to 36x36" in card
    tables = json.loads(out.with_suffix(".maps.json").read_text())["layers"]
    assert list(tables) == ["conv1", "conv2", "conv3", "conv4"]
    capsys.readouterr()
    assert main(["info", "--weights", str(out)]) == 0
    assert "conv4 4x4x4" in capsys.readouterr().out
    arch.write_text(json.dumps({"widths": [4], "padding": "mirror"}))
    assert main([*argv, "-o", str(tmp_path / "x.msgpack")]) == 2
    assert "padding" in capsys.readouterr().err


@pytest.mark.slow
def test_the_second_bundled_network_reaches_98_5_percent_on_real_mnist(mnist_dir):
    from jaxdream.checkpoint import load_model

    model, params = load_model("mnist_cnn56")
    test = load_split("test", data_dir=mnist_dir)
    _, accuracy = evaluate(model, params, test)
    assert accuracy >= 0.985, f"test accuracy {accuracy:.4f}"
