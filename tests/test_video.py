"""Video: small videos made here (a pan across a bundled photo, with a sine audio track) read
back, dreamt and written again; every output format; rotation, odd sizes, variable rates,
truncated files; the commands' bad input; an interrupted render resumed; two processes."""

import json
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")

from jaxdream.cli import main  # noqa: E402
from jaxdream.config import DreamConfig, Level  # noqa: E402
from jaxdream.many import dream_photos  # noqa: E402
from jaxdream.video import (  # noqa: E402
    VideoError,
    VideoWriter,
    dream_video,
    flicker,
    probe,
    read_frames,
    save_video,
)
from jaxdream.video.dreaming import _flow_warp  # noqa: E402
from tests.clips import encode, pan  # noqa: E402
from tests.helpers import TINY_DREAM_FLAGS, jaxdream_process, two_processes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG = DreamConfig(size=32, iterations=1, steps=2, levels=(Level(0), Level(1)), map=3)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", pan(12), fps=12, audio_seconds=1.0)


def _audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def test_the_test_clip_reads_back(clip):
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.frames) == (64, 48, 12, 12)
    assert info.audio == "aac" and not info.variable and info.rotation == 0
    frames = list(read_frames(clip))
    assert len(frames) == 12 and frames[0].pixels.shape == (48, 64, 3)
    assert np.abs(frames[5].pixels.astype(int) - pan(12)[5]).mean() < 6  # H.264's loss
    part = list(read_frames(clip, start=0.25, duration=0.5))
    assert [f.index for f in part] == list(range(6))
    assert np.abs(part[0].pixels.astype(int) - pan(12)[3]).mean() < 6


@pytest.mark.parametrize("name", ["v.mp4", "v.webm", "v.webp", "v.gif", "frames"])
def test_every_output_format_reads_back(tmp_path, name):
    frames = pan(6)
    assert save_video(tmp_path / name, frames, 12) == 6
    out = tmp_path / name
    if name.endswith((".mp4", ".webm")):
        info = probe(out)
        assert (info.width, info.height, info.frames, info.fps) == (64, 48, 6, 12)
    elif name == "frames":
        pngs = sorted(out.glob("frame_*.png"))
        assert len(pngs) == 6 and (np.asarray(Image.open(pngs[2])) == frames[2]).all()
    else:
        with Image.open(out) as im:
            assert im.n_frames == 6 and im.size == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left


def test_same_frames_same_bytes_where_the_codec_allows(tmp_path):
    frames = pan(8)
    for name in ("a.mp4", "b.mp4", "a", "b"):
        save_video(tmp_path / name, frames, 12)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    a = [p.read_bytes() for p in sorted((tmp_path / "a").iterdir())]
    assert a == [p.read_bytes() for p in sorted((tmp_path / "b").iterdir())]


def test_odd_sizes_are_padded_for_the_encoder(tmp_path):
    frames = [f[:47, :63] for f in pan(3)]
    with VideoWriter(tmp_path / "odd.mp4", 12) as writer:
        for f in frames:
            writer.write(f)
    assert writer.size == (47, 63) and writer.padded == (48, 64)
    assert (probe(tmp_path / "odd.mp4").width, probe(tmp_path / "odd.mp4").height) == (64, 48)


def test_rotation_metadata_is_applied(tmp_path):
    frames = pan(4)
    path = encode(tmp_path / "phone.mp4", frames, fps=12, rotation=90)
    info = probe(path)
    assert info.rotation == 90 and (info.width, info.height) == (48, 64)
    read = list(read_frames(path))
    assert read[1].pixels.shape == (64, 48, 3)
    assert np.abs(read[1].pixels.astype(int) - np.rot90(frames[1])).mean() < 6


def test_dream_video_is_dream_photos_of_the_same_frames(clip, tiny):
    model, params = tiny
    dreams = dream_video(clip, CFG, color=True, model=model, params=params, batch_size=4)
    frames = list(dreams)
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3) and dreams.lost == 0
    assert dreams.times == pytest.approx([k / 12 for k in range(12)])
    pixels = [f.pixels for f in read_frames(clip)]
    expected = []
    for start in range(0, 12, 4):
        run = dream_photos(pixels[start : start + 4], CFG, model=model, params=params, batch_size=4)
        expected += [o.result.to_uint8(color=True, size="photo") for o in run]
    assert all((a == b).all() for a, b in zip(frames, expected, strict=True))


def test_coherence_carries_the_carving_along_the_motion(clip, tiny):
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    blob = lambda cx: np.exp(-((x - cx) ** 2 + (y - 24) ** 2) / 40).astype(np.float32)
    previous, current = blob(28), blob(32)  # the scene moved 4 px right
    carving = np.zeros_like(previous)
    carving[20:28, 24:32] = 1.0  # carved on the blob
    moved = _flow_warp(previous, current, carving)
    cols = np.flatnonzero(moved.sum(axis=0) > 2)
    assert 26 <= cols.min() <= 30 and 33 <= cols.max() <= 37, cols  # about 4 px right
    model, params = tiny
    for mode in ("blend", "flow"):
        frames = list(dream_video(clip, CFG, coherence=mode, model=model, params=params))
        assert len(frames) == 12 and frames[0].shape == (48, 64)
        assert flicker(frames) > 0


def test_a_coherent_range_continues_from_the_carried_state_to_the_same_bytes(clip, tiny):
    model, params = tiny
    kw = dict(coherence="blend", model=model, params=params)
    whole = dream_video(clip, CFG, **kw)
    frames, states = [], []
    for frame in whole:
        frames.append(frame)
        states.append(whole.state)
    assert len(states) == 12 and states[5][0].shape == (24, 32)
    assert not np.array_equal(states[5][1], states[6][1])  # a state of each frame's own
    rest = list(dream_video(clip, CFG, frames=(6, None), state=states[5], **kw))
    assert len(rest) == 6 and all((a == b).all() for a, b in zip(rest, frames[6:], strict=True))
    # Without a state, a range after frame 0 primes the carving from the frame before it:
    primed = list(dream_video(clip, CFG, frames=(6, None), **kw))
    fresh = list(dream_video(clip, CFG, frames=(5, None), prime=False, **kw))
    assert len(primed) == 6 and all((a == b).all() for a, b in zip(primed, fresh[1:], strict=True))
    unprimed = list(dream_video(clip, CFG, frames=(6, None), prime=False, **kw))
    assert not (unprimed[0] == primed[0]).all()


@pytest.mark.parametrize(
    "state, coherence, says",
    [
        ((np.zeros((24, 32)), np.zeros((24, 32))), "none", "needs coherence"),
        ((np.zeros((24, 31)), np.zeros((24, 32))), "blend", "working shape (24, 32)"),
        ((np.zeros((24, 32)), np.full((24, 32), np.nan)), "flow", "must be finite"),
        ((np.zeros((24, 32)),), "blend", "a pair of arrays"),
    ],
)
def test_a_bad_carried_state_is_refused_before_any_work(clip, tiny, state, coherence, says):
    from jaxdream.errors import ConfigError

    model, params = tiny
    with pytest.raises(ConfigError, match=re.escape(says)):
        dream_video(clip, CFG, coherence=coherence, state=state, model=model, params=params)


def test_a_truncated_file_gives_what_decodes_and_says_how_much_was_lost(tmp_path, tiny):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(24)]
    save_video(tmp_path / "full.mp4", frames, 12)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
    model, params = tiny
    dreams = dream_video(tmp_path / "cut.mp4", CFG, model=model, params=params)
    got = list(dreams)
    assert 0 < len(got) < 24 and dreams.lost == 24 - len(got)


def test_a_variable_frame_rate_keeps_each_frames_time(tmp_path):
    times = [0, 80, 160, 400, 480, 560, 900, 980]
    path = encode(tmp_path / "vfr.mp4", pan(8), fps=12, times_ms=times)
    assert probe(path).variable
    assert [round(f.time * 1000) for f in read_frames(path)] == times
    assert main(["video", str(path), "-o", str(tmp_path / "out.mp4"), *TINY_DREAM_FLAGS]) == 0
    assert [round(f.time * 1000) for f in read_frames(tmp_path / "out.mp4")] == times


def test_the_video_command_keeps_size_rate_and_audio(clip, tmp_path, capsys):
    out = tmp_path / "dreamt.mp4"
    assert main(["video", str(clip), "-o", str(out), *TINY_DREAM_FLAGS]) == 0
    said = capsys.readouterr().out
    assert "dreamed 12 frames" in said and "audio aac copied" in said
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames, info.audio) == (64, 48, 12, 12, "aac")
    assert _audio_packets(out) == _audio_packets(clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dreamt.mp4"]
    # A part: --start and --duration.
    assert main(["video", str(clip), "-o", str(tmp_path / "p.webm"), "--start", "0.5",
                 "--duration", "0.25", *TINY_DREAM_FLAGS]) == 0  # fmt: skip
    assert (
        probe(tmp_path / "p.webm").frames in (3, 0)
        and len(list(read_frames(tmp_path / "p.webm"))) == 3
    )
    assert probe(tmp_path / "p.webm").audio == "opus"  # AAC cannot go into WebM: re-encoded


def _no_video(tmp_path) -> Path:
    out = av.open(str(tmp_path / "sound.m4a"), "w")
    audio = out.add_stream("aac", rate=16000)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.float32), format="flt", layout="mono")
    frame.sample_rate, frame.pts = 16000, 0
    for p in [*audio.encode(frame), *audio.encode(None)]:
        out.mux(p)
    out.close()
    return tmp_path / "sound.m4a"


def _no_frames(tmp_path) -> Path:
    out = av.open(str(tmp_path / "empty.mkv"), "w")
    video = out.add_stream("libx264", rate=12)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    out.start_encoding()  # the header, and no frame
    out.close()
    return tmp_path / "empty.mkv"


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("text", "not a video"),
        ("sound", "no video stream"),
        ("empty", "no frames"),
        ("avi", "no encoder here writes .avi"),
        ("same", "is the input: choose another"),
        ("start", "past the end"),
        ("duration0", "duration must be > 0"),
        ("durationnan", "duration must be a finite number"),
        ("missing", "does not exist"),
        ("folder", "not an empty folder"),
    ],
)
def test_bad_video_input_is_one_line_and_exit_2_before_any_work(
    clip, tmp_path, capsys, case, pattern
):
    (tmp_path / "notes.mp4").write_text("not a video at all")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"x")
    source, out, extra = str(clip), str(tmp_path / "o.mp4"), []
    if case == "text":
        source = str(tmp_path / "notes.mp4")
    elif case == "sound":
        source = str(_no_video(tmp_path))
    elif case == "empty":
        source = str(_no_frames(tmp_path))
    elif case == "avi":
        out = str(tmp_path / "o.avi")
    elif case == "same":
        out = str(clip)
    elif case == "start":
        extra = ["--start", "5"]
    elif case == "duration0":
        extra = ["--duration", "0"]
    elif case == "durationnan":
        extra = ["--duration", "nan"]
    elif case == "missing":
        source = str(tmp_path / "nope.mp4")
    elif case == "folder":
        out = str(tmp_path / "full")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["video", source, "-o", out, *TINY_DREAM_FLAGS, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: ") and pattern in err[0], err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_frames_over_the_pixel_limit_are_refused(clip, monkeypatch):
    from jaxdream import imageio

    monkeypatch.setattr(imageio, "MAX_PIXELS", 64 * 48 - 1)
    with pytest.raises(VideoError, match="too large to dream"):
        dream_video(clip, CFG)


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--frames", "0"], "--frames must be in 1"),
        (["--frames", "100000000"], "--frames must be in 1"),
        (["--zoom", "0"], "zoom must be > 0"),
        (["--zoom", "-2"], "zoom must be > 0"),
        (["--zoom", "nan"], "zoom must be a finite number"),
        (["--rotate", "inf"], "rotate must be a finite number"),
        (["--pan", "nan", "0"], "pan dx must be a finite number"),
        (["--fps", "0"], "--fps must be in"),
        (["-o", "{tmp}/z.avi"], "no encoder here writes .avi"),
        (["-o", "{photo}"], "is the input: choose another"),
    ],
)
def test_bad_zoom_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, pattern):
    photo = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(photo)
    flags = [f.format(tmp=tmp_path, photo=photo) for f in flags]
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(["zoom", str(photo), "-o", str(tmp_path / "z.mp4"), *TINY_DREAM_FLAGS, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: ") and pattern in err[0], err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_the_zoom_command_writes_the_same_frames_twice(tmp_path, capsys):
    from jaxdream.cli.zoom import MOTION_ITERATIONS
    from jaxdream.motion import MOTION_ITERATIONS as LIBRARY

    assert MOTION_ITERATIONS == LIBRARY
    photo = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(photo)
    for out in ("a", "b"):
        args = ["zoom", str(photo), "-o", str(tmp_path / out), "--frames", "4", "--rotate", "5"]
        assert main([*args, *TINY_DREAM_FLAGS]) == 0
    a = [p.read_bytes() for p in sorted((tmp_path / "a").iterdir())]
    assert len(a) == 4 and a == [p.read_bytes() for p in sorted((tmp_path / "b").iterdir())]
    assert (
        main(
            ["zoom", str(photo), "-o", str(tmp_path / "z.gif"), "--frames", "3", *TINY_DREAM_FLAGS]
        )
        == 0
    )
    with Image.open(tmp_path / "z.gif") as im:
        assert im.n_frames == 3
    assert "3 frames at 64x48" in capsys.readouterr().out  # the photo's size, the default


def _interrupted(args, tmp_path, name: str, frames: int, sig, code) -> tuple[Path, int]:
    """Run ``args -o name`` and stop it by ``sig`` once it kept ``frames`` frames; returns its
    partial folder and the frames kept there."""
    run = jaxdream_process([*args, "-o", name], tmp_path)
    partial = tmp_path / f".{name}.partial"
    deadline = time.monotonic() + 240
    while len(list(partial.glob("frame_*.png"))) < frames and run.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run.send_signal(sig)
    run.communicate(timeout=60)
    assert run.returncode == code
    assert not (tmp_path / name).exists()  # nothing under the output's name
    return partial, len(list(partial.glob("frame_*.png")))


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_zoom_keeps_its_frames_and_resumes_to_the_same_bytes(tmp_path, sig, code):
    photo = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(photo)
    args = ["zoom", str(photo), "--frames", "60", "--size", "48", "--steps", "2", "-q"]
    whole = jaxdream_process([*args, "-o", "whole"], tmp_path)
    assert whole.communicate(timeout=300)[0] and whole.returncode == 0
    partial, kept = _interrupted(args, tmp_path, "z", 14, sig, code)
    assert 14 <= kept < 60 and (partial / "state.npz").exists()
    again = jaxdream_process([*args, "-o", "z"], tmp_path)  # without --resume: refused, saying why
    assert again.communicate(timeout=120)[1].count("add --resume") == 1 and again.returncode == 2
    resumed = jaxdream_process([*args, "-o", "z", "--resume"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "resumed at frame" in out and not partial.exists()
    a = [p.read_bytes() for p in sorted((tmp_path / "z").iterdir())]
    assert len(a) == 60 and a == [p.read_bytes() for p in sorted((tmp_path / "whole").iterdir())]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_coherent_video_resumes_to_the_same_bytes(tmp_path, sig, code):
    """A real signal mid-render: the frames kept, nothing under the output's name, and the
    resumed render (the carving carried from the state kept with the last frame) makes the
    bytes of an uninterrupted one."""
    clip = encode(tmp_path / "long.mp4", pan(90, step=1), fps=12)
    args = ["video", str(clip), "--coherence", "blend", *TINY_DREAM_FLAGS]
    whole = jaxdream_process([*args, "-o", "whole"], tmp_path)
    assert whole.communicate(timeout=300)[0] and whole.returncode == 0
    partial, kept = _interrupted(args, tmp_path, "v", 10, sig, code)
    assert 10 <= kept < 90 and (partial / f"state_{kept:06d}.npz").exists()
    resumed = jaxdream_process([*args, "-o", "v", "--resume"], tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resumed after {kept}" in out and not partial.exists()
    a = [p.read_bytes() for p in sorted((tmp_path / "v").iterdir())]
    assert len(a) == 90 and a == [p.read_bytes() for p in sorted((tmp_path / "whole").iterdir())]


@pytest.mark.slow
def test_two_processes_each_write_their_part_of_the_video(clip, tmp_path):

    args = ["video", str(clip), *TINY_DREAM_FLAGS]
    one = jaxdream_process([*args, "-o", "one/"], tmp_path)
    assert one.communicate(timeout=300)[1].count("Traceback") == 0 and one.returncode == 0
    hosts = two_processes([*args, "-o", "two/"], tmp_path)
    said = [p.communicate(timeout=300) for p in hosts]
    assert [p.returncode for p in hosts] == [0, 0], said
    parts = [tmp_path / "two-part1of2", tmp_path / "two-part2of2"]
    frames = [p.read_bytes() for part in parts for p in sorted(part.iterdir())]
    assert frames == [p.read_bytes() for p in sorted((tmp_path / "one").iterdir())]
    assert "process 0 of 2" in said[0][0] and "process 1 of 2" in said[1][0]


def test_a_video_render_stopped_midway_resumes_to_the_same_frames(clip, tmp_path, monkeypatch):
    from jaxdream.video import Resumable

    args = ["video", str(clip), *TINY_DREAM_FLAGS]
    assert main([*args, "-o", str(tmp_path / "whole")]) == 0
    keep = Resumable.keep
    calls = []

    def failing(self, index, frame, when=None, state=None):
        calls.append(index)
        if len(calls) == 6:
            raise VideoError("the disk is full (a stand-in for any stop)")
        keep(self, index, frame, when, state)

    monkeypatch.setattr(Resumable, "keep", failing)
    assert main([*args, "-o", str(tmp_path / "v")]) == 2
    monkeypatch.setattr(Resumable, "keep", keep)
    partial = tmp_path / ".v.partial"
    kept = {p.name for p in partial.glob("frame_*.png")}  # 0-4, and any written after the stop
    assert {f"frame_{k:06d}.png" for k in range(5)} <= kept and "frame_000005.png" not in kept
    assert not (tmp_path / "v").exists()
    assert main([*args, "-o", str(tmp_path / "v"), "--steps", "2"]) == 2  # other settings
    assert main([*args, "-o", str(tmp_path / "v"), "--resume"]) == 0
    a = [p.read_bytes() for p in sorted((tmp_path / "v").iterdir())]
    assert len(a) == 12 and a == [p.read_bytes() for p in sorted((tmp_path / "whole").iterdir())]
    assert not partial.exists()


@pytest.mark.slow
def test_the_motion_benchmark_runs_a_tiny_pass(capsys):
    """The benchmark must not rot; nothing about speed is asserted."""
    from benchmarks import motion

    assert motion.main(["--quick", "--devices", "1"]) == 0
    said = capsys.readouterr().out
    assert "| 1 |" in said and "end to end / memory" in said
    record = json.loads(said[: said.rindex("}") + 1])
    assert record["runs"]["1"]["zoom"]["programs_compiled"] == 1
    assert all(s > 0 for s in record["runs"]["1"]["video"]["command_s"])  # the CLI ran


@pytest.mark.slow
def test_the_encoder_comparison_runs_a_tiny_pass_and_restores_the_default(capsys):
    from benchmarks import motion
    from jaxdream.video import SETTINGS

    default = dict(SETTINGS[".mp4"].options)
    assert motion.main(["--quick", "--encoders"]) == 0
    said = capsys.readouterr().out
    record = json.loads(said[: said.rindex("}") + 1])
    assert [p for p in motion.ENCODER_PRESETS if record[p]["default"]] == [default["preset"]]
    assert all(
        record[p]["kilobytes"] > 0 and record[p]["psnr_db"] > 20 for p in motion.ENCODER_PRESETS
    )
    assert SETTINGS[".mp4"].options == default
