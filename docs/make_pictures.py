"""Every picture of the README and the docs site, from the bundled photos:
``python docs/make_pictures.py``.

- ``lead_vivid.jpg``: both bundled photos dreamt with the command line's default (``vivid``);
- ``presets.jpg``: the cat photo under every preset, labelled;
- ``preset_candidates.jpg``: both bundled photos under the candidate settings the ``vivid``
  preset was chosen from (``CANDIDATES``), labelled;
- ``zoom.webp``: an infinite zoom into the cat photo (``ZOOM``, the README's ``jaxdream zoom``
  command; ``python docs/make_pictures.py zoom`` makes it alone);
- ``full_resolution.jpg``: a crop at 100% of the astronaut dreamt at a working size a third of
  its own (as a phone photo is dreamt at 560 wide): the photo, the whole dream enlarged (the
  article's look), and the change applied at the photo's resolution at strengths 1 and 0.5
  (``python docs/make_pictures.py fullres`` makes it alone);
- ``network.jpg``: both bundled photos dreamt with ``vivid`` by the bundled network and by the
  second one, ``mnist_cnn56`` (``--weights mnist_cnn56``), labelled (``python
  docs/make_pictures.py network`` makes it alone);
- ``article_figure.jpg``, ``chelsea_levels012_color.jpg``, ``astronaut_quadrant_maps.jpg``,
  ``oip_conv3_all_maps.jpg``: the commands the README shows beside them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import jaxdream
from jaxdream.cli import main as cli
from jaxdream.figures import labelled_grid
from jaxdream.presets import ARTICLE_FLAGS, PRESETS, config_from_flags, preset_config

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent / "jaxdream" / "assets"


# The settings looked at, on both bundled photos, to choose the command line's default (changes
# to the article's flags, all in colour); "vivid" kept the subject and gave the richest strokes.
CANDIDATES = {
    "article": {},
    "conv2:5, levels 0-2": {"layer": "conv2", "map": 5, "levels": ["0", "1", "2"]},
    "conv2:5, levels 0-3": {"layer": "conv2", "map": 5, "levels": ["0", "1", "2", "3*0.5"]},
    "conv2:12, levels 0-2": {"layer": "conv2", "map": 12, "levels": ["0", "1", "2"]},
    "conv2:12, levels 0-3": {"layer": "conv2", "map": 12, "levels": ["0", "1", "2", "3*0.5"]},
    "conv3 all maps, 0-2": {"map": -1, "levels": ["0", "1", "2"]},
    "conv3 all, 0-2, overlap, 6 it": PRESETS["vivid"].changed_flags(),
    "conv2 all maps, 0-2, overlap": {
        "layer": "conv2",
        "map": -1,
        "levels": ["0", "1", "2"],
        "overlap": 0.5,
    },
    "mean square conv2, overlap": PRESETS["emboss"].changed_flags(),
}


def candidates_sheet(photos: list[Path]) -> Image.Image:
    """Every photo, then its dream under each candidate, one photo after the other."""
    pics, labels = [], []
    for photo in photos:
        pics.append(np.asarray(Image.open(photo).convert("RGB")))
        labels.append(photo.name)
        for label, flags in CANDIDATES.items():
            config = config_from_flags({**ARTICLE_FLAGS, **flags})
            pics.append(jaxdream.dream(photo, config).to_uint8(color=True))
            labels.append(label)
    return labelled_grid(pics, labels, columns=5, cell=240)


def dreamt(photo: Path, name: str) -> np.ndarray:
    result = jaxdream.dream(photo, preset_config(name))
    return result.to_uint8(color=PRESETS[name].color)


# The README's zoom: small enough to show inline (an animated WebP of about 1 MB).
ZOOM = [
    "zoom",
    str(ASSETS / "chelsea.jpg"),
    "--frames",
    "40",
    "--size",
    "240",
    "--zoom",
    "1.04",
    "--rotate",
    "0.5",
    "--fps",
    "12",
    "-q",
]


def zoom_picture() -> Path:
    """``docs/images/zoom.webp``: the README's ``jaxdream zoom`` command."""
    out = HERE / "images" / "zoom.webp"
    out.unlink(missing_ok=True)
    assert cli([*ZOOM, "-o", str(out)]) == 0
    return out


# The crop of ``full_resolution.jpg``: the astronaut's face and the flag, 256x256 at 100%.
FULLRES_SIZE, FULLRES_CROP = 160, (slice(60, 316), slice(150, 406))


def fullres_picture() -> Path:
    """``docs/images/full_resolution.jpg``: what a dream at a working size smaller than the
    photo looks like at the photo's size, enlarged or applied at full resolution."""
    photo = ASSETS / "astronaut.jpg"
    config = preset_config("vivid").replace(size=FULLRES_SIZE)
    result = jaxdream.dream(photo, config)
    pics = [np.asarray(Image.open(photo).convert("RGB"))]
    pics.append(result.to_uint8(color=True, size="enlarged"))
    for strength in (1.0, 0.5):
        shown = result._replace(config=config.replace(strength=strength))
        pics.append(shown.to_uint8(color=True, size="photo"))
    labels = [
        "photo (512x512, a crop at 100%)",
        f"dream at {FULLRES_SIZE}, enlarged",
        "its change at the photo's size",
        "the same at --strength 0.5",
    ]
    crops = [p[FULLRES_CROP] for p in pics]
    out = HERE / "images" / "full_resolution.jpg"
    labelled_grid(crops, labels, columns=4, cell=256).convert("RGB").save(out, quality=90)
    return out


# The networks of ``network.jpg``: the names ``--weights`` takes.
NETWORKS = ("mnist_cnn", "mnist_cnn56")


def network_picture() -> Path:
    """``docs/images/network.jpg``: each bundled photo dreamt with ``vivid`` by each bundled
    network, side by side."""
    config = preset_config("vivid")
    pics, labels = [], []
    for photo in (ASSETS / "astronaut.jpg", ASSETS / "chelsea.jpg"):
        for name in NETWORKS:
            network, params = jaxdream.load_model(name)
            result = jaxdream.dream(photo, config, network=network, params=params)
            pics.append(result.to_uint8(color=True))
            labels.append(f"--weights {name}")
    out = HERE / "images" / "network.jpg"
    labelled_grid(pics, labels, columns=4, cell=240).convert("RGB").save(out, quality=88)
    return out


def main() -> None:
    jaxdream.configure_cpu_devices()
    if sys.argv[1:] == ["zoom"]:
        zoom_picture()
        return
    if sys.argv[1:] == ["fullres"]:
        fullres_picture()
        return
    if sys.argv[1:] == ["network"]:
        network_picture()
        return
    zoom_picture()
    fullres_picture()
    network_picture()
    photos = [ASSETS / "astronaut.jpg", ASSETS / "chelsea.jpg"]
    lead = [Image.fromarray(dreamt(p, "vivid")) for p in photos]
    height = min(im.height for im in lead)  # no upscaling: the dreams as computed
    lead = [im.resize((round(im.width * height / im.height), height), Image.BICUBIC) for im in lead]
    sheet = Image.new("RGB", (sum(im.width for im in lead) + 8 * (len(lead) - 1), height), "white")
    x = 0
    for im in lead:
        sheet.paste(im.convert("RGB"), (x, 0))
        x += im.width + 8
    sheet.save(HERE / "images" / "lead_vivid.jpg", quality=90)
    cat = photos[1]
    original = np.asarray(Image.open(cat).convert("RGB"))
    pics = [original, *[dreamt(cat, name) for name in PRESETS]]
    labels = ["photo", *[f"--preset {name}" for name in PRESETS]]
    labelled_grid(pics, labels, columns=5, cell=300).convert("RGB").save(
        HERE / "images" / "presets.jpg", quality=90
    )
    candidates_sheet(photos).convert("RGB").save(
        HERE / "images" / "preset_candidates.jpg", quality=85
    )
    commands = {  # the README's commands, each writing one picture
        "article_figure.jpg": ["dream", "--preset", "article", "-o", "{tmp}", "--figure", "{out}"],
        "chelsea_levels012_color.jpg": [
            "dream",
            str(cat),
            "--preset",
            "article",
            "--levels",
            "0",
            "1",
            "2*0.5",
            "--iterations",
            "6",
            "--color",
            "-o",
            "{out}",
        ],
        "astronaut_quadrant_maps.jpg": [
            "dream",
            "--preset",
            "article",
            "--levels",
            "0",
            "1/56,12,30,44",
            "--iterations",
            "6",
            "-o",
            "{out}",
        ],
        "oip_conv3_all_maps.jpg": ["oip", "--layer", "conv3", "--map", "all", "-o", "{out}"],
    }
    tmp = HERE / "images" / "_scratch.png"
    for name, argv in commands.items():
        out = str(HERE / "images" / name)
        assert (
            cli([a.format(out=out, tmp=tmp) for a in argv] + (["-q"] if argv[0] == "dream" else []))
            == 0
        )
    tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
