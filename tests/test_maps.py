"""The selectivity study (``jaxdream.maps``): the table against a plain per-image computation,
the index's definition, the stored tables of the bundled weights, MNIST on a small split, and
networks of other input kinds (a colour network, a 40x24 one) with the data sets' errors."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.checkpoint import bundled_weights_path
from jaxdream.errors import ConfigError, DataError
from jaxdream.maps import (
    CARD_HEADING,
    MapTable,
    bundled_tables,
    dataset_map_table,
    labelled_split,
    map_table,
    maps_card,
    mnist_map_table,
    write_tables,
)
from jaxdream.model import activations, standardize
from jaxdream.network import as_network
from tests.helpers import LinenCNN, refused


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n).astype(np.int32)


@pytest.mark.parametrize("layer", ["conv2", "conv3"])
def test_table_is_the_mean_per_class_of_each_maps_mean(tiny, layer):
    model, params = tiny
    images, labels = digits(23)
    table = map_table(model, params, images, labels, layer, batch_size=5)  # a padded last batch
    per_image = np.stack(
        [
            np.asarray(activations(model, params, standardize(im / 255.0))[layer]).mean((0, 1))
            for im in images.astype(np.float32)
        ]
    )
    for c in range(10):
        want = per_image[labels == c].mean(0) if (labels == c).any() else np.zeros(8)
        np.testing.assert_allclose(table.means[:, c], want[: table.means.shape[0]], atol=1e-5)
    assert table.counts.tolist() == np.bincount(labels, minlength=10).tolist()
    assert table.layer == layer


def test_selectivity_index():
    means = np.array(
        [
            [1.0] * 10,  # fires for all alike
            [1.0] * 9 + [4.0],  # a 9-map: 4 times the others
            [0.0] * 10,  # quiet
            [2.0] * 9 + [5.0],  # fires more for 9s, less selectively
            [1.0, 3.0] + [1.0] * 8,  # a 1-map
        ]
    )
    t = MapTable("conv3", means, np.full(10, 5))
    assert t.top.tolist() == [0, 9, 0, 9, 1]
    np.testing.assert_allclose(t.selectivity, [1.0, 4.0, 0.0, 2.5, 3.0])
    assert t.quiet.tolist() == [False, False, True, False, False]
    assert t.most_selective(9) == 1 and t.most_selective(1) == 4
    assert t.most_selective(5) in (0, 1, 3, 4)  # no map's top class: the largest ratio
    assert t.ranked()[0] == 1
    back = MapTable.from_dict(t.to_dict())
    np.testing.assert_allclose(back.means, t.means)
    assert back.counts.tolist() == t.counts.tolist()
    with pytest.raises(ConfigError, match="digit"):
        t.most_selective(10)


def test_bad_layers_and_data_are_refused(tiny):
    model, params = tiny
    images, labels = digits(4)
    with pytest.raises(ConfigError, match="layer of maps"):
        map_table(model, params, images, labels, "dense")
    with pytest.raises(DataError):
        map_table(model, params, np.stack([images, images], -1), labels)  # two channels
    with pytest.raises(DataError, match="labels are 0"):
        map_table(model, params, images, labels + 10)
    with pytest.raises(DataError):
        map_table(model, params, images, labels[:3])
    with pytest.raises(ConfigError, match="batch_size"):
        map_table(model, params, images, labels, batch_size=0)


def test_bundled_tables_name_our_nine_map(tmp_path):
    tables = bundled_tables()
    conv3 = tables["conv3"]
    assert conv3.means.shape == (64, 10) and conv3.counts.sum() == 10_000
    nine = conv3.most_selective(9)
    assert conv3.top[nine] == 9
    card = bundled_weights_path().with_suffix(".md").read_text()
    assert f"is map {nine} of conv3 here" in card and card.count(CARD_HEADING) == 1
    assert card.endswith(maps_card(tables))  # the card says what the stored tables say
    write_tables(tmp_path / "t.json", tables, {"split": "x"})
    assert (tmp_path / "t.json").read_text().startswith("{")


def test_model_card_holds_the_maps_section(tiny):
    from jaxdream.train import EpochReport, TrainResult, model_card

    model, params = tiny
    result = TrainResult(model, params, [EpochReport(1, 0.5, 0.4, 0.9, 1.0)])
    metadata = {
        "versions": {"jax": "x"},
        "test_accuracy": 0.9,
        "test_loss": 0.4,
        "command": "jaxdream train",
        "train_config": {"seed": 0},
    }
    plain = model_card(result, metadata, 10)
    table = map_table(model, params, *digits(30), "conv3")
    card = model_card(result, metadata, 10, {"conv3": table})
    assert CARD_HEADING not in plain and card.startswith(plain)
    assert f"most selective for 9s is map {table.most_selective(9)}" in card


@pytest.mark.slow
def test_mnist_small_split_agrees_with_the_stored_table(mnist_dir, bundled):
    model, params = bundled
    small = mnist_map_table("conv3", "test[:400]", model=model, params=params, data_dir=mnist_dir)
    assert small.counts.sum() == 400
    stored = bundled_tables()["conv3"]
    # 400 digits give every map's profile over the classes nearly as the 10,000 do.
    corr = np.corrcoef(small.means.ravel(), stored.means.ravel())[0, 1]
    assert corr > 0.95


def test_info_shows_each_digits_map(capsys):
    from jaxdream.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    nine = bundled_tables()["conv3"].most_selective(9)
    assert f"9-map 56 is map {nine} here" in out.splitlines()[-2]
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["maps"]["conv3"]["most_selective"][9] == nine
    assert set(info["maps"]) == {"conv1", "conv2", "conv3"}


@pytest.mark.slow
def test_maps_command_on_a_small_split(mnist_dir, capsys, tmp_path):
    from jaxdream.cli import main

    split = "test[:50]"
    assert main(["maps", "--data-dir", mnist_dir, "--split", split, "--layer", "conv2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(CARD_HEADING) and "most selective map of conv2" in out
    assert main(["maps", "--data-dir", mnist_dir, "--split", split, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layer"] == "conv3" and sum(data["counts"]) == 50 and len(data["maps"]) == 64
    assert main(["maps", "--layer", "conv9", "--data-dir", mnist_dir]) == 2
    assert "conv9" in capsys.readouterr().err


@pytest.mark.slow
def test_tables_saved_beside_a_checkpoint(mnist_dir, tiny, tmp_path):
    from jaxdream.checkpoint import save_checkpoint
    from jaxdream.maps import load_tables, tables_path, write_beside

    model, params = tiny
    weights = tmp_path / "tiny.msgpack"
    save_checkpoint(weights, model, params)
    weights.with_suffix(".md").write_text("# card\n")
    assert load_tables(weights) is None  # none measured yet
    path = write_beside(weights, mnist_dir, "test[:30]")
    assert path == tables_path(weights)
    tables = load_tables(weights)
    assert set(tables) == {"conv1", "conv2", "conv3"} and tables["conv3"].counts.sum() == 30
    card = weights.with_suffix(".md").read_text()
    assert card.startswith("# card\n") and card.endswith(maps_card(tables))
    write_beside(weights, mnist_dir, "test[:30]")  # again: the section replaced, not added
    assert weights.with_suffix(".md").read_text() == card
    save_checkpoint(weights, model, jax.tree.map(lambda a: a + 1, params))
    assert load_tables(weights) is None  # measured for other weights: not shown


@pytest.mark.slow
def test_training_stores_the_tables_of_its_weights(mnist_dir, tmp_path, capsys):
    from jaxdream.cli import main
    from jaxdream.maps import load_tables

    out = tmp_path / "w.msgpack"
    argv = ["train", "--data-dir", mnist_dir, "--train-split", "train[:256]"]
    argv += ["--test-split", "test[:128]", "--epochs", "1", "--widths", "4", "4", "4"]
    assert main([*argv, "--hidden", "8", "-q", "-o", str(out)]) == 0
    tables = load_tables(out)
    assert tables["conv3"].counts.sum() == 128 and tables["conv1"].means.shape == (4, 10)
    assert out.with_suffix(".md").read_text().count(CARD_HEADING) == 1
    capsys.readouterr()
    assert main(["info", "--weights", str(out)]) == 0
    assert "conv3's most selective map for digits 0-9" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncated", "bytes changed", "description"])
def test_damaged_mnist_files_are_one_line_naming_the_folder(mnist_dir, tmp_path, capsys, damage):
    """A copy of the test split (the train split linked), damaged three ways: one line that
    names the folder and what to do, exit 2; never the record reader's traceback."""
    import shutil

    from jaxdream.cli import main

    (version,) = [p for p in (Path(mnist_dir) / "mnist").iterdir() if p.is_dir()]
    copy = tmp_path / "mnist" / version.name
    copy.mkdir(parents=True)
    for p in version.iterdir():
        if "train" in p.name:
            (copy / p.name).symlink_to(p)
        else:
            shutil.copyfile(p, copy / p.name)
    records = next(copy.glob("mnist-test.array_record*"))
    data = bytearray(records.read_bytes())
    if damage == "truncated":
        records.write_bytes(data[: len(data) // 4])
    elif damage == "bytes changed":
        data[2_000:3_000_000:997] = bytes(b ^ 0x55 for b in data[2_000:3_000_000:997])
        records.write_bytes(data)
    else:
        (copy / "dataset_info.json").write_text("{not json")
    assert main(["maps", "--data-dir", str(tmp_path), "--split", "test[:100]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: MNIST's"), err
    assert str(tmp_path) in err[0] and "prepare it again" in err[0]


@pytest.fixture(scope="module")
def colour_net():
    """The small Linen CNN on 32x32 RGB input, as a ``Network``: ``(network, params)``."""
    module = LinenCNN()
    params = jax.jit(lambda k: module.init(k, jnp.zeros((1, 32, 32, 3)))["params"])(
        jax.random.key(1)
    )
    return as_network(module, params)


def plain_means(network, params, x: np.ndarray, labels: np.ndarray, layer: str) -> np.ndarray:
    """Per class ``(maps, classes)``: the mean over the images ``x`` (already the network's
    input) of each map's mean activation, one image at a time."""
    per_image = np.stack(
        [np.asarray(network.activations(params, im)[layer]).mean((0, 1)) for im in x]
    )
    return np.stack([per_image[labels == c].mean(0) for c in range(10)], axis=1)


def test_gray_digits_for_a_colour_network_are_repeated_resized_standardized(colour_net):
    network, params = colour_net
    images, labels = digits(20)
    labels = np.arange(20) % 10
    table = map_table(network, params, images, labels, "Conv_1", batch_size=8)
    x = jnp.repeat(jnp.asarray(images, jnp.float32)[..., None] / 255.0, 3, axis=-1)
    x = jax.vmap(standardize)(jax.image.resize(x, (20, 32, 32, 3), "bilinear"))
    want = plain_means(network, params, np.asarray(x), labels, "Conv_1")
    np.testing.assert_allclose(table.means, want, rtol=1e-4, atol=1e-5)
    assert table.means.shape == (6, 10) and table.names is None


def test_colour_images_for_a_gray_network_are_made_luminance(nnx_net):
    network, params = as_network(nnx_net, input_shape=(40, 24, 1))
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 30, 30, 3), np.uint8)
    labels = np.arange(10) % 3
    names = ("cat", "dog", "ship")
    table = map_table(network, params, images, labels, "conv2", names=names)
    gray = np.asarray(images, np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    x = jax.image.resize(jnp.asarray(gray)[..., None] / 255.0, (10, 40, 24, 1), "bilinear")
    x = np.asarray(jax.vmap(standardize)(x))
    per_image = np.stack(
        [np.asarray(network.activations(params, im)["conv2"]).mean((0, 1)) for im in x]
    )
    want = np.stack([per_image[labels == c].mean(0) for c in range(3)], axis=1)
    np.testing.assert_allclose(table.means, want, rtol=1e-4, atol=1e-5)
    assert table.names == names and table.counts.tolist() == [4, 3, 3]
    assert table.summary().splitlines()[2].startswith("| 0 (cat) |")
    assert MapTable.from_dict(table.to_dict()).names == names
    card = maps_card({"conv2": table}, data="pets test[:10]")
    assert "class of pets test[:10]" in card and "most selective for class 2 (ship)" in card


@pytest.mark.slow
def test_mnist_for_a_colour_and_a_40x24_network(mnist_dir, colour_net, nnx_net):
    for network, params, layer in (
        (*colour_net, "Conv_1"),
        (*as_network(nnx_net, input_shape=(40, 24, 1)), "conv2"),
    ):
        table = dataset_map_table(
            layer, "test[:60]", "mnist", network=network, params=params, data_dir=mnist_dir
        )
        assert table.counts.sum() == 60 and table.means.shape[1] == 10
        assert np.isfinite(table.means).all() and table.means.max() > 0


def test_mnist_read_as_a_labelled_split(mnist_dir):
    data = labelled_split("mnist", "test[:20]", mnist_dir)
    assert data.images.shape == (20, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.shape == (20,) and data.names is None


@pytest.mark.slow
def test_maps_command_for_a_colour_network(mnist_dir, capsys):
    from jaxdream.cli import main

    net = ["--network", "tests/networks/linen_cnn.py:NET", "--input-shape", "32", "32", "3"]
    argv = ["maps", *net, "--dataset", "mnist", "--data-dir", mnist_dir, "--split", "test[:40]"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layer"] == "conv3" and sum(data["counts"]) == 40 and "classes" not in data
    assert len(data["maps"]) == 8  # conv3: the network's deepest convolution


@pytest.mark.parametrize(
    "dataset, data_dir, words",
    [
        ("cifar10", "mnist", "'cifar10' is not prepared in"),
        ("no_such_data_set", None, "is not a TFDS data set"),
        ("imdb_reviews", None, "features 'image' and 'label'"),
    ],
)
def test_data_sets_that_cannot_be_read_are_one_line(
    mnist_dir, capsys, monkeypatch, dataset, data_dir, words
):
    """Absent from the folder (cifar10 where only MNIST lies), no TFDS name, no images: one
    line, exit 2, before any network work; the library raises the project's errors."""
    import jaxdream.maps

    monkeypatch.setattr(jaxdream.maps, "_class_sums", None)  # any network work would fail
    folder = str(Path(mnist_dir) / data_dir) if data_dir else mnist_dir
    line = refused(capsys, ["maps", "--dataset", dataset, "--data-dir", folder])
    assert words in line
    with pytest.raises(DataError if data_dir else ConfigError, match=words.split()[-1]):
        labelled_split(dataset, "test", folder)


def test_save_is_for_mnist_and_a_checkpoint(capsys):
    line = refused(capsys, ["maps", "--save", "--dataset", "cifar10"])
    assert "--save" in line


def test_an_rgb_data_set_is_read_through_tfds_and_studied(monkeypatch, colour_net, nnx_net):
    """A data set other than MNIST through TFDS's own ``data_source``: its records made by
    TFDS's ``mock_data`` from the real ``cifar10`` builder's features (32x32 RGB, 10 labels),
    since only MNIST is prepared offline; the folder check (``is_prepared``) is the one thing
    stood in for."""
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    source = tfds.data_source

    def mocked_source(*args, **kwargs):  # the mock's __getitems__ is not bound to its source
        made = source(*args, **kwargs)
        made.__getitems__ = lambda keys: [made[k] for k in keys]
        return made

    monkeypatch.setattr(tfds, "data_source", mocked_source)
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        data = labelled_split("cifar10", "test")
        table = dataset_map_table(
            "Conv_1", "test", "cifar10", network=colour_net[0], params=colour_net[1]
        )
    assert data.images.shape == (12, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.labels.shape == (12,) and 0 <= data.labels.min() <= data.labels.max() < 10
    assert table.counts.sum() == 12 and np.isfinite(table.means).all()
    # the same images for a gray network of another shape: made luminance and resized
    gray = map_table(
        *as_network(nnx_net, input_shape=(40, 24, 1)), data.images, data.labels, "conv2"
    )
    assert gray.counts.sum() == 12 and np.isfinite(gray.means).all()
