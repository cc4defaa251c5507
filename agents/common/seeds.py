"""Seeds and scenario splits: the one place that says which data is for what.

Seed ranges (an env row's seed fixes its whole trajectory, see :mod:`envs.rng`):

| range                                   | used by                                         |
|-----------------------------------------|-------------------------------------------------|
| ``TRAIN_SEEDS`` = 0 .. 9,999            | tuning the rule baselines (``agents.tune``)      |
| ``VALIDATION_SEED_BASE`` + 0 .. 99,999  | model selection during PPO training (train.py)   |
| ``EVAL_SEED_BASE`` + 0 .. 999,999       | the final evaluation (``agents.evaluate``)       |
| ``2**40`` and up                        | PPO training env rows (``train_config.train_row_seed``) |

The ranges are disjoint (checked at import), so no evaluation number is ever
computed on a seed that tuning or training saw.

Scenario split: rules are tuned and PPO is trained on :data:`TRAIN_SCENARIOS`;
:data:`HELD_OUT_SCENARIOS` are only ever evaluated.
"""

from __future__ import annotations

import numpy as np

TRAIN_SCENARIOS: tuple[str, ...] = ("default", "peak-contention", "agentic-surge")
"""Scenarios the rules are tuned on and PPO is trained on."""
HELD_OUT_SCENARIOS: tuple[str, ...] = ("outage", "launch-spike")
"""Scenarios used only for evaluation (shifted traffic and capacity)."""
ALL_SCENARIOS: tuple[str, ...] = TRAIN_SCENARIOS + HELD_OUT_SCENARIOS

TRAIN_SEEDS = range(0, 10_000)
"""Seeds for tuning (and any other fitting on the training scenarios)."""
VALIDATION_SEED_BASE = 500_000
MAX_VALIDATION_SEEDS = 100_000
EVAL_SEED_BASE = 1_000_000
MAX_EVAL_SEEDS = 1_000_000
PPO_TRAIN_SEED_OFFSET = 1 << 40
"""First seed of PPO training rows (mirrors ``agents.ppo.config.TRAIN_SEED_OFFSET``)."""


class SeedError(ValueError):
    """A seed request outside its range; the message is one line."""


def train_seeds(n: int, start: int = 0) -> np.ndarray:
    """``n`` tuning seeds from ``TRAIN_SEEDS`` starting at index ``start``."""
    if n < 1 or start < 0 or start + n > len(TRAIN_SEEDS):
        raise SeedError(f"training seeds {start}..{start + n - 1}: must lie in 0..{len(TRAIN_SEEDS) - 1}")
    return np.arange(TRAIN_SEEDS.start + start, TRAIN_SEEDS.start + start + n, dtype=np.uint64)


def eval_seeds(n: int) -> np.ndarray:
    """The first ``n`` evaluation seeds: ``EVAL_SEED_BASE + 0 .. n-1``."""
    if n < 1 or n > MAX_EVAL_SEEDS:
        raise SeedError(f"--seeds {n}: must be 1..{MAX_EVAL_SEEDS}")
    return np.arange(EVAL_SEED_BASE, EVAL_SEED_BASE + n, dtype=np.uint64)


def validation_seeds(n: int) -> np.ndarray:
    """The first ``n`` validation seeds: ``VALIDATION_SEED_BASE + 0 .. n-1`` (model selection, choices
    made before an evaluation)."""
    if n < 1 or n > MAX_VALIDATION_SEEDS:
        raise SeedError(f"{n} validation seeds: must be 1..{MAX_VALIDATION_SEEDS}")
    return np.arange(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + n, dtype=np.uint64)


def seed_ranges() -> dict[str, tuple[int, int]]:
    """Half-open ``[first, end)`` of every seed range, by use."""
    return {
        "train": (TRAIN_SEEDS.start, TRAIN_SEEDS.stop),
        "validation": (VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + MAX_VALIDATION_SEEDS),
        "eval": (EVAL_SEED_BASE, EVAL_SEED_BASE + MAX_EVAL_SEEDS),
        "ppo_train": (PPO_TRAIN_SEED_OFFSET, 1 << 62),
    }


def _check_disjoint() -> None:
    spans = sorted(seed_ranges().values())
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise AssertionError(f"seed ranges overlap: {seed_ranges()}")


_check_disjoint()
