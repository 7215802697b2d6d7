"""Bad input and faults on the motion surfaces: hangs, aborts, damaged files the
project writes, the Python API's arguments, refusals that leave state, odd streams, work
bounded by the input, leftovers. Real processes with timeouts for hangs and signals; damaged
files made here; a full disk on a private tmpfs where one can be mounted, else a file-size
limit."""

import fractions
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jaxdream.config import DreamConfig, Level  # noqa: E402
from jaxdream.errors import ConfigError, JaxdreamError  # noqa: E402
from jaxdream.video import (  # noqa: E402
    VideoError,
    VideoWriter,
    dream_video,
    flicker,
    probe,
    read_frames,
    save_video,
)
from tests.clips import encode, stop_keeping_at  # noqa: E402
from tests.clips import pan as _pan  # noqa: E402
from tests.helpers import TINY_DREAM_FLAGS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pan(count: int, h: int = 48, w: int = 64) -> list:
    """The pan these tests encode: one pixel a frame."""
    return _pan(count, h, w, step=1)


CFG = DreamConfig(size=16, iterations=1, steps=1, levels=(Level(0),), map=3)


def damaged_open_gop(path: Path, count: int = 120) -> Path:
    """An open-GOP clip with B-frames and bytes flipped all through: FFmpeg's frame threads
    log decoding errors from start to end (what made a decoder closed mid-stream hang)."""
    gop = {"keyint": 12, "min-keyint": 12, "open-gop": 1, "bframes": 3, "scenecut": 0}
    encode(path, pan(count), **gop)
    data = bytearray(path.read_bytes())
    for i in np.random.default_rng(0).integers(2000, len(data) - 2000, 300):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _env(cache: bool = True, **more) -> dict[str, str]:
    """The command line's environment: this repository's package, one CPU device, and the test
    session's persistent compilation cache (a program one run compiled, the next loads), or
    none (``cache=False``: where a test limits what may be written)."""
    from jaxdream.runtime import cpu_flags

    env = dict(os.environ, XLA_FLAGS=cpu_flags(1), PYTHONPATH=str(REPO), **more)
    return env if cache else dict(env, JAXDREAM_NO_CACHE="1")


def _jaxdream(args, cwd, timeout=180, prefix=(), cache=True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "jaxdream", *args],
        cwd=cwd,
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def _one_error_line(run: subprocess.CompletedProcess, says: str = "") -> None:
    """Exit 2, and the error is one line, the last thing written (no abort after it)."""
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2, run.stderr
    assert lines and lines[-1].startswith("jaxdream: error: ") and says in lines[-1], lines
    assert "Traceback" not in run.stderr and "terminate called" not in run.stderr


# --------------------------------------------------------------------------- 1. hangs


def test_ffmpeg_logging_is_left_without_python():
    """FFmpeg's log callback stays PyAV's silent C one: a Python callback, which a log level
    installs, is called from FFmpeg's frame threads and waits there for the GIL."""
    from jaxdream.video.common import _av

    _av()
    assert av.logging.get_level() is None


def test_decoders_dropped_mid_stream_never_hang(tmp_path):
    """The hang's trigger, repeated: a damaged stream decoded on a thread (frame threads
    logging errors), given up after a few frames, its decoder freed while another thread
    holds the GIL. With a Python log callback this deadlocked in every run of 40 tries."""
    clip = damaged_open_gop(tmp_path / "bad.mp4")
    script = textwrap.dedent(
        """
        import gc, sys, threading
        from jaxdream.video import read_frames
        for i in range(60):
            frames = read_frames(sys.argv[1], start=(i % 7) * 0.3, duration=2)
            def take():
                for k, _ in enumerate(frames):
                    if k == i % 4:
                        break
            t = threading.Thread(target=take)
            t.start()
            t.join()
            del frames
            gc.collect()
        print("done")
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(clip)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr


@pytest.mark.slow
def test_the_video_command_repeated_never_hangs(tmp_path):
    """The reported command's shape (--start, --duration, --batch-size 1) on a stream whose
    decoder logs errors, run again and again, each under a timeout."""
    clip = damaged_open_gop(tmp_path / "bad.mp4")
    for k in range(8):
        args = ["video", str(clip), "-o", f"out{k}.mp4", "--start", f"{0.3 * (k % 4):.1f}"]
        run = _jaxdream(
            [*args, "--duration", "1", "--batch-size", "1", *TINY_DREAM_FLAGS], tmp_path, 120
        )
        if run.returncode != 0:  # a range the damage left empty: told, in one line
            _one_error_line(run, "decoded")


# --------------------------------------------------------------------------- 2. aborts


def _small_disk(folder: Path) -> tuple[str, ...] | None:
    """A command prefix that runs a command with a 64 KiB tmpfs mounted on ``folder`` (a
    user and mount namespace of its own), or ``None`` where none can be made here."""
    if not shutil.which("unshare"):
        return None
    folder.mkdir()
    mount = f'mount -t tmpfs -o size=64k tmpfs {folder} && exec "$@"'
    prefix = ("unshare", "-rm", "sh", "-c", mount, "sh")
    ok = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if ok.returncode == 0 else None


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, how", [("video", "tmpfs"), ("video", "file-size limit"), ("zoom", "tmpfs")]
)
def test_a_render_onto_a_full_disk_ends_in_order(tmp_path, command, how):
    """Exit 2 and the error line last (it was followed by exit 134, or 139 in FFmpeg's muxer
    written to again after a failed write), nothing under the output's name."""
    clip = encode(tmp_path / "long.mp4", pan(90))
    out = tmp_path / "disk" / "out.mp4"
    kw: dict = {}
    prefix: tuple[str, ...] = ()
    if how == "tmpfs":
        prefix = _small_disk(tmp_path / "disk") or ()
        if not prefix:
            pytest.skip("no private tmpfs can be mounted here (unshare -rm)")
    else:
        (tmp_path / "disk").mkdir()
        # The limit set by a shell, not by a preexec_fn: that would fork this process (JAX's
        # threads running) and JAX's at-fork hook warns, which this suite treats as an error.
        prefix = ("sh", "-c", 'ulimit -f 16 && exec "$@"', "sh")  # 16 blocks of 512 bytes
    args = ["video", str(clip)] if command == "video" else ["zoom", "--frames", "200"]
    for _ in range(3):  # the crash in FFmpeg's muxer after a failed write came 1 run in 3
        run = _jaxdream(
            [*args, "-o", str(out), *TINY_DREAM_FLAGS], tmp_path, prefix=prefix, cache=False, **kw
        )
        _one_error_line(run, "cannot write")
        assert not out.exists()
        shutil.rmtree(out.parent / ".out.mp4.partial", ignore_errors=True)


def test_a_stream_that_changes_size_is_scaled_to_its_first_size(tmp_path, capsys):
    """Two MPEG-TS files of two sizes joined (as a broadcast switches): read as a player
    shows it, every frame at the first size, and said; before, the encoder's refusal was
    followed by an abort."""
    from jaxdream.cli import main

    a = encode(tmp_path / "a.ts", pan(12), "mpegts")
    b = encode(tmp_path / "b.ts", pan(12, 40, 56), "mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    frames = list(read_frames(joined))
    assert len(frames) == 24 and {f.pixels.shape for f in frames} == {(48, 64, 3)}
    assert main(["video", str(joined), "-o", str(tmp_path / "out.mp4"), *TINY_DREAM_FLAGS]) == 0
    assert "12 frames are of another size than the first" in capsys.readouterr().err


def _threads(before: set) -> list[threading.Thread]:
    """Threads started since ``before`` (a snapshot) that are still alive."""
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_closing_a_video_dream_joins_its_threads(tmp_path, tiny):
    """close() after one frame, again and again: the decoding and dreaming threads have ended
    when it returns (the dreaming one used to wait for a frame for ever, 1 run in 6)."""
    clip = encode(tmp_path / "clip.mp4", pan(24))
    model, params = tiny
    before = set(threading.enumerate())
    for batch in (1, 2, 1, 2, 1, 2):
        dreams = dream_video(clip, CFG, model=model, params=params, batch_size=batch)
        assert next(dreams).shape == (48, 64)
        dreams.close()
        assert _threads(before) == []
    dreams = dream_video(clip, CFG, model=model, params=params)
    dreams.close()  # before any frame: nothing was started
    assert _threads(before) == []
    with dream_video(clip, CFG, model=model, params=params, batch_size=2) as dreams:
        first = next(dreams)
    assert first.shape == (48, 64) and _threads(before) == []


def test_an_error_mid_dream_joins_the_threads_before_it_is_raised(tmp_path, tiny):
    clip = encode(tmp_path / "clip.mp4", pan(24))
    model, params = tiny
    before = set(threading.enumerate())
    dreams = dream_video(clip, CFG, model=model, params=params, batch_size=2)
    with pytest.raises(VideoError, match="stand-in"):
        for k, _ in enumerate(dreams):
            if k == 3:
                raise VideoError("a stand-in for a full disk")
    dreams.close()  # what the command does (contextlib.closing) on its way out
    assert _threads(before) == []


# --------------------------------------------------------------------------- 4. the Python API


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", pan(6), fps=12)


@pytest.mark.parametrize(
    "call, error, says",
    [
        (lambda c: dream_video(None), VideoError, "a video is a file's path"),
        (lambda c: dream_video(b"x.mp4"), VideoError, "a video is a file's path"),
        (lambda c: dream_video(c, frames=5), ConfigError, "frames is a pair"),
        (lambda c: dream_video(c, frames=(1,)), ConfigError, "frames is a pair"),
        (lambda c: dream_video(c, frames=(2, 1)), ConfigError, "stop frame must be in 2.."),
        (lambda c: dream_video(c, display=None), ConfigError, "display must be"),
        (lambda c: dream_video(c, color="no"), ConfigError, "color must be True or False"),
        (lambda c: dream_video(c, coherence=None), ConfigError, "coherence must be one of"),
        (lambda c: dream_video(c, config=None), ConfigError, "config must be a DreamConfig"),
        (lambda c: probe(None), VideoError, "a video is a file's path"),
        (lambda c: probe(""), VideoError, "a video is a file's path"),
        (lambda c: probe("a\0b"), VideoError, "a video is a file's path"),
        (lambda c: read_frames(3.5), VideoError, "a video is a file's path"),
        (lambda c: save_video(c.with_name("o.mp4"), pan(2), fps=None), ConfigError, "fps must"),
        (lambda c: save_video(c.with_name("o.mp4"), pan(2), "25"), ConfigError, "fps must"),
        (lambda c: save_video(None, pan(2)), VideoError, "the output is a file's path"),
        (lambda c: save_video(c.with_name("o.mp4"), None), VideoError, "iterable of uint8"),
        (lambda c: save_video(c.with_name("o.mp4"), [None]), VideoError, "a video frame is"),
        (lambda c: save_video(c.with_name("o.mp4"), 7), VideoError, "iterable of uint8"),
        (lambda c: flicker(None), VideoError, "iterable of uint8"),
        (lambda c: flicker([np.zeros((4, 4)), np.zeros((4, 5))]), VideoError, "share one size"),
        (lambda c: flicker([np.zeros((4, 4)), np.full((4, 4), np.nan)]), VideoError, "NaN"),
        (lambda c: flicker([np.zeros((4, 4)), "x"]), VideoError, "frame 1 is not an array"),
        (lambda c: VideoWriter(c.with_name("o.mp4"), 12, time_base=0.5), ConfigError, "Fraction"),
    ],
)
def test_wrong_arguments_raise_the_projects_errors(small_clip, call, error, says):
    with pytest.raises(error, match=re.escape(says)):
        call(small_clip)
    assert sorted(p.name for p in small_clip.parent.iterdir()) == ["clip.mp4"]  # nothing made


def test_an_audio_source_that_is_not_audio_is_named(small_clip, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    with pytest.raises(VideoError, match=re.escape(f"the audio source {text} is not a file")):
        save_video(tmp_path / "o.mp4", pan(2), 12, audio=text)
    with pytest.raises(VideoError, match=re.escape(f"{tmp_path / 'gone.mp4'} does not exist")):
        save_video(tmp_path / "o.mp4", pan(2), 12, audio=tmp_path / "gone.mp4")
    with pytest.raises(VideoError, match="audio is a file's path"):
        save_video(tmp_path / "o.mp4", pan(2), 12, audio=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_zoom_checks_its_arguments():
    from jaxdream.motion import zoom

    photo = np.zeros((16, 16))
    for kw, says in [
        ({"display": None}, "display must be"),
        ({"color": "yes"}, "color must be True or False"),
        ({"resume": 3}, "resume is a ZoomFrames.state() mapping"),
        ({"frames": None}, "frames must be a whole number"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(says)):
            zoom(photo, CFG, **kw)


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fps=_ANY)
def test_any_fps_is_taken_or_refused_with_the_projects_error(tmp_path, fps):
    try:
        writer = VideoWriter(tmp_path / "o.mp4", fps)
    except ConfigError as e:
        assert "fps" in str(e)
    else:
        assert 1e-3 <= float(fps) <= 1000
        assert writer.fps > 0


@settings(max_examples=60, deadline=None)
@given(
    start=_ANY,
    duration=_ANY,
    carry=_ANY,
    batch_size=_ANY,
    frames=st.one_of(_ANY, st.tuples(_ANY, _ANY)),
)
def test_any_dream_video_range_is_refused_with_the_projects_error(
    start, duration, carry, batch_size, frames
):
    """Whatever the values, only the project's errors come out (a path that does not exist
    is the last check: values that pass reach it)."""
    with pytest.raises(JaxdreamError):
        dream_video(
            "/nonexistent/clip.mp4",
            start=start,
            duration=duration,
            carry=carry,
            batch_size=batch_size,
            frames=frames,
        )


# --------------------------------------------------------------------------- 5. refusals


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--fps", "0.0005"], "--fps must be in [0.001, 1000]"),
        (["--size", "1"], "size 1 is smaller than"),
        (["--size", "17", "9"], "17x9 is not divisible"),
    ],
)
def test_a_refused_zoom_leaves_nothing_and_the_corrected_command_starts(
    tmp_path, capsys, flags, says
):
    from jaxdream.cli import main

    photo = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(photo)
    args = ["zoom", str(photo), "-o", str(tmp_path / "z"), "--frames", "2", "--steps", "1"]
    assert main([*args, "--size", "16", "-q", *flags]) == 2
    assert says in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
    assert main([*args, "--size", "16", "-q"]) == 0  # no "add --resume"
    assert len(list((tmp_path / "z").iterdir())) == 2


def test_a_refused_video_leaves_nothing(small_clip, tmp_path, capsys):
    from jaxdream.cli import main

    out = str(tmp_path / "v.mp4")
    for flags in (["--levels", "0", "2", "--size", "17", "9"], ["--size", "0"], ["--start", "99"]):
        assert main(["video", str(small_clip), "-o", out, *TINY_DREAM_FLAGS, *flags]) == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert capsys.readouterr().err.count("jaxdream: error: ") == 3


# --------------------------------------------------------------------------- 3. damaged files


@pytest.mark.parametrize("content", [b"\x00\xff garbage", b"[1, 2]", None])
def test_a_damaged_settings_file_is_named_with_what_to_do(small_clip, tmp_path, capsys, content):
    from jaxdream.cli import main

    partial = tmp_path / ".v.mp4.partial"
    partial.mkdir()
    if content is not None:
        (partial / "settings.json").write_bytes(content)
    args = ["video", str(small_clip), "-o", str(tmp_path / "v.mp4"), *TINY_DREAM_FLAGS, "--resume"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{partial / 'settings.json'} is missing or damaged" in err
    assert f"remove {partial} to start again" in err and "other settings" not in err


# --------------------------------------------------------------------------- 7. bounded work


def test_a_batch_is_never_larger_than_the_frames_to_dream(tmp_path, tiny):
    clip = encode(tmp_path / "two.mp4", pan(2), fps=24)
    model, params = tiny
    dreams = dream_video(clip, CFG, model=model, params=params, batch_size=4096)
    frames = list(dreams)
    assert len(frames) == 2 and dreams.batch == 2
    part = dream_video(clip, CFG, model=model, params=params, batch_size=64, frames=(1, None))
    assert len(list(part)) == 1 and part.batch == 1


def test_large_frames_are_dreamt_in_smaller_batches(tmp_path, tiny, monkeypatch):
    """Frames in flight are bounded by bytes (``FRAMES_IN_FLIGHT_BYTES``): with room for only
    a few frames of this size, one is dreamt at a time, and the frames are the same."""
    from jaxdream.video import dreaming as video

    clip = encode(tmp_path / "six.mp4", pan(6), fps=24)
    model, params = tiny
    roomy = dream_video(clip, CFG, model=model, params=params)
    wide = list(roomy)
    frame_bytes = 48 * 64 * 10
    monkeypatch.setattr(video, "FRAMES_IN_FLIGHT_BYTES", 4 * frame_bytes)
    tight = dream_video(clip, CFG, model=model, params=params)
    narrow = list(tight)
    assert roomy.batch > 1 and tight.batch == 1
    for a, b in zip(wide, narrow, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_duration_gives_the_same_frames_from_python_and_the_command(tmp_path, tiny, capsys):
    """0.1 s at 24 fps: the frames at 0, 1/24 and 2/24 s (t < start + duration), both ways;
    the command used to make 2 and the library 3."""
    from jaxdream.cli import main
    from jaxdream.video import Decoded

    clip = encode(tmp_path / "c.mp4", pan(12), fps=24)
    model, params = tiny
    assert len(list(read_frames(clip, duration=0.1))) == 3
    assert Decoded(clip, 0.0, 0.1, None).expected() == 3
    assert Decoded(clip, 0.25, 0.125, None).expected() == 3  # frames 6, 7, 8
    assert len(list(read_frames(clip, start=0.25, duration=0.125))) == 3
    assert len(list(dream_video(clip, CFG, duration=0.1, model=model, params=params))) == 3
    out = tmp_path / "o"
    assert main(["video", str(clip), "-o", str(out), "--duration", "0.1", *TINY_DREAM_FLAGS]) == 0
    assert len(list(out.iterdir())) == 3 and "dreamed 3 frames" in capsys.readouterr().out


class _Hostile:
    """Pickled into a state file: loading it would make ``MARK``."""

    MARK = Path("/nonexistent")

    def __reduce__(self):
        return (Path.touch, (self.MARK,))


def _damage(path: Path, how: str, tmp_path: Path) -> None:
    if how == "garbage":
        path.write_bytes(np.random.default_rng(1).bytes(300))
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "pickle":
        _Hostile.MARK = tmp_path / "pickle-ran"
        with open(path, "wb") as f:
            np.savez(f, image=np.array([_Hostile()], dtype=object))
    elif how == "bare array":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif how == "keys missing":
        with open(path, "wb") as f:
            np.savez(f, other=np.zeros(3))


def _frames_of(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir())]


@pytest.mark.parametrize("how", ["garbage", "truncated", "pickle", "bare array", "keys missing"])
def test_a_damaged_zoom_state_is_dropped_and_the_frames_made_again(tmp_path, monkeypatch, how):
    from jaxdream.cli import main

    photo = tmp_path / "p.png"
    Image.fromarray(pan(1)[0]).save(photo)
    args = ["zoom", str(photo), "--frames", "12", "--size", "16", "--steps", "1", "-q"]
    assert main([*args, "-o", str(tmp_path / "whole")]) == 0
    restore = stop_keeping_at(monkeypatch, 12)
    assert main([*args, "-o", str(tmp_path / "z")]) == 2
    restore()
    state = tmp_path / ".z.partial" / "state.npz"
    assert state.exists()  # kept after frame 9
    _damage(state, how, tmp_path)
    assert main([*args, "-o", str(tmp_path / "z"), "--resume"]) == 0
    assert _frames_of(tmp_path / "z") == _frames_of(tmp_path / "whole")
    assert not (tmp_path / "pickle-ran").exists()


def test_a_truncated_kept_frame_is_made_again(tmp_path, monkeypatch, small_clip):
    from jaxdream.cli import main

    args = ["video", str(small_clip), *TINY_DREAM_FLAGS]
    assert main([*args, "-o", str(tmp_path / "whole")]) == 0
    restore = stop_keeping_at(monkeypatch, 5)
    assert main([*args, "-o", str(tmp_path / "v")]) == 2
    restore()
    kept = tmp_path / ".v.partial" / "frame_000002.png"
    _damage(kept, "truncated", tmp_path)
    assert main([*args, "-o", str(tmp_path / "v"), "--resume"]) == 0
    assert _frames_of(tmp_path / "v") == _frames_of(tmp_path / "whole")


@pytest.mark.parametrize("how", ["garbage", "pickle", "bare array", "keys missing", "shape"])
def test_a_damaged_video_state_is_named_with_what_to_do(
    tmp_path, monkeypatch, small_clip, capsys, how
):
    from jaxdream.cli import main

    args = [
        "video",
        str(small_clip),
        "--coherence",
        "blend",
        *TINY_DREAM_FLAGS,
        "-o",
        str(tmp_path / "v"),
    ]
    restore = stop_keeping_at(monkeypatch, 4)
    assert main(args) == 2
    restore()
    partial = tmp_path / ".v.partial"
    state = partial / "state_000003.npz"
    assert state.exists()
    if how == "shape":
        with open(state, "wb") as f:
            np.savez(f, image=np.zeros((3, 3), np.float32), carving=np.zeros((3, 3), np.float32))
    else:
        _damage(state, how, tmp_path)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(state) in err[0] and f"remove {partial}" in err[0], err
    assert not (tmp_path / "pickle-ran").exists()


# --------------------------------------------------------------------------- 8. leftovers


def test_stale_temporaries_of_dead_processes_are_removed_and_no_others(tmp_path):
    from jaxdream import _files

    out = tmp_path / "v.mp4"
    host = _files._host()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(dead.stdout)
    names = {
        "dead": f".v.mp4.{host}-{dead_pid}.abcd1234.mp4",
        "alive": f".v.mp4.{host}-{os.getppid()}.abcd1234.mp4",
        "mine": f".v.mp4.{host}-{os.getpid()}.abcd1234.mp4",
        "other host": f".v.mp4.elsewhere-{dead_pid}.abcd1234.mp4",
        "other output": f".w.mp4.{host}-{dead_pid}.abcd1234.mp4",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    assert _files.remove_stale_temporaries(out, ".mp4") == [tmp_path / names["dead"]]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(names.values()) - {names["dead"]}


def _wait_for(predicate, run, seconds=240):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.slow
def test_what_a_killed_render_left_is_removed_by_the_next(tmp_path):
    import signal

    clip = encode(tmp_path / "long.mp4", pan(90))
    args = [sys.executable, "-m", "jaxdream", "video", str(clip), *TINY_DREAM_FLAGS, "-o", "v.mp4"]
    run = subprocess.Popen(args, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    partial = tmp_path / ".v.mp4.partial"
    _wait_for(lambda: len(list(partial.glob("frame_*.png"))) >= 4, run)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    assert list(tmp_path.glob(".v.mp4.*.mp4"))  # what SIGKILL leaves: no process to clean it
    again = _jaxdream(
        ["video", str(clip), *TINY_DREAM_FLAGS, "-o", "v.mp4", "--resume"], tmp_path, 240
    )
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "v.mp4"]


def test_a_partial_folder_is_removed_while_a_thread_writes_into_it(tmp_path):
    """A signal stops a render while its encoding thread writes frames into the hidden
    folder: ``remove_partial_files`` removes the folder all the same (a file made between the
    listing and the folder's removal left it standing, one Ctrl-C test in five)."""
    from jaxdream import _files

    for attempt in range(20):
        folder = tmp_path / f".frames{attempt}.writing"
        folder.mkdir()
        _files.register_partial(folder)
        stop = threading.Event()

        def write(folder=folder, stop=stop):
            k = 0
            while not stop.is_set():
                try:
                    (folder / f"frame_{k:06d}.png").write_bytes(b"x" * 4096)
                except OSError:  # the folder is gone: the write fails, nothing is made
                    return
                k += 1

        writer = threading.Thread(target=write)
        writer.start()
        while not any(folder.iterdir()):
            pass
        _files.remove_partial_files()
        stop.set()
        writer.join()
        assert not list(tmp_path.glob(f".frames{attempt}.writing*")), attempt  # nor a renamed one


@pytest.mark.slow
def test_ctrl_c_while_writing_a_frame_folder_leaves_no_hidden_folder(tmp_path):
    import signal

    clip = encode(tmp_path / "long.mp4", pan(90))
    args = [
        sys.executable,
        "-m",
        "jaxdream",
        "video",
        str(clip),
        *TINY_DREAM_FLAGS,
        "-o",
        "frames/",
    ]
    run = subprocess.Popen(args, cwd=tmp_path, env=_env(), stderr=subprocess.PIPE, text=True)
    writing = tmp_path / ".frames.writing"
    _wait_for(lambda: len(list(writing.glob("frame_*.png"))) >= 4, run)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=60)
    assert run.returncode == 130
    assert not writing.exists() and not (tmp_path / "frames").exists()
    assert (tmp_path / ".frames.partial").is_dir()  # kept on purpose, for --resume


# --------------------------------------------------------------------------- 6. odd streams


def test_a_raw_h264_stream_is_read_at_its_own_rate(tmp_path, capsys):
    from jaxdream.cli import main

    raw = encode(tmp_path / "clip.h264", pan(10), "h264", fps=24)
    info = probe(raw)
    assert (info.frames, info.fps, info.untimed, info.width) == (10, 24, True, 64)
    frames = list(read_frames(raw))
    assert [round(f.time * 24, 6) for f in frames] == list(range(10))
    assert [f.index for f in read_frames(raw, start=0.25)] == list(range(4))  # frames 6..9
    assert main(["video", str(raw), "-o", str(tmp_path / "out.mp4"), *TINY_DREAM_FLAGS]) == 0
    assert "no timestamps: frames are timed at 24 fps" in capsys.readouterr().err
    assert probe(tmp_path / "out.mp4").frames == 10


def test_timestamps_that_jump_back_are_made_monotonic_and_said(tmp_path, capsys):
    """One .ts joined to itself: its second half's times restart. Read as a player shows it:
    every frame 1/24 s after the one before (not 20 frames within 0.2 ms), and said."""
    from jaxdream.cli import main

    part = encode(tmp_path / "a.ts", pan(20), "mpegts", fps=24)
    twice = tmp_path / "twice.ts"
    twice.write_bytes(part.read_bytes() * 2)
    info = probe(twice)
    assert info.jumps == 1 and not info.variable and info.duration == pytest.approx(40 / 24)
    times = [f.time for f in read_frames(twice)]
    assert len(times) == 40 and np.diff(times) == pytest.approx(1 / 24)
    assert len(list(read_frames(twice, start=1.0))) == 16  # from 24/24 s, in the second half
    out = tmp_path / "out.mp4"
    assert main(["video", str(twice), "-o", str(out), *TINY_DREAM_FLAGS]) == 0
    assert "20 frames' timestamps went back" in capsys.readouterr().err
    written = [f.time for f in read_frames(out)]
    assert len(written) == 40 and np.diff(written) == pytest.approx(1 / 24)


@pytest.mark.parametrize("when", [float("nan"), -1.0, "0.5", float("inf")])
def test_a_frame_time_that_is_no_time_is_refused(tmp_path, when):
    writer = VideoWriter(tmp_path / "o.mp4", 12, time_base=fractions.Fraction(1, 1000))
    with pytest.raises(ConfigError, match="time must be"), writer:
        writer.write(pan(1)[0], when)
    assert list(tmp_path.iterdir()) == []
