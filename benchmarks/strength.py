"""How much of the scene a dream keeps, and how much carving it shows, by preset and strength.

For each preset and ``strength``, on the bundled photos and on the frames of a clip: the SSIM
of the written picture's luminance against the photo's (at the photo's size: how much of the
photo's structure is kept), the correlation of the coarse luminance (160x90, as a viewer sees
the scene), and the carving's size: the rise of the dream's own objective (the mean over its
taking-part tiles, as the dream computes it) on the shown working image, as a fraction of the
whole dream's rise. Strength changes only how a dream is shown, so each photo is dreamt once.

    python -m benchmarks.strength [--clip CLIP.mp4] [--frames 8] [--out table.md]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxdream import dream_many
from jaxdream.checkpoint import bundled_sample_path, load_model
from jaxdream.imageops import (
    OIP_SIZE,
    resize,
    standardize,
    standardize_for_cnn,
)
from jaxdream.model import Features
from jaxdream.presets import PRESETS, preset_config

STRENGTHS = (0.25, 0.35, 0.5, 0.75, 1.0)


def luminance(pixels: np.ndarray) -> np.ndarray:
    y = pixels.astype(np.float64)
    return y @ np.array([0.299, 0.587, 0.114]) if y.ndim == 3 else y


def _box(x: np.ndarray, r: int = 3) -> np.ndarray:
    """The mean over (2r+1)^2 windows (valid part), by cumulative sums."""
    c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0))), 0), 1)
    k = 2 * r + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luminance images in [0, 255] (7x7 windows, the usual constants)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = _box(a), _box(b)
    va, vb, cov = _box(a * a) - ma**2, _box(b * b) - mb**2, _box(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


def coarse_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the two luminances at 160x90 (or 160 wide): the scene as a viewer sees."""
    h, w = a.shape
    size = (160, max(1, round(160 * h / w)))
    small = [
        np.asarray(Image.fromarray(x.astype(np.float32), "F").resize(size, Image.BOX)).ravel()
        for x in (a, b)
    ]
    return float(np.corrcoef(*small)[0, 1])


def objective_score(model, params, config, image: np.ndarray) -> float:
    """The mean of every taking-part tile's objective on ``image``, tiles seen as the dream
    sees them (cut by its layout, resized to 28x28, standardized)."""
    return float(_scorer(model, config, tuple(image.shape))(params, jnp.asarray(image)))


@functools.lru_cache(maxsize=32)
def _scorer(model, config, shape):
    """The compiled score of ``config``'s tiles on images of ``shape`` (made once)."""
    spec = config.spec(model, shape)
    objectives = config.tile_objectives()

    @jax.jit
    def score(params, x):
        cut = [resize(spec.layout.cut(x, lv, tiles), OIP_SIZE) for lv, tiles in spec.levels]
        z, _, _ = standardize_for_cnn(jnp.concatenate(cut))
        values = [o(Features(spec.model, params, t)) for o, t in zip(objectives, z, strict=True)]
        return jnp.mean(jnp.stack(values))

    return score


def clip_frames(path: str, count: int) -> list[np.ndarray]:
    import av

    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    step = max(1, len(frames) // count)
    return frames[::step][:count]


def measure(photos: dict[str, list[np.ndarray]], presets, strengths) -> list[dict]:
    model, params = load_model()
    rows = []
    for name in presets:
        base = preset_config(name)
        color = PRESETS[name].color
        for source, pixels in photos.items():
            results = dream_many(pixels, base, network=model, params=params)
            per = {s: {"ssim": [], "corr": [], "rise": []} for s in strengths}
            for px, r in zip(pixels, results, strict=True):
                own = luminance(np.asarray(px))
                s0 = objective_score(model, params, base, r.gray)
                s1 = objective_score(model, params, base, r.image)
                for s in strengths:
                    shown = r._replace(config=base.replace(strength=s))
                    out = luminance(shown.to_uint8(color=color, size="photo"))
                    working = standardize(r.gray + np.float32(s) * (r.image - r.gray))
                    rise = objective_score(model, params, base, np.asarray(working)) - s0
                    per[s]["ssim"].append(ssim(out, own))
                    per[s]["corr"].append(coarse_correlation(out, own))
                    per[s]["rise"].append(rise / (s1 - s0) if s1 != s0 else float("nan"))
            for s in strengths:
                row = {"preset": name, "source": source, "strength": s}
                row.update({k: float(np.mean(v)) for k, v in per[s].items()})
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| preset | photos | strength | SSIM of the luminance | coarse correlation | "
        "objective's rise |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['source']} | {r['strength']:g} | {r['ssim']:.2f} | "
            f"{r['corr']:.2f} | {r['rise']:.0%} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", help="a video whose frames are measured too")
    p.add_argument("--frames", type=int, default=8, help="frames of the clip, evenly spread")
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--strengths", nargs="+", type=float, default=list(STRENGTHS))
    p.add_argument("--out", help="write the table (Markdown) here")
    args = p.parse_args(argv)
    assets = bundled_sample_path().parent
    photos = {
        "bundled photos": [
            np.asarray(Image.open(assets / n).convert("RGB"))
            for n in ("chelsea.jpg", "astronaut.jpg")
        ]
    }
    if args.clip:
        photos[f"clip ({args.frames} frames)"] = clip_frames(args.clip, args.frames)
    rows = measure(photos, args.presets, args.strengths)
    text = table(rows)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
