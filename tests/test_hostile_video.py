"""Bad input and faults on the motion surfaces (issue 32): hangs, aborts, damaged files the
project writes, the Python API's arguments, refusals that leave state, odd streams, work
bounded by the input, leftovers. Real processes with timeouts for hangs and signals; damaged
files made here; a full disk on a private tmpfs where one can be mounted, else a file-size
limit."""

import os
import resource
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

from jaxdream.config import DreamConfig, Level  # noqa: E402
from jaxdream.video import VideoError, dream_video, read_frames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CAT = np.asarray(Image.open(REPO / "jaxdream" / "assets" / "chelsea.jpg").convert("RGB"))
CFG = DreamConfig(size=16, iterations=1, steps=1, levels=(Level(0),), map=3)
FAST = ["--size", "32", "--iterations", "1", "--steps", "1", "--levels", "0", "-q"]


def pan(count: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    return [np.ascontiguousarray(CAT[60 : 60 + h, 100 + k : 100 + k + w]) for k in range(count)]


def encode(path: Path, frames, fmt: str | None = None, fps: int = 24, **x264) -> Path:
    """H.264 of ``frames`` in the container ``fmt`` (default: from the name); ``x264``: the
    encoder's own parameters (``x264-params``)."""
    out = av.open(str(path), "w", format=fmt)
    stream = out.add_stream("libx264", rate=fps)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    if x264:
        stream.options = {"x264-params": ":".join(f"{k}={v}" for k, v in x264.items())}
    for k, f in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(f, format="rgb24")
        frame.pts = k
        for p in stream.encode(frame):
            out.mux(p)
    for p in stream.encode(None):
        out.mux(p)
    out.close()
    return path


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


def _env(**more) -> dict[str, str]:
    from jaxdream.runtime import cpu_flags

    return dict(
        os.environ, JAXDREAM_NO_CACHE="1", XLA_FLAGS=cpu_flags(1), PYTHONPATH=str(REPO), **more
    )


def _jaxdream(args, cwd, timeout=180, prefix=(), **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "jaxdream", *args],
        cwd=cwd,
        env=_env(),
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
    from jaxdream.video import _av

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
        run = _jaxdream([*args, "--duration", "1", "--batch-size", "1", *FAST], tmp_path, 120)
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
@pytest.mark.parametrize("how", ["tmpfs", "file-size limit"])
def test_a_video_onto_a_full_disk_ends_in_order(tmp_path, how):
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
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))
    for _ in range(3):  # the crash in FFmpeg's muxer after a failed write came 1 run in 3
        run = _jaxdream(["video", str(clip), "-o", str(out), *FAST], tmp_path, prefix=prefix, **kw)
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
    assert main(["video", str(joined), "-o", str(tmp_path / "out.mp4"), *FAST]) == 0
    assert "12 frames are of another size than the first" in capsys.readouterr().err


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def test_closing_a_video_dream_joins_its_threads(tmp_path, tiny):
    """close() after one frame, again and again: the decoding and dreaming threads have ended
    when it returns (the dreaming one used to wait for a frame for ever, 1 run in 6)."""
    clip = encode(tmp_path / "clip.mp4", pan(24))
    model, params = tiny
    for batch in (1, 2, 1, 2, 1, 2):
        dreams = dream_video(clip, CFG, model=model, params=params, batch_size=batch)
        assert next(dreams).shape == (48, 64)
        dreams.close()
        assert _threads("jaxdream-") == []
    dreams = dream_video(clip, CFG, model=model, params=params)
    dreams.close()  # before any frame: nothing was started
    assert _threads("jaxdream-") == []


def test_an_error_mid_dream_joins_the_threads_before_it_is_raised(tmp_path, tiny):
    clip = encode(tmp_path / "clip.mp4", pan(24))
    model, params = tiny
    dreams = dream_video(clip, CFG, model=model, params=params, batch_size=2)
    with pytest.raises(VideoError, match="stand-in"):
        for k, _ in enumerate(dreams):
            if k == 3:
                raise VideoError("a stand-in for a full disk")
    dreams.close()  # what the command does (contextlib.closing) on its way out
    assert _threads("jaxdream-") == []
