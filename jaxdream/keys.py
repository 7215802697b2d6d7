"""The dreams' random keys, ``fold_in(key(seed), i)`` for each image index ``i``, made on the
host: JAX's Threefry-2x32 (its default PRNG) in numpy, the same bits, wrapped as JAX keys. A
new process then compiles (or loads) no program for its keys, which cost 45-55 ms of its
first dream on a 2-core CPU; a call with other keys costs microseconds. Other PRNG
implementations and seeds outside 32 bits take JAX's own path.

>>> import jax, jax.numpy as jnp
>>> mine = jax.random.key_data(image_keys(7, [0, 3]))
>>> theirs = jax.random.key_data(
...     jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(jnp.asarray([0, 3])))
>>> bool((mine == theirs).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key: tuple[int, int], x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, ...]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011) of the word pairs ``(x0, x1)``
    under ``key``, in uint32 arithmetic: JAX's ``threefry_2x32``."""
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    with np.errstate(over="ignore"):
        x0, x1 = x0 + ks[0], x1 + ks[1]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x0 = x0 + x1
                x1 = _rotate_left(x1, r) ^ x0
            x0 = x0 + ks[(i + 1) % 3]
            x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def host_key_data(seed: int, indices: Sequence[int]) -> np.ndarray:
    """The key data ``(N, 2)`` uint32 of ``fold_in(key(seed), i)`` for a 32-bit ``seed``:
    ``key(seed)`` is the pair ``(0, seed)``, and ``fold_in(k, i)`` is Threefry of ``(0, i)``
    under ``k``."""
    idx = np.asarray(indices, np.uint32).reshape(-1)
    y0, y1 = threefry2x32((0, seed & 0xFFFFFFFF), np.zeros_like(idx), idx)
    return np.stack([y0, y1], axis=-1)


def _on_host(seed: int, indices: Sequence[int]) -> bool:
    return (
        jax.config.jax_default_prng_impl == "threefry2x32"
        and -(2**31) <= seed < 2**31
        and all(0 <= int(i) < 2**31 for i in indices)
    )


def image_keys(seed: int, indices: Sequence[int]) -> jax.Array:
    """``fold_in(key(seed), i)`` for each of ``indices``: the key image ``i`` of a dream uses."""
    seed, indices = int(seed), [int(i) for i in indices]
    if _on_host(seed, indices):
        return jax.random.wrap_key_data(host_key_data(seed, indices))
    return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
        jnp.asarray(indices, jnp.int32)
    )
