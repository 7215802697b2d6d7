"""A small Flax Linen CNN of a user's own: two convolutions, a flatten and a dense head of ten
outputs, on 28x28 grey images (``jaxdream --network tests/networks/linen_cnn.py:NET``)."""

import flax.linen as nn


class SmallCNN(nn.Module):
    features: int = 4

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(self.features, (3, 3), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(2 * self.features, (3, 3), padding="VALID")(x))
        self.sow("intermediates", "features", x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(10)(x)


def make():
    """The network, made by a function of no argument."""
    return SmallCNN()


NET = SmallCNN()
