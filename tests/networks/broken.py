"""Networks jaxdream refuses, one for each kind of mistake (``tests/test_loading.py``)."""

import flax.linen as nn
from flax import nnx


def raises():
    """A factory that fails."""
    raise ValueError("the factory could not build the network")


def not_a_network():
    """A factory that returns something else."""
    return {"layers": 3}


NUMBER = 42


class DenseOnly(nn.Module):
    """No convolution: a flatten and two dense layers."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(10)(nn.relu(nn.Dense(16)(x)))


class Words(nn.Module):
    """A convolution, but it returns text."""

    @nn.compact
    def __call__(self, x):
        nn.Conv(2, (3, 3))(x)
        return "not an array"


class FourChannels(nnx.Module):
    """An NNX network on 4-channel (RGBA) inputs."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(4, 2, (3, 3), rngs=rngs)

    def __call__(self, x):
        return self.conv(x)


DENSE_ONLY = DenseOnly()
WORDS = Words()


def four_channels():
    """Made abstract (shapes only, nothing computed): refused before its weights matter."""
    return nnx.eval_shape(lambda: FourChannels(nnx.Rngs(0)))
