"""The README's pictures of this round, from the bundled photos: ``python docs/make_pictures.py``.

- ``docs/images/lead_vivid.jpg``: both bundled photos dreamt with the command line's default
  preset (``vivid``);
- ``docs/images/presets.jpg``: the cat photo under every preset, labelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import jaxdream
from jaxdream.figures import labelled_grid
from jaxdream.presets import PRESETS, preset_config

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent / "jaxdream" / "assets"


def dreamt(photo: Path, name: str) -> np.ndarray:
    result = jaxdream.dream(photo, preset_config(name))
    return result.to_uint8(color=PRESETS[name].color)


def main() -> None:
    jaxdream.configure_cpu_devices()
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


if __name__ == "__main__":
    main()
