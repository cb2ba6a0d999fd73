"""``python -m emolens`` is the ``emolens`` command."""

import sys

from emolens.cli import main

sys.exit(main())
