"""``python -m agents.tune``: tune the rule baselines; see :mod:`agents.rules.tune`."""

import sys

from agents.rules.tune import main

if __name__ == "__main__":
    sys.exit(main())
