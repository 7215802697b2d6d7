"""The photo's preparation (``DreamConfig.prepare``): the article's, against an independent
numpy/PIL computation, on every path from a photo to the dream; jaxdream's own unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import DreamConfig, dream, dream_photos
from jaxdream.errors import ConfigError
from jaxdream.exploring import explore
from jaxdream.imageio import PREPARATIONS, load_photo, prepare_photo
from jaxdream.imageops import resize_matrix

ASSETS = Path(__file__).resolve().parents[1] / "jaxdream" / "assets"
CAT = ASSETS / "chelsea.jpg"


def article_way(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The article's preparation written out again: PIL's bicubic resize of the colour photo
    (uint8), gray by the ITU-R 601 weights in float64, then per-image standardization."""
    with Image.open(path) as img:
        small = img.convert("RGB").resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    r, g, b = np.moveaxis(np.asarray(small, np.float64), -1, 0)
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    return (gray - gray.mean()) / max(gray.std(), 1 / np.sqrt(gray.size))


def jaxdream_way(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """jaxdream's: gray at the photo's size in float64, bicubic-resized, standardized."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), np.float64) / 255
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    small = resize_matrix(gray.shape[0], shape[0]) @ gray @ resize_matrix(gray.shape[1], shape[1]).T
    return (small - small.mean()) / max(small.std(), 1 / np.sqrt(small.size))


@pytest.mark.parametrize("shape", [(56, 84), (28, 28), (300, 451)])
def test_article_preparation_is_the_articles(shape):
    got = prepare_photo(load_photo(CAT), shape, "article")
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, article_way(CAT, shape), atol=2e-5)


def test_gray_preparation_is_unchanged_and_differs_from_the_articles():
    shape = (112, 168)
    gray = prepare_photo(load_photo(CAT), shape)  # the default
    np.testing.assert_allclose(gray, jaxdream_way(CAT, shape), atol=2e-4)
    gap = np.abs(gray - prepare_photo(load_photo(CAT), shape, "article"))
    assert 0.01 < gap.max() < 1.0  # the same picture, prepared differently


def test_every_path_prepares_as_configured(tiny):
    model, params = tiny
    for how in PREPARATIONS:
        config = DreamConfig(size=64, map=2, iterations=1, steps=1, prepare=how)
        want = prepare_photo(load_photo(CAT), config.working_shape((300, 451)), how)
        one = dream(CAT, config, model=model, params=params)
        (many,) = [o.result for o in dream_photos([CAT], config, model=model, params=params)]
        (explored,) = explore(CAT, "conv3", [2], config, model=model, params=params)
        for result in (one, many, explored.result):
            np.testing.assert_array_equal(result.gray, want)
        np.testing.assert_array_equal(one.image, many.image)


def test_default_is_gray_and_others_are_refused(tiny):
    model, _ = tiny
    assert DreamConfig().prepare == "gray"
    for bad in ("rgb", "", None, 1):
        with pytest.raises(ConfigError, match="prepare"):
            DreamConfig(prepare=bad).check(model)
    with pytest.raises(ConfigError, match="prepared"):
        prepare_photo(load_photo(CAT), (28, 28), "Article")


def test_command_line_prepares_as_asked(tmp_path):
    from jaxdream.cli import main

    # The whole dream enlarged: at the photo's own resolution, a dream of 0 steps would be the
    # photo itself however it was prepared.
    fast = ["--size", "48", "--iterations", "1", "--steps", "0", "-q", "--no-clip"]
    fast += ["--output-size", "enlarged"]
    outs = {}
    for name, flags in {
        "article": ["--preset", "article"],
        "flag": ["--preset", "article", "--prepare", "article"],
        "gray": ["--preset", "article", "--prepare", "gray"],
    }.items():
        outs[name] = tmp_path / f"{name}.png"
        assert main(["dream", str(CAT), "-o", str(outs[name]), *flags, *fast]) == 0
    read = {k: np.asarray(Image.open(p)) for k, p in outs.items()}
    np.testing.assert_array_equal(read["article"], read["flag"])  # the preset's own choice
    assert not np.array_equal(read["article"], read["gray"])


def test_a_large_photo_is_prepared_from_bands_of_its_gray_never_the_whole():
    """An 8-bit photo's gray is made when asked for, not at loading; the gray preparation of a
    photo of 3.2 megapixels holds under half its float gray at once (a band of rows at a time)
    and gives the numbers of the whole gray resized."""
    import tracemalloc

    from jaxdream.imageio import Photo, photo_of
    from jaxdream.imageops import resize_host, standardize_host

    rgb = np.random.default_rng(0).integers(0, 256, (4000, 800, 3), dtype=np.uint8)
    photo = photo_of(rgb)
    assert isinstance(photo, Photo) and photo.shape == (4000, 800) and photo._gray is None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        got = prepare_photo(photo, (600, 120), "gray")
        held = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert held < 0.5 * 4000 * 800 * 4, held
    assert np.array_equal(got, standardize_host(resize_host(photo.gray, (600, 120))))
    gray, pixels = photo  # unpacked as when it was a named tuple
    assert pixels is rgb and gray.shape == (4000, 800)
