"""fair-share-tod: fair share times its per-tier time-of-week table, applied at the right hours."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from agents.rules import FairShareRule, FairShareTodRule, RuleContext, params_from_dict
from agents.rules.timeofday import TABLE_FIELDS


@pytest.fixture(scope="module")
def ctx() -> RuleContext:
    return RuleContext("default")


def week_of_obs(ctx: RuleContext) -> np.ndarray:
    """Real observations of one simulated week (fair share acting), float64 (steps, obs_size)."""
    core = envs.RationingCore("default", 1)
    obs = core.reset(np.zeros(1, dtype=np.uint64))
    rule, out = FairShareRule(ctx), []
    for _ in range(ctx.params.steps_per_week):
        out.append(obs[0].astype(np.float64))
        action, _ = rule.predict(obs)
        obs, *_ = core.step(action)
    return np.stack(out)


def test_table_is_applied_at_the_right_hours(ctx: RuleContext) -> None:
    obs = week_of_obs(ctx)
    fs = FairShareRule(ctx).target(obs, None)[0]
    tod = FairShareTodRule(ctx, params_from_dict("fair-share-tod", {
        "weekday_8h": {"free": float(np.log(2.0)), "*": 0.0}, "weekend_20h": {"api": -1.0, "*": 0.0}}))
    ratio = tod.target(obs, None)[0] / fs
    hour, day = ctx.clock(obs)
    free, api = ctx.tier_names.index("free"), ctx.tier_names.index("api")
    weekday_morning = (day < 5) & (hour >= 8) & (hour < 12)
    weekend_night = (day >= 5) & (hour >= 20)
    assert weekday_morning.sum() == 5 * 4 * 4 and weekend_night.sum() == 2 * 4 * 4  # 15-minute steps
    np.testing.assert_allclose(ratio[:, free], np.where(weekday_morning, 2.0, 1.0), rtol=1e-12)
    np.testing.assert_allclose(ratio[:, api], np.where(weekend_night, np.exp(-1.0), 1.0), rtol=1e-12)
    others = [i for i in range(ctx.n_tiers) if i not in (free, api)]
    np.testing.assert_allclose(ratio[:, others], 1.0, rtol=1e-12)


def test_zero_table_is_fair_share_and_rows_keep_their_own_tables(ctx: RuleContext) -> None:
    obs = week_of_obs(ctx)[::7]
    fs = FairShareRule(ctx).target(obs, None)[0]
    np.testing.assert_array_equal(FairShareTodRule(ctx).target(obs, None)[0], fs)
    a = params_from_dict("fair-share-tod", {f: {"*": 0.5} for f in TABLE_FIELDS})
    b = params_from_dict("fair-share-tod", {})
    batched = FairShareTodRule.batched(ctx, [a, b], repeats=len(obs))
    both = batched.target(np.concatenate([obs, obs]), None)[0]
    np.testing.assert_allclose(both[: len(obs)], fs * np.exp(0.5), rtol=1e-12)
    np.testing.assert_allclose(both[len(obs):], fs, rtol=1e-12)


def test_reads_no_hidden_state(ctx: RuleContext) -> None:
    """Causal and memoryless: same observation, same action, whatever came before."""
    obs = week_of_obs(ctx)[100:104]
    rule = FairShareTodRule(ctx, params_from_dict("fair-share-tod", {"weekday_0h": {"*": 0.3}}))
    a1, s1 = rule.predict(obs)
    a2, _ = rule.predict(obs[::-1].copy())
    assert s1 is None and np.array_equal(a1, a2[::-1])
