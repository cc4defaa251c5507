"""The hindsight oracle: a zero plan is the rule, plans are scored on common random numbers, bounds are cached."""

from __future__ import annotations

import json

import numpy as np
import pytest

import envs
from agents.evaluate import rollout
from agents.oracle import PlannedRule, SearchSettings, search
from agents.oracle.bounds import BoundsError, key, lookup, read_bounds, write_bounds
from agents.oracle.command import main
from agents.rules import RuleContext, make_rule, tuned_params

SHORT = {"time": {"episode_days": 1}}
SEEDS = np.array([1_000_000, 1_000_001], dtype=np.uint64)


def _rule(core):
    return make_rule("fair-share", RuleContext(core), tuned_params("fair-share"))


def test_zero_residual_plan_is_the_rule_and_rows_share_random_numbers() -> None:
    core = envs.RationingCore("peak-contention", 4, overrides=SHORT, version=1)
    rule_returns = rollout(_rule(core), core, np.repeat(SEEDS, 2)).returns
    plan = np.zeros((4, 6, core.params.n_tiers))
    plan[1] = 0.5  # row 1: every quota 1.65x the rule's
    planned = rollout(PlannedRule(_rule(core), plan, 16, "residual"), core, np.repeat(SEEDS, 2)).returns
    assert planned[0] == rule_returns[0] and planned[2] == rule_returns[2]
    assert planned[1] != rule_returns[1]  # the plan changes the outcome ...
    assert rule_returns[0] == rule_returns[1]  # ... of the same episode: same seed, same draws


def test_search_never_scores_below_the_rule_and_finds_room() -> None:
    settings = SearchSettings(population=8, elites=2, iterations=3)
    bounds = search("agentic-surge", SEEDS, "fair-share", settings,
                    core_factory=lambda s, n: envs.RationingCore(s, n, overrides=SHORT, version=1))
    core = envs.RationingCore("agentic-surge", 2, overrides=SHORT, version=1)
    rule = rollout(_rule(core), core, SEEDS).returns
    for b, r in zip(bounds, rule):
        assert b.rule_return == pytest.approx(r)
        assert b.best_return >= b.returns_by_mode["residual"] >= b.rule_return
    assert max(b.best_return - b.rule_return for b in bounds) > 0


def test_bounds_file_round_trip_and_refusals(tmp_path) -> None:
    path = tmp_path / "bounds.json"
    write_bounds({key("Rationing-v0", "default", 7): {"return": 1.0, "rule": "fair-share"}}, path)
    write_bounds({key("Rationing-v0", "default", 8): {"return": 2.0, "rule": "fair-share"}}, path)
    assert len(read_bounds(path)) == 2
    assert lookup("Rationing-v0", "default", [7, 8], path)[1]["return"] == 2.0
    assert lookup("Rationing-v0", "default", [7, 9], path) is None
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(BoundsError, match="not a 'rationing-oracle-bounds' file"):
        read_bounds(path)


@pytest.mark.parametrize("args, message", [
    (["--iterations", "1"], "--iterations = 1: must be >= 2"),
    (["--rule", "nope"], "--rule = 'nope': use one of best"),
    (["--scenario", "nope", "--iterations", "2", "--population", "2"], "unknown scenario 'nope'"),
    (["--seeds", "0"], "--seeds 0: must be"),
])
def test_bad_input_is_one_line(args, message, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) if args[0] in ("--iterations", "--rule") else _no_raise():
        code = main([*args, "--cache", str(tmp_path / "b.json"), "--no-progress"])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
