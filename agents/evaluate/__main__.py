"""``python -m agents.evaluate``: see :mod:`agents.evaluate.command`."""

import sys

from agents.evaluate.command import main

sys.exit(main())
