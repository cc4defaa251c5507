"""The model behaves as the brief says it should."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.params import demand_profile_table


def _run(scenario: str, action: float, steps: int, seed: int = 0, n: int = 4, overrides=None) -> dict[str, np.ndarray]:
    core = envs.RationingCore(scenario, n, overrides=overrides)
    core.reset(np.arange(n) + seed)
    out: dict[str, list] = {}
    for _ in range(steps):
        _, _, _, _, info = core.step(np.full((n, core.n_tiers), action, np.float32))
        for k, v in info.items():
            out.setdefault(k, []).append(np.array(v))
    return {k: np.stack(v) for k, v in out.items()}


def test_tighter_quotas_lower_latency_and_raise_throttling_and_churn() -> None:
    # Tuesday: start the episode on a weekday so the working-hours peak is included.
    tight = _run("peak-contention", -1.0, 96)
    loose = _run("peak-contention", +1.0, 96)
    w_lat = lambda r: (r["latency_s"] * r["served_tokens"]).sum() / r["served_tokens"].sum()  # noqa: E731
    assert w_lat(tight) < 0.5 * w_lat(loose)
    assert tight["throttled_tokens"].sum() > 2 * loose["throttled_tokens"].sum()
    assert tight["throttled_user_share"].mean() > loose["throttled_user_share"].mean()
    paying = slice(1, 6)
    assert tight["churned_users"][:, :, paying].sum() > loose["churned_users"][:, :, paying].sum()


def test_outage_lowers_capacity() -> None:
    base = _run("default", 0.0, 100 * 4, seed=3)
    out = _run("outage", 0.0, 100 * 4, seed=3)
    window = slice(61 * 4, 83 * 4)  # inside the 24 h outage from hour 60
    assert (out["provider_gpus"][window, :, 0] == 0).all()
    assert out["capacity_tokens"][window].mean() < 0.7 * base["capacity_tokens"][window].mean()
    after = slice(86 * 4, 100 * 4)  # degraded recovery
    assert out["capacity_tokens"][after].mean() < base["capacity_tokens"][after].mean()


def test_weekday_peak_demand_is_well_above_weekend_night() -> None:
    r = _run("default", 0.0, 7 * 96)
    fresh = r["fresh_demand_tokens"].sum(axis=(1, 2))
    wed_14 = fresh[2 * 96 + 14 * 4: 2 * 96 + 15 * 4].mean()
    sun_03 = fresh[6 * 96 + 3 * 4: 6 * 96 + 4 * 4].mean()
    assert wed_14 > 4 * sun_03


def test_agentic_requests_carry_10_to_100x_chat_tokens() -> None:
    r = _run("default", 0.0, 200)
    chat = envs.load_scenario("default").demand.chat_tokens_per_request
    ratio = r["agentic_tokens_per_request"] / chat
    assert ratio.min() >= 10 - 1e-3 and ratio.max() <= 100 + 1e-3
    assert np.median(ratio) < 40  # heavy-tailed: the median sits near the low end


def test_agentic_surge_grows_agentic_share_and_tokens() -> None:
    r = _run("agentic-surge", 0.0, 7 * 96)
    assert r["agentic_share"][-1].mean() > r["agentic_share"][0].mean() + 0.2
    assert r["fresh_demand_tokens"][-96:].sum() > 1.5 * r["fresh_demand_tokens"][:96].sum() / 1.0


def test_launch_spike_triples_subscriber_demand_at_launch() -> None:
    spike = _run("launch-spike", 0.0, 40 * 4, seed=5)
    base = _run("default", 0.0, 40 * 4, seed=5)
    at = slice(33 * 4, 34 * 4)
    ratio = spike["fresh_demand_tokens"][at, :, :5].sum() / base["fresh_demand_tokens"][at, :, :5].sum()
    assert 2.5 < ratio < 3.5


def _hourly(table: np.ndarray, steps_per_hour: int) -> np.ndarray:
    return table.reshape(-1, steps_per_hour).sum(axis=1)


@pytest.mark.parametrize("scenario", envs.available_scenarios())
def test_calibrated_demand_shape(scenario: str) -> None:
    """Subscribers: peak/trough 5-12x and weekend/weekday 0.25-0.5; API flatter (docs/calibration.md)."""
    sc = envs.load_scenario(scenario)
    table = demand_profile_table(sc)
    users_tokens = np.array([t.users * t.requests_per_user_day for t in sc.tiers])
    names = sc.tier_names
    cols = [names.index(n) for n in names if n != "api"]
    sub = table[:, cols] @ users_tokens[cols]
    sph = int(round(60 / sc.time.step_minutes))
    hourly = _hourly(sub, sph)
    weekday = hourly[: 5 * 24].reshape(5, 24).mean(axis=0)
    assert 5 <= weekday.max() / weekday.min() <= 12
    assert 0.25 <= hourly[5 * 24:].mean() / hourly[: 5 * 24].mean() <= 0.5
    api = _hourly(table[:, names.index("api")], sph)
    api_weekday = api[: 5 * 24].reshape(5, 24).mean(axis=0)
    assert 1.4 <= api_weekday.max() / api_weekday.min() <= 2.2
    assert 0.73 <= api[5 * 24:].mean() / api[: 5 * 24].mean() <= 0.89


def test_sustained_overload_collapses_the_service() -> None:
    r = _run("launch-spike", 1.0, 60 * 4, seed=1, overrides={"demand": {"events": [
        {"tiers": ["free", "pro", "max", "team", "enterprise", "api"], "start_h": 34, "multiplier": 8.0,
         "decay_h": 12}]}})
    assert r["collapsed"].sum() > 0
    collapsed = r["collapsed"] > 0
    assert (r["capacity_tokens"][collapsed] < r["capacity_tokens"][~collapsed].mean()).all()
