"""A video render's host memory follows its frames' size: the frames in flight of the dream,
the frames waiting to be kept and encoded, and the encoder's and decoder's settings for large
frames (4K), so a 4K render holds a few frames, not a fixed budget's worth."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from jaxdream.background import KeepAndEncode
from jaxdream.config import DreamConfig, Level
from jaxdream.video import dreaming
from jaxdream.video.common import LARGE_FRAME_PIXELS
from jaxdream.video.dreaming import FRAME_BYTES_PER_PIXEL, dream_video, frames_in_flight
from jaxdream.video.render import KEPT_AHEAD_BYTES
from jaxdream.video.writing import WRITERS, _video_frame
from tests.helpers import REPO

SIZES = [(64, 48), (1280, 720), (1920, 1080), (2560, 1440), (3840, 2160), (7680, 4320)]


def test_frames_in_flight_follow_the_frame_size():
    """Every stage holds at least one frame; together they stay within the budget wherever it
    holds three frames, and a 4K frame goes alone through each stage."""
    for w, h in SIZES:
        frame = w * h * FRAME_BYTES_PER_PIXEL
        for asked in (1, 4, 16):
            batch, ahead, waiting = frames_in_flight(w, h, asked)
            assert 1 <= batch <= asked and ahead >= 1 and waiting >= 1
            held = (ahead + batch + waiting * batch) * frame
            assert held <= max(dreaming.FRAMES_IN_FLIGHT_BYTES, 3 * frame)
    assert frames_in_flight(3840, 2160, 4) == (1, 1, 1)
    assert frames_in_flight(7680, 4320, 16) == (1, 1, 1)
    # Small frames are batched as photos are.
    assert frames_in_flight(1280, 720, 4)[0] == 4 and frames_in_flight(64, 48, 16)[0] == 16


def test_a_chosen_batch_is_kept_with_the_rest_bounded():
    assert frames_in_flight(3840, 2160, 8, chosen=True) == (8, 1, 1)


def test_frames_waiting_to_be_kept_and_encoded_are_bounded_by_bytes():
    """With frames of 25 MB, no more than ``KEPT_AHEAD_BYTES`` of them wait (one: a 4K frame),
    however slow the jobs; frames of no stated size keep the bound in frames."""
    release, most = threading.Event(), []
    frame = 3840 * 2160 * 3

    def slow():
        release.wait(0.05)

    with KeepAndEncode(None, ahead=8, ahead_bytes=KEPT_AHEAD_BYTES) as jobs:
        for _ in range(12):
            jobs.put(slow, slow, frame)
            most.append((len(jobs._pending), jobs.waiting_bytes))
    assert max(n for n, _ in most) == max(1, KEPT_AHEAD_BYTES // frame) == 1
    assert all(b <= max(KEPT_AHEAD_BYTES, frame) for _, b in most)
    assert jobs.waiting_bytes == 0

    with KeepAndEncode(None, ahead=3, ahead_bytes=frame // 2) as jobs:  # one always may wait
        jobs.put(slow, slow, frame)
        assert len(jobs._pending) == 1
    with KeepAndEncode(None, ahead=3) as jobs:  # render_zoom's use: frames counted only
        for _ in range(6):
            jobs.put(slow, slow)
            assert len(jobs._pending) <= 3


def test_large_frames_are_encoded_without_b_frames_and_small_ones_as_before():
    mp4 = WRITERS[".mp4"]
    assert mp4.options_for(2160, 3840) == {**mp4.options, "x264-params": "bframes=0:subme=0"}
    assert mp4.options_for(720, 1280) == mp4.options
    assert 2560 * 1440 < LARGE_FRAME_PIXELS <= 3840 * 2160
    for writer in WRITERS.values():
        if hasattr(writer, "options_for"):
            assert writer.options_for(2, 2) == writer.options


def test_frames_go_to_the_encoder_without_a_copy_and_convert_as_a_copy_does():
    """A C-contiguous frame is read from its own memory; another is copied; both give the
    encoder the same pixels as before (so the same bytes)."""
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (180, 322, 3), dtype=np.uint8)
    frame = _video_frame(av, a)
    assert frame.planes[0].buffer_ptr == a.ctypes.data
    yuv = av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert np.array_equal(frame.reformat(format="yuv420p").to_ndarray(), yuv)
    wide = np.zeros((180, 331, 3), np.uint8)
    wide[:, :322] = a
    view = wide[:, :322]  # rows apart: copied
    assert not view.flags.c_contiguous
    converted = _video_frame(av, view).reformat(format="yuv420p").to_ndarray()
    assert np.array_equal(converted, yuv)


# Four 4K frames through the .mp4 writer; prints the peak RSS in MB above the frames it writes.
_ENCODE_4K = """
import os, tempfile
import av
import numpy as np
from jaxdream.video import VideoWriter

def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) << 10

x, y = np.arange(3840, dtype=np.uint8)[None, :], np.arange(2160, dtype=np.uint8)[:, None]
frames = []
for k in range(3):
    f = np.empty((2160, 3840, 3), np.uint8)
    f[..., 0], f[..., 1], f[..., 2] = x + np.uint8(7 * k), y + np.uint8(5 * k), x ^ y
    frames.append(f)
before = peak()
with tempfile.TemporaryDirectory() as d, VideoWriter(os.path.join(d, "4k.mp4"), 8) as w:
    for k in range(4):
        w.write(frames[k % 3])
print((peak() - before) >> 20)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc/self/status")
def test_a_4k_frame_is_encoded_in_bounded_memory():
    """x264 at 4K holds about 130 MB with the large frames' options (no B-frames, full-pixel
    motion search: no half-pixel planes) and the frame read in place; 210 MB before them, 430
    with B-frames. Its slice threads follow the cores, about 2 MB each."""
    pytest.importorskip("av")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", _ENCODE_4K], capture_output=True, text=True, env=env, timeout=300
    )
    assert run.returncode == 0, run.stderr
    held = int(run.stdout.split()[-1])
    assert held <= 150 + 2 * min(os.cpu_count() or 1, 64), held


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    pytest.importorskip("av")
    from tests.clips import encode, pan

    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", pan(6), fps=12)


CFG = DreamConfig(size=32, iterations=1, steps=2, levels=(Level(0), Level(1)), map=3)


def _threads_seen(frames) -> tuple[list[np.ndarray], set[str]]:
    out, names = [], set()
    for frame in frames:
        out.append(frame)
        names |= {t.name for t in threading.enumerate()}
    return out, names


@pytest.mark.parametrize("coherence", ["none", "blend", "flow"])
def test_large_frames_go_one_at_a_time_to_the_same_frames(clip, tiny, monkeypatch, coherence):
    """Frames of ``LARGE_FRAME_PIXELS`` or more are decoded, dreamt and shown one at a time in
    the caller's thread (no decoding or dreaming thread holding frames ahead): the same
    frames, times and carried states as the pipeline's, a primed range included."""
    model, params = tiny
    kw = dict(coherence=coherence, color=True, network=model, params=params)
    piped = dream_video(clip, CFG, **kw)
    expected, names = _threads_seen(piped)
    primed = list(dream_video(clip, CFG, frames=(3, None), **kw))  # from frame 2's carving
    assert "jaxdream-dream" in names  # (the decoding thread may be done by then)
    monkeypatch.setattr(dreaming, "LARGE_FRAME_PIXELS", 64 * 48)
    in_turn = dream_video(clip, CFG, **kw)
    frames, names = _threads_seen(in_turn)
    assert not {"jaxdream-decode", "jaxdream-dream"} & names
    assert len(frames) == 6 and all((a == b).all() for a, b in zip(frames, expected, strict=True))
    assert in_turn.times == piped.times
    if coherence != "none":
        assert all(np.array_equal(a, b) for a, b in zip(in_turn.state, piped.state, strict=True))
        rest = list(dream_video(clip, CFG, frames=(3, None), **kw))
        assert all((a == b).all() for a, b in zip(rest, primed, strict=True))


def test_large_frames_stop_and_close_their_decoder_in_the_callers_thread(clip, tiny, monkeypatch):
    model, params = tiny
    monkeypatch.setattr(dreaming, "LARGE_FRAME_PIXELS", 1)
    frames = dream_video(clip, CFG, network=model, params=params, batch_size=2)
    first = next(frames)
    assert first.shape == (48, 64) and frames.batch == 2
    frames.close()
    assert frames.decoded._iterator.gi_frame is None  # the file and its decoder closed


def test_a_frame_is_dreamt_from_its_decoded_pixels_without_a_copy(clip, tiny):
    model, params = tiny
    frames = dream_video(clip, CFG, network=model, params=params)
    decoded = next(frames.decoded)
    (result,) = frames._dream_batch([decoded], 1)
    frames.decoded.close()
    assert result.photo is decoded.pixels and not decoded.pixels.flags.writeable


# Frames of a 4K clip rendered to .mp4 (a light dream at a small working size, shown at the
# photo's size); prints the peak of the arrays the render holds at once, in 4K RGB frames.
_RENDER_4K = """
import os, tempfile, tracemalloc
import numpy as np
from PIL import Image
from jaxdream import DreamConfig
from jaxdream.video import VideoWriter, render_video

W, H, N = 3840, 2160, 5
cat = Image.open(os.path.join("jaxdream", "assets", "chelsea.jpg")).convert("RGB")
big = np.asarray(cat.resize((W + 8 * N, H)))
with tempfile.TemporaryDirectory() as d:
    src, out = os.path.join(d, "4k.mp4"), os.path.join(d, "out.mp4")
    with VideoWriter(src, 8) as w:
        for k in range(N):
            w.write(np.ascontiguousarray(big[:, 8 * k : 8 * k + W]))
    del big
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    render_video(src, out, DreamConfig(size=64, iterations=1, steps=1, strength=0.5))
    print((tracemalloc.get_traced_memory()[1] - before) / (W * H * 3))
"""


@pytest.mark.slow
def test_a_4k_render_holds_a_few_frames():
    """The arrays a 4K render holds at once (numpy's, which tracemalloc sees; not the codecs'
    own): the frame being shown (its RGB and the frame made; its luminance is resized a band at
    a time), one waiting to be kept and encoded, the kept PNG's copy: 2.7 frames measured, 3.5-3.9
    with the frame's whole float luminance, 6.8 when a frame went through each stage of a
    pipeline."""
    pytest.importorskip("av")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", _RENDER_4K],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    frames = float(run.stdout.split()[-1])
    assert 1.0 < frames <= 4.5, frames
