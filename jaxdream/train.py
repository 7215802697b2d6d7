"""Training the MNIST CNN with optax: seeded shuffling, a jitted step, evaluation on the test split;
the model card of a run (``model_card``). Any architecture ``CNN`` describes trains here: the
28x28 digits are resized to its input size (``jaxdream.model.prepare_digits``).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> data = Split(rng.integers(0, 255, (64, 28, 28), np.uint8), rng.integers(0, 10, 64, np.int32))
>>> cfg = TrainConfig(epochs=1, batch_size=32, widths=(4, 4, 4), hidden=8)
>>> result = train_and_evaluate(cfg, data, data, progress=False)
>>> len(result.history)
1
"""

from __future__ import annotations

import dataclasses
import textwrap
import time
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxdream.checks import whole_number
from jaxdream.data import Split
from jaxdream.errors import ConfigError
from jaxdream.kernels import CONV_IMPLS
from jaxdream.maps import maps_card
from jaxdream.model import (
    CNN,
    architecture_dict,
    check_architecture,
    init_params,
    logits,
    prepare_digits,
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so the bundled weights).

    The defaults reach about 99.3% test accuracy in 12 epochs.
    """

    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_epochs: float = 0.5
    weight_decay: float = 1e-4
    seed: int = 0
    widths: tuple[int, ...] = (32, 64, 64)
    hidden: int = 70
    # The convolution the bundled weights were trained with; dreaming may use another (all
    # implementations agree to float tolerance), training keeps this one so that the same
    # command reproduces the same bytes.
    conv: str = "im2col"
    # The rest of the architecture (``jaxdream.model.CNN``); the defaults: the bundled network.
    padding: str = "valid"
    input_size: tuple[int, int] = (28, 28)
    channels: int = 1
    pool_after: tuple[int, ...] | None = None

    def model(self) -> CNN:
        return CNN(
            widths=tuple(self.widths),
            hidden=self.hidden,
            conv=self.conv,
            padding=self.padding,
            input_size=tuple(self.input_size),
            channels=self.channels,
            pool_after=None if self.pool_after is None else tuple(self.pool_after),
        )

    def architecture(self) -> dict:
        """The architecture trained, as plain data (``jaxdream.model.architecture_dict``)."""
        return architecture_dict(self.model())

    def check(self) -> None:
        """Raise ``ConfigError`` for a value no run can use, before any data is loaded.

        >>> TrainConfig(epochs=2, warmup_epochs=2).check()
        Traceback (most recent call last):
        ...
        jaxdream.errors.ConfigError: warmup_epochs must be in [0, epochs) = [0, 2), got 2
        """
        whole_number("epochs", self.epochs, 1, 10_000)
        whole_number("batch_size", self.batch_size, 1, 60_000)
        whole_number("seed", self.seed, 0, 2**32 - 1)
        whole_number("hidden", self.hidden, 1, 65_536)
        for w in self.widths:
            whole_number("widths", w, 1, 4096)
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not 0 <= self.warmup_epochs < self.epochs:  # also refuses NaN
            raise ConfigError(
                f"warmup_epochs must be in [0, epochs) = [0, {self.epochs}), "
                f"got {self.warmup_epochs}"
            )
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a number >= 0, got {self.weight_decay}")
        if self.conv not in CONV_IMPLS:
            raise ConfigError(f"conv must be one of {sorted(CONV_IMPLS)}, got {self.conv!r}")
        check_architecture(self.model())


class EpochReport(NamedTuple):
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    seconds: float


class TrainResult(NamedTuple):
    model: CNN
    params: dict
    history: list[EpochReport]

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy


def preprocess(images: jax.Array, model: CNN | None = None) -> jax.Array:
    """uint8 ``(B, 28, 28)`` -> per-image standardized float32: the same input dreams feed;
    resized to ``model``'s input where it is not 28x28 (``jaxdream.model.prepare_digits``)."""
    return prepare_digits(images, CNN() if model is None else model)


def loss_and_accuracy(
    model: CNN, params: Mapping, images: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy and accuracy of a batch of raw uint8 images."""
    scores = jax.vmap(lambda x: logits(model, params, x))(preprocess(images, model))
    loss = optax.softmax_cross_entropy_with_integer_labels(scores, labels).mean()
    return loss, (scores.argmax(-1) == labels).mean()


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW with a linear warm-up and a cosine decay to zero over the run."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=int(config.warmup_epochs * steps_per_epoch),
        decay_steps=config.epochs * steps_per_epoch,
    )
    return optax.adamw(schedule, weight_decay=config.weight_decay)


def evaluate(
    model: CNN, params: Mapping, data: Split, batch_size: int = 1000
) -> tuple[float, float]:
    """``(loss, accuracy)`` over a whole split."""
    step = jax.jit(lambda p, x, y: loss_and_accuracy(model, p, x, y))
    losses, accs, sizes = [], [], []
    for start in range(0, len(data.labels), batch_size):
        x, y = data.images[start : start + batch_size], data.labels[start : start + batch_size]
        loss, acc = step(params, x, y)
        losses.append(float(loss))
        accs.append(float(acc))
        sizes.append(len(y))
    w = np.asarray(sizes) / sum(sizes)
    return float(np.dot(losses, w)), float(np.dot(accs, w))


def train_and_evaluate(
    config: TrainConfig, train: Split, test: Split, progress: bool = True
) -> TrainResult:
    """Train from ``config.seed`` and evaluate on ``test`` after every epoch.

    The last partial batch of each epoch is dropped, so every step has the same shape.
    """
    config.check()
    model = config.model()
    key = jax.random.key(config.seed)
    init_key, key = jax.random.split(key)
    params = init_params(model, init_key)
    n = len(train.labels)
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch
    optimizer = make_optimizer(config, steps_per_epoch)
    opt_state = optimizer.init(params)

    @jax.jit
    def train_step(params, opt_state, images, labels):
        (loss, _), grads = jax.value_and_grad(loss_and_accuracy, argnums=1, has_aux=True)(
            model, params, images, labels
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    images, labels = jnp.asarray(train.images), jnp.asarray(train.labels)
    history: list[EpochReport] = []
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        key, perm_key = jax.random.split(key)
        order = np.asarray(jax.random.permutation(perm_key, n))
        losses = []
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for i in bar:
            idx = order[i * batch : (i + 1) * batch]
            params, opt_state, loss = train_step(params, opt_state, images[idx], labels[idx])
            losses.append(loss)
        train_loss = float(jnp.mean(jnp.stack(losses)))
        test_loss, test_acc = evaluate(model, params, test)
        report = EpochReport(epoch, train_loss, test_loss, test_acc, time.perf_counter() - start)
        history.append(report)
        if progress:
            tqdm.write(
                f"epoch {epoch:2d}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
                f"test accuracy {test_acc:.2%} ({report.seconds:.1f} s)"
            )
    params = jax.tree.map(np.asarray, params)
    return TrainResult(model, params, history)


def _architecture_line(m: CNN, n_params: int) -> str:
    """The model card's architecture item, wrapped."""
    article = CNN(widths=m.widths, hidden=m.hidden, num_classes=m.num_classes)
    if len(m.widths) == 3 and m.architecture == article.architecture:
        # the article's layout, worded as the bundled card has it
        return (
            f"- **Architecture**: 28x28x1 -> conv 3x3 ({m.widths[0]}) -> ReLU -> max-pool 2 -> "
            f"conv 3x3\n  ({m.widths[1]}) -> ReLU -> max-pool 2 -> conv 3x3 ({m.widths[2]}) -> "
            f"ReLU -> flatten -> dense\n  ({m.hidden}) -> ReLU -> dense ({m.num_classes}); "
            f'"valid" convolutions; {n_params:,} parameters.'
        )
    h, w = m.input_size
    layers = [f"{h}x{w}x{m.channels}"]
    for i, width in enumerate(m.widths, start=1):
        layers.append(f"conv 3x3 ({width}) -> ReLU")
        if i in m.pools:
            layers.append("max-pool 2")
    layers += [f"flatten -> dense ({m.hidden}) -> ReLU -> dense ({m.num_classes})"]
    text = (
        f'- **Architecture**: {" -> ".join(layers)}; "{m.padding}" convolutions; '
        f"{n_params:,} parameters."
    )
    return textwrap.fill(text, 100, subsequent_indent="  ", break_on_hyphens=False)


def _data_line(data: Mapping | None) -> str:
    """The model card's data item: the splits a run read (``None``: the whole of both)."""
    if data is None or (data["train_images"], data["test_images"]) == (60_000, 10_000):
        return (
            "- **Data**: MNIST (TFDS `mnist` 3.0.1), 60,000 training images; evaluated on the "
            "10,000 test images."
        )
    return (
        f"- **Data**: MNIST (TFDS `mnist` 3.0.1), {data['train_images']:,} training images "
        f"(split `{data['train_split']}`);\n  evaluated on {data['test_images']:,} test images "
        f"(split `{data['test_split']}`)."
    )


def model_card(result, metadata: Mapping, n_params: int, maps: Mapping | None = None) -> str:
    """The Markdown model card of a training run (``train_and_evaluate``'s result), saved
    beside its checkpoint; with ``maps`` (``jaxdream.maps.MapTable`` s by layer), the section
    on which map answers which digit (``jaxdream.maps.maps_card``)."""
    m = result.model
    h, w = m.input_size
    resized = "" if (h, w) == (28, 28) else f",\n  the 28x28 digits resized (bilinear) to {h}x{w}"
    rows = "\n".join(
        f"| {r.epoch} | {r.train_loss:.4f} | {r.test_loss:.4f} | {r.test_accuracy:.2%} |"
        for r in result.history
    )
    versions = ", ".join(f"{k} {v}" for k, v in metadata["versions"].items())
    return f"""# Model card: jaxdream MNIST CNN

{_architecture_line(m, n_params)}
- **Input**: per-image standardized gray image (`jaxdream.imageops.standardize`){resized}.
{_data_line(metadata.get("data"))}
- **Test accuracy**: {metadata["test_accuracy"]:.2%} (test loss {metadata["test_loss"]:.4f}).
- **Training command** (reproducible: the same command gives the same weights with the same
  jaxdream and library versions): `{metadata["command"]}`
- **Seed**: {metadata["train_config"]["seed"]}
- **Library versions**: {versions}
- **Intended use**: the feature maps that jaxdream's dreams carve into photos; a teaching model,
  not a production digit classifier.

| epoch | train loss | test loss | test accuracy |
| --- | --- | --- | --- |
{rows}
""" + (f"\n{maps_card(maps)}" if maps else "")
