"""The CNN's kernels: 2x2 max-pooling and the 3x3 "valid" convolution, written three ways
(``CONV_IMPLS``), each with the gradient that runs fastest where it is chosen
(``jaxdream.compute``); a "same" convolution is ``pad_same`` then any of them. Every function
takes ONE image, ``(H, W, C)``; batch with ``jax.vmap``.

>>> import jax.numpy as jnp
>>> x, k = jnp.ones((5, 5, 1)), jnp.ones((3, 3, 1, 2))
>>> [CONV_IMPLS[name](x, k).shape for name in sorted(CONV_IMPLS)]
[(3, 3, 2), (3, 3, 2), (3, 3, 2)]
>>> max_pool_2x2(jnp.arange(25.0).reshape(5, 5, 1))[..., 0].tolist()
[[6.0, 8.0], [16.0, 18.0]]
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array


def _windows(x: Array) -> Array:
    """``(H, W, C)`` -> ``(H/2, 2, W/2, 2, C)``, an odd last row and column dropped."""
    h, w, c = x.shape
    return x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c)


def _max_pool(x: Array) -> Array:
    return _windows(x).max(axis=(1, 3))


def _max_pool_grad(x: Array, out: Array, g: Array, guard: bool) -> Array:
    win = _windows(x)
    first = jnp.where(
        win[:, 0, :, 0] == out,
        0,
        jnp.where(win[:, 0, :, 1] == out, 1, jnp.where(win[:, 1, :, 0] == out, 2, 3)),
    )
    if guard:
        # XLA's CPU backend would fuse whatever computes ``g`` (the previous gradient's sums)
        # into the 4-times larger result below and so compute it 4 times; a reduction is not
        # fused into its consumers, so this one (a sum over a zero) makes it computed once
        # (article dream 38-39 ms without it, 30 ms with it; benchmarks/NOTES.md). A CPU
        # workaround: ``jaxdream.compute`` turns it on for CPUs only.
        g = jnp.stack([g, jnp.zeros_like(g)]).sum(axis=0)
    position = jnp.arange(4).reshape(1, 2, 1, 2, 1)
    grad = jnp.where(position == first[:, None, :, None, :], g[:, None, :, None, :], 0.0)
    h, w, c = x.shape
    grad = grad.reshape(h // 2 * 2, w // 2 * 2, c)
    return jnp.pad(grad, ((0, h % 2), (0, w % 2), (0, 0)))


def _pool_with_gradient(guard: bool):
    @jax.custom_vjp
    def pool(x):
        return _max_pool(x)

    def fwd(x):
        out = _max_pool(x)
        return out, (x, out)

    def bwd(residuals, g):
        return (_max_pool_grad(*residuals, g, guard),)

    pool.defvjp(fwd, bwd)
    return pool


_POOLS = {True: _pool_with_gradient(True), False: _pool_with_gradient(False)}


def max_pool_2x2(x: Array, fusion_guard: bool = False) -> Array:
    """2x2 max-pooling with stride 2 over the two leading axes of ``(H, W, C)``; odd edges drop.

    The same numbers as ``nn.max_pool(..., padding="VALID")``. The gradient goes to the first
    maximal element of each window (row-major), as TensorFlow's and PyTorch's max-pool
    gradients do; that matters where a flat part of a photo makes ties. It is written by hand
    (``custom_vjp``) as one select, which XLA's CPU backend runs much faster than the gradient of
    a max-reduction (benchmarks/NOTES.md). ``fusion_guard``: the CPU fusion workaround (same
    numbers).
    """
    return _POOLS[bool(fusion_guard)](x)


HIGHEST = jax.lax.Precision.HIGHEST


def conv3x3_xla(x: Array, kernel: Array, precision=HIGHEST) -> Array:
    """3x3 "valid" convolution of one ``(H, W, C)`` image by XLA's convolution."""
    return jax.lax.conv_general_dilated(
        x[None],
        kernel,
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=precision,
    )[0]


def _patches(x: Array) -> Array:
    """The 9 shifted views of an ``(H, W, C)`` image side by side: ``(H-2, W-2, 9 C)``."""
    h, w, _ = x.shape
    return jnp.concatenate(
        [x[dy : h - 2 + dy, dx : w - 2 + dx] for dy in range(3) for dx in range(3)], axis=-1
    )


def conv3x3_im2col(x: Array, kernel: Array, precision=HIGHEST) -> Array:
    """The same convolution as one matrix multiply: the 9 shifted views of the image side by
    side (im2col) times the kernel as a ``(9 C, F)`` matrix. Its input gradient is a matrix
    multiply plus 9 shifted adds, which XLA's CPU backend runs far faster than its
    convolution's input gradient."""
    k = kernel.reshape(9 * x.shape[-1], kernel.shape[-1])
    return jnp.matmul(_patches(x), k, precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv3x3_forward_grad(x: Array, kernel: Array, precision) -> Array:
    return conv3x3_im2col(x, kernel, precision)


def _conv3x3_forward_grad_fwd(x, kernel, precision):
    return conv3x3_im2col(x, kernel, precision), (x, kernel)


def _conv3x3_forward_grad_bwd(precision, residuals, g):
    x, kernel = residuals
    # The input gradient of a valid 3x3 convolution is the "full" convolution of the output
    # gradient with the flipped kernel, its in and out channels swapped: ONE forward
    # convolution, which XLA compiles and runs well (its own input gradient it does not).
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    dx = jax.lax.conv_general_dilated(
        g[None],
        flipped,
        (1, 1),
        ((2, 2), (2, 2)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=precision,
    )[0]
    c, f = kernel.shape[2:]
    patches = _patches(x).reshape(-1, 9 * c)
    dk = jnp.matmul(patches.T, g.reshape(-1, f), precision=precision).reshape(kernel.shape)
    return dx, dk


_conv3x3_forward_grad.defvjp(_conv3x3_forward_grad_fwd, _conv3x3_forward_grad_bwd)


def conv3x3_fast(x: Array, kernel: Array, precision=HIGHEST) -> Array:
    """im2col forward; for inputs of several channels the input gradient is one forward
    convolution (``custom_vjp``). It compiles faster than ``conv3x3_im2col`` but runs 6-19%
    slower in the benchmark suite (18% at batch 64 in the latest run; benchmarks/NOTES.md),
    so it is an option (``CNN(conv="fast")``), not the default. A 1-channel input keeps the
    im2col gradient."""
    if x.shape[-1] == 1:
        return conv3x3_im2col(x, kernel, precision)
    return _conv3x3_forward_grad(x, kernel, precision)


CONV_IMPLS = {"xla": conv3x3_xla, "im2col": conv3x3_im2col, "fast": conv3x3_fast}

PADDINGS = ("valid", "same")


def pad_same(x: Array) -> Array:
    """A one-pixel border of zeros around ``(H, W, C)``: a valid 3x3 convolution of the result
    is the "same" convolution of ``x`` (``(H, W)`` out), with each implementation's gradient.

    >>> pad_same(jnp.ones((2, 3, 1))).shape
    (4, 5, 1)
    """
    return jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
