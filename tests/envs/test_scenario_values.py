"""Scenario values: non-finite and unrepresentable numbers are refused, and every value the schema
accepts, up to its bounds, gives finite observations, rewards and info (hypothesis strategies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
from envs import ScenarioError

# (path in the overrides, low, high) of the numbers that scale demand, capacity, money and latency
BOUNDED = [
    (("tiers", "users"), 1.0, 1e12),
    (("tiers", "requests_per_user_day"), 1e-6, 1e6),
    (("tiers", "quota_tokens_per_user_hour"), 1e-6, 1e10),
    (("tiers", "latency_target_s"), 1e-3, 1e6),
    (("tiers", "price_usd_per_month"), 0.0, 1e6),
    (("tiers", "api_price_usd_per_mtok"), 0.0, 1e6),
    (("tiers", "priority_weight"), 1e-6, 1e6),
    (("tiers", "burst_rate_per_day"), 0.0, 1e4),
    (("capacity", "tokens_per_gpu_s"), 1e-3, 1e7),
    (("capacity", "variable_cost_usd_per_mtok"), 0.0, 1e6),
    (("providers", "contracted_gpus"), 0.01, 1e8),
    (("providers", "rent_usd_per_gpu_hour"), 0.0, 1e6),
    (("demand", "chat_tokens_per_request"), 1e-3, 1e7),
    (("reward", "latency_weight"), 0.0, 1e6),
    (("reward", "churn_weight"), 0.0, 1e6),
    (("reward", "scale_usd"), 1e-3, 1e15),
    (("serving", "base_latency_s"), 1e-3, 1e6),
    (("churn", "memory_h"), 1e-6, 1e6),
]


def _value(lo: float, hi: float) -> st.SearchStrategy[float]:
    edge = st.sampled_from([lo, hi])
    if lo <= 0:
        return st.one_of(edge, st.floats(0.0, hi))
    return st.one_of(edge, st.floats(math.log10(lo), math.log10(hi)).map(lambda e: float(10.0 ** e)))


def _overrides(values: dict[tuple[str, str], float]) -> dict:
    base = envs.load_scenario("default")
    out: dict = {"time": {"episode_days": 0.25}}
    tiers = [{"name": t.name} for t in base.tiers]
    providers = [{"name": p.name} for p in base.capacity.providers]
    for (section, key), v in values.items():
        if section == "tiers":
            for t in tiers:
                t[key] = v
        elif section == "providers":
            for p in providers:
                p[key] = v
        elif section == "churn":
            out.setdefault("tiers", tiers)
            for t in tiers:
                t.setdefault("churn", {})[key] = v
        elif section == "capacity":
            out.setdefault("capacity", {})[key] = v
        else:
            out.setdefault(section, {})[key] = v
    out["tiers"] = tiers
    out.setdefault("capacity", {})["providers"] = providers
    return out


scenario_values = st.fixed_dictionaries({path: _value(lo, hi) for path, lo, hi in BOUNDED})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=scenario_values, actions=st.sampled_from(["low", "high", "random"]))
def test_accepted_values_never_give_non_finite_numbers(values, actions) -> None:
    try:
        core = envs.RationingCore("default", 4, overrides=_overrides(values))
    except ScenarioError as exc:  # a cross-field rule; the message is one line
        assert "\n" not in str(exc)
        return
    obs = core.reset(np.arange(4, dtype=np.uint64))
    assert np.all(np.isfinite(obs))
    rng = np.random.default_rng(0)
    for _ in range(core.params.episode_steps):
        a = {"low": -np.ones((4, core.n_tiers)), "high": np.ones((4, core.n_tiers)),
             "random": rng.uniform(-1, 1, (4, core.n_tiers))}[actions].astype(np.float32)
        obs, reward, _, _, info = core.step(a)
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
        for key, value in info.items():
            assert np.all(np.isfinite(np.asarray(value, np.float64))), key


@pytest.mark.parametrize(("path", "value"), [
    (("tiers", "users"), math.inf), (("tiers", "users"), 1e39), (("tiers", "users"), 1e30),
    (("tiers", "users"), 1e-46), (("providers", "contracted_gpus"), math.inf),
    (("providers", "contracted_gpus"), 1e-46), (("tiers", "latency_target_s"), math.inf),
    (("capacity", "tokens_per_gpu_s"), 1e300), (("reward", "latency_weight"), math.inf),
    (("tiers", "users"), math.nan),
])
def test_non_finite_and_unrepresentable_values_are_refused(path, value) -> None:
    with pytest.raises(ScenarioError) as err:
        envs.load_scenario("default", _overrides({path: value}))
    assert path[1] in str(err.value) and "\n" not in str(err.value)


@given(st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=30, deadline=None)
def test_any_float_for_users_is_refused_or_finite(value) -> None:
    try:
        sc = envs.load_scenario("default", {"tiers": [{"name": "free", "users": value}]})
    except ScenarioError:
        return
    assert math.isfinite(sc.tiers[0].users) and 1.0 <= sc.tiers[0].users <= 1e12
