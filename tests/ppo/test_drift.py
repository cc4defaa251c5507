"""Training reports how far the actor moved from its behaviour-cloned warm start."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from conftest import _history

from agents.ppo.drift import REFERENCE_FILE, REFERENCE_SIZE


def test_every_validation_reports_the_distance_to_the_clone(tiny_run: Path) -> None:
    with np.load(tiny_run / REFERENCE_FILE, allow_pickle=False) as ref:
        assert ref["obs"].shape[0] == ref["actions"].shape[0] <= REFERENCE_SIZE
        assert np.abs(ref["actions"]).max() <= 1.0
    moved = [e["actor_moved"] for e in _history(tiny_run)]
    assert moved and all(math.isfinite(m) and m >= 0 for m in moved)
    assert moved[-1] > 0  # PPO updated the actor after the critic warm-up: it no longer acts as the clone
