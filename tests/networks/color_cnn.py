"""A small Flax Linen CNN of a user's own for RGB images (``jaxdream --network
tests/networks/color_cnn.py:NET``): SAME convolutions, a max-pool and a dense head, the
architecture of ``tests.helpers.LinenCNN``, so that weights saved from one load into the other.
Its input (32x32x3) comes from its weights (``--weights``) or ``--input-shape 32 32 3``."""

import flax.linen as nn


class ColorCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), padding="SAME")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(6, (3, 3), padding="SAME")(x))
        return nn.Dense(5)(x.reshape(x.shape[0], -1))


NET = ColorCNN()
