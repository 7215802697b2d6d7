"""A small Flax NNX CNN of a user's own, on 28x28 grey images: its weights are its state."""

from flax import nnx


class SmallNNX(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 4, (3, 3), padding="VALID", rngs=rngs)
        self.conv2 = nnx.Conv(4, 8, (3, 3), padding="VALID", rngs=rngs)
        self.head = nnx.Linear(11 * 11 * 8, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x))
        x = nnx.max_pool(x, (2, 2), (2, 2))
        x = nnx.relu(self.conv2(x))
        return self.head(x.reshape((x.shape[0], -1)))


def make():
    """The network, its weights drawn as it is made."""
    return SmallNNX(nnx.Rngs(0))
