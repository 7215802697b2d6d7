"""Byte identity: every preset, ``explore``, ``oip``, a zoom, a video (PNG frames) and the
many-photo path, dreamt at small but real sizes, each output's SHA-256.

A change that should keep every output as it was is checked by running this on the commit
before it and after it: the digests must be equal.

    python -m benchmarks.bytes --out before.json      # on the commit before the change
    python -m benchmarks.bytes --check before.json    # after it: exit 1 naming what differs

The command line runs in this process (``jaxdream.cli.main``), and the library's API beside
it (``jaxdream.dream`` of each preset). A render's resume settings (what an interrupted zoom or
video must match to continue) are digested too: a change to them would strand a partial
render. The persistent compilation cache is off, so that every program is traced anew.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "jaxdream" / "assets"
PHOTO = ASSETS / "astronaut.jpg"
OTHER = ASSETS / "chelsea.jpg"
SMALL = ["--size", "64", "--iterations", "2", "--steps", "3", "-q"]
OIP_SMALL = ["--steps", "5", "-q", "-o"]
PRESETS = ("vivid", "article", "emboss", "ripples")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_path(path: Path) -> dict[str, str]:
    """``{name: digest}`` of a file, or of every file under a folder (relative names)."""
    if path.is_dir():
        return {
            str(p.relative_to(path)): digest(p.read_bytes())
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
    return {path.name: digest(path.read_bytes())}


def make_clip(path: Path, frames: int = 4, size: tuple[int, int] = (48, 64)) -> Path:
    """A tiny H.264 clip of ``frames`` crops of a bundled photo, moving right."""
    import av
    from PIL import Image

    h, w = size
    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((4 * w, 4 * h)))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for k in range(frames):
            crop = np.ascontiguousarray(photo[h : 2 * h, 4 * k : 4 * k + w])
            frame = av.VideoFrame.from_ndarray(crop, format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@contextlib.contextmanager
def resume_settings(kept: list):
    """Record the settings each render keeps for ``--resume`` (``video.Resumable``)."""
    from jaxdream import video

    original = video.Resumable.__init__

    def init(self, output, settings, resume):
        kept.append(settings)
        original(self, output, settings, resume)

    video.Resumable.__init__ = init
    try:
        yield
    finally:
        video.Resumable.__init__ = original


def cli(argv: list[str]) -> None:
    from jaxdream.cli import main

    with contextlib.redirect_stdout(sys.stderr):  # its report, beside the progress
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"jaxdream {' '.join(argv)} exited with {code}")


def cli_case(argv: list[str], output: str, settings: bool = False) -> Callable:
    """A case that runs ``jaxdream ARGV`` (``{out}`` in it: the work folder) and digests
    ``output`` (a file or folder in the work folder), and the resume settings."""

    def run(work: Path) -> dict[str, str]:
        kept: list = []
        with resume_settings(kept):
            cli([a.format(out=work) for a in argv])
        out = digest_path(work / output)
        if settings:
            text = json.dumps(kept, sort_keys=True).replace(str(work), "{out}")
            text = text.replace(str(PHOTO.parents[2]), "{repository}")  # where it is checked out
            out["resume settings"] = digest(text.encode())
        return out

    return run


def api_preset_case(name: str) -> Callable:
    """``jaxdream.dream`` of preset ``name`` (made small): the dream's numbers and its picture."""

    def run(work: Path) -> dict[str, str]:
        import jaxdream

        config = jaxdream.preset_config(name).replace(size=64, iterations=2, steps=3)
        result = jaxdream.dream(str(PHOTO), config)
        return {
            "image": digest(np.asarray(result.image).tobytes()),
            "picture": digest(np.asarray(result.to_uint8()).tobytes()),
        }

    return run


def cases() -> dict[str, Callable[[Path], dict[str, str]]]:
    """Every case by name: ``run(work_folder) -> {output: digest}``."""
    photo = str(PHOTO)
    out: dict[str, Callable] = {}
    for name in PRESETS:
        out[f"dream --preset {name}"] = cli_case(
            ["dream", photo, "--preset", name, *SMALL, "-o", "{out}/dream.png"], "dream.png"
        )
        out[f"api dream {name}"] = api_preset_case(name)
    out["dream --preset emboss --map 5 (flags over a preset)"] = cli_case(
        ["dream", photo, "--preset", "emboss", "--map", "5", *SMALL, "-o", "{out}/d.png"], "d.png"
    )
    out["dream --preset ripples, levels and tiles typed"] = cli_case(
        [
            "dream",
            photo,
            "--preset=ripples",
            "--no-color",
            "--levels",
            "0",
            "1:3*0.5",
            "--overlap",
            "0.25",
            "--shift-tiles",
            "--seed",
            "3",
            "--strength",
            "0.7",
            *SMALL,
            "-o",
            "{out}/d.png",
        ],
        "d.png",
    )
    out["dream --objective -conv3:56 --schedule faithful"] = cli_case(
        [
            "dream",
            photo,
            "--objective",
            "-conv3:56",
            "--schedule",
            "faithful",
            "--overlap",
            "0",
            "--levels",
            "0",
            "1:3",
            "--prepare",
            "article",
            *SMALL,
            "-o",
            "{out}/d.png",
        ],
        "d.png",
    )
    out["explore"] = cli_case(
        ["explore", photo, "--maps", "0-3", "--cell", "32", *SMALL, "-o", "{out}/sheet.png"],
        "sheet.png",
    )
    out["oip"] = cli_case(
        ["oip", "--objective", "0.7*conv3:56 - 0.1*logit:3", *OIP_SMALL, "{out}/pattern.png"],
        "pattern.png",
    )
    out["oip --map all"] = cli_case(
        ["oip", "--layer", "conv1", "--map", "all", "--steps", "3", "-q", "-o", "{out}/grid.png"],
        "grid.png",
    )
    zoom = ["zoom", photo, "--frames", "3", "--preset", "article", *SMALL]
    out["zoom (PNG frames)"] = cli_case(
        [*zoom, "--output-size", "working", "-o", "{out}/zoom"], "zoom", settings=True
    )
    out["zoom at the photo's size (PNG frames)"] = cli_case(
        [*zoom, "-o", "{out}/zoom"], "zoom", settings=True
    )
    out["video (PNG frames)"] = cli_case(
        ["video", "{out}/clip.mp4", "--size", "64", "--steps", "3", "-q", "-o", "{out}/video"],
        "video",
        settings=True,
    )
    out["dream of many photos (a folder)"] = cli_case(
        ["dream", photo, str(OTHER), "--preset", "article", *SMALL, "-o", "{out}/many"],
        "many",
    )
    return out


def run_cases(names: list[str] | None = None, log=None) -> dict[str, dict[str, str]]:
    """``{case: {output: digest}}`` of the cases named (all by default)."""
    table = cases()
    record = {}
    with no_persistent_cache():
        for name in names or list(table):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                make_clip(work / "clip.mp4")
                record[name] = table[name](work)
            if log:
                print(f"{name}: {len(record[name])} outputs", file=log, flush=True)
    return record


@contextlib.contextmanager
def no_persistent_cache():
    """The command line without its persistent compilation cache (as it was after)."""
    before = os.environ.get("JAXDREAM_NO_CACHE")
    os.environ["JAXDREAM_NO_CACHE"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["JAXDREAM_NO_CACHE"]
        else:
            os.environ["JAXDREAM_NO_CACHE"] = before


def differences(before: dict, after: dict) -> list[str]:
    """The cases whose outputs differ, or that the later record lacks (a case added since the
    earlier record has nothing to be compared with: ``main`` names it, and it does not fail)."""
    return [name for name in sorted(before) if before[name] != after.get(name)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bytes", description=__doc__)
    p.add_argument("--out", help="write the digests to this JSON file")
    p.add_argument(
        "--check", help="compare with the digests in this JSON file (exit 1 if any differ)"
    )
    p.add_argument("--case", action="append", help="only this case (repeatable)")
    args = p.parse_args(argv)
    from jaxdream.runtime import configure_cpu_devices

    configure_cpu_devices()
    record = run_cases(args.case, log=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    else:
        print(json.dumps(record, indent=1, sort_keys=True))
    if args.check:
        before = json.loads(Path(args.check).read_text())
        if args.case:
            before = {k: v for k, v in before.items() if k in args.case}
        differ = differences(before, record)
        for name in differ:
            print(f"differs: {name}", file=sys.stderr)
        for name in sorted(set(record) - set(before)):
            print(f"new: {name} (no earlier digest to compare with)", file=sys.stderr)
        if differ:
            return 1
        print(f"all {len(before)} cases compared give the same bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
