"""How the CNN computes on each backend: the one place for a backend's compute choices.

The numbers are the same on every backend (to float tolerance); what differs is which code runs
fastest there. Each entry of ``BACKENDS`` says, for one ``jax.default_backend()`` name:

- ``conv``: the 3x3 convolution (``jaxdream.kernels.CONV_IMPLS``). On CPUs, im2col (one matrix
  multiply; its input gradient is far faster than XLA's CPU convolution gradient, 3.5x in the
  suite). On GPUs and TPUs, XLA's own convolution (cuDNN on NVIDIA GPUs).
- ``fusion_guard``: the max-pool gradient's guard against XLA's CPU fusion computing its
  incoming gradient four times (``jaxdream.model``): a CPU workaround, off elsewhere.

Matrix-product precision is not a backend choice but a setting (``CNN.precision``, default
``"highest"``: full float32 on every backend). XLA's default on recent NVIDIA GPUs is TF32
(10-bit mantissa products) and on TPUs bf16 passes: faster, but the faithful schedule's
agreement with the step-by-step reference (2e-4) and the peers' checks rest on float32, so the
default keeps it everywhere; ``precision="default"`` gives the backend's own choice.

A new backend's choices are one more entry of ``BACKENDS``.

>>> from jaxdream.model import CNN
>>> resolve(CNN(), "cpu").conv, resolve(CNN(), "gpu").conv, resolve(CNN(conv="xla"), "cpu").conv
('im2col', 'xla', 'xla')
"""

from __future__ import annotations

import dataclasses

import jax

from jaxdream.errors import ConfigError
from jaxdream.kernels import CONV_IMPLS

PRECISIONS = {
    "highest": jax.lax.Precision.HIGHEST,  # full float32 products on every backend
    "high": jax.lax.Precision.HIGH,  # bf16_3x on TPU, TF32 on NVIDIA GPUs
    "default": jax.lax.Precision.DEFAULT,  # the backend's fastest
}


@dataclasses.dataclass(frozen=True)
class Compute:
    """One backend's compute choices (see the module docstring)."""

    conv: str
    fusion_guard: bool


BACKENDS = {
    "cpu": Compute(conv="im2col", fusion_guard=True),
    "gpu": Compute(conv="xla", fusion_guard=False),
    "cuda": Compute(conv="xla", fusion_guard=False),
    "rocm": Compute(conv="xla", fusion_guard=False),
    "tpu": Compute(conv="xla", fusion_guard=False),
}
OTHER = Compute(conv="xla", fusion_guard=False)  # a backend not listed: XLA's own kernels


def choices(backend: str | None = None) -> Compute:
    """The compute choices for ``backend`` (default: ``jax.default_backend()``)."""
    return BACKENDS.get(backend or jax.default_backend(), OTHER)


def resolve(model, backend: str | None = None):
    """``model`` (a ``CNN``) with its ``"auto"`` choices made for ``backend``; choices the
    caller made (``conv="xla"``, ``fusion_guard=False``) are kept."""
    check(model)
    made = choices(backend)
    changes = {}
    if model.conv == "auto":
        changes["conv"] = made.conv
    if model.fusion_guard is None:
        changes["fusion_guard"] = made.fusion_guard
    return dataclasses.replace(model, **changes) if changes else model


def check(model) -> None:
    """Raise ``ConfigError`` for an unknown convolution or precision."""
    if model.conv != "auto" and model.conv not in CONV_IMPLS:
        raise ConfigError(f"conv must be 'auto' or one of {sorted(CONV_IMPLS)}, got {model.conv!r}")
    if model.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {model.precision!r}")
