"""The image files a folder's walk takes for photos (``jaxdream.many.find_photos`` walks,
``jaxdream.many.output_paths`` names the outputs).

>>> ".jpg" in image_suffixes() and ".png" in image_suffixes()
True
"""

from __future__ import annotations

from PIL import Image


def image_suffixes() -> frozenset[str]:
    """File name endings Pillow can read (``.jpg``, ``.png``, ``.tif``, ...)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)
