"""What every package of ``agents`` shares: the policy protocol, the seed ranges, files and command-line plumbing.

* :mod:`agents.common.policy`: the one ``predict`` interface and :class:`PolicyError`.
* :mod:`agents.common.seeds`: which seeds and scenarios are for tuning, validation and evaluation.
* :mod:`agents.common.files`: atomic JSON writes, checksums.
* :mod:`agents.common.cli`: one-line argument errors.
* :mod:`agents.common.provenance`: git commit and package versions for run folders.

Nothing here imports another ``agents`` package, so every package can use it.
"""

from agents.common.policy import Policy, PolicyError, layout_difference
from agents.common.seeds import ALL_SCENARIOS, HELD_OUT_SCENARIOS, TRAIN_SCENARIOS, SeedError, eval_seeds, train_seeds

__all__ = ["ALL_SCENARIOS", "HELD_OUT_SCENARIOS", "TRAIN_SCENARIOS", "Policy", "PolicyError", "SeedError",
           "eval_seeds", "layout_difference", "train_seeds"]
