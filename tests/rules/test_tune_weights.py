"""Rule tuning at other reward weights (``agents.tune --weights``): the objective and what the file records."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from agents.rules import RULES
from agents.rules.search import Evaluator
from agents.rules.tune import TuneSettings, main

SMALL = TuneSettings(scenarios=("default",), seeds=2, check_seeds=2, samples=6, optimizer="cma", generations=2,
                     popsize=6, sigma0=0.2, polish=0, randomize=True, episode_days=0.5)


def test_the_objective_is_the_return_at_the_weights() -> None:
    """The return is linear in the weights: the three corners (3, 0, 0) ... sum to 3 x the return at 1, 1, 1
    (the shipped scenario's weights), and a corner alone is not the scenario's return."""
    rule = RULES["aimd"]
    seeds = np.arange(2, dtype=np.uint64)
    params = [rule.Params()]
    plain = Evaluator(rule, SMALL)(params, seeds)
    at = {w: Evaluator(rule, dataclasses.replace(SMALL, reward_weights=w))(params, seeds)
          for w in ((1.0, 1.0, 1.0), (3.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 3.0))}
    np.testing.assert_allclose(at[(1.0, 1.0, 1.0)], plain, rtol=1e-6)
    np.testing.assert_allclose(at[(3.0, 0.0, 0.0)] + at[(0.0, 3.0, 0.0)] + at[(0.0, 0.0, 3.0)], 3 * plain, rtol=1e-4)
    assert at[(3.0, 0.0, 0.0)] > 0 > at[(0.0, 0.0, 3.0)] and not np.allclose(at[(3.0, 0.0, 0.0)], plain)


def test_tuned_file_records_the_weights_and_bad_weights_are_one_line(tmp_path: Path, one_line_error) -> None:
    out = tmp_path / "w.json"
    assert main(["--rule", "static", "--scenario", "default", "--days", "0.25", "--seeds", "1", "--check-seeds", "1",
                 "--samples", "2", "--generations", "1", "--popsize", "2", "--polish", "0", "--jobs", "1",
                 "--weights", "margin=2,latency=1,churn=0", "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["reward_weights"] == [2.0, 1.0, 0.0]  # a direction, rescaled to sum to 3
    assert "needs --out" in one_line_error(main, ["--weights", "margin=1"])
    assert "NAME one of margin, latency, churn" in one_line_error(main, ["--weights", "speed=1", "--out",
                                                                         str(tmp_path / "x.json")])
