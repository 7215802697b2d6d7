import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.errors import ConfigError, JaxdreamError
from jaxdream.model import activations
from jaxdream.objectives import channel, logit
from jaxdream.parallel import Chunked, Execution
from jaxdream.patterns import (
    GRAD_EPS,
    ascent_step,
    model_from_params,
    noise_image,
    noise_images,
    normalized_gradient,
    oip,
    oip_batch,
)
from jaxdream.programs import compiled_count


def test_normalisation_by_hand():
    g = jnp.array([[3.0, 4.0], [0.0, 0.0]])
    rms = np.sqrt((9 + 16) / 4)  # 2.5
    np.testing.assert_allclose(normalized_gradient(g), np.asarray(g) / (rms + GRAD_EPS), rtol=1e-6)


def test_zero_gradient_gives_no_nan():
    out = normalized_gradient(jnp.zeros((28, 28)))
    assert np.all(np.isfinite(out)) and np.all(out == 0)


def test_ascent_step_is_the_article_step(tiny):
    model, params = tiny
    obj = channel("conv3", 2)
    x = noise_image(jax.random.key(0), amplitude=1.0)
    f = lambda im: obj(activations(model, params, im))
    g = np.asarray(jax.grad(f)(x), np.float64)
    want = np.asarray(x) + 0.03 * g / (np.sqrt(np.mean(g**2)) + 1e-5)
    new, loss = ascent_step(model, params, obj, x, 0.03)
    np.testing.assert_allclose(new, want, rtol=1e-5, atol=1e-6)
    assert float(loss) == pytest.approx(float(f(x)), rel=1e-5)


def test_dead_start_stays_finite(tiny):
    model, params = tiny
    # A flat image: some post-ReLU maps are zero everywhere, so their gradient is exactly 0.
    out = oip(params, channel("conv3", jnp.arange(8)), jnp.zeros((8, 28, 28)), steps=3, model=model)
    assert np.all(np.isfinite(out.images))


def test_batch_with_per_image_maps_equals_single_runs(tiny):
    model, params = tiny
    starts = noise_images(jax.random.key(1), 4, amplitude=1.0)
    maps = jnp.array([0, 3, 5, 7])
    batched = oip(params, channel("conv3", maps), starts, steps=6, model=model)
    for i in range(4):
        one = oip(params, channel("conv3", int(maps[i])), starts[i], steps=6, model=model)
        np.testing.assert_allclose(batched.images[i], one.images, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batched.losses[i], one.losses, rtol=1e-5, atol=1e-6)


def test_maps_epsilon_and_start_do_not_retrace(tiny):
    model, params = tiny
    starts = noise_images(jax.random.key(2), 3)
    oip(params, channel("conv3", jnp.array([0, 1, 2])), starts, steps=4, model=model)
    size = compiled_count(oip_batch)
    oip(params, channel("conv3", jnp.array([5, 6, 7])), starts, steps=4, model=model)
    oip(params, channel("conv3", 4), starts, steps=4, epsilon=0.5, model=model)
    oip(params, channel("conv3", 1), starts + 1.0, steps=4, conv_criterion=1e-3, model=model)
    assert compiled_count(oip_batch) == size
    oip(params, channel("conv3", 1), starts, steps=5, model=model)  # steps are static
    assert compiled_count(oip_batch) == size + 1


def test_convergence_stops_each_image_on_its_own(tiny):
    model, params = tiny
    starts = jnp.stack([jnp.zeros((28, 28)), noise_image(jax.random.key(3), amplitude=1.0)])
    # Image 0 is flat: its logit barely moves, while image 1's objective climbs fast.
    out = oip(
        params,
        logit(jnp.array([0, 1])),
        starts,
        steps=20,
        epsilon=0.2,
        conv_criterion=1e-3,
        model=model,
    )
    steps = np.asarray(out.steps_run)
    losses = np.asarray(out.losses)
    for i in range(2):
        assert np.all(np.isfinite(losses[i, : steps[i]])) and np.all(
            np.isnan(losses[i, steps[i] :])
        )
        if steps[i] < 20:  # stopped: the last change fell under the criterion
            assert abs(losses[i, steps[i] - 1] - losses[i, steps[i] - 2]) < 1e-3
    off = oip(params, logit(jnp.array([0, 1])), starts, steps=20, epsilon=0.2, model=model)
    assert np.all(np.asarray(off.steps_run) == 20)
    assert steps.min() < 20, steps


def test_same_seed_same_output(tiny):
    model, params = tiny
    a = oip(params, channel("conv3", 1), noise_images(jax.random.key(7), 2), steps=3, model=model)
    b = oip(params, channel("conv3", 1), noise_images(jax.random.key(7), 2), steps=3, model=model)
    np.testing.assert_array_equal(a.images, b.images)
    c = noise_images(jax.random.key(8), 2)
    assert not np.allclose(c, noise_images(jax.random.key(7), 2))


def test_noise_has_several_length_scales():
    x = np.asarray(noise_image(jax.random.key(0), amplitude=1.0))
    assert x.shape == (28, 28) and x.std() == pytest.approx(1.0, rel=1e-3)
    spectrum = np.abs(np.fft.fft2(x))
    assert spectrum[1:3, 1:3].mean() > spectrum[10:14, 10:14].mean()  # coarse structure dominates


def test_bad_shapes_and_steps(tiny):
    model, params = tiny
    with pytest.raises(ConfigError, match="28x28"):
        oip(params, logit(1), jnp.zeros((2, 32, 32)), model=model)
    with pytest.raises(ConfigError, match="steps"):
        oip(params, logit(1), jnp.zeros((28, 28)), steps=-1, model=model)
    with pytest.raises(ConfigError, match="epsilon"):
        oip(params, logit(1), jnp.zeros((28, 28)), epsilon=float("inf"), model=model)


def test_model_is_read_off_the_params(tiny, bundled):
    for model, params in (tiny, bundled):
        assert model_from_params(params) == model


@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_chunked_batch_equals_one_vmap(tiny, chunk):
    model, params = tiny
    starts = noise_images(jax.random.key(4), 5, amplitude=1.0)
    maps = jnp.array([0, 1, 2, 3, 4])
    chunked = Execution(Chunked(chunk))
    whole = oip(params, channel("conv3", maps), starts, steps=3, model=model, parallel="vmap")
    parts = oip(params, channel("conv3", maps), starts, steps=3, model=model, parallel=chunked)
    np.testing.assert_allclose(parts.images, whole.images, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(parts.steps_run, whole.steps_run)


def test_conv_implementations_agree(tiny):
    from jaxdream.model import CNN, CONV_IMPLS

    model, params = tiny
    x = noise_image(jax.random.key(5), amplitude=1.0)
    outs = {
        impl: oip(params, channel("conv3", 1), x, steps=4, model=CNN(**_fields(model), conv=impl))
        for impl in CONV_IMPLS
    }
    ref = outs.pop("xla")
    for out in outs.values():
        np.testing.assert_allclose(out.images, ref.images, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.losses, ref.losses, rtol=1e-4, atol=1e-6)


def _fields(model):
    return {"widths": model.widths, "hidden": model.hidden, "num_classes": model.num_classes}


def test_dead_starts_start_again_from_new_noise(bundled):
    from jaxdream.patterns import dead, oip_from_noise

    _, params = bundled
    objective = channel("conv3", jnp.arange(64))
    key = jax.random.key(0)
    first = oip(params, objective, noise_images(jax.random.split(key, 9)[0], 64), steps=5)
    out, starts = oip_from_noise(params, objective, key, 64, steps=5)
    was_dead, still_dead = dead(first), dead(out)
    assert was_dead.sum() > still_dead.sum()  # some came alive (9 of 64 were dead at seed 0)
    assert np.all(starts[~was_dead] == 1) and np.all(starts[was_dead] > 1)
    assert np.all(starts[still_dead] == 10)  # 1 + 8 restarts, + 1 marks "always dead"
    alive = ~was_dead  # never restarted: the first run's results
    np.testing.assert_allclose(np.asarray(out.images)[alive], np.asarray(first.images)[alive])


def test_oip_refuses_non_finite_starts(bundled):
    _, params = bundled
    from jaxdream.objectives import channel

    start = np.asarray(noise_images(__import__("jax").random.key(0), 2)).copy()
    start[0, 3, 3] = np.nan
    with pytest.raises(JaxdreamError, match="NaN"):
        oip(params, channel("conv3", 1), start, steps=2)
