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
