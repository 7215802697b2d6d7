"""Which map answers which digit: a selectivity study of a layer's maps on MNIST, or on any
labelled TFDS data set of images for a network of its input kind.

For each map of a layer, ``map_table`` measures the mean activation for the digits (the
images) of each class (an image's activation of a map: its mean over the map's positions, after
the ReLU), and a **selectivity index**: the mean for the map's top class divided by the mean of
its means for the other classes (nine for MNIST). 1 means the map fires for every digit alike;
3 means three times as much for its top digit as for an average other digit; a quiet map (its
top-class mean under 5% of the layer's mean activation: a ratio of near-zeros says nothing) has
index 0.
``selectivity_for(d)`` is the same ratio for digit ``d`` whatever the map's top class.
``most_selective(d)`` names the map that plays the article's "map 56, strongly triggered by
handwritten 9s" for digit ``d``: of the maps whose top class is ``d``, the most selective (and
where ``d`` is no map's top class, the largest ``selectivity_for(d)``).

``labelled_split`` reads a data set's split through TFDS (``tfds.data_source``, never
downloading: MNIST through ``jaxdream.data``); ``map_table`` gives each network its own input
kind: the images resized to its input, gray repeated over RGB or RGB made gray (luminance),
standardized as the dreams standardize.

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
import logging
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
from jaxdream.data import DATASET, load_split
from jaxdream.errors import ConfigError, DataError
from jaxdream.model import CNN, prepare_digits, standardize
from jaxdream.network import Network, features, layer_shapes, network_argument, resolve

CLASSES = 10  # MNIST's digits
LUMINANCE = (0.299, 0.587, 0.114)  # RGB -> gray, for a gray network on a colour data set
QUIET = 0.05  # a map whose top-class mean is under this fraction of the layer's mean
BUNDLED_TABLES = "mnist_cnn.maps.json"  # beside the bundled weights
TABLE_LAYERS = ("conv1", "conv2", "conv3")  # stored for the bundled weights (table_layers)
COMMAND = "jaxdream maps --save"  # writes BUNDLED_TABLES from the MNIST test split


class MapTable(NamedTuple):
    """Per map of ``layer``: ``means`` ``(maps, classes)``, the mean activation for each class
    (MNIST's ten digits), over ``counts[c]`` test images of class ``c``; ``names``: the classes'
    names where they are not their numbers (``None``: digits)."""

    layer: str
    means: np.ndarray
    counts: np.ndarray
    names: tuple[str, ...] | None = None

    def label(self, c: int) -> str:
        """Class ``c`` as the tables write it: its number, and its name where it has one."""
        return f"{c} ({self.names[c]})" if self.names else str(c)

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
        named = {"classes": list(self.names)} if self.names else {}
        return {
            "layer": self.layer,
            **named,
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
        names = tuple(data["classes"]) if data.get("classes") else None
        return cls(str(data["layer"]), means, np.asarray(data["counts"], np.int64), names)

    def summary(self, digits: range | None = None) -> str:
        """A Markdown table: for each digit (class; default: all), its most selective map, the
        index and the map's mean for that digit."""
        kind = "class" if self.names else "digit"
        lines = [
            f"| {kind} | most selective map of {self.layer} | selectivity | mean for the {kind} |",
            "| --- | --- | --- | --- |",
        ]
        for d in range(self.means.shape[1]) if digits is None else digits:
            m = self.most_selective(d)
            lines.append(
                f"| {self.label(d)} | {m} | {self.selectivity_for(d)[m]:.2f} "
                f"| {self.means[m, d]:.3f} |"
            )
        return "\n".join(lines)


class Labelled(NamedTuple):
    """A labelled split of a data set: uint8 ``images`` ``(N, H, W)`` (gray) or ``(N, H, W,
    C)``, int ``labels`` ``(N,)``, and the classes' ``names`` (``None``: their numbers, as
    MNIST's digits)."""

    images: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...] | None = None


def _names(feature: Any) -> tuple[str, ...] | None:
    """A label feature's class names, or ``None`` where they are only the classes' numbers."""
    names = tuple(str(n) for n in (getattr(feature, "names", None) or ()))
    return None if names == tuple(str(i) for i in range(len(names))) else names


def labelled_split(
    dataset: str = DATASET, split: str = "test", data_dir: str | None = None
) -> Labelled:
    """Split ``split`` (TFDS slicing allowed) of the TFDS data set ``dataset``, prepared in
    ``data_dir`` (else ``$TFDS_DATA_DIR``, else TFDS's folder), read with ``tfds.data_source``:
    never downloaded. A name that is no TFDS data set, a data set without ``image`` and
    ``label`` features, or one not prepared there: ``ConfigError``/``DataError``, before any
    network work. MNIST is read by ``jaxdream.data.load_split``."""
    if dataset == DATASET:
        data = load_split(split, data_dir)
        return Labelled(data.images, data.labels)
    import tensorflow_datasets as tfds  # lazy: heavy, and only the map study needs it here

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    where = data_dir or "TFDS's default folder"
    absl = logging.getLogger("absl")  # TFDS warns of the folders it looks at, on standard error
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        try:
            builder = tfds.builder(dataset, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            raise ConfigError(
                f"{dataset!r} is not a TFDS data set (see tfds.list_builders(): mnist, "
                "fashion_mnist, cifar10, ...)"
            ) from None
        except Exception as e:
            raise DataError(f"the data set {dataset!r} in {where} cannot be read: {e}") from None
        features = builder.info.features
        if not {"image", "label"} <= set(features.keys()):
            raise ConfigError(
                f"the map study needs a data set of labelled images (features 'image' and "
                f"'label'); {dataset!r} has {', '.join(features.keys())}"
            )
        if not builder.is_prepared():
            raise DataError(
                f"{dataset!r} is not prepared in {Path(builder.data_dir).parents[1]}: point "
                "TFDS_DATA_DIR (or "
                "--data-dir) at a folder holding a prepared copy (array_record format); it is "
                "never downloaded here"
            )
        try:
            source = tfds.data_source(dataset, split=split, data_dir=data_dir, download=False)
            records = source.__getitems__(list(range(len(source))))
            images = np.stack([np.asarray(r["image"]) for r in records])
            labels = np.asarray([r["label"] for r in records], np.int64)
        except Exception as e:
            raise DataError(
                f"cannot read split {split!r} of {dataset!r} in {builder.data_dir}: "
                f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
            ) from None
    finally:
        absl.setLevel(level)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{dataset!r}'s images are {images.dtype} {images.shape[1:]}: the map study reads "
            "uint8 gray or RGB images of one size"
        )
    names = _names(features["label"])
    return Labelled(images[..., 0] if images.shape[-1] == 1 else images, labels, names)


def _prepared(images: jax.Array, model: Network) -> jax.Array:
    """uint8 images ``(B, h, w)`` or ``(B, h, w, c)`` as ``model`` sees them: gray digits for
    the bundled family's networks as they were trained (``model.prepare_digits``: resized to
    their input, standardized, repeated over channels); otherwise scaled to [0, 1], gray
    repeated over RGB or RGB made gray (``LUMINANCE``) for the network's channels, resized
    (bilinear) to its input where the sizes differ, and standardized per image (over pixels and
    channels), as the dreams standardize."""
    if isinstance(model, CNN) and images.ndim == 3:
        return prepare_digits(images, model)
    height, width, channels = model.input_shape
    x = jnp.asarray(images, jnp.float32) / 255.0
    x = x[..., None] if x.ndim == 3 else x
    if x.shape[-1] != channels:
        x = (
            jnp.repeat(x, channels, axis=-1)
            if x.shape[-1] == 1
            else jnp.tensordot(x, jnp.asarray(LUMINANCE, jnp.float32), axes=([-1], [0]))[..., None]
        )
    if x.shape[1:3] != (height, width):
        x = jax.image.resize(x, (x.shape[0], height, width, channels), "bilinear")
    return jax.vmap(standardize)(x)


@functools.partial(jax.jit, static_argnames=("model", "layer"))
def _class_sums(model: Network, params: Mapping, images: jax.Array, onehot: jax.Array, layer: str):
    """Per class, the sum over ``images`` (uint8, prepared as the network sees them:
    ``_prepared``) of each map's mean activation: ``(classes, maps)``. Padding images carry a
    zero ``onehot`` row."""

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
    names: tuple[str, ...] | None = None,
) -> MapTable:
    """The ``MapTable`` of ``layer`` over ``images`` (uint8 gray ``(N, H, W)`` or ``(N, H, W,
    C)`` of 1 or 3 channels, each made the network's input kind: ``_prepared``) of class
    ``labels`` (0 .. ``len(names) - 1``; without ``names``: MNIST's ten digits): one compiled
    program, run batch after batch (the last one padded). ``model``: any network
    (``jaxdream.network``)."""
    shapes = layer_shapes(model)
    if layer not in shapes or len(shapes[layer]) != 3:
        spatial = [n for n, s in shapes.items() if len(s) == 3]
        raise ConfigError(
            f"a map table is for a layer of maps ({', '.join(spatial)}), not {layer!r}"
        )
    images, labels = np.asarray(images), np.asarray(labels)
    kind = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3))
    if not kind or len(labels) != len(images) or labels.ndim != 1:
        raise DataError(
            f"images (N, H, W) or (N, H, W, 1 or 3) and N labels, got {images.shape} and "
            f"{labels.shape}"
        )
    if not len(images):
        raise DataError("a map table needs at least one image")
    classes = len(names) if names else CLASSES
    if labels.min() < 0 or labels.max() >= classes:
        raise DataError(f"labels are 0..{classes - 1}, got {labels.min()}..{labels.max()}")
    whole_number("batch_size", batch_size, 1, 1 << 20)
    batch = min(int(batch_size), len(images))
    sums = np.zeros((classes, shapes[layer][-1]), np.float64)
    for start in range(0, len(images), batch):
        part, tags = images[start : start + batch], labels[start : start + batch]
        pad = batch - len(part)
        part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
        onehot = np.eye(classes, dtype=np.float32)[tags]
        onehot = np.concatenate([onehot, np.zeros((pad, classes), np.float32)])
        sums += np.asarray(_class_sums(model, params, part, onehot, layer), np.float64)
    counts = np.bincount(labels, minlength=classes)[:classes]
    means = sums / np.maximum(counts, 1)[:, None]
    return MapTable(layer, means.T, counts, tuple(names) if names else None)


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


def dataset_map_table(
    layer: str = "conv3",
    split: str = "test",
    dataset: str = DATASET,
    *,
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    data_dir: str | None = None,
) -> MapTable:
    """``map_table`` of ``layer`` on split ``split`` of the labelled TFDS data set ``dataset``
    (``labelled_split``: read, and its errors raised, before any network work), its images made
    the network's input kind; the bundled network and weights unless ``network``/``params``
    are given; ``input_shape`` and ``preprocess`` as for ``jaxdream.dream``."""
    data = labelled_split(dataset, split, data_dir)
    model, params = resolve(network, params, input_shape, preprocess)
    return map_table(model, params, data.images, data.labels, layer, names=data.names)


CARD_HEADING = "## Which map answers which digit"


def maps_card(
    tables: Mapping[str, MapTable],
    digit: int = 9,
    layer: str | None = None,
    data: str | None = None,
) -> str:
    """The model card's section on the maps: how they were measured, the map of ``layer``
    (default: the last table's, the deepest convolution: conv3 for the bundled network) that
    plays the article's 9-map, and each table's ``summary``. ``data``: the data set and split
    measured on where they are not MNIST's test split (``"cifar10 test[:500]"``); there, the
    map named is the one most selective for class ``digit`` (the last class where there are
    fewer)."""
    if layer is None or layer not in tables:
        layer = list(tables)[-1]
    table = tables[layer]
    if data is not None:
        return _other_data_card(tables, layer, min(digit, table.means.shape[1] - 1), data)
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


def _other_data_card(tables: Mapping[str, MapTable], layer: str, label: int, data: str) -> str:
    """``maps_card``'s section for tables measured on ``data`` (another data set or split)."""
    table = tables[layer]
    m = table.most_selective(label)
    parts = [
        CARD_HEADING,
        "",
        "Each map's mean activation (over its positions, after the ReLU) for the images of each "
        f"class of {data}, and its selectivity index: the mean for its top class over the mean "
        "of the others' (`jaxdream.maps`).",
        "",
        f"**The map of {layer} most selective for class {table.label(label)} is map {m}**: its "
        f"top class is {table.label(int(table.top[m]))}, its mean for that class "
        f"{table.means[m, label]:.3f}, {table.selectivity_for(label)[m]:.2f} times its mean "
        "for the other classes.",
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
