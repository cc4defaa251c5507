"""``python -m agents.export``: see :mod:`agents.export.exporter`."""

import sys

from agents.export.exporter import main

sys.exit(main())
