"""The rule baselines do what their docstrings say, batched and deterministic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import envs
from agents.common.policy import Policy
from agents.evaluate.resolve import resolve_policy
from agents.rules import (
    RULES,
    TUNED_FILE,
    AIMDParams,
    AIMDRule,
    FairShareRule,
    LatencyGradientRule,
    PredictiveRule,
    RuleContext,
    RuleError,
    StaticRule,
    TierPriorityRule,
    TimeOfUseRule,
    params_from_dict,
    params_to_dict,
    tuned_params,
    weighted_max_min,
)
from envs.quota import admit, apply_action
from envs.serving import weighted_fair_share

SHORT = {"time": {"episode_days": 1}}


@pytest.fixture(scope="module")
def ctx() -> RuleContext:
    return RuleContext("default")


def base_obs(ctx: RuleContext, n: int = 1) -> np.ndarray:
    core = envs.RationingCore("default", n)
    return core.reset(np.arange(n, dtype=np.uint64)).copy()


def at_time(ctx: RuleContext, obs: np.ndarray, day: int, hour: float) -> np.ndarray:
    """The observation with its clock set to ``day`` (0 = Monday) and ``hour`` (as envs.observation.build)."""
    p = ctx.params
    ws = int(round((day * 24 + hour) / p.dt_h)) % p.steps_per_week
    out = obs.copy()
    out[:, 0] = np.sin(2 * np.pi * ws / p.steps_per_day)
    out[:, 1] = np.cos(2 * np.pi * ws / p.steps_per_day)
    out[:, 2] = np.sin(2 * np.pi * ws / p.steps_per_week)
    out[:, 3] = np.cos(2 * np.pi * ws / p.steps_per_week)
    return out


def set_block(ctx: RuleContext, obs: np.ndarray, block: str, values) -> np.ndarray:
    out = obs.copy()
    out[:, ctx.blocks[block]] = np.asarray(values, dtype=np.float32)
    return out


def tier(ctx: RuleContext, name: str) -> int:
    return ctx.tier_names.index(name)


# ------------------------------------------------------------------------- interface
@pytest.mark.parametrize("name", list(RULES))
def test_every_rule_answers_sb3_predict_batched(ctx: RuleContext, name: str) -> None:
    rule = resolve_policy(name, ctx)
    assert isinstance(rule, Policy)
    core = envs.RationingCore("peak-contention", 5, overrides=SHORT)
    obs = core.reset(np.arange(5, dtype=np.uint64))
    state, start = None, np.ones(5, bool)
    for _ in range(40):
        action, state = rule.predict(obs, state, start)
        start[:] = False
        assert action.shape == (5, 6) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0) and np.all(np.isfinite(action))
        if not rule.stateful:  # rows are independent: a single observation gives that row's action, shape (T,)
            one, _ = rule.predict(obs[2])
            np.testing.assert_allclose(one, action[2], atol=1e-6)
        obs, *_ = core.step(action)


@pytest.mark.parametrize("name", list(RULES))
def test_batched_parameters_match_single_rules(ctx: RuleContext, name: str) -> None:
    cls = RULES[name]
    sets = [cls.Params()]
    for d in cls.space[:2]:  # a second set that differs in its first dimensions
        first = sets[-1]
        value = d.high if not d.per_tier else {t: d.high for t in ctx.tier_names}
        if d.integer:
            value = int(d.high)
        sets.append(dataclasses.replace(first, **{d.name: value}))
    sets = sets[-2:] if len(sets) > 1 else sets * 2
    core = envs.RationingCore("outage", 4, overrides=SHORT)
    obs = core.reset(np.arange(4, dtype=np.uint64)).copy()
    batched = cls.batched(ctx, sets, repeats=2)
    singles = [cls(ctx, p) for p in sets]
    b_state = s_states = None
    for _ in range(12):
        act, b_state = batched.predict(obs, b_state)
        rows = []
        new_states = []
        for k, rule in enumerate(singles):
            a, st = rule.predict(obs[2 * k: 2 * k + 2], None if s_states is None else s_states[k])
            rows.append(a)
            new_states.append(st)
        s_states = new_states
        np.testing.assert_allclose(act, np.concatenate(rows), atol=1e-6)
        obs, *_ = core.step(act)


def test_clock_decodes_every_step_of_the_week(ctx: RuleContext) -> None:
    obs = np.repeat(base_obs(ctx), 168, axis=0)
    for h in range(168):
        obs[h] = at_time(ctx, obs[h: h + 1], h // 24, h % 24)[0]
    hour, day = ctx.clock(obs)
    assert list(hour) == [h % 24 for h in range(168)]
    assert list(day) == [h // 24 for h in range(168)]


def test_multiplier_for_admitted_inverts_the_quota_model(ctx: RuleContext) -> None:
    rng = np.random.default_rng(0)
    demand = rng.uniform(1e6, 1e9, (8, 6))
    users = np.tile(ctx.users0, (8, 1)) * rng.uniform(0.5, 1.5, (8, 6))
    want = demand * rng.uniform(0.05, 0.95, (8, 6))
    q = ctx.multiplier_for_admitted(demand, users, want)
    got = admit(ctx.params, demand.astype(np.float32), users.astype(np.float32), q.astype(np.float32))
    np.testing.assert_allclose(got.admitted_tokens, want, rtol=1e-3)


def test_weighted_max_min_matches_the_env_serving_split(ctx: RuleContext) -> None:
    rng = np.random.default_rng(1)
    backlog = rng.uniform(0, 1e8, (64, 6))
    cap = rng.uniform(0, 4e8, 64)
    ours = weighted_max_min(backlog, ctx.priority_weight[None, :], cap)
    env = weighted_fair_share(backlog.astype(np.float32), ctx.params.priority_weight, cap.astype(np.float32))
    np.testing.assert_allclose(ours, env, rtol=1e-4, atol=1e3)
    np.testing.assert_allclose(ours.sum(axis=1), np.minimum(cap, backlog.sum(axis=1)), rtol=1e-9)


# -------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("source", ["defaults", "tuned"])
def test_time_of_use_is_tighter_weekday_14h_than_sunday_3h(ctx: RuleContext, source: str) -> None:
    params = None
    if source == "tuned":
        data = tuned_params("time-of-use")
        if data is None:
            pytest.skip("no tuned time-of-use parameters shipped")
        params = params_from_dict("time-of-use", data)
    rule = TimeOfUseRule(ctx, params)
    obs = base_obs(ctx).astype(np.float64)
    tue, _ = rule.target(at_time(ctx, obs, 1, 14.0), None)
    sun, _ = rule.target(at_time(ctx, obs, 6, 3.0), None)
    # no tier is looser on a weekday afternoon, and the quotas are tighter overall
    assert np.all(tue <= sun) and np.exp(np.log(tue).mean()) < 0.9 * np.exp(np.log(sun).mean()), (tue, sun)
    if source == "defaults":  # the defaults are strictly tighter for every tier, and so are the actions
        assert np.all(tue < sun)
        a_tue, _ = rule.predict(at_time(ctx, base_obs(ctx), 1, 14.0))
        a_sun, _ = rule.predict(at_time(ctx, base_obs(ctx), 6, 3.0))
        assert np.all(a_tue < a_sun)


def test_time_of_use_follows_its_table(ctx: RuleContext) -> None:
    rule = TimeOfUseRule(ctx)
    p = rule.params
    obs = base_obs(ctx)
    for day, hour, expect in ((2, 10, p.peak), (2, 22, p.offpeak), (5, 14, p.weekend)):
        target, _ = rule.target(at_time(ctx, obs, day, hour).astype(np.float64), None)
        assert target[0, tier(ctx, "free")] == pytest.approx(expect.get("free", expect["*"]))
        assert target[0, tier(ctx, "api")] == pytest.approx(expect.get("api", expect["*"]))


def test_tier_priority_cuts_free_before_enterprise(ctx: RuleContext) -> None:
    rule = TierPriorityRule(ctx)
    free, ent = tier(ctx, "free"), tier(ctx, "enterprise")
    calm = set_block(ctx, base_obs(ctx), "latency_over_target", np.log(0.5) * np.ones(6))
    a_calm, _ = rule.predict(calm)
    assert a_calm[0, free] == pytest.approx(0.0) and a_calm[0, ent] == pytest.approx(0.0)  # open = 1: no change
    # mild pressure (worst latency 1.5x target): only the lowest rank is shed
    mild = set_block(ctx, calm, "latency_over_target", np.log([1.5, 1, 1, 1, 1, 1]))
    a_mild, _ = rule.predict(mild)
    assert a_mild[0, free] < 0 and np.allclose(a_mild[0, np.arange(6) != free], 0.0)
    # a long queue (predicted wait 30x the threshold): everyone but the protected top tier is shed
    queue = np.full(6, 30 * 60.0 / ctx.params.dt_s * ctx.capacity_tokens(calm)[0] / 6
                    / ctx.params.nominal_capacity_tokens_step)
    severe = set_block(ctx, calm, "queue", queue)
    a_sev, _ = rule.predict(severe)
    assert a_sev[0, ent] == pytest.approx(0.0)
    assert np.all(a_sev[0, np.arange(6) != ent] < 0)


def test_tier_priority_sheds_low_tiers_first_in_a_simulation() -> None:
    core = envs.RationingCore("agentic-surge", 4, overrides={"time": {"episode_days": 3}})
    rule = TierPriorityRule(RuleContext(core))
    obs = core.reset(np.arange(4, dtype=np.uint64))
    first_cut = np.full((4, 6), 10**6)
    for t in range(core.params.episode_steps):
        action, _ = rule.predict(obs)
        obs, *_ = core.step(action)
        cut = core.quota_multiplier < 0.99
        first_cut = np.where(cut & (first_cut == 10**6), t, first_cut)
    names = core.tier_names
    assert np.all(first_cut[:, names.index("free")] < 10**6)  # free was cut in every row
    assert np.all(first_cut[:, names.index("enterprise")] == 10**6)  # enterprise never
    assert np.all(first_cut[:, names.index("free")] <= first_cut[:, names.index("pro")])


def test_aimd_backs_off_after_a_breach_and_creeps_up_while_healthy(ctx: RuleContext) -> None:
    rule = AIMDRule(ctx, AIMDParams(g0=1.0, increase=0.05, decrease=0.7, breach_ratio=1.0))
    healthy = set_block(ctx, base_obs(ctx), "latency_over_target", np.log(0.5) * np.ones(6))
    a, g = rule.predict(healthy, None, np.array([True]))
    assert g[0] == pytest.approx(1.05) and np.all(a > 0)
    obs = set_block(ctx, healthy, "quota", np.log(1.05) * np.ones(6))
    a, g = rule.predict(obs, g, np.array([False]))
    assert g[0] == pytest.approx(1.10) and np.all(a > 0)
    breach = set_block(ctx, set_block(ctx, obs, "quota", np.log(1.10) * np.ones(6)),
                       "latency_over_target", np.log([0.5, 0.5, 0.5, 0.5, 1.3, 0.5]))
    a, g2 = rule.predict(breach, g, np.array([False]))
    assert g2[0] == pytest.approx(1.10 * 0.7)
    assert np.all(a < 0)  # every tier's quota is cut
    # a new episode resets the state
    _, g3 = rule.predict(breach, g2, np.array([True]))
    assert g3[0] == pytest.approx(0.7)


def test_predictive_admits_by_priority_within_capacity(ctx: RuleContext) -> None:
    rule = PredictiveRule(ctx)
    obs = at_time(ctx, base_obs(ctx), 1, 14.0)
    plenty = set_block(ctx, obs, "demand", np.full(6, 0.2))
    t_plenty, _ = rule.target(plenty.astype(np.float64), None)
    assert np.allclose(t_plenty, rule.params.open_multiplier)  # everything fits: quotas open
    scarce = plenty.copy()
    scarce[:, ctx.capacity_slice] = 0.15  # 85% of the GPUs gone
    scarce = set_block(ctx, scarce, "demand", np.full(6, 1.5))
    t_scarce, _ = rule.target(scarce.astype(np.float64), None)
    free, pro, ent = tier(ctx, "free"), tier(ctx, "pro"), tier(ctx, "enterprise")
    assert t_scarce[0, ent] == pytest.approx(rule.params.open_multiplier)  # the top tier is served first
    assert t_scarce[0, free] < 0.1 and t_scarce[0, pro] < 0.1  # the lowest tiers get what is left: little
    # moderately short: only the two lowest tiers are cut
    mild = set_block(ctx, plenty.copy(), "demand", np.full(6, 1.0))
    mild[:, ctx.capacity_slice] = 0.25
    t_mild, _ = rule.target(mild.astype(np.float64), None)
    low = np.isin(np.arange(6), [free, pro])
    assert np.all(t_mild[0, low] < 0.5)
    assert np.allclose(t_mild[0, ~low], rule.params.open_multiplier)
    # the admitted total fills the capacity the lowest tier's latency target allows, no more
    demand = ctx.demand_forecast(mild.astype(np.float64))
    adm = admit(ctx.params, demand.astype(np.float32), ctx.users(mild.astype(np.float64)).astype(np.float32),
                t_mild.astype(np.float32)).admitted_tokens
    share = 1.0 - ctx.params.base_latency_s / ctx.latency_target_s[free]
    assert adm.sum() == pytest.approx(rule.params.headroom * share * ctx.capacity_tokens(mild)[0], rel=1e-3)


def test_fair_share_splits_by_weight_when_short(ctx: RuleContext) -> None:
    rule = FairShareRule(ctx)
    obs = at_time(ctx, base_obs(ctx), 1, 14.0)
    obs[:, ctx.capacity_slice] = 0.3
    x = set_block(ctx, obs, "demand", np.full(6, 3.0)).astype(np.float64)
    target, _ = rule.target(x, None)
    adm = ctx.admitted_at(ctx.demand_forecast(x), ctx.users(x), target)[0]
    w = np.array([rule.params.weights[t] for t in ctx.tier_names])
    short = target[0] < rule.params.open_multiplier * (1 - 1e-6)
    assert 2 <= short.sum() < 6 and not short[tier(ctx, "enterprise")]
    # tiers that are cut get the same admitted tokens per unit of weight; the others get all they ask
    per_weight = adm[short] / w[short]
    np.testing.assert_allclose(per_weight, per_weight[0], rtol=1e-6)
    assert np.all(adm[~short] / w[~short] < per_weight[0])
    assert adm.sum() == pytest.approx(rule.params.headroom * ctx.capacity_tokens(x)[0], rel=1e-6)


def test_latency_gradient_cuts_a_tier_whose_latency_jumps(ctx: RuleContext) -> None:
    rule = LatencyGradientRule(ctx)
    obs = set_block(ctx, base_obs(ctx), "latency_over_target", np.log(0.5) * np.ones(6))
    a, state = rule.predict(obs, None, np.array([True]))
    assert np.all(a > 0)  # healthy: probe upwards
    spike = set_block(ctx, obs, "latency_over_target", np.log([0.5, 3.0, 0.5, 0.5, 0.5, 0.5]))
    a, _ = rule.predict(spike, state, np.array([False]))
    pro = tier(ctx, "pro")
    assert a[0, pro] < 0 and np.all(a[0, np.arange(6) != pro] > 0)


def test_static_never_adjusts() -> None:
    core = envs.RationingCore("outage", 2, overrides=SHORT)
    rule = StaticRule(RuleContext(core))
    obs = core.reset(np.arange(2, dtype=np.uint64))
    for _ in range(20):
        a, _ = rule.predict(obs)
        assert np.all(a == 0)
        obs, *_ = core.step(a)
    assert np.all(core.quota_multiplier == 1.0)


def test_action_reaches_the_target_multiplier(ctx: RuleContext) -> None:
    obs = base_obs(ctx)
    target = np.array([[0.6, 1.0, 1.7, 0.9, 1.2, 1.9]])
    a = ctx.action_to(obs.astype(np.float64), target)
    after = apply_action(ctx.params, np.ones((1, 6), np.float32), a)
    np.testing.assert_allclose(after, target, rtol=1e-5)


def test_parameter_errors_are_one_line(ctx: RuleContext) -> None:
    with pytest.raises(RuleError, match="unknown parameter 'bogus'"):
        params_from_dict("aimd", {"bogus": 1})
    with pytest.raises(RuleError, match="must map tier names"):
        params_from_dict("aimd", {"weights": 2.0})
    with pytest.raises(RuleError, match="no value for tier"):
        AIMDRule(ctx, AIMDParams(weights={"free": 1.0}))
    p = params_from_dict("aimd", {"g0": 2, "weights": {"free": 0.5, "*": 1}})
    assert p.g0 == 2.0 and params_to_dict(p)["weights"]["free"] == 0.5


def test_shipped_tuned_parameters_load_for_every_rule(ctx: RuleContext) -> None:
    assert TUNED_FILE.is_file()
    for name in RULES:
        data = tuned_params(name)
        if name == "fair-share-tod" and data is None:  # added after the last full retune: its defaults until then
            assert params_to_dict(resolve_policy(name, ctx).params) == params_to_dict(RULES[name].Params())
            continue
        assert data is not None, name
        rule = resolve_policy(name, ctx)
        assert params_to_dict(rule.params) == params_to_dict(params_from_dict(name, data))


def test_rules_act_on_burst_as_the_fixed_rule_with_burst_policy() -> None:
    import envs
    from agents.evaluate import rollout
    from agents.rules import make_rule

    seeds = np.arange(3, dtype=np.uint64)
    ruled = envs.RationingCore("launch-spike", 3, version=1)
    policy_burst = envs.RationingCore("launch-spike", 3, overrides={"action": {"burst": "policy"}}, version=1)
    for name in ("static", "fair-share", "aimd"):
        a = rollout(make_rule(name, RuleContext(ruled)), ruled, seeds, keys=("burst_gpus",))
        b = rollout(make_rule(name, RuleContext(policy_burst)), policy_burst, seeds, keys=("burst_gpus",))
        assert RuleContext(policy_burst).action_size == 7
        np.testing.assert_array_equal(a.series["burst_gpus"], b.series["burst_gpus"])
        np.testing.assert_array_equal(a.returns, b.returns)


def _weighted_max_min_numpy(demand, weights, capacity):
    """The numpy formulation the compiled weighted_max_min replaced (kept as its reference)."""
    n, t = demand.shape
    w = np.broadcast_to(weights, (n, t))
    ratio = demand / w
    order = np.argsort(ratio, axis=1, kind="stable")
    r = np.take_along_axis(ratio, order, axis=1)
    ws = np.take_along_axis(w, order, axis=1)
    cum_w = np.cumsum(ws, axis=1)
    cum_d = np.cumsum(r * ws, axis=1)
    w_total = cum_w[:, -1:]
    full = ((cum_d + r * (w_total - cum_w)) <= capacity[:, None]).sum(axis=1)
    pad = np.zeros((n, 1))
    d_done = np.take_along_axis(np.concatenate([pad, cum_d], axis=1), full[:, None], axis=1)[:, 0]
    w_done = np.take_along_axis(np.concatenate([pad, cum_w], axis=1), full[:, None], axis=1)[:, 0]
    lam = np.maximum(capacity - d_done, 0.0) / np.maximum(w_total[:, 0] - w_done, 1e-12)
    return np.minimum(demand, w * lam[:, None])


@pytest.mark.parametrize("per_row_weights", [False, True])
def test_compiled_weighted_max_min_equals_the_numpy_formulation(per_row_weights: bool) -> None:
    rng = np.random.default_rng(7)
    n = 500
    demand = rng.uniform(0, 1e8, (n, 6))
    demand[::7, 2] = demand[::7, 4]  # ties in demand / weight
    demand[::11] = 0.0
    weights = rng.uniform(0.5, 20.0, (n if per_row_weights else 1, 6))
    if not per_row_weights:
        weights[0, 4] = weights[0, 2]
    cap = rng.uniform(0, 4e8, n)
    cap[::5] = 0.0
    np.testing.assert_array_equal(weighted_max_min(demand, weights, cap), _weighted_max_min_numpy(demand, weights, cap))
