"""The dreams' keys made on the host are JAX's own, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxdream.keys import host_key_data, image_keys


def jax_keys(seed: int, indices: list[int]) -> np.ndarray:
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(
        jnp.asarray(indices, jnp.int32)
    )
    return np.asarray(jax.random.key_data(keys))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(-(2**31), 2**31 - 1),
    st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=6),
)
def test_host_keys_are_jaxs_fold_in(seed, indices):
    assert np.array_equal(host_key_data(seed, indices), jax_keys(seed, indices))


def test_image_keys_are_typed_jax_keys_and_big_seeds_take_jaxs_path():
    keys = image_keys(3, [0, 1, 5])
    assert jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key) and keys.shape == (3,)
    assert np.array_equal(np.asarray(jax.random.key_data(keys)), jax_keys(3, [0, 1, 5]))
    big = image_keys(2**40 + 5, [0, 2])  # beyond 32 bits: JAX makes them
    want = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(2**40 + 5), i))(jnp.asarray([0, 2]))
    assert np.array_equal(jax.random.key_data(big), jax.random.key_data(want))
