"""Constraints: grammar and one-line errors, PPO-Lagrangian's shaping and multiplier updates, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

import train
from agents.evaluate.command import main as evaluate_main
from agents.tradeoffs.constraints import Constraint, ConstraintError, parse_constraint, parse_constraints
from agents.tradeoffs.lagrangian import LagrangianRewards, shape_reward, update_multipliers
from agents.tradeoffs.report import verdict
from envs.sb3_vec_env import RationingVecEnv

TIERS = ["free", "pro", "max", "team", "enterprise", "api"]
SHORT = {"time": {"episode_days": 0.25}}


def test_grammar() -> None:
    c = parse_constraint("enterprise.latency_attainment>=0.99", TIERS)
    assert c == Constraint("enterprise", "latency_attainment", ">=", 0.99)
    assert c.sense == 1.0 and c.bad_limit == pytest.approx(0.01)
    assert parse_constraint(" free.churn_per_month <= 0.05 ", TIERS).name == "free.churn_per_month<=0.05"
    assert parse_constraint("all.throttled_share>=0.1", TIERS).sense == -1.0


@pytest.mark.parametrize("text, names", [
    ("gold.churn_per_month<=0.1", "tier 'gold' must be one of free, pro"),
    ("free.churn<=0.1", "metric 'churn' must be one of latency_attainment, churn_per_month, throttled_share"),
    ("free.churn_per_month<0.1", "operator '<' must be one of >=, <="),
    ("free.churn_per_month<=lots", "limit 'lots' must be a number"),
    ("all.latency_attainment>=1", "limit '1' must be a finite number strictly between 0 and 1"),
    ("free.churn_per_month<=inf", "strictly between 0 and 1"),
    ("enterprise", "must read TIER.METRIC>=LIMIT"),
])
def test_bad_constraints_are_one_line(text, names) -> None:
    with pytest.raises(ConstraintError) as err:
        parse_constraint(text, TIERS)
    assert names in str(err.value) and "\n" not in str(err.value)


def test_repeated_constraint_refused() -> None:
    with pytest.raises(ConstraintError, match="given twice"):
        parse_constraints(["free.churn_per_month<=0.1", "free.churn_per_month<=0.2"], TIERS)


def test_train_refuses_a_bad_constraint_with_one_line(one_line_error, tmp_path) -> None:
    err = one_line_error(train.main, ["--output", str(tmp_path), "--constraint", "gold.latency_attainment>=0.99"])
    assert "tier 'gold'" in err
    assert not any(tmp_path.iterdir())  # nothing created
    err = one_line_error(train.main, ["--output", str(tmp_path), "--lagrange-lr", "-1"])
    assert "--lagrange-lr" in err


def test_evaluate_refuses_a_bad_constraint_with_one_line(one_line_error, tmp_path) -> None:
    err = one_line_error(evaluate_main, ["--policy", "static", "--scenario", "default", "--out", str(tmp_path / "e"),
                                         "--constraint", "free.latency_attainment=>0.9"])
    assert "operator" in err and not (tmp_path / "e").exists()


def test_shaped_reward_is_r_minus_lambda_c() -> None:
    r = np.array([1.0, 2.0, -0.5])
    costs = np.array([[0.5, 1.0, 2.0], [0.0, 3.0, 1.0]])
    lam = np.array([0.2, 1.5])
    expected = r - 0.2 * costs[0] - 1.5 * costs[1]
    np.testing.assert_allclose(shape_reward(r, costs, lam, normalise=False), expected)
    np.testing.assert_allclose(shape_reward(r, costs, lam), expected / (1 + 1.7))
    np.testing.assert_array_equal(shape_reward(r, costs, np.zeros(2)), r)


def test_multiplier_rises_when_violated_and_is_projected_to_zero() -> None:
    lam = update_multipliers(np.array([0.0, 1.0]), np.array([0.5, -0.2]), lr=2.0)
    np.testing.assert_allclose(lam, [1.0, 0.6])
    np.testing.assert_array_equal(update_multipliers(lam, np.array([-1.0, -1.0]), lr=2.0), [0.0, 0.0])


def _wrapped(constraint: str, lr: float, n_steps: int = 4) -> tuple[LagrangianRewards, RationingVecEnv]:
    c = parse_constraint(constraint, TIERS)
    base = RationingVecEnv(8, scenario="default", seed=11, overrides=SHORT, version=1)
    twin = RationingVecEnv(8, scenario="default", seed=11, overrides=SHORT, version=1)
    return LagrangianRewards(base, [c], n_steps=n_steps, lr=lr), twin


def test_wrapper_multiplier_rises_on_a_violated_constraint_and_shapes_the_reward() -> None:
    lag, twin = _wrapped("enterprise.latency_attainment>=0.99999", lr=0.1)  # out of reach
    lag.reset()
    twin.reset()
    zeros = np.zeros((8, 6), np.float32)
    seen = []
    for step in range(12):
        lam_before, ref = lag.multipliers.copy(), lag.den_ref.copy()
        _, shaped, _, _ = lag.step(zeros)
        _, raw, _, _ = twin.step(zeros)
        info = twin.last_info
        cost = info["late_tokens"][:, 4] / ref[0] / (1 - 0.99999) if step >= 4 else None
        if cost is not None:  # after the first rollout the cost uses the rollout's mean served tokens
            np.testing.assert_allclose(shaped, (raw - lam_before[0] * cost) / (1 + lam_before[0]), rtol=1e-5)
        seen.append(lag.multipliers[0])
    assert seen[2] == 0 and 0 < seen[3] < seen[7] < seen[11]  # updated after each rollout of 4 steps
    assert lag.updates == 3 and lag.last_values[0] < 0.99999


def test_wrapper_multiplier_falls_to_zero_when_satisfied() -> None:
    lag, _ = _wrapped("all.throttled_share<=0.95", lr=0.5)  # nominal quotas throttle far less
    lag.multipliers[:] = 1.2
    lag.reset()
    values = []
    for _ in range(12):
        lag.step(np.zeros((8, 6), np.float32))
        values.append(lag.multipliers[0])
    assert values[3] < 1.2 and values[11] == 0.0
    state = lag.state_arrays()
    other, _ = _wrapped("all.throttled_share<=0.95", lr=0.5)
    other.load_state_arrays(state)
    assert all(np.array_equal(v, other.state_arrays()[k], equal_nan=True) for k, v in state.items())


def test_verdict_uses_the_whole_ci() -> None:
    c = Constraint("enterprise", "latency_attainment", ">=", 0.99)
    assert verdict(c, 0.995, 0.004) == "met"
    assert verdict(c, 0.995, 0.006) == "unclear"
    assert verdict(c, 0.98, 0.005) == "violated"
    d = Constraint("free", "churn_per_month", "<=", 0.05)
    assert verdict(d, 0.04, 0.005) == "met" and verdict(d, 0.07, 0.01) == "violated"


def test_evaluate_reports_constraint_satisfaction(tmp_path) -> None:
    out = tmp_path / "ev"
    code = evaluate_main(["--policy", "static", "--policy", "fair-share", "--scenario", "default", "--seeds", "3",
                          "--days", "0.25", "--no-plots", "--no-progress", "--out", str(out),
                          "--constraint", "enterprise.latency_attainment>=0.5", "--constraint",
                          "free.churn_per_month<=0.9"])
    assert code == 0
    rows = json.loads((out / "constraints.json").read_text())["rows"]
    assert {(r["policy"], r["constraint"]) for r in rows} == {
        (p, c) for p in ("static", "fair-share")
        for c in ("enterprise.latency_attainment>=0.5", "free.churn_per_month<=0.9")}
    assert all(r["n_seeds"] == 3 and 0 <= r["seeds_met_share"] <= 1 and r["verdict"] for r in rows)
    assert "## Constraints" in (out / "results.md").read_text()
