import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import imageio
from jaxdream.errors import ImageError, JaxdreamError
from jaxdream.imageio import load_photo, rgb_float, save_gif, save_image


def _rgb(h=20, w=30):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "CMYK", "1", "I;16", "I", "F"])
def test_every_mode_loads(tmp_path, mode):
    img = Image.fromarray(_rgb())
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("I;16", "I", "F", "CMYK") else "x.png")
    img.save(path)
    photo = load_photo(path)
    assert photo.gray.shape == (20, 30) and photo.rgb.shape == (20, 30, 3)
    assert photo.gray.dtype == np.float32 and np.all(np.isfinite(photo.gray))
    assert photo.gray.min() >= 0 and photo.gray.max() <= 1
    assert photo.gray.std() > 0.01


def test_gray_weights_are_the_articles():
    photo = load_photo(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8))
    np.testing.assert_allclose(photo.gray[0], [0.299, 0.587, 0.114], rtol=1e-6)


def test_sixteen_bit_keeps_its_precision(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "r.png")
    photo = load_photo(tmp_path / "r.png")
    assert len(np.unique(photo.gray)) > 1000  # far more than 8 bits' 256 levels


def test_transparent_parts_become_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = [0, 0, 0, 255]
    photo = load_photo(rgba)
    assert photo.gray[0, 0] == 0 and photo.gray[1, 1] == pytest.approx(1.0)


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb(200, 200)).save(buf, format="PNG")
    (tmp_path / "t.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_photo(tmp_path / "t.png")


def test_not_an_image_missing_and_directory(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageError, match="not an image"):
        load_photo(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="does not exist"):
        load_photo(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        load_photo(tmp_path)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(_rgb(100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 5000)
    with pytest.raises(ImageError, match="too large"):
        load_photo(tmp_path / "big.png")


def test_huge_sides_are_reduced_first(monkeypatch):
    monkeypatch.setattr(imageio, "REDUCE_ABOVE", 64)
    photo = load_photo(Image.fromarray(_rgb(100, 300)))
    assert max(photo.gray.shape) <= 64


def test_bad_arrays():
    with pytest.raises(ImageError, match="must be"):
        load_photo(np.zeros((4, 4, 5)))
    with pytest.raises(ImageError, match="NaN"):
        load_photo(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ImageError, match="numbers"):
        load_photo(np.full((4, 4), "a"))
    with pytest.raises(ImageError, match="numbers"):
        load_photo(np.full((4, 4), 1 + 1j))


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32])
def test_wide_integer_arrays_of_8_bit_values_read_as_8_bit(dtype):
    # np.asarray(img, int) of an 8-bit photo: the values are 0..255, not a sliver of int64's range.
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, (6, 7, 3))
    expected = load_photo(values.astype(np.uint8))
    assert expected.rgb.dtype == np.uint8  # an 8-bit photo keeps its own pixels
    got = load_photo(values.astype(dtype))
    np.testing.assert_allclose(got.rgb, rgb_float(expected.rgb), atol=1e-6)
    np.testing.assert_allclose(got.gray, expected.gray, atol=1e-6)
    if np.iinfo(dtype).max >= 65535:
        sixteen = load_photo((values * 257).astype(dtype))  # 16-bit values: 0..65535
        np.testing.assert_allclose(sixteen.rgb, rgb_float(expected.rgb), atol=1e-6)


def test_an_8_bit_photo_keeps_its_pixels_and_its_gray_is_as_ever():
    values = np.random.default_rng(1).integers(0, 256, (600, 7, 3)).astype(np.uint8)
    photo = load_photo(values)
    np.testing.assert_array_equal(photo.rgb, values)
    assert not photo.rgb.flags.writeable and not np.shares_memory(photo.rgb, values)
    as_float = values.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(rgb_float(photo.rgb), as_float)
    np.testing.assert_array_equal(photo.gray, as_float @ imageio.GRAY_WEIGHTS)


def test_save_is_atomic_and_checks_the_folder(tmp_path):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((4, 4), np.uint8))
    with Image.open(path) as img:
        assert img.size == (4, 4)
    with pytest.raises(ImageError, match="does not exist"):
        save_image(tmp_path / "missing" / "out.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError, match="format"):
        save_image(tmp_path / "out.xyz", np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError, match="directory"):
        save_image(tmp_path, np.zeros((4, 4), np.uint8))


def test_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "keep.png"
    save_image(path, np.full((4, 4), 7, np.uint8))
    before = path.read_bytes()
    with pytest.raises(ImageError, match="uint8"):
        save_image(path, np.zeros((4, 4), np.complex64))  # refused before writing
    with pytest.raises(ImageError, match="cannot write"):
        save_image(path, Image.new("CMYK", (4, 4)))  # PNG cannot hold CMYK: fails mid-write
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["keep.png"]


def test_unwritable_folder(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only folder answers
    with pytest.raises(ImageError, match=r"cannot write .*Permission denied"):
        save_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    assert os.listdir(tmp_path) == []


def test_gif(tmp_path):
    frames = [np.full((8, 8), v, np.uint8) for v in (0, 128, 255)]
    save_gif(tmp_path / "a.gif", frames)
    with Image.open(tmp_path / "a.gif") as img:
        assert img.n_frames == 3
    with pytest.raises(ImageError, match="gif"):
        save_gif(tmp_path / "a.png", frames)


def test_the_pixel_limit_is_the_documented_one(tmp_path, monkeypatch):
    docs = Path(__file__).parents[1] / "docs" / "carving.md"
    text = " ".join(docs.read_text().split())
    assert imageio.MAX_PIXELS == 100_000_000
    assert "images over 100 million pixels are refused" in text
    monkeypatch.setattr(imageio, "MAX_PIXELS", 100 * 100)
    Image.new("L", (100, 100)).save(tmp_path / "at.png")
    Image.new("L", (100, 101)).save(tmp_path / "over.png")
    assert load_photo(tmp_path / "at.png").gray.shape == (100, 100)
    assert imageio.photo_shape(tmp_path / "at.png") == (100, 100)
    for reader in (load_photo, imageio.photo_shape):
        with pytest.raises(JaxdreamError, match="too large"):
            reader(tmp_path / "over.png")
