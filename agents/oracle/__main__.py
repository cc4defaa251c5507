"""``python -m agents.oracle``: see :mod:`agents.oracle.command`."""

import sys

from agents.oracle.command import main

sys.exit(main())
