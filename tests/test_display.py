import numpy as np
import pytest
from PIL import Image

from jaxdream.display import Display, colorize, contrast_clip, render, to_uint8


def test_contrast_clip_is_the_articles_formula():
    reference = np.array([-3.0, -1.0, 0.0, 2.0], np.float32)  # min -3, max 2: s = 0.85 * 2
    x = np.array([-4.0, -1.0, 0.5, 1.5, 3.0], np.float32)
    want = np.clip(1.1 * x, -1.7, 1.7)
    np.testing.assert_allclose(contrast_clip(x, reference), want, rtol=1e-6)
    np.testing.assert_allclose(contrast_clip(x, reference, 2.0, 0.5), np.clip(2 * x, -1, 1))


def test_contrast_clip_of_a_flat_reference_only_scales():
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_allclose(contrast_clip(x, np.zeros(3)), 1.1 * x)


def test_to_uint8_maps_mean_and_std():
    x = np.array([-1.0, 1.0] * 50, np.float32) * 3 + 7  # mean 7, std 3
    out = to_uint8(x, centre_move=0.5, fact=0.2)
    assert set(out.tolist()) == {round(255 * 0.3), round(255 * 0.7)}
    assert to_uint8(np.full((4, 4), 5.0)).tolist() == [[128] * 4] * 4  # flat: mid-gray
    big = to_uint8(np.array([-100.0, 0, 0, 0, 0, 0, 0, 100.0]), fact=1.0)
    assert big.min() == 0 and big.max() == 255  # clipped, not wrapped


def test_render_uses_the_clip_only_when_asked():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(16, 16)).astype(np.float32)
    x = reference * 3
    clipped = render(x, reference, Display())
    plain = render(x, reference, Display(clip=False))
    assert not np.array_equal(clipped, plain)
    np.testing.assert_array_equal(plain, to_uint8(x))


def test_colorize_keeps_chroma_and_takes_the_luminance():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    out = colorize(gray, rgb)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    ycc_out = np.asarray(Image.fromarray(out).convert("YCbCr")).astype(int)
    ycc_in = np.asarray(Image.fromarray(rgb).convert("YCbCr")).astype(int)
    # Where the RGB round trip is not clipped, luminance and chroma come back within rounding.
    inside = (out > 0).all(-1) & (out < 255).all(-1)
    assert inside.sum() > 10
    assert np.abs(ycc_out[..., 0] - gray)[inside].max() <= 2
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[inside].max() <= 3


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_colorize_accepts_float_or_uint8_rgb(dtype):
    rgb = np.full((2, 2, 3), 0.5 if dtype == np.float32 else 128, dtype)
    assert colorize(np.full((2, 2), 200, np.uint8), rgb).shape == (2, 2, 3)
