"""Constraint-aware rule tuning: the penalised objective, what the tuned entry records, and bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from agents.rules import RULES
from agents.rules.search import Evaluator
from agents.rules.tune import TuneSettings, main, tune_rule
from agents.tradeoffs.selection import VIOLATION_PENALTY

SMALL = TuneSettings(scenarios=("default",), seeds=2, check_seeds=2, samples=6, optimizer="cma", generations=2,
                     popsize=6, sigma0=0.2, polish=0, randomize=True, episode_days=0.5)
HARD = "enterprise.latency_attainment>=0.99999"
EASY = "all.throttled_share<=0.99"


def test_penalty_is_the_relative_violation_of_the_mean_value() -> None:
    rule = RULES["aimd"]
    seeds = np.arange(2, dtype=np.uint64)
    plain = Evaluator(rule, SMALL)([rule.Params()], seeds)
    ev = Evaluator(rule, dataclasses.replace(SMALL, constraints=(HARD, EASY)))
    scored = ev([rule.Params()], seeds)
    attainment = ev.last_values[0, 0, 0]
    assert 0.9 < attainment < 0.99999 and ev.last_values[0, 0, 1] < 0.99  # hard violated, easy met
    expected = plain - VIOLATION_PENALTY * ((1 - attainment) / 1e-5 - 1)
    np.testing.assert_allclose(scored, expected, rtol=1e-9)
    easy = Evaluator(rule, dataclasses.replace(SMALL, constraints=(EASY,)))
    np.testing.assert_allclose(easy([rule.Params()], seeds), plain)  # met: no penalty


def test_tuning_under_a_constraint_records_its_values(tmp_path: Path, one_line_error) -> None:
    limit = "enterprise.latency_attainment>=0.995"
    entry = tune_rule("aimd", dataclasses.replace(SMALL, constraints=(limit,)))
    values = entry["constraint_values"][limit]
    assert len(values["tuned"]) == 1 and entry["settings"]["constraints"] == [limit]
    out = tmp_path / "c.json"
    assert main(["--rule", "static", "--scenario", "default", "--days", "0.25", "--seeds", "1", "--check-seeds", "1",
                 "--samples", "2", "--generations", "1", "--popsize", "2", "--polish", "0", "--jobs", "1",
                 "--constraint", limit, "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["constraints"] == [limit]
    assert "needs --out" in one_line_error(main, ["--constraint", limit])
    assert "pro.speed" in one_line_error(main, ["--constraint", "pro.speed>=1", "--out", str(tmp_path / "x.json")])
