"""Several single-threaded CPU devices (jaxdream.runtime) must give the single device's numbers.

The check runs in a new process: XLA's device count is fixed when JAX starts.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxdream.runtime import TUNING_FLAGS, configure_cpu_devices, cpu_flags

SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
import jaxdream
from jaxdream import DreamConfig, Level, channel, dream, load_model, oip
from jaxdream.patterns import noise_images
model, params = load_model()
out = oip(params, channel("conv3", jnp.arange(5)), noise_images(jax.random.key(0), 5), steps=4)
photo = np.random.default_rng(0).random((40, 56)).astype(np.float32)
cfg = DreamConfig(size=56, iterations=2, steps=3, levels=(Level(0), Level(1), Level(2, tiles=(5,))))
result = dream(photo, cfg, params=params)
many = jaxdream.dream_many([photo, photo[::-1].copy(), photo * 0.5], cfg, params=params)
print(json.dumps({"devices": jax.device_count(), "oip": np.asarray(out.images).tolist(),
                  "dream": result.image.tolist(), "many": [m.image.tolist() for m in many]}))
"""


def _run(env_flags):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if env_flags:
        env["XLA_FLAGS"] = env_flags
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_cpu_devices_match_one():
    one = _run("--xla_force_host_platform_device_count=1")
    two = _run(cpu_flags(2))
    assert one["devices"] == 1 and two["devices"] == 2
    np.testing.assert_allclose(two["oip"], one["oip"], atol=1e-4)
    np.testing.assert_allclose(two["dream"], one["dream"], atol=1e-4)
    np.testing.assert_allclose(two["many"], one["many"], atol=1e-4)
    np.testing.assert_allclose(two["many"][0], two["dream"], atol=1e-4)


def test_configure_respects_user_flags_and_started_backends(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--user-choice")
    assert configure_cpu_devices(2) is False
    monkeypatch.delenv("XLA_FLAGS")
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # the backend is up in this test process
    assert configure_cpu_devices(2) is False
    assert "XLA_FLAGS" not in os.environ


def test_tuning_flags_only_for_the_measured_jaxlib():
    assert TUNING_FLAGS in cpu_flags(2, (0, 10, 2)) and TUNING_FLAGS in cpu_flags(1, (0, 10))
    for old_or_new in ((0, 4, 30), (0, 9, 2), (0, 11, 0), (1, 0)):
        assert TUNING_FLAGS not in cpu_flags(2, old_or_new)
        assert "device_count=2" in cpu_flags(2, old_or_new)
    assert cpu_flags(1, (0, 9)) == ""
