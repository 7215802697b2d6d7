"""``python -m jaxdream``: the same as the ``jaxdream`` command."""

import sys

from jaxdream.cli import main

sys.exit(main())
