"""The hindsight oracle: ``python -m agents.oracle``: how much room the best rule leaves on each evaluation seed.

The bound is a plan optimised per seed WITH FOREKNOWLEDGE of the whole episode (common
random numbers make every seed's episode replayable): a reference for the gap a learned
policy could close, not a target it can reach.

* :mod:`agents.oracle.plan`: a rule adjusted by a per-time-block plan (residual or direct schedule).
* :mod:`agents.oracle.search`: CEM over plans, all seeds of a scenario in one batched core.
* :mod:`agents.oracle.bounds`: the cache (``bounds.json``) evaluation reads.
* :mod:`agents.oracle.command`: the command line.
"""

from agents.oracle.bounds import BOUNDS_FILE, lookup, read_bounds
from agents.oracle.plan import PlannedRule
from agents.oracle.search import SearchSettings, search

__all__ = ["BOUNDS_FILE", "PlannedRule", "SearchSettings", "lookup", "read_bounds", "search"]
