"""A small Flax Linen CNN of a user's own for RGB images (``jaxdream --network
tests/networks/color_cnn.py:NET``): ``tests.helpers.LinenCNN`` itself (SAME convolutions, a
max-pool and a dense head), so that weights saved from one load into the other. Its input
(32x32x3) comes from its weights (``--weights``) or ``--input-shape 32 32 3``."""

from tests.helpers import LinenCNN

NET = LinenCNN()
