"""The stages a dream records for the stage figure: what each tile saw before and after OIP,
each level's upscaled change and the image once it is in."""

import numpy as np
import pytest
from PIL import Image

from jaxdream import DreamConfig, Level, dream
from jaxdream.figures import LABEL_HEIGHT, PAD, mosaic, stage_figure
from jaxdream.imageops import resize, standardize
from jaxdream.many import dream_photos

LEVELS = (Level(0), Level(1, (0, 3)), Level(2, (5,)))


def _config(**changes):
    return DreamConfig(**{"size": 64, "iterations": 2, "steps": 3, "levels": LEVELS, **changes})


@pytest.fixture(scope="module")
def params(bundled):
    return bundled[1]


@pytest.mark.parametrize("schedule", ["batched", "faithful"])
def test_stages_have_every_tile_and_level_and_end_in_the_frames(params, smooth_image, schedule):
    cfg = _config(schedule=schedule)
    plain = dream(smooth_image, cfg, params=params, return_frames=True)
    staged = dream(smooth_image, cfg, params=params, return_stages=True)
    st = staged.stages
    h, w = staged.image.shape
    assert st.before.shape == st.after.shape == (2, 4, 28, 28)  # 1 + 2 + 1 tiles
    assert st.change.shape == st.result.shape == (2, 3, h, w)
    # Recording changes nothing of the dream (byte for byte), and the last level's result is
    # each frame.
    np.testing.assert_array_equal(staged.image, plain.image)
    np.testing.assert_array_equal(staged.frames, plain.frames)
    np.testing.assert_array_equal(st.result[:, -1], staged.frames)
    # The first tile the CNN sees is the whole working image at 28x28.
    np.testing.assert_allclose(
        st.before[0, 0], standardize(resize(staged.gray, (28, 28))), atol=1e-4
    )
    assert np.abs(st.after - st.before).max() > 1e-3  # OIP moved every iteration's tiles
    # Each change lies where its level's tiles are: level 2's one tile (5) is row 1, column 1.
    outside = st.change[:, 2].copy()
    outside[:, h // 4 : h // 2, w // 4 : w // 2] = 0
    assert np.abs(outside).max() == 0 < np.abs(st.change[:, 2]).max()
    if schedule == "faithful":  # its 28x28 tiles are in the image's units: the change is theirs
        upscaled = resize(st.after[:, 0] - st.before[:, 0], (h, w))
        np.testing.assert_allclose(st.change[:, 0], upscaled, atol=1e-5)


def test_batched_results_add_each_levels_change(params, smooth_image):
    staged = dream(smooth_image, _config(), params=params, return_stages=True)
    st, previous = staged.stages, staged.gray
    for i in range(2):
        running = previous + np.cumsum(st.change[i], axis=0)
        np.testing.assert_allclose(st.result[i, :-1], running[:-1], atol=1e-4)
        np.testing.assert_allclose(st.result[i, -1], standardize(running[-1]), atol=1e-4)
        previous = st.result[i, -1]


@pytest.mark.parametrize("schedule", ["batched", "faithful"])
def test_no_steps_record_no_change(params, smooth_image, schedule):
    cfg = _config(steps=0, schedule=schedule)
    st = dream(smooth_image, cfg, params=params, return_stages=True).stages
    np.testing.assert_array_equal(st.after, st.before)
    assert np.abs(st.change).max() == 0


def test_dream_photos_records_stages_like_a_lone_dream(params, smooth_image):
    cfg = _config(iterations=1)
    alone = dream(smooth_image, cfg, params=params, return_stages=True).stages
    (outcome,) = list(dream_photos([smooth_image], cfg, params=params, return_stages=True))
    for got, want in zip(outcome.result.stages, alone, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_stage_figure_has_a_row_per_iteration_and_level(params, smooth_image):
    result = dream(smooth_image, _config(), params=params, return_stages=True)
    rgb = np.dstack([smooth_image] * 3)
    figure = stage_figure(result, rgb, cell=100)
    h, w = result.image.shape
    cell_h = round(100 * h / w)
    assert figure.size == (4 * (100 + PAD) + PAD, (1 + 2 * 3) * (cell_h + LABEL_HEIGHT + PAD) + PAD)
    # Without stages, the frames strip: photo, gray, 28x28 and the 2 iterations in 2 rows.
    strip = stage_figure(result._replace(stages=None), rgb, cell=100)
    assert strip.size == (figure.width, 2 * (cell_h + LABEL_HEIGHT + PAD) + PAD)


def test_mosaic_puts_tiles_at_their_places():
    tiles = np.array([np.full((28, 28), 10, np.uint8), np.full((28, 28), 200, np.uint8)])
    m = mosaic(tiles, 1, (1, 2), (57, 57))[..., 0]
    assert m[0, 0] == 128 and m[0, 56] == 10 and m[56, 0] == 200 and m[56, 56] == 128
    assert (m[28, :] == 255).all() and (m[:, 28] == 255).all()  # the one-pixel gaps


def test_cli_figure_shows_every_level(tmp_path):
    from jaxdream.cli import main

    photo = tmp_path / "p.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(photo)
    fig = tmp_path / "f.png"
    args = ["dream", str(photo), "-o", str(tmp_path / "d.png"), "--figure", str(fig)]
    fast = ["--size", "48", "--iterations", "2", "--steps", "2", "--levels", "0", "1", "-q"]
    assert main([*args, *fast]) == 0
    with Image.open(fig) as img:
        rows = (img.height - PAD) / (192 + LABEL_HEIGHT + PAD)
        assert rows == 1 + 2 * 2


def test_a_figure_too_tall_is_refused_before_any_work(tmp_path, capsys):
    from jaxdream.cli import main

    out, fig = tmp_path / "d.png", tmp_path / "f.png"
    argv = ["dream", "-o", str(out), "--figure", str(fig), "--iterations", "33", "--levels", "0"]
    assert main([*argv, "1", "-q"]) == 2
    assert "33 x 2 = 66 rows" in capsys.readouterr().err
    assert not out.exists() and not fig.exists()
    folder = ["dream", "-o", str(tmp_path), "--figure", str(tmp_path / "figs")]
    assert main([*folder, *argv[5:], "1", "-q"]) == 2
    assert not (tmp_path / "figs").exists()  # the folder mode refuses before making folders


def test_recording_stages_leaves_an_overlapping_dream_byte_for_byte(params):
    # Recorded inside the dream, the stages changed XLA's fusions: 1.2e-7 here, 6e-3 on vivid.
    photo = np.random.default_rng(1).random((48, 48))
    levels = (Level(0), Level(1), Level(2))
    cfg = DreamConfig(size=48, iterations=3, steps=5, map=-1, levels=levels, overlap=0.5)
    staged = dream(photo, cfg, params=params, return_stages=True)
    np.testing.assert_array_equal(staged.image, dream(photo, cfg, params=params).image)
    assert staged.stages.before.shape == (3, 21, 28, 28)
