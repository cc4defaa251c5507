"""Rationing-v1: SLA credits, failed requests, batching interference, the burst action; checkers, invariants, parity."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.contracts import SLAConfig, SLAState, compile_schedules, sla_step
from envs.user_response import user_step

SHORT = {"time": {"episode_days": 0.25}}  # 24 steps
POLICY_BURST = {"action": {"burst": "policy"}}


def _run(scenario, actions, n=4, seed=0, overrides=None, steps=None):
    """Run a v1 core; ``actions`` is a constant (N, A) array or a function (t, core) -> actions."""
    core = envs.RationingCore(scenario, n, overrides=overrides, version=1)
    core.reset(np.arange(n) + seed)
    out: dict[str, list] = {}
    for t in range(steps or core.params.episode_steps):
        act = actions(t, core) if callable(actions) else actions
        _, reward, _, _, info = core.step(np.asarray(act, np.float32))
        for k, v in {**info, "reward_": reward}.items():
            out.setdefault(k, []).append(np.array(v))
    return {k: np.stack(v) for k, v in out.items()}


# ------------------------------------------------------------------------------ contracts
def test_credit_schedule_unit() -> None:
    sla = SLAConfig.model_validate({"availability": {"threshold": 0.995, "credits": [
        {"below": 0.995, "credit_share": 0.1}, {"below": 0.99, "credit_share": 0.25},
        {"below": 0.95, "credit_share": 0.5}]}})
    sched = compile_schedules([None, sla])
    served = np.array([[1e6, 1e6]] * 4, np.float32)
    failed = np.array([[5e5, 0.0], [0, 1e3], [0, 6e3], [0, 2e4]], np.float32) * np.float32(1.0)
    failed[1:, 1] = [1e3, 6e3, 1e5]  # availability 0.999, 0.994, 0.909
    state = SLAState(*(np.zeros((4, 2), np.float32) for _ in range(3)))
    bill = np.full((4, 2), 100.0, np.float32)
    out = sla_step(sched, state, served, failed, served, bill)
    np.testing.assert_allclose(out.credit_usd[:, 1], [0.0, 0.0, 10.0, 50.0], atol=1e-4)
    assert (out.credit_usd[:, 0] == 0).all()  # the tier without SLA owes nothing, whatever fails
    assert out.availability[0, 0] < 0.7


def test_sla_breach_charges_its_credit_in_the_reward() -> None:
    strict = {"tiers": [{"name": "enterprise", "sla": {"latency_attainment": {
        "threshold": 0.9999, "credits": [{"below": 0.9999, "credit_share": 0.5}]}}}]}
    none = {"tiers": [{"name": "enterprise", "sla": None}, {"name": "team", "sla": None}]}
    zero = np.zeros((4, 6), np.float32)
    a = _run("default", zero, overrides={**strict, **SHORT})
    b = _run("default", zero, overrides={**none, **SHORT})
    ent = 4
    breach = a["sla_latency_attainment"][:, :, ent] < 0.9999
    assert breach.any()
    np.testing.assert_allclose(a["sla_credit_usd"][:, :, ent], 0.5 * a["revenue_usd"][:, :, ent] * breach, rtol=1e-5)
    assert (b["sla_credit_usd"] == 0).all()
    np.testing.assert_allclose(a["sla_credit_total_usd"], a["sla_credit_usd"].sum(axis=2), rtol=1e-5)
    # same world otherwise: the reward differs by exactly the credit (margin weight 1, scale 10,000 $)
    np.testing.assert_allclose(b["reward_"] - a["reward_"], a["sla_credit_total_usd"] / 1e4, rtol=1e-4, atol=1e-6)


def test_default_scenario_sla_tiers() -> None:
    sc = envs.load_scenario("default")
    by = {t.name: t.sla for t in sc.tiers}
    assert by["free"] is None and by["enterprise"] is not None and by["team"] is not None
    assert by["enterprise"].availability.threshold == 0.995
    assert [c.credit_share for c in by["enterprise"].availability.credits] == [0.1, 0.25, 0.5]
    assert by["enterprise"].latency_attainment.threshold == 0.99


# ------------------------------------------------------------------------------ failures
def test_failed_tokens_lower_availability_and_raise_churn() -> None:
    # the outage collapses the service when quotas are wide open: failed requests
    wide = np.ones((4, 6), np.float32)
    r = _run("outage", wide, steps=100 * 4)
    failed = r["failed_tokens"].sum(axis=0)
    assert (failed > 0).any()
    np.testing.assert_allclose(r["failed_tokens"], r["timed_out_tokens"] + r["collapse_failed_tokens"], rtol=1e-6)
    served = r["served_tokens"].sum(axis=0)
    np.testing.assert_allclose(r["sla_availability"][-1], (served + 1) / (served + failed + 1), rtol=1e-4)
    assert (r["sla_availability"][-1][failed > 0] < 1).all()
    # churn: the same users, latency and throttling, with and without failures
    core = envs.RationingCore("default", 3, version=1)
    p, state = core.params, core.users
    thr = np.full((3, 6), 0.05, np.float32)
    lat = np.full((3, 6), 1.0, np.float32)
    none = user_step(p, state, thr, lat, np.zeros((3, 6), np.float32)).churned_users
    some = user_step(p, state, thr, lat, np.full((3, 6), 0.2, np.float32)).churned_users
    assert (some > none).all()
    # a failed share frustrates at least as much as the same throttled share
    as_failed = user_step(p, state, np.zeros((3, 6), np.float32), lat, np.full((3, 6), 0.2, np.float32))
    as_throttled = user_step(p, state, np.full((3, 6), 0.2, np.float32), lat, np.zeros((3, 6), np.float32))
    assert (as_failed.churned_users >= as_throttled.churned_users).all()


# ------------------------------------------------------------------------------ batching
def _mean_latency(version: int, free_action: float) -> np.ndarray:
    core = envs.RationingCore("default", 4, version=version)
    core.reset(np.arange(4))
    lat = np.zeros(6)
    served = np.zeros(6)
    act = np.zeros((4, 6), np.float32)
    act[:, 0] = free_action  # only the free tier's quota moves (to its maximum or minimum)
    for _ in range(core.params.episode_steps):
        _, _, _, _, info = core.step(act)
        lat += (info["latency_s"] * info["served_tokens"]).sum(axis=0)
        served += info["served_tokens"].sum(axis=0)
    return lat / served


def test_free_tier_load_slows_paying_tiers_on_v1() -> None:
    closed, opened = _mean_latency(1, -1.0), _mean_latency(1, +1.0)
    paying = slice(1, 6)
    assert (opened[paying] > closed[paying] * 1.02).all(), (closed, opened)


# ------------------------------------------------------------------------------ burst action
def test_burst_action_layout_and_rule_equivalence() -> None:
    env = gym.make("Rationing-v1", overrides=POLICY_BURST)
    assert env.action_space.shape == (7,)
    assert env.unwrapped.obs_names[45] == "burst_on_order"
    with pytest.raises(ValueError, match=r"action\.burst = 'policy' needs Rationing-v1"):
        envs.RationingCore("default", 1, overrides=POLICY_BURST)
    # the fixed rule's decision as the burst action reproduces the rule
    util = 5 + 2
    p = envs.RationingCore("default", 1, version=1).params

    def rule_like(t, core):
        u = core.obs[:, util]
        a = np.where(u > p.burst_buy_above, 1.0, np.where(u < p.burst_release_below, -1.0, 0.0))
        return np.concatenate([np.zeros((core.num_envs, 6)), a[:, None]], axis=1)

    ruled = _run("launch-spike", np.zeros((4, 6)), steps=200)
    policy = _run("launch-spike", rule_like, overrides=POLICY_BURST, steps=200)
    np.testing.assert_array_equal(ruled["burst_gpus"], policy["burst_gpus"])
    np.testing.assert_array_equal(ruled["reward_"], policy["reward_"])


def test_ordering_burst_before_the_launch_serves_more_than_the_fixed_rule() -> None:
    p = envs.RationingCore("launch-spike", 1, version=1).params
    launch = int(33 / p.dt_h)  # Tuesday 09:00

    def early(t, core):  # quotas wide open; order from 4 h before the launch, hold for a day, then release
        a = 1.0 if launch - 16 <= t < launch + 96 else -1.0
        return np.concatenate([np.ones((core.num_envs, 6)), np.full((core.num_envs, 1), a)], axis=1)

    fixed = _run("launch-spike", np.ones((4, 6)))
    planned = _run("launch-spike", early, overrides=POLICY_BURST)
    assert planned["burst_gpus"][launch].min() == p.burst_max_gpus
    assert fixed["burst_gpus"][launch].max() < p.burst_max_gpus
    window = slice(launch, launch + 24)
    assert planned["served_tokens"][window].sum() > 1.02 * fixed["served_tokens"][window].sum()
    assert planned["served_tokens"].sum() > fixed["served_tokens"].sum()


# ------------------------------------------------------------------------------ checkers, invariants, parity
@pytest.mark.parametrize("scenario", envs.available_scenarios())
def test_checkers_pass_with_no_warnings_on_v1(scenario: str) -> None:
    for over in (None, POLICY_BURST):
        env = gym.make("Rationing-v1", scenario=scenario, overrides=over)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
            sb3_check_env(envs.RationingEnv(scenario, overrides=over, version=1), warn=True)


def test_v1_info_and_spaces() -> None:
    env = gym.make("Rationing-v1")
    assert env.observation_space.shape == (58,) and env.action_space.shape == (6,)
    assert env.unwrapped.metadata["env_version"] == 1
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(6, np.float32))
    keys = envs.TIER_INFO_KEYS + envs.SCALAR_INFO_KEYS + envs.PROVIDER_INFO_KEYS
    assert set(keys + envs.V1_TIER_INFO_KEYS + envs.V1_SCALAR_INFO_KEYS) == set(info)
    assert info["sla_credit_usd"].shape == (6,) and isinstance(info["sla_credit_total_usd"], float)


@pytest.mark.parametrize("scenario", envs.available_scenarios())
def test_v1_invariants_under_random_actions(scenario: str) -> None:
    core = envs.RationingCore(scenario, 8, randomize=True, overrides=POLICY_BURST, version=1)
    core.reset(np.arange(8, dtype=np.uint64) + 77)
    rng = np.random.default_rng(5)
    for t in range(300):
        act = rng.choice([-5.0, 5.0], (8, 7)) if t % 3 == 0 else rng.uniform(-1, 1, (8, 7))
        queue_before = core.queue_tokens.copy()
        obs, reward, _, _, info = core.step(act.astype(np.float32))
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        for key, value in info.items():
            assert np.isfinite(value).all(), key
            if key not in ("reward", "margin_usd"):
                assert (value >= 0).all(), key
        flow = info["served_tokens"] + info["failed_tokens"] + info["queue_tokens"]
        np.testing.assert_allclose(flow, queue_before + info["admitted_tokens"], rtol=1e-5, atol=1.0)
        split = info["admitted_tokens"] + info["deferred_tokens"] + info["lost_tokens"]
        np.testing.assert_allclose(split, info["demand_tokens"], rtol=1e-5, atol=1.0)
        for key in ("sla_availability", "sla_latency_attainment", "batch_occupancy"):
            assert (info[key] <= 1).all(), key
        assert (info["sla_credit_usd"] <= 0.5 * info["revenue_usd"] + 1e-3).all()
        assert (info["burst_gpus"] + info["burst_on_order_gpus"] <= core.params.burst_max_gpus + 1e-3).all()
        assert ((obs >= core.params.obs_low) & (obs <= core.params.obs_high)).all()


def test_v1_batched_rows_equal_single_envs() -> None:
    n, steps = 4, 50  # two episode boundaries of 24 steps
    over = {**SHORT, **POLICY_BURST}
    acts = np.random.default_rng(2).uniform(-1.2, 1.2, (steps, n, 7)).astype(np.float32)
    vec = gym.make_vec("Rationing-v1", num_envs=n, scenario="outage", overrides=over)
    v_obs, _ = vec.reset(seed=[31, 32, 33, 34])
    singles = [envs.RationingEnv("outage", overrides=over, version=1) for _ in range(n)]
    s_obs = [e.reset(seed=31 + k)[0] for k, e in enumerate(singles)]
    np.testing.assert_array_equal(v_obs, np.stack(s_obs))
    for t in range(steps):
        v_obs, v_rew, _, _, v_info = vec.step(acts[t])
        for k, e in enumerate(singles):
            o, r, _, trunc, info = e.step(acts[t, k])
            assert r == v_rew[k]
            src = v_info["final_info"] if trunc else v_info
            for key in envs.V1_TIER_INFO_KEYS + envs.V1_SCALAR_INFO_KEYS:
                np.testing.assert_array_equal(info[key], src[key][k], err_msg=f"{key} row {k} step {t}")
            if trunc:
                o, _ = e.reset()
            np.testing.assert_array_equal(o, v_obs[k], err_msg=f"row {k} step {t}")
