"""Preprocessings of a user's own network (``--preprocess FILE.py:NAME``): a good one and one
for each kind of mistake (``tests/test_loading.py``)."""

import jax.numpy as jnp


def pixels(tile):
    """The standardized tile read as pixels in [0, 1] (mid-gray, a quarter of spread)."""
    return jnp.clip(tile * 0.25 + 0.5, 0.0, 1.0)


def flat(tile):
    """Not the network's input shape."""
    return tile.reshape(-1)


def infinite(tile):
    """Values that are not finite."""
    return tile / 0.0


NOT_A_FUNCTION = 0.5
