"""Which map answers which digit: a selectivity study of a layer's maps on MNIST.

For each map of a layer, ``map_table`` measures the mean activation for the digits of each
class (an image's activation of a map: its mean over the map's positions, after the ReLU), and
a **selectivity index**: the mean for the map's top class divided by the mean of its means for
the other nine classes. 1 means the map fires for every digit alike; 3 means three times as
much for its top digit as for an average other digit; a quiet map (its top-class mean under 5%
of the layer's mean activation: a ratio of near-zeros says nothing) has index 0.
``selectivity_for(d)`` is the same ratio for digit ``d`` whatever the map's top class.
``most_selective(d)`` names the map that plays the article's "map 56, strongly triggered by
handwritten 9s" for digit ``d``: of the maps whose top class is ``d``, the most selective (and
where ``d`` is no map's top class, the largest ``selectivity_for(d)``).

The tables of the bundled weights are stored beside them (``weights/mnist_cnn.maps.json``,
written by ``jaxdream maps --save`` from the MNIST test split) so that the model card and
``jaxdream info`` show them without MNIST.

>>> import jax
>>> from jaxdream.model import CNN, init_params
>>> model = CNN(widths=(4, 4, 4), hidden=8)
>>> params = init_params(model, jax.random.key(0))
>>> rng = np.random.default_rng(0)
>>> images, labels = rng.integers(0, 255, (20, 28, 28), np.uint8), np.arange(20) % 10
>>> table = map_table(model, params, images, labels, "conv3", batch_size=8)
>>> table.means.shape, table.counts.tolist() == [2] * 10
((4, 10), True)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream._files import atomic_write
from jaxdream.checkpoint import load_model, weights_path
from jaxdream.checks import whole_number
from jaxdream.data import load_split
from jaxdream.errors import ConfigError, DataError
from jaxdream.model import CNN, prepare_digits, standardize
from jaxdream.network import Network, features, layer_shapes, network_argument, resolve

CLASSES = 10
QUIET = 0.05  # a map whose top-class mean is under this fraction of the layer's mean
BUNDLED_TABLES = "mnist_cnn.maps.json"  # beside the bundled weights
TABLE_LAYERS = ("conv1", "conv2", "conv3")  # stored for the bundled weights (table_layers)
COMMAND = "jaxdream maps --save"  # writes BUNDLED_TABLES from the MNIST test split


class MapTable(NamedTuple):
    """Per map of ``layer``: ``means`` ``(maps, 10)``, the mean activation for each digit
    class, over ``counts[c]`` test images of class ``c``."""

    layer: str
    means: np.ndarray
    counts: np.ndarray

    @property
    def top(self) -> np.ndarray:
        """Each map's top class: the digit it fires for most."""
        return np.argmax(self.means, axis=1)

    @property
    def quiet(self) -> np.ndarray:
        """Maps that hardly fire: a top-class mean under ``QUIET`` of the layer's mean."""
        return self.means.max(axis=1) < QUIET * self.means.mean()

    def selectivity_for(self, digit: int) -> np.ndarray:
        """Each map's mean for ``digit`` over the mean of its means for the other classes
        (0 for quiet maps)."""
        others = np.delete(self.means, digit, axis=1).mean(axis=1)
        ratio = self.means[:, digit] / np.maximum(others, np.finfo(np.float64).tiny)
        return np.where(self.quiet, 0.0, ratio)

    @property
    def selectivity(self) -> np.ndarray:
        """Each map's selectivity index: ``selectivity_for`` its top class."""
        return np.asarray([self.selectivity_for(int(d))[m] for m, d in enumerate(self.top)])

    def most_selective(self, digit: int) -> int:
        """The map for ``digit``: of the maps whose top class it is, the most selective; where
        it is no map's top class, the map with the largest ``selectivity_for(digit)``."""
        if not (isinstance(digit, int | np.integer) and 0 <= digit < self.means.shape[1]):
            raise ConfigError(f"a digit is 0..{self.means.shape[1] - 1}, got {digit!r}")
        ratio = self.selectivity_for(int(digit))
        own = (self.top == digit) & ~self.quiet
        return int(np.argmax(np.where(own, ratio, -1.0) if own.any() else ratio))

    def ranked(self) -> list[int]:
        """The maps, most selective first."""
        return [int(m) for m in np.argsort(-self.selectivity, kind="stable")]

    def to_dict(self) -> dict[str, Any]:
        sel, top = self.selectivity, self.top
        return {
            "layer": self.layer,
            "counts": [int(c) for c in self.counts],
            "maps": [
                {
                    "map": m,
                    "top": int(top[m]),
                    "selectivity": round(float(sel[m]), 4),
                    "means": [round(float(v), 5) for v in self.means[m]],
                }
                for m in range(self.means.shape[0])
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MapTable:
        rows = sorted(data["maps"], key=lambda r: r["map"])
        means = np.asarray([r["means"] for r in rows], np.float64)
        return cls(str(data["layer"]), means, np.asarray(data["counts"], np.int64))

    def summary(self, digits: range = range(CLASSES)) -> str:
        """A Markdown table: for each digit, its most selective map, the index and the map's
        mean for that digit."""
        lines = [
            f"| digit | most selective map of {self.layer} | selectivity | mean for the digit |",
            "| --- | --- | --- | --- |",
        ]
        for d in digits:
            m = self.most_selective(d)
            lines.append(
                f"| {d} | {m} | {self.selectivity_for(d)[m]:.2f} | {self.means[m, d]:.3f} |"
            )
        return "\n".join(lines)


def _prepared(images: jax.Array, model: Network) -> jax.Array:
    """MNIST digits as ``model`` sees them: the bundled family's networks as they were trained
    (``model.prepare_digits``: resized to their input, standardized, repeated over channels);
    another 28x28 gray network, scaled to [0, 1] and standardized, as the dreams standardize."""
    if isinstance(model, CNN):
        return prepare_digits(images, model)
    return jax.vmap(standardize)(jnp.asarray(images, jnp.float32) / 255.0)


@functools.partial(jax.jit, static_argnames=("model", "layer"))
def _class_sums(model: Network, params: Mapping, images: jax.Array, onehot: jax.Array, layer: str):
    """Per class, the sum over ``images`` (uint8 ``(B, 28, 28)``, prepared as the network was
    trained: ``_prepared``) of each map's mean activation: ``(10, maps)``. Padding images carry
    a zero ``onehot`` row."""

    def one(x):
        act = features(model, params, x)[layer]
        return act.reshape(-1, act.shape[-1]).mean(axis=0)

    per_image = jax.vmap(one)(_prepared(images, model))
    return jnp.einsum("bc,bm->cm", onehot, per_image, precision=jax.lax.Precision.HIGHEST)


def map_table(
    model: Network,
    params: Mapping,
    images: np.ndarray,
    labels: np.ndarray,
    layer: str = "conv3",
    batch_size: int = 500,
) -> MapTable:
    """The ``MapTable`` of ``layer`` over ``images`` (uint8 ``(N, 28, 28)``, prepared as the
    CNN was trained) of digit ``labels``: one compiled program, run batch after batch (the
    last one padded). ``model``: any network (``jaxdream.network``) of MNIST's 28x28 gray
    input."""
    if not isinstance(model, CNN) and tuple(model.input_shape) != (28, 28, 1):
        raise DataError(
            f"the map study reads MNIST (28x28 gray digits); a network of {model.input_shape} "
            "input needs a labelled data set of its own input kind"
        )
    shapes = layer_shapes(model)
    if layer not in shapes or len(shapes[layer]) != 3:
        spatial = [n for n, s in shapes.items() if len(s) == 3]
        raise ConfigError(
            f"a map table is for a layer of maps ({', '.join(spatial)}), not {layer!r}"
        )
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise DataError(f"images (N, 28, 28) and N labels, got {images.shape} and {labels.shape}")
    if not len(images):
        raise DataError("a map table needs at least one image")
    whole_number("batch_size", batch_size, 1, 1 << 20)
    batch = min(int(batch_size), len(images))
    sums = np.zeros((CLASSES, shapes[layer][-1]), np.float64)
    for start in range(0, len(images), batch):
        part, tags = images[start : start + batch], labels[start : start + batch]
        pad = batch - len(part)
        part = np.concatenate([part, np.zeros((pad, 28, 28), part.dtype)])
        onehot = np.eye(CLASSES, dtype=np.float32)[tags]
        onehot = np.concatenate([onehot, np.zeros((pad, CLASSES), np.float32)])
        sums += np.asarray(_class_sums(model, params, part, onehot, layer), np.float64)
    counts = np.bincount(labels, minlength=CLASSES)[:CLASSES]
    means = sums / np.maximum(counts, 1)[:, None]
    return MapTable(layer, means.T, counts)


def table_layers(model: CNN) -> tuple[str, ...]:
    """The layers whose tables are stored beside a network's weights: its convolutions
    (``conv1``, ``conv2``, ``conv3`` for the bundled network: ``TABLE_LAYERS``).

    >>> table_layers(CNN(widths=(8, 8, 8, 8), padding="same"))
    ('conv1', 'conv2', 'conv3', 'conv4')
    """
    return tuple(f"conv{i}" for i in range(1, len(model.widths) + 1))


def mnist_map_table(
    layer: str = "conv3",
    split: str = "test",
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    data_dir: str | None = None,
    model: Network | None = None,
) -> MapTable:
    """``map_table`` of ``layer`` on an MNIST split read through TFDS (``jaxdream.data``);
    the bundled network and weights unless ``network``/``params`` are given (``model``:
    ``network``'s old name); ``input_shape`` and ``preprocess`` as for ``jaxdream.dream``."""
    model, params = resolve(network_argument(network, model), params, input_shape, preprocess)
    data = load_split(split, data_dir)
    return map_table(model, params, data.images, data.labels, layer)


CARD_HEADING = "## Which map answers which digit"


def maps_card(tables: Mapping[str, MapTable], digit: int = 9, layer: str | None = None) -> str:
    """The model card's section on the maps: how they were measured, the map of ``layer``
    (default: the last table's, the deepest convolution: conv3 for the bundled network) that
    plays the article's 9-map, and each table's ``summary``."""
    if layer is None or layer not in tables:
        layer = list(tables)[-1]
    table = tables[layer]
    m = table.most_selective(digit)
    parts = [
        CARD_HEADING,
        "",
        "Each map's mean activation (over its positions, after the ReLU) for the MNIST test "
        "digits of each class, and its selectivity index: the mean for its top class over the "
        "mean of the others' (`jaxdream.maps`; all the numbers in the `.maps.json` file "
        f"beside the weights, written by `{COMMAND}`).",
        "",
        f'**The article\'s map 56 of conv3 ("strongly triggered by handwritten {digit}s") is '
        f"map {m} of {layer} here**: its top class is {int(table.top[m])}, its mean for "
        f"{digit}s {table.means[m, digit]:.3f}, {table.selectivity_for(digit)[m]:.2f} times "
        f"its mean for the other digits. ({layer}'s map 56 here answers "
        f"{int(table.top[56])}s most, at {table.selectivity[56]:.2f}.)"
        if layer == "conv3" and table.means.shape[0] > 56
        else f"**The map of {layer} most selective for {digit}s is map {m}.**",
    ]
    for name, t in tables.items():
        quiet = int(t.quiet.sum())
        parts += ["", f"{name} ({quiet} quiet maps):", "", t.summary()]
    return "\n".join(parts) + "\n"


def tables_path(weights: str | os.PathLike | None = None) -> Path:
    """Where the map tables of ``weights`` (a checkpoint; default: the bundled one) lie: beside
    it, ``NAME.maps.json``."""

    weights = weights_path(weights)
    return weights.with_suffix(".maps.json")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_tables(weights: str | os.PathLike | None = None) -> dict[str, MapTable] | None:
    """The map tables stored beside ``weights`` (default: the bundled weights') by layer, or
    ``None`` where there are none, or they were measured for other weights (no MNIST needed)."""

    weights = weights_path(weights)
    path = tables_path(weights)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("weights_sha256") != _digest(weights):
            return None
        return {name: MapTable.from_dict(t) for name, t in data["layers"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"the map tables {path} are unreadable: {e}") from e


def bundled_tables() -> dict[str, MapTable]:
    """The bundled weights' map tables by layer."""
    tables = load_tables()
    if tables is None:
        raise DataError(f"{tables_path()} is missing or stale: run `{COMMAND}`")
    return tables


def write_tables(path: str | os.PathLike, tables: Mapping[str, MapTable], about: dict) -> None:
    """Write ``tables`` (and ``about``: the split, the weights' digest, the command) as JSON,
    atomically."""
    data = {**about, "layers": {name: t.to_dict() for name, t in tables.items()}}
    text = json.dumps(data, indent=1) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def write_beside(
    weights: str | os.PathLike | None = None, data_dir: str | None = None, split: str = "test"
) -> Path:
    """Measure the tables of ``weights`` (default: the bundled ones) for their convolutions
    (``table_layers``) on an MNIST split and store them beside the weights (``tables_path``);
    a model card beside them (``NAME.md``) gets its maps section (``maps_card``), replaced if
    it had one."""

    weights = weights_path(weights)
    model, params = load_model(weights)
    tables = {
        name: mnist_map_table(name, split, network=model, params=params, data_dir=data_dir)
        for name in table_layers(model)
    }
    return save_beside(weights, tables, split)


def save_beside(weights: str | os.PathLike, tables: Mapping[str, MapTable], split: str) -> Path:
    """Store ``tables`` (measured on MNIST ``split``) beside ``weights`` (``tables_path``); a
    model card beside them (``NAME.md``) gets its maps section, replaced if it had one."""
    weights = Path(weights)
    about = {
        "weights_sha256": _digest(weights),
        "split": f"mnist {split}",
        "activation": "mean over a map's positions, after the ReLU",
        "selectivity": "top class's mean / mean of the other classes' means (0: quiet map)",
        "command": COMMAND,
    }
    path = tables_path(weights)
    write_tables(path, tables, about)
    card = weights.with_suffix(".md")
    if card.is_file():
        text = card.read_text().split("\n" + CARD_HEADING)[0].rstrip("\n")
        updated = f"{text}\n\n{maps_card(tables)}"
        atomic_write(card, lambda f: f.write(updated.encode()))
    return path
