"""MNIST through tensorflow-datasets' random-access ``data_source`` (no TensorFlow needed to read).

The data is looked for in ``data_dir``, else ``$TFDS_DATA_DIR``, else TFDS's default folder.
``tensorflow_datasets`` is imported here only, lazily, so dreaming never needs it.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from jaxdream.errors import DataError

DATASET = "mnist"


class Split(NamedTuple):
    """One MNIST split: ``images`` uint8 ``(N, 28, 28)``, ``labels`` int32 ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray


def _how_to_fix(where: str) -> str:
    return (
        f"MNIST is not prepared in {where}. Either point TFDS_DATA_DIR (or --data-dir) at a "
        "folder holding a prepared copy (mnist/3.0.1 in array_record format), or, on a machine "
        "with internet, install the 'train' extra (pip install 'jaxdream[train]', which brings "
        "TensorFlow for TFDS's preparation) and pass --download."
    )


def load_split(split: str, data_dir: str | None = None, download: bool = False) -> Split:
    """Read a whole MNIST split (``"train"`` or ``"test"``, or TFDS slicing such as
    ``"train[:1000]"``) into memory."""
    import tensorflow_datasets as tfds  # lazy: heavy, and only training needs it

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(DATASET, data_dir=data_dir, file_format="array_record")
    except Exception as e:  # its dataset_info.json damaged: TFDS's own parse error
        raise DataError(
            f"MNIST's description in {data_dir or 'the TFDS folder'} cannot be read "
            f"({_short(e)}): {_AGAIN}"
        ) from None
    if download and not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as e:  # no TensorFlow, no network, ...: say what to do
            raise DataError(
                f"could not download and prepare MNIST ({type(e).__name__}: {e}). "
                + _how_to_fix(builder.data_dir)
            ) from e
    try:
        source = builder.as_data_source(split=split)
    except Exception as e:
        if not builder.is_prepared():
            raise DataError(_how_to_fix(builder.data_dir)) from None
        raise DataError(f"cannot read MNIST split {split!r}: {e}") from e
    try:
        records = source.__getitems__(list(range(len(source))))
        images = np.stack([np.asarray(r["image"])[..., 0] for r in records]).astype(np.uint8)
        labels = np.asarray([r["label"] for r in records], np.int32)
    except Exception as e:  # a record file cut short or changed: its reader's own error
        raise DataError(
            f"MNIST's {split!r} split in {builder.data_dir} is damaged ({_short(e)}): {_AGAIN}"
        ) from None
    if (
        images.shape[1:] != (28, 28)
        or labels.shape != images.shape[:1]
        or (labels.size and not 0 <= labels.min() <= labels.max() <= 9)
    ):
        raise DataError(
            f"MNIST's {split!r} split in {builder.data_dir} is not MNIST (images "
            f"{images.shape[1:]}, labels {labels.min(initial=0)}..{labels.max(initial=0)}): "
            f"{_AGAIN}"
        )
    return Split(images, labels)


_AGAIN = (
    "prepare it again (remove the mnist folder and pass --download on a machine with "
    "internet) or point TFDS_DATA_DIR (or --data-dir) at a good copy"
)


def _short(error: Exception) -> str:
    """An error of a library below in a few words: its first line, at most 160 characters."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    text = lines[0]
    return text if len(text) <= 160 else text[:157] + "..."
