"""Video files: reading them (rotation applied), dreaming every frame, writing frames out.

Files go through PyAV (the ``av`` package: FFmpeg's libraries with their codecs inside the
wheel; the ``video`` extra). One module a job, their public names all here:

- ``jaxdream.video.reading``: what a file holds (``probe``) and its frames (``read_frames``);
- ``jaxdream.video.writing``: frames written as the output's name says (``VideoWriter``,
  ``save_video``): ``.mp4``, ``.webm``, ``.webp``, ``.gif`` or a folder of PNG frames, the
  formats one table (``WRITERS``), the audio copied;
- ``jaxdream.video.metric``: how much frames flicker (``flicker``);
- ``jaxdream.video.dreaming``: every frame dreamt, decoding and dreaming on threads of their
  own, large frames (4K) one at a time (``dream_video``, its settings as one value:
  ``VideoSettings``);
- ``jaxdream.video.resume``: a render's frames and state kept for a resume (``Resumable``);
- ``jaxdream.video.render``: a video rendered to a file, kept for a resume, its audio copied
  (``render_video``: ``jaxdream video``; ``render_zoom``: ``jaxdream zoom``).

Reading follows what FFmpeg reads and players show. A range holds the frames whose time ``t``
is ``start <= t < start + duration`` (at 24 fps, 0.1 s holds 3 frames), from Python and from
the command line alike. Every file is written atomically (``jaxdream._files``): nothing appears
under the output's name before it is complete.

FFmpeg's log is left as PyAV leaves it: silent, with no Python in it. Do not set a level with
``av.logging.set_level`` in a program that uses this package: that installs a Python log
callback, which FFmpeg calls from its own frame threads, and a decoder being closed then waits
for ever on a thread that waits for the GIL. Every public function here checks its arguments
and raises ``VideoError`` or ``ConfigError`` (``jaxdream.errors``).

>>> import numpy as np
>>> frames = [np.full((8, 10, 3), 40 * k, np.uint8) for k in range(3)]
>>> flicker(frames)
40.0
"""

from __future__ import annotations

from jaxdream.video.common import (
    LARGE_FRAME_PIXELS,
    MAX_FPS,
    MAX_FRAMES,
    MAX_VIDEO_BYTES,
    VideoError,
)
from jaxdream.video.dreaming import (
    COHERENCE,
    FRAMES_IN_FLIGHT_BYTES,
    VideoDreams,
    VideoSettings,
    dream_video,
)
from jaxdream.video.metric import flicker
from jaxdream.video.reading import Decoded, Frame, VideoInfo, check_range, probe, read_frames
from jaxdream.video.render import (
    STATE_EVERY,
    VideoRender,
    ZoomRender,
    part_name,
    render_video,
    render_zoom,
)
from jaxdream.video.resume import MAX_STATE_BYTES, Resumable, iter_pngs, partial_folder
from jaxdream.video.writing import (
    ENCODED,
    FOLDER,
    SETTINGS,
    WRITERS,
    AnimatedGif,
    Encoded,
    PngFolder,
    VideoWriter,
    check_video_output,
    is_folder_output,
    save_video,
)

__all__ = [
    "COHERENCE",
    "ENCODED",
    "FOLDER",
    "FRAMES_IN_FLIGHT_BYTES",
    "LARGE_FRAME_PIXELS",
    "MAX_FPS",
    "MAX_FRAMES",
    "MAX_STATE_BYTES",
    "MAX_VIDEO_BYTES",
    "SETTINGS",
    "STATE_EVERY",
    "WRITERS",
    "AnimatedGif",
    "Decoded",
    "Encoded",
    "Frame",
    "PngFolder",
    "Resumable",
    "VideoDreams",
    "VideoError",
    "VideoInfo",
    "VideoRender",
    "VideoSettings",
    "VideoWriter",
    "ZoomRender",
    "check_range",
    "check_video_output",
    "dream_video",
    "flicker",
    "is_folder_output",
    "iter_pngs",
    "part_name",
    "partial_folder",
    "probe",
    "read_frames",
    "render_video",
    "render_zoom",
    "save_video",
]
