"""Shared fixtures: a tiny random CNN for fast tests, the bundled CNN, two tiny networks of
other shapes (a Flax Linen CNN and an NNX CNN), where MNIST lies, and a photo in a file (plain
functions and constants the tests share are in ``tests/helpers.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from jaxdream.runtime import cpu_flags  # starts no JAX backend: XLA_FLAGS still count

# One CPU device for the whole session, whichever test (the CLI's configure_cpu_devices) runs
# first, with the CPU code-generation choices the CLI makes; tests/test_runtime.py checks
# several devices, and XLA's own defaults, in processes of their own.
os.environ.setdefault(
    "XLA_FLAGS", f"--xla_force_host_platform_device_count=1 {cpu_flags(1)}".strip()
)

import gc

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdream.checkpoint import load_model
from jaxdream.model import CNN, init_params
from tests.helpers import LinenCNN, write_photo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache_in_a_temporary_folder(tmp_path_factory):
    """The CLI turns on JAX's persistent cache; in tests it goes to a temporary folder."""
    os.environ["JAXDREAM_CACHE_DIR"] = str(tmp_path_factory.mktemp("xla-cache"))


@pytest.fixture(autouse=True)
def _collect_after_motion_tests(request):
    """After a video or zoom test, what it left for the garbage collector (decoders, encoders,
    their FFmpeg threads) is freed here, in the main thread between tests, not whenever a later
    test's allocation happens to trigger a collection, in whatever thread runs it."""
    yield
    if any(word in request.node.nodeid for word in ("video", "zoom")):
        gc.collect()


@pytest.fixture(scope="session")
def tiny():
    """A small random CNN: ``(model, params)``, initialised in one compiled program (the values
    an initialisation op by op gives, without compiling each operation on its own)."""
    model = CNN(widths=(4, 6, 8), hidden=12)
    return model, jax.jit(init_params, static_argnums=0)(model, jax.random.key(0))


@pytest.fixture(scope="session")
def bundled():
    """The trained CNN shipped with the package: ``(model, params)``."""
    return load_model()


class NNXCNN(nnx.Module):
    """A tiny NNX CNN of 40x24 gray input (not square), with a dense head."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(4, 6, (3, 3), rngs=rngs)
        self.head = nnx.Linear(6 * 20 * 12, 5, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nnx.relu(self.conv2(x))
        return self.head(x.reshape(x.shape[0], -1))


@pytest.fixture(scope="session")
def linen_net():
    """The Linen CNN and its parameters: ``(module, params)``."""
    module = LinenCNN()
    init = jax.jit(lambda key: module.init(key, jnp.zeros((1, 32, 32, 1)))["params"])
    return module, init(jax.random.key(0))


@pytest.fixture(scope="session")
def nnx_net():
    """The NNX CNN: the module itself (its state holds its parameters)."""
    return NNXCNN(nnx.Rngs(0))


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    """The prepared TFDS folder, or skip: ``$TFDS_DATA_DIR``, else ``../shared/tfds``."""
    for candidate in (os.environ.get("TFDS_DATA_DIR"), REPO.parent / "shared" / "tfds"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return str(candidate)
    pytest.skip("MNIST is not prepared here: set TFDS_DATA_DIR to a TFDS folder holding mnist")


@pytest.fixture
def photo(tmp_path) -> Path:
    """A random 40x60 RGB photo, ``photo.png`` in the test's temporary folder."""
    return write_photo(tmp_path / "photo.png", 40, 60)


@pytest.fixture
def smooth_image() -> np.ndarray:
    """A smooth, non-square gray test image in [0, 1]."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    img = (
        0.5
        + 0.25 * np.sin(x / 13.0) * np.cos(y / 17.0)
        + 0.2 * np.exp(-((x - 80) ** 2 + (y - 30) ** 2) / 300.0)
    )
    return img.astype(np.float32)
