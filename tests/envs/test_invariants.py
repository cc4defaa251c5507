"""Invariants under random actions (hypothesis): finite, non-negative, conserved."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs

SCENARIOS = envs.available_scenarios()
_CORES: dict[str, envs.RationingCore] = {}


def _core(scenario: str) -> envs.RationingCore:
    if scenario not in _CORES:
        _CORES[scenario] = envs.RationingCore(scenario, num_envs=8, randomize=True)
    return _CORES[scenario]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(SCENARIOS),
    seed=st.integers(0, 2**62),
    action_seed=st.integers(0, 2**32 - 1),
    start=st.integers(0, 600),
    extreme=st.booleans(),
)
def test_invariants_hold_under_random_actions(scenario, seed, action_seed, start, extreme) -> None:
    core = _core(scenario)
    core.reset(np.arange(8, dtype=np.uint64) + np.uint64(seed % 2**62))
    rng = np.random.default_rng(action_seed)
    zero = np.zeros((8, core.n_tiers), np.float32)
    for _ in range(start % 97):  # reach a random point of the week quickly
        core.step(zero)
    for _ in range(40):
        if extreme:
            actions = rng.choice([-5.0, 5.0], size=(8, core.n_tiers)).astype(np.float32)
        else:
            actions = rng.uniform(-1, 1, (8, core.n_tiers)).astype(np.float32)
        queue_before = core.queue_tokens.copy()
        obs, reward, terminated, truncated, info = core.step(actions)
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
        for key, value in info.items():
            assert np.isfinite(value).all(), key
        for key in ("demand_tokens", "admitted_tokens", "served_tokens", "queue_tokens", "throttled_tokens",
                    "deferred_tokens", "lost_tokens", "timed_out_tokens", "users", "churned_users",
                    "latency_s", "capacity_tokens"):
            assert (info[key] >= 0).all(), key
        assert (core.retry_pool_tokens >= 0).all()
        assert (info["quota_multiplier"] >= core.params.quota_min * (1 - 1e-6)).all()
        assert (info["quota_multiplier"] <= core.params.quota_max * (1 + 1e-6)).all()
        served = info["served_tokens"].sum(axis=1)
        assert (served <= info["capacity_tokens"] * (1 + 1e-5) + 1.0).all()
        demand = info["demand_tokens"]
        split = info["admitted_tokens"] + info["deferred_tokens"] + info["lost_tokens"]
        np.testing.assert_allclose(split, demand, rtol=1e-5, atol=1.0)
        flow = info["served_tokens"] + info["timed_out_tokens"] + info["queue_tokens"]
        np.testing.assert_allclose(flow, queue_before + info["admitted_tokens"], rtol=1e-5, atol=1.0)
        assert ((info["latency_attainment"] >= 0) & (info["latency_attainment"] <= 1)).all()
        assert ((info["throttled_user_share"] >= 0) & (info["throttled_user_share"] <= 1)).all()
        low, high = core.params.obs_low, core.params.obs_high
        assert ((obs >= low) & (obs <= high)).all()
