"""The accelerator path, checked without an accelerator: every program the command line and the
API compile is lowered for CUDA, ROCm and TPU (``lowering_platforms``: JAX lowers for a platform
whose device it lacks; nothing is compiled), with the compute choices that backend makes
(``jaxdream.compute``), and its StableHLO must hold no host callback and no custom call that
backend lacks. So the GPU path cannot rot between the times a GPU is lent.

Small sizes and the bundled architecture's shapes (abstract parameters: no weights read), and a
user's network (a small Flax Linen CNN, ``jaxdream.network``); each program is traced once and
lowered for each platform.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxdream import compute
from jaxdream import parallel as par
from jaxdream.carve import (
    carve_batch,
    carve_batch_each,
    carve_batch_part,
    carve_batch_stages,
    placeholder_states,
)
from jaxdream.config import DreamConfig
from jaxdream.model import CNN, init_params
from jaxdream.network import LinenNetwork
from jaxdream.objectives import channel
from jaxdream.patterns import oip_batch
from jaxdream.presets import PRESETS, preset_config
from tests.helpers import LinenCNN

PLATFORMS = ("cuda", "rocm", "tpu")

# Custom calls each backend has (beyond StableHLO itself): the partitioner's markers, which
# every XLA backend handles. Anything else (a LAPACK or cuSOLVER kernel, a host callback) is
# refused: add a target here only once it is known to exist on that backend.
PARTITIONER = {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape"}
ALLOWED_CUSTOM_CALLS = {"cuda": PARTITIONER, "rocm": PARTITIONER, "tpu": PARTITIONER}
HOST_CALLBACK = re.compile(r"callback|host_compute|MoveToHost|MoveToDevice", re.IGNORECASE)
CUSTOM_CALL = re.compile(r"custom_call\s*@([\w.$\-]+)|call_target_name\s*=\s*\"([^\"]+)\"")


def custom_call_targets(stablehlo: str) -> set[str]:
    """The custom-call targets a StableHLO module's text names.

    >>> sorted(custom_call_targets('%0 = stablehlo.custom_call @Sharding(%a) : ...'))
    ['Sharding']
    """
    return {a or b for a, b in CUSTOM_CALL.findall(stablehlo)}


def problems(stablehlo: str, platform: str) -> list[str]:
    """What in a module lowered for ``platform`` would fail there: host callbacks, custom
    calls the backend lacks."""
    found = []
    for target in sorted(custom_call_targets(stablehlo)):
        if HOST_CALLBACK.search(target):
            found.append(f"a host callback ({target})")
        elif target not in ALLOWED_CUSTOM_CALLS[platform]:
            found.append(f"custom call {target}, not known on {platform}")
    return found


def lower_for(traced, platform: str) -> str:
    return traced.lower(lowering_platforms=(platform,)).as_text()


@functools.cache
def abstract_params():
    """The bundled CNN's parameters as shapes only."""
    return jax.eval_shape(lambda: init_params(CNN(), jax.random.key(0)))


def model_for(config: DreamConfig, platform: str) -> CNN:
    """``config.model_for``, for ``platform`` instead of the default backend."""
    changes = {"precision": config.precision}
    if config.conv != "auto":
        changes["conv"] = config.conv
    return compute.resolve(dataclasses.replace(CNN(), **changes), platform)


def dream_args(config: DreamConfig, platform: str, batch: int = 1, frames: bool = False):
    shape = config.working_shape((3, 4))
    spec = dataclasses.replace(config.spec(CNN(), shape, frames), model=model_for(config, platform))
    images = jax.ShapeDtypeStruct((batch, *shape), jnp.float32)
    keys = jax.random.split(jax.random.key(0), batch)
    return spec, abstract_params(), images, config.knobs(), keys


def small(config: DreamConfig) -> DreamConfig:
    return config.replace(size=64, iterations=2, steps=2)


def _trace_preset(name: str, platform: str, frames: bool = False):
    args = dream_args(small(preset_config(name)), platform, frames=frames)
    return carve_batch.trace(*args, par.Execution())


def _trace_faithful(platform: str):
    args = dream_args(small(DreamConfig(schedule="faithful")), platform)
    return carve_batch.trace(*args, par.Execution())


def _trace_stages(platform: str):
    spec, params, images, knobs, keys = dream_args(small(DreamConfig()), platform, frames=True)
    frames = jax.ShapeDtypeStruct((1, spec.iterations, *spec.shape), jnp.float32)
    return carve_batch_stages.trace(spec, params, images, frames, knobs, keys, par.Execution())


def _trace_explorer(platform: str):
    """``jaxdream.explore``: one photo dreamt with several maps, one ``Knobs`` per image."""
    config = small(DreamConfig())
    spec, params, images, _, keys = dream_args(config, platform, batch=3)
    knobs = [config.replace(map=m).knobs() for m in (1, 2, 3)]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *knobs)
    return carve_batch_each.trace(spec, params, images, stacked, keys, par.Execution())


def _trace_part(platform: str):
    """One iteration a call, as under the command line's progress bar."""
    spec, params, images, knobs, keys = dream_args(small(preset_config("vivid")), platform)
    states = jax.eval_shape(lambda x: placeholder_states(spec, x), images)
    return carve_batch_part.trace(
        spec, params, images, states, knobs, keys, jnp.int32(0), par.Execution()
    )


def _trace_oip(platform: str):
    model = model_for(DreamConfig(), platform)
    images = jax.ShapeDtypeStruct((4, 28, 28), jnp.float32)
    objective = channel("conv3", jnp.arange(4))
    eps, crit = jnp.float32(0.01), jnp.float32(0.0)
    return oip_batch.trace(model, abstract_params(), objective, images, eps, crit, 3, par.VMap())


def _trace_user_network(platform: str):
    """A dream with a user's Linen CNN (32x32 gray; abstract parameters)."""
    module = LinenCNN()
    network = LinenNetwork(module, (32, 32, 1))
    params = jax.eval_shape(
        lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))["params"]
    )
    config = small(DreamConfig(layer="Conv_1", map=2))
    shape = config.working_shape((3, 4))
    images = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
    keys = jax.random.split(jax.random.key(0), 1)
    spec = config.spec(network, shape)
    return carve_batch.trace(spec, params, images, config.knobs(), keys, par.Execution())


PROGRAMS = {
    **{f"dream[{name}]": functools.partial(_trace_preset, name) for name in PRESETS},
    "dream[article, frames]": functools.partial(_trace_preset, "article", frames=True),
    "dream[faithful]": _trace_faithful,
    "stages": _trace_stages,
    "explorer": _trace_explorer,
    "iteration part": _trace_part,
    "oip": _trace_oip,
    "dream[user network]": _trace_user_network,
}


@functools.cache
def _traced(program: str, choices: compute.Compute):
    """``program`` traced once for every platform that makes the same compute choices."""
    platform = next(p for p in PLATFORMS if compute.choices(p) == choices)
    return PROGRAMS[program](platform)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_lowers_for_the_accelerator(program, platform):
    traced = _traced(program, compute.choices(platform))
    text = lower_for(traced, platform)
    assert "func.func public @main" in text
    assert problems(text, platform) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_each_backend_gets_its_own_compute_choices(platform):
    spec = dream_args(small(DreamConfig()), platform)[0]
    made = compute.choices(platform)
    assert (spec.model.conv, spec.model.fusion_guard) == (made.conv, made.fusion_guard)
    assert spec.model.conv != compute.choices("cpu").conv  # not the CPU's im2col


def test_the_check_finds_a_host_callback_and_a_missing_kernel():
    """The check itself can fail: a callback, and a cuSOLVER kernel TPUs do not have."""

    def with_callback(x):
        return jax.pure_callback(lambda a: a, jax.ShapeDtypeStruct((3,), jnp.float32), x)

    traced = jax.jit(with_callback).trace(jnp.zeros(3))
    try:  # JAX may refuse to lower a callback for a platform it has no device of ...
        text = lower_for(traced, "cuda")
    except ValueError:
        text = lower_for(traced, "cpu")  # ... the check must still see one
    assert any("host callback" in p for p in problems(text, "cuda"))
    qr = lower_for(jax.jit(jnp.linalg.qr).trace(jnp.zeros((4, 4))), "cuda")
    assert custom_call_targets(qr) and problems(qr, "cuda")


SHARDED = """
import sys
sys.path.insert(0, sys.argv[1])
from jaxdream.runtime import configure_cpu_devices
assert configure_cpu_devices(4)
import jax
from jaxdream import parallel as par
from jaxdream.carve import carve_batch
from tests.test_lowering import PLATFORMS, dream_args, lower_for, problems, small
from jaxdream.config import DreamConfig
mesh = par.device_mesh()
executions = {
    "sharded batch": (par.Execution(par.Sharded(mesh, par.Chunked(2))), 6),
    "one image, tiles split": (par.Execution(par.Replicated(mesh), par.SplitTiles()), 1),
}
for name, (execution, batch) in executions.items():
    for platform in PLATFORMS:
        args = dream_args(small(DreamConfig()), platform, batch=batch)
        text = lower_for(carve_batch.trace(*args, execution), platform)
        assert "sdy.manual_computation" in text or "SPMDFullToShardShape" in text, name
        found = problems(text, platform)
        assert not found, (name, platform, found)
        print(name, platform, "ok")
"""


def test_sharded_dreams_over_a_mesh_lower_for_the_accelerator():
    """A batch split over a mesh of 4 devices, and one image's tiles split over it, in a
    process of their own (this one has one device)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", SHARDED, root],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count(" ok") == 2 * len(PLATFORMS)
