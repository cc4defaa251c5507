"""``python -m agents.sweep``: see :mod:`agents.sweep.runner`."""

import sys

from agents.sweep.runner import main

sys.exit(main())
