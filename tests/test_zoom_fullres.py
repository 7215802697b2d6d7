"""A zoom at the photo's resolution: frames at the photo's size, the working-size dream
unchanged beside them, strength 0 the photo moved, the photo's detail kept, and a resume of
such a zoom to the same bytes (one of another output size refused)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import dream
from jaxdream.config import DreamConfig, Level
from jaxdream.errors import ConfigError
from jaxdream.fullres import cubic_taps, enlarge, luminance_tone, zoom_layers, zoom_shape
from jaxdream.imageio import GRAY_WEIGHTS
from jaxdream.imageops import standardize
from jaxdream.motion import IDENTITY, Motion, layer_move, warp, warp_many, zoom
from jaxdream.video import render_zoom

REPO = Path(__file__).resolve().parents[1]
CFG = DreamConfig(size=32, iterations=1, steps=2, levels=(Level(0), Level(1)), map=3)
# A detailed 200x150 photo: the astronaut reduced, its fine structure kept.
PHOTO = np.asarray(
    Image.open(REPO / "jaxdream" / "assets" / "astronaut.jpg").convert("RGB").resize((200, 150))
)
MOVE = {"zoom": 1.1, "rotate": 3.0, "pan": (1.0, -0.5)}


def _zoom(tiny, config=CFG, photo=PHOTO, **kw):
    model, params = tiny
    return zoom(photo, config, model=model, params=params, color=True, **kw)


def _sharpness(frame: np.ndarray) -> float:
    """The variance of the Laplacian of the luminance: the picture's fine detail."""
    y = frame.astype(np.float64) @ GRAY_WEIGHTS.astype(np.float64)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(lap.var())


def test_sizes_and_taps():
    assert zoom_shape((3024, 4032)) == (2880, 3840) and zoom_shape((2160, 3840)) == (2160, 3840)
    assert zoom_shape((5000, 1000)) == (3840, 768)
    x = np.random.default_rng(0).standard_normal((24, 32)).astype(np.float32)
    (ri, rw), (ci, cw) = cubic_taps(24, 150), cubic_taps(32, 200)
    mine = ((x[:, ci] * cw).sum(-1)[ri] * rw[:, :, None]).sum(1)
    np.testing.assert_allclose(mine, enlarge(x, (150, 200)), atol=1e-5)  # Pillow's numbers


def test_the_layers_move_is_warps():
    x = np.random.default_rng(0).standard_normal((37, 53, 2)).astype(np.float32)
    for motion in (Motion(**MOVE), Motion(0.5, 45.0, (30.0, 10.0))):  # far past the borders
        a, t = motion.matrix((37, 53))
        (moved,) = warp_many([x], a, t)
        np.testing.assert_allclose(moved, warp(x, a, t), atol=1e-5)
    assert (warp_many([x], *IDENTITY)[0] == x).all()


def test_frames_at_the_photos_size_frame_0_the_dream_applied_to_it(tiny):
    frames = list(_zoom(tiny, size="photo", frames=3, **MOVE))
    assert [f.shape for f in frames] == [(150, 200, 3)] * 3 and frames[0].dtype == np.uint8
    model, params = tiny
    shown = dream(PHOTO, CFG, model=model, params=params).to_uint8(color=True, size="photo")
    assert np.abs(shown.astype(int) - frames[0]).max() <= 1
    enlarged = list(_zoom(tiny, size="enlarged", frames=2, **MOVE))
    assert enlarged[1].shape == (150, 200, 3)


def test_the_working_size_dream_is_the_same_at_every_output_size(tiny):
    made = {}
    for size in ("working", "photo", "enlarged"):
        run = _zoom(tiny, size=size, frames=3, **MOVE)
        frames = list(run)
        made[size] = (frames, run.state())
    working, state = made["working"]
    for size in ("photo", "enlarged"):
        other = made[size][1]
        assert (other["image"] == state["image"]).all() and (other["rgb"] == state["rgb"]).all()
    assert working[0].shape == (*CFG.working_shape(PHOTO.shape[:2]), 3)
    # A photo no larger than the working size: the frames at the working size, as they were.
    small = PHOTO[:24, :32]
    a = list(_zoom(tiny, photo=small, size="working", frames=2))
    b = list(_zoom(tiny, photo=small, size="photo", frames=2))
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_strength_0_is_the_photo_moved(tiny):
    frames = list(_zoom(tiny, CFG.replace(strength=0.0), size="photo", frames=4, **MOVE))
    assert (frames[0] == PHOTO).all()  # the photo's own pixels
    tone = luminance_tone(PHOTO)
    layer, chroma = zoom_layers(PHOTO, tone)
    a, t = layer_move(Motion(**MOVE).matrix((24, 32)), (24, 32), (150, 200))
    for frame in frames[1:]:
        layer = standardize(warp(layer, a, t))
        chroma = warp(chroma, a, t)
        r, b = np.asarray(chroma[..., 0]), np.asarray(chroma[..., 1])
        g = -(GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[2] * b) / GRAY_WEIGHTS[1]
        y = np.asarray(layer) * tone[1] + tone[0]
        expected = np.clip(np.rint((y[..., None] + np.stack([r, g, b], -1)) * 255), 0, 255)
        assert np.abs(expected - frame).max() <= 1
    # Strength scales the carving: half of it lies between the photo moved and the whole.
    half = list(_zoom(tiny, CFG.replace(strength=0.5), size="photo", frames=4, **MOVE))
    whole = list(_zoom(tiny, size="photo", frames=4, **MOVE))
    far = np.abs(whole[3].astype(int) - frames[3]).mean()
    assert 0.2 * far < np.abs(half[3].astype(int) - frames[3]).mean() < 0.8 * far


def test_the_photos_detail_is_kept(tiny):
    photo = list(_zoom(tiny, size="photo", frames=6, **MOVE))
    enlarged = list(_zoom(tiny, size="enlarged", frames=6, **MOVE))
    assert _sharpness(photo[0]) > 0.8 * _sharpness(PHOTO)
    assert _sharpness(photo[5]) > 3 * _sharpness(enlarged[5])


def test_a_zoom_at_the_photos_size_resumes_to_the_same_bytes(tiny):
    whole = list(_zoom(tiny, size="photo", frames=5, **MOVE))
    run = _zoom(tiny, size="photo", frames=5, **MOVE)
    for _ in range(3):
        next(run)
    state = run.state()
    run.close()
    assert state["layer"].shape == (150, 200) and state["chroma"].shape == (150, 200, 2)
    rest = list(_zoom(tiny, size="photo", frames=5, resume=state, **MOVE))
    assert all((x == y).all() for x, y in zip(whole[3:], rest, strict=True))
    without = {k: v for k, v in state.items() if k != "layer"}  # a working-size state
    with pytest.raises(ConfigError, match="incomplete"):
        list(_zoom(tiny, size="photo", frames=5, resume=without, **MOVE))


@pytest.mark.slow
def test_an_interrupted_render_at_the_photos_size_resumes_and_another_size_is_refused(
    tmp_path, tiny, monkeypatch
):
    from jaxdream.video import Resumable, VideoError

    model, params = tiny
    kw = {"frames": 12, "color": True, "model": model, "params": params, "size": "photo"}
    render_zoom(PHOTO, tmp_path / "whole", CFG, Motion(**MOVE), **kw)
    keep, seen = Resumable.keep, []

    def failing(self, *args, **k):
        seen.append(1)
        if len(seen) == 12:
            raise VideoError("stopped here (a stand-in for a crash)")
        keep(self, *args, **k)

    monkeypatch.setattr(Resumable, "keep", failing)
    with pytest.raises(VideoError, match="stand-in"):
        render_zoom(PHOTO, tmp_path / "z", CFG, Motion(**MOVE), **kw)
    monkeypatch.setattr(Resumable, "keep", keep)
    assert "layer" in np.load(tmp_path / ".z.partial" / "state.npz").files
    with pytest.raises(VideoError, match="other settings"):
        render_zoom(
            PHOTO, tmp_path / "z", CFG, Motion(**MOVE), resume=True, **kw | {"size": "enlarged"}
        )
    done = render_zoom(PHOTO, tmp_path / "z", CFG, Motion(**MOVE), resume=True, **kw)
    assert done.start == 10 and done.size == (150, 200)
    files = [p.read_bytes() for p in sorted((tmp_path / "z").iterdir())]
    assert files == [p.read_bytes() for p in sorted((tmp_path / "whole").iterdir())]


@pytest.mark.slow
def test_the_command_line_resume_is_refused_with_another_output_size(tmp_path, monkeypatch, capsys):
    from jaxdream.cli import main
    from jaxdream.video import Resumable, VideoError

    path = tmp_path / "p.png"
    Image.fromarray(PHOTO).save(path)
    argv = ["zoom", str(path), "--size", "32", "--iterations", "1", "--steps", "1"]
    argv += ["--levels", "0", "-q", "--frames", "3", "-o", str(tmp_path / "z")]
    keep = Resumable.keep

    def failing(self, index, *args, **k):
        if index == 1:
            raise VideoError("stopped here (a stand-in for a crash)")
        keep(self, index, *args, **k)

    monkeypatch.setattr(Resumable, "keep", failing)
    assert main(argv) != 0
    monkeypatch.setattr(Resumable, "keep", keep)
    capsys.readouterr()
    assert main([*argv, "--resume", "--output-size", "working"]) != 0
    assert "other settings (output_size)" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    with Image.open(tmp_path / "z" / "frame_000002.png") as frame:
        assert frame.size == (200, 150)


def test_a_strength_at_the_working_size_carries_a_working_size_layer(tiny):
    run = _zoom(tiny, CFG.replace(strength=0.0), size="working", frames=1)
    (frame,) = list(run)
    state = run.state()
    assert state["layer"].shape == state["image"].shape and "chroma" not in state
    shown = run.render(state["reference"], state["rgb"])  # the photo prepared, as it is shown
    assert np.abs(shown.astype(int) - frame).max() <= 1
    carved = list(_zoom(tiny, size="working", frames=3, **MOVE))
    half = list(_zoom(tiny, CFG.replace(strength=0.5), size="working", frames=3, **MOVE))
    assert half[2].shape == carved[2].shape and (half[2] != carved[2]).any()


def test_a_colour_layer_is_carried_with_one_plane_of_temporaries():
    """``carry_step`` moves the luminance and the chroma by the same sample positions, each
    gather computing them as it goes: the program's temporaries are about one plane of the
    layer (the moved luminance, standardized), not the four that shared positions took (three
    int32 planes); the chroma moved as ``warp_many`` moves it."""
    import jax

    from jaxdream.motion import carry_step

    h, w = 216, 384
    rng = np.random.default_rng(0)
    layer = rng.standard_normal((h, w)).astype(np.float32)
    chroma = (0.1 * rng.standard_normal((h, w, 2))).astype(np.float32)
    small = rng.standard_normal((27, 48)).astype(np.float32)
    a, t = layer_move(Motion(**MOVE).matrix((27, 48)), (27, 48), (h, w))
    taps = (cubic_taps(27, h), cubic_taps(48, w))
    args = (layer, chroma, small, small + 0.1, np.float32(0.5), a, t, a, t, taps)
    tone = np.array([0.5, 0.2], np.float32)
    compiled = carry_step.lower(*args, tone, pixels=True).compile()
    plane = h * w * 4
    assert compiled.memory_analysis().temp_size_in_bytes <= 1.2 * plane
    _, moved, frame = carry_step(*args, tone)
    (expected,) = warp_many([jax.numpy.asarray(chroma)], a, t)
    # (to float rounding: a sample position near 400 is known to 3e-5 pixels)
    np.testing.assert_allclose(np.asarray(moved), np.asarray(expected), atol=1e-4)
    assert frame.shape == (h, w, 3) and frame.dtype == np.uint8
