"""Dreams at the photo's own resolution (``jaxdream.fullres``) and the strength control: a
phone-sized photo keeps its detail, strength 0 gives the photo back byte for byte, the colours
are the photo's, and strength 1 at the working size is the dream as it always was."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaxdream import DreamConfig, dream
from jaxdream.cli import main
from jaxdream.errors import ConfigError
from jaxdream.fullres import carved_photo, enlarge, luminance_std
from jaxdream.imageio import load_photo, to_pixels
from jaxdream.presets import preset_config

ASSETS = "jaxdream/assets"
SMALL = DreamConfig(size=56, iterations=1, steps=3, map=-1)


def composed_photo(height: int, width: int) -> np.ndarray:
    """A photo of real detail at full resolution: the bundled photos tiled at their own size
    (uint8 RGB), never enlarged."""
    tiles = [np.asarray(Image.open(f"{ASSETS}/{n}.jpg").convert("RGB")) for n in ("chelsea",)]
    tiles.append(np.asarray(Image.open(f"{ASSETS}/astronaut.jpg").convert("RGB"))[:300, :451])
    rows = []
    for r in range(-(-height // 300)):
        row = [tiles[(r + c) % 2] for c in range(-(-width // 451))]
        rows.append(np.concatenate(row, axis=1))
    return np.ascontiguousarray(np.concatenate(rows)[:height, :width])


def laplacian_energy(pixels: np.ndarray) -> float:
    """The variance of the Laplacian of the luminance: the high-frequency energy."""
    y = pixels.astype(np.float64)
    if y.ndim == 3:
        y = y @ np.array([0.299, 0.587, 0.114])
    lap = -4 * y[1:-1, 1:-1] + y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
    return float(lap.var())


@pytest.fixture(scope="module")
def photo12():
    """A 12-megapixel photo (4000x3000), composed of real photos at their own resolution."""
    return composed_photo(3000, 4000)


@pytest.mark.slow
def test_a_12_megapixel_photo_keeps_its_detail_with_the_defaults(photo12):
    """The command line's default preset, at its default working size (560): the output keeps
    the photo's high-frequency energy; the whole dream enlarged (the article's look) does not."""
    config = preset_config("vivid")
    result = dream(photo12, config)
    sharp = result.to_uint8(color=True, size="photo")
    enlarged = result.to_uint8(color=True, size="enlarged")
    assert sharp.shape == enlarged.shape == photo12.shape
    own = laplacian_energy(photo12)
    assert laplacian_energy(sharp) > 0.6 * own
    assert laplacian_energy(enlarged) < 0.1 * own


def test_strength_zero_gives_the_photo_back_and_grows_with_strength(bundled):
    model, params = bundled
    photo = composed_photo(300, 700)
    outputs = {}
    for strength in (0.0, 0.5, 1.0, 2.0):
        result = dream(photo, SMALL.replace(strength=strength), model=model, params=params)
        outputs[strength] = result.to_uint8(color=True, size="photo")
    np.testing.assert_array_equal(outputs[0.0], photo)
    moved = [np.abs(outputs[s].astype(int) - photo).mean() for s in (0.5, 1.0, 2.0)]
    assert 0 < moved[0] < moved[1] < moved[2]


def test_strength_only_shows_the_dream(bundled):
    """Strength changes how a dream is shown, not the dream: the same numbers, and at 1 the
    working-size picture of today; at 0.5 the working-size picture is halfway."""
    model, params = bundled
    photo = composed_photo(120, 160)
    whole = dream(photo, SMALL.replace(size=160), model=model, params=params)
    half = dream(photo, SMALL.replace(size=160, strength=0.5), model=model, params=params)
    np.testing.assert_array_equal(whole.image, half.image)
    from jaxdream.display import render

    np.testing.assert_array_equal(whole.to_uint8(), render(whole.image, whole.gray))
    halfway = whole.gray + np.float32(0.5) * (whole.image - whole.gray)
    np.testing.assert_array_equal(half.to_uint8(), render(halfway, half.gray))


def test_photo_size_keeps_the_photos_chroma():
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(30, 225, (64, 96, 3), dtype=np.uint8)
    change = rng.standard_normal((16, 24)).astype(np.float32) * 0.3
    out = carved_photo(rgb8 / np.float32(255), change, strength=1.0, color=True)
    ycc_in = np.asarray(Image.fromarray(rgb8).convert("YCbCr"), np.int16)
    ycc_out = np.asarray(Image.fromarray(out).convert("YCbCr"), np.int16)
    unclipped = ((out > 0) & (out < 255)).all(axis=-1)
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:])[unclipped].max() <= 2  # rounding only
    assert np.abs(ycc_out[..., 0] - ycc_in[..., 0]).mean() > 3  # the luminance moved


def test_the_change_is_applied_in_the_photos_standardized_units():
    """A constant change of 1 standard deviation moves every pixel's luminance by the photo's
    own standard deviation (in pixels)."""
    rng = np.random.default_rng(2)
    rgb = rng.uniform(0.3, 0.7, (50, 70, 3)).astype(np.float32)
    gray = carved_photo(rgb, np.ones((10, 14), np.float32), strength=1.0, color=False)
    before = carved_photo(rgb, np.zeros((10, 14), np.float32), strength=1.0, color=False)
    shift = (gray.astype(float) - before).mean()
    assert shift == pytest.approx(255 * luminance_std(rgb), abs=0.6)
    assert enlarge(np.ones((3, 4), np.float32), (30, 40)) == pytest.approx(1.0)
    np.testing.assert_array_equal(to_pixels(before / np.float32(255)), before)


def test_photo_size_refuses_a_nan_change():
    with pytest.raises(Exception, match="NaN"):
        carved_photo(np.zeros((8, 8, 3), np.float32), np.full((4, 4), np.nan, np.float32))


@pytest.mark.parametrize("strength", [-0.1, float("nan"), 11.0, "1", True])
def test_a_bad_strength_is_refused(strength, bundled):
    with pytest.raises(ConfigError, match="strength"):
        DreamConfig(strength=strength).check(bundled[0])


def test_cli_strength_zero_writes_the_photo(tmp_path, capsys):
    """``--strength 0`` on a photo larger than the working size: the photo's own pixels at its
    own size (the JPEG as decoded), as a PNG."""
    source = tmp_path / "photo.jpg"
    Image.fromarray(composed_photo(200, 300)).save(source, quality=90)
    out = tmp_path / "out.png"
    fast = ["--size", "56", "--iterations", "1", "--steps", "2", "-q"]
    assert main(["dream", str(source), "-o", str(out), "--strength", "0", *fast]) == 0
    with Image.open(source) as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert main(["dream", str(source), "-o", str(out), "--strength", "-1", *fast]) == 2
    assert "jaxdream: error:" in capsys.readouterr().err
    enlarged = tmp_path / "enlarged.png"
    args = ["dream", str(source), "-o", str(enlarged), "--output-size", "enlarged", *fast]
    assert main(args) == 0
    with Image.open(enlarged) as img:
        assert img.size == (300, 200)


def test_load_photo_takes_a_photo_as_it_is():
    photo = load_photo(np.zeros((4, 5, 3), np.uint8))
    assert load_photo(photo) is photo


def test_large_host_resizes_agree_with_the_matrices(monkeypatch):
    """Above ``PILLOW_RESIZE_FROM`` pixels a host resize is Pillow's: the same numbers."""
    import importlib

    imageops = importlib.import_module("jaxdream.imageops")
    x = np.random.default_rng(0).random((90, 120, 3)).astype(np.float32)
    dense = [imageops.resize_host(x, s) for s in ((30, 40), (200, 250))]
    monkeypatch.setattr(imageops, "PILLOW_RESIZE_FROM", 1)
    pillow = [imageops.resize_host(x, s) for s in ((30, 40), (200, 250))]
    for a, b in zip(dense, pillow, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_the_change_enlarged_in_bands_is_the_change_enlarged():
    change = np.random.default_rng(3).standard_normal((37, 53)).astype(np.float32)
    whole = enlarge(change, (301, 411))
    bands = [enlarge(change, (301, 411), slice(r, min(r + 16, 301))) for r in range(0, 301, 16)]
    np.testing.assert_allclose(np.concatenate(bands), whole, atol=1e-4)


@pytest.mark.slow
def test_the_video_commands_defaults_keep_the_scene(tmp_path):
    """``jaxdream video`` with its defaults (vivid, strength 0.5) on a clip of a real photo:
    each frame's coarse luminance keeps following its input's; the whole dream's does less."""
    av = pytest.importorskip("av")
    from benchmarks.strength import coarse_correlation, luminance

    photo = np.asarray(Image.open(f"{ASSETS}/astronaut.jpg").convert("RGB"))
    frames = [np.ascontiguousarray(photo[40 + 8 * k : 256 + 8 * k, 60:444]) for k in range(3)]
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 384, 216, "yuv420p"
        stream.options = {"crf": "12"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    with av.open(str(clip)) as c:
        inputs = [luminance(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    scores = {}
    for name, extra in {"defaults": [], "whole": ["--strength", "1"]}.items():
        folder = tmp_path / name
        assert main(["video", str(clip), "-o", f"{folder}/", "-q", *extra]) == 0
        outputs = [luminance(np.asarray(Image.open(p))) for p in sorted(folder.glob("*.png"))]
        assert len(outputs) == len(inputs) == 3
        scores[name] = min(coarse_correlation(o, i) for o, i in zip(outputs, inputs, strict=True))
    assert scores["defaults"] > 0.75
    assert scores["whole"] < scores["defaults"] - 0.1
