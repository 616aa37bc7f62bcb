"""``python -m tradetel``: the ``tradetel`` command."""

import sys

from .cli import main

sys.exit(main())
