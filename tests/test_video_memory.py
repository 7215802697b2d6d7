"""A video render's host memory follows its frames' size: the frames in flight of the dream,
the frames waiting to be kept and encoded, and the encoder's and decoder's settings for large
frames (4K), so a 4K render holds a few frames, not a fixed budget's worth."""

from __future__ import annotations

import threading

from jaxdream.background import KeepAndEncode
from jaxdream.video import dreaming
from jaxdream.video.common import LARGE_FRAME_PIXELS
from jaxdream.video.dreaming import FRAME_BYTES_PER_PIXEL, frames_in_flight
from jaxdream.video.render import KEPT_AHEAD_BYTES
from jaxdream.video.writing import WRITERS

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
    """With frames of 25 MB, no more than ``KEPT_AHEAD_BYTES`` of them wait (one at least),
    however slow the jobs; frames of no stated size keep the bound in frames."""
    release, most = threading.Event(), []
    frame = 3840 * 2160 * 3

    def slow():
        release.wait(0.05)

    with KeepAndEncode(None, ahead=8, ahead_bytes=KEPT_AHEAD_BYTES) as jobs:
        for _ in range(12):
            jobs.put(slow, slow, frame)
            most.append((len(jobs._pending), jobs.waiting_bytes))
    assert max(n for n, _ in most) == KEPT_AHEAD_BYTES // frame == 2
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
    assert mp4.options_for(2160, 3840) == {**mp4.options, "x264-params": "bframes=0"}
    assert mp4.options_for(720, 1280) == mp4.options
    assert 2560 * 1440 < LARGE_FRAME_PIXELS <= 3840 * 2160
    for writer in WRITERS.values():
        if hasattr(writer, "options_for"):
            assert writer.options_for(2, 2) == writer.options
