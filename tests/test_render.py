"""Renders from Python: ``render_video`` and ``render_zoom`` make the frames the command line
makes, resume an interrupted render to the same bytes, tell their progress, and refuse bad
settings before leaving anything behind."""

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("av")

from jaxdream.cli import main, parse_args
from jaxdream.cli._core import dream_config
from jaxdream.errors import ConfigError
from jaxdream.motion import Motion
from jaxdream.video import (
    VideoError,
    VideoSettings,
    render_video,
    render_zoom,
    save_video,
)
from tests.clips import pan, stop_keeping_at
from tests.helpers import TINY_DREAM_FLAGS

FAST = TINY_DREAM_FLAGS


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    save_video(path, pan(12), 12)
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(path)
    return path


def _frames(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir())]


def _config(argv: list[str]):
    """The config the command line dreams with for ``argv`` (shown in colour, as it shows it)."""
    args = parse_args(argv)
    assert args.color
    return dream_config(args)


def test_render_video_makes_the_frames_of_the_command(clip, tmp_path, bundled):
    argv = ["video", str(clip), "-o", str(tmp_path / "cli"), *FAST]
    assert main(argv) == 0
    model, params = bundled
    done = render_video(
        clip, tmp_path / "py", _config(argv), VideoSettings(color=True), model=model, params=params
    )
    assert (done.made, done.resumed, done.size, done.fps) == (12, 0, (48, 64), 12)
    assert done.output == str(tmp_path / "py") and done.audio is None
    assert _frames(tmp_path / "py") == _frames(tmp_path / "cli")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli", "py"]  # nothing else left


@pytest.mark.parametrize("coherence", ["none", "blend"])
def test_an_interrupted_video_render_resumes_to_the_same_frames(
    clip, tmp_path, bundled, monkeypatch, coherence
):
    model, params = bundled
    config = _config(["video", str(clip), "-o", "x", *FAST])
    settings = VideoSettings(color=True, coherence=coherence)
    kw = {"model": model, "params": params}
    render_video(clip, tmp_path / "whole", config, settings, **kw)
    restore = stop_keeping_at(monkeypatch, 6)
    with pytest.raises(VideoError, match="stand-in"):
        render_video(clip, tmp_path / "v", config, settings, **kw)
    restore()
    partial = tmp_path / ".v.partial"
    assert len(list(partial.glob("frame_*.png"))) >= 5 and not (tmp_path / "v").exists()
    with pytest.raises(VideoError, match="add --resume"):
        render_video(clip, tmp_path / "v", config, settings, **kw)
    with pytest.raises(VideoError, match="other settings"):
        render_video(clip, tmp_path / "v", config.replace(steps=2), settings, resume=True, **kw)
    done = render_video(clip, tmp_path / "v", config, settings, resume=True, **kw)
    assert done.resumed >= 5 and done.resumed + done.made == 12
    assert _frames(tmp_path / "v") == _frames(tmp_path / "whole") and not partial.exists()


def test_render_video_tells_its_progress(clip, tmp_path, bundled):
    import contextlib

    told = []

    class Bar:
        def update(self):
            told.append("frame")

    @contextlib.contextmanager
    def progress(total, done):
        told.append((total, done))
        yield Bar(), lambda event, seconds: told.append(event)

    model, params = bundled
    config = _config(["video", str(clip), "-o", "x", *FAST])
    render_video(clip, tmp_path / "v.gif", config, model=model, params=params, progress=progress)
    assert told[0] == (12, 0) and told.count("frame") == 12


def test_render_video_refuses_bad_settings_before_any_work(clip, tmp_path, bundled):
    model, params = bundled
    kw = {"model": model, "params": params}
    with pytest.raises(ConfigError, match="chooses its frames itself"):
        render_video(clip, tmp_path / "v", settings=VideoSettings(frames=(0, 2)), **kw)
    with pytest.raises(ConfigError, match="carry must be"):
        render_video(clip, tmp_path / "v", settings=VideoSettings(carry=-1), **kw)
    with pytest.raises(ConfigError, match="past the end"):
        render_video(clip, tmp_path / "v", settings=VideoSettings(start=99), **kw)
    with pytest.raises(VideoError, match=r"no encoder here writes \.avi"):
        render_video(clip, tmp_path / "v.avi", **kw)
    with pytest.raises(VideoError, match="is the input"):
        render_video(clip, clip, **kw)
    assert list(tmp_path.iterdir()) == []


def test_render_zoom_makes_the_frames_of_the_command(photo, tmp_path, bundled):
    argv = ["zoom", str(photo), "-o", str(tmp_path / "cli"), "--frames", "4", "--rotate", "5"]
    assert main([*argv, *FAST]) == 0
    model, params = bundled
    config = _config([*argv, *FAST])
    done = render_zoom(
        photo,
        tmp_path / "py",
        config,
        Motion(rotate=5.0),
        frames=4,
        color=True,
        size="photo",  # the command line's default
        model=model,
        params=params,
    )
    assert (done.frames, done.start, done.size, done.padded) == (4, 0, (48, 64), None)
    assert _frames(tmp_path / "py") == _frames(tmp_path / "cli")


def test_an_interrupted_zoom_render_resumes_to_the_same_frames(
    photo, tmp_path, bundled, monkeypatch
):
    model, params = bundled
    config = _config(["zoom", str(photo), *FAST])
    kw = {"frames": 12, "color": True, "model": model, "params": params}
    render_zoom(photo, tmp_path / "whole", config, **kw)
    restore = stop_keeping_at(monkeypatch, 12)
    with pytest.raises(VideoError, match="stand-in"):
        render_zoom(photo, tmp_path / "z", config, **kw)
    restore()
    assert (tmp_path / ".z.partial" / "state.npz").exists()  # kept after frame 9
    with pytest.raises(VideoError, match="add --resume"):
        render_zoom(photo, tmp_path / "z", config, **kw)
    done = render_zoom(photo, tmp_path / "z", config, resume=True, **kw)
    assert done.start == 10
    assert _frames(tmp_path / "z") == _frames(tmp_path / "whole")
    assert not (tmp_path / ".z.partial").exists()


def test_render_zoom_refuses_bad_settings_before_any_work(photo, tmp_path, bundled):
    model, params = bundled
    kw = {"model": model, "params": params}
    with pytest.raises(ConfigError, match="frames must be in"):
        render_zoom(photo, tmp_path / "z", frames=0, **kw)
    with pytest.raises(ConfigError, match="fps must be"):
        render_zoom(photo, tmp_path / "z", fps=0, **kw)
    with pytest.raises(ConfigError, match="zoom must be > 0"):
        render_zoom(photo, tmp_path / "z", motion=Motion(zoom=0.0), **kw)
    with pytest.raises(VideoError, match="is the input"):
        render_zoom(photo, photo, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
