"""Compile a validated :class:`~envs.scenario.Scenario` into flat numpy arrays.

Everything the hot path needs is converted here once: per-step rates, per-tier
vectors of shape ``(T,)``, per-provider vectors of shape ``(P,)`` and lookup
tables indexed by step-of-week or step-of-episode. The step functions never touch
the pydantic objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contracts import Schedules, compile_schedules
from .observation_layout import bounds
from .scenario import Scenario

F32 = np.float32
DAYS_PER_MONTH = 30.4375
"""Average month length used to prorate monthly prices and rates, days."""


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=F32)


@dataclass(frozen=True)
class Params:
    """Arrays compiled from a scenario. Shapes: ``T`` tiers, ``P`` providers."""

    scenario: Scenario
    tier_names: tuple[str, ...]
    provider_names: tuple[str, ...]
    n_tiers: int
    n_providers: int
    # time
    dt_h: float
    dt_s: float
    steps_per_day: int
    steps_per_week: int
    episode_steps: int
    start_week_step: int
    # capacity, (P,) unless noted
    contracted_gpus: np.ndarray
    rent_usd_per_gpu_step: np.ndarray
    reclaim_table: np.ndarray
    """(steps_per_week, P) mean reclaimed share before noise."""
    reclaim_noise_low: np.ndarray
    reclaim_noise_span: np.ndarray
    """Reclaimed share is multiplied by ``low + span x u`` (u uniform): +/- reclaim_noise."""
    outage_start_prob: np.ndarray
    outage_steps_low: np.ndarray
    outage_steps_high: np.ndarray
    recovery_decay: np.ndarray
    degraded_share: np.ndarray
    scheduled_availability: np.ndarray
    """(episode_steps, P) availability multiplier of scheduled outages."""
    tokens_per_gpu_step: float
    variable_cost_usd_per_token: float
    burst_max_gpus: float
    burst_step_gpus: float
    burst_rent_usd_per_gpu_step: float
    burst_delay_steps: int
    burst_buy_above: float
    burst_release_below: float
    # demand, (T,) unless noted
    profile_table: np.ndarray
    """(steps_per_week, T) relative load, mean 1 over a week for each tier."""
    requests_per_user_step: np.ndarray
    chat_tokens_per_request: float
    agentic_share: np.ndarray
    agentic_share_growth_per_step: float
    agentic_min: float
    agentic_max: float
    agentic_alpha: float
    agentic_tokens_growth_per_step: float
    usage_alpha: float
    noise_low: float
    noise_span: float
    """Demand noise multiplier is ``low + span x u``: uniform with the scenario's CV."""
    burst_prob: np.ndarray
    burst_excess: np.ndarray
    burst_decay: np.ndarray
    event_table: np.ndarray
    """(episode_steps, T) scheduled demand multiplier."""
    retry_return_share: float
    retry_abandon_share: float
    mean_demand_tokens_step: np.ndarray
    """Week-average demand per step at the starting users, tokens (observation scale)."""
    # tiers
    users0: np.ndarray
    price_usd_per_user_step: np.ndarray
    api_price_usd_per_token: np.ndarray
    quota_tokens_per_user_step: np.ndarray
    priority_weight: np.ndarray
    priority_matrix: np.ndarray
    """(T, T): M[j, i] = 1 if tier j has priority >= tier i (preemptive priority load)."""
    latency_target_s: np.ndarray
    late_penalty_usd_per_token: np.ndarray
    lifetime_value_usd: np.ndarray
    retry_share: np.ndarray
    churn_base_step: np.ndarray
    churn_throttle_step: np.ndarray
    churn_throttle_exponent: np.ndarray
    churn_latency_step: np.ndarray
    memory_rate: np.ndarray
    acquisition_step: np.ndarray
    # serving
    base_latency_s: float
    max_contention_utilisation: float
    max_latency_s: float
    queue_timeout_share: float
    collapse_pressure: float
    collapse_after_steps: int
    collapse_duration_steps: int
    collapse_capacity_share: float
    nominal_capacity_tokens_step: float
    # action
    log_quota_step: float
    quota_min: float
    quota_max: float
    # reward
    margin_weight: float
    latency_weight: float
    churn_weight: float
    reward_scale_usd: float
    # randomisation, (4, 2): demand, capacity, reclaim, agentic
    randomization: np.ndarray
    # observation bounds, (obs_size,) each
    obs_low: np.ndarray
    obs_high: np.ndarray
    # version and the Rationing-v1 world (unused by v0)
    env_version: int = 0
    burst_policy: bool = False
    """v1 with ``action.burst: policy``: the last action entry orders/releases burst GPUs."""
    batch_latency_floor: float = 1.0
    """v1: latency of batch 1 relative to a full batch, ``full_batch_speedup / max_batch``."""
    collapse_failed_share: float = 0.0
    sla: Schedules | None = None
    """v1: the tiers' SLA credit schedules (:mod:`envs.contracts`)."""

    @property
    def action_size(self) -> int:
        return self.n_tiers + int(self.burst_policy)


def _hour_shape(hourly: list[float], hours: np.ndarray) -> np.ndarray:
    """Periodic linear interpolation of a 24-value hourly table at fractional hours."""
    table = np.asarray(list(hourly) + [hourly[0]], dtype=np.float64)
    h = np.mod(hours, 24.0)
    return np.interp(h, np.arange(25.0), table)


def demand_profile_table(sc: Scenario) -> np.ndarray:
    """(steps_per_week, T) relative load per tier from profiles and the time-zone mix.

    Week step 0 is Monday 00:00 of the scenario clock. Each time zone sees the
    weekday hourly table, scaled by the profile's weekend factor on its local
    Saturday and Sunday. Normalised to mean 1 over the week.
    """
    spd = sc.steps_per_day
    steps = np.arange(7 * spd)
    hours = steps * sc.time.step_minutes / 60.0 + 0.5 * sc.time.step_minutes / 60.0
    tz_total = sum(z.share for z in sc.demand.timezones)
    by_profile: dict[str, np.ndarray] = {}
    for name, prof in sc.demand.profiles.items():
        load = np.zeros(len(steps))
        for z in sc.demand.timezones:
            local_h = hours + z.offset_h
            day = np.floor_divide(local_h, 24.0).astype(int) % 7
            weekend = np.where(day >= 5, prof.weekend_factor, 1.0)
            load += (z.share / tz_total) * _hour_shape(prof.hourly, local_h) * weekend
        mean = load.mean()
        by_profile[name] = load / mean if mean > 0 else np.ones_like(load)
    return _f32(np.stack([by_profile[t.profile] for t in sc.tiers], axis=1))


def _reclaim_table(sc: Scenario) -> np.ndarray:
    spd = sc.steps_per_day
    steps = np.arange(7 * spd)
    hours = steps * sc.time.step_minutes / 60.0
    hod = np.mod(hours, 24.0)
    weekend = (steps // spd) >= 5
    cols = []
    for p in sc.capacity.providers:
        d = np.abs(hod - p.reclaim_peak_hour)
        d = np.minimum(d, 24.0 - d)
        bump = np.exp(-0.5 * (d / p.reclaim_width_h) ** 2)
        bump = np.where(weekend, bump * p.reclaim_weekend_factor, bump)
        cols.append(p.reclaim_base_share + p.reclaim_peak_share * bump)
    return _f32(np.stack(cols, axis=1))


def _scheduled_availability(sc: Scenario) -> np.ndarray:
    n = sc.episode_steps
    hours = np.arange(n) * sc.time.step_minutes / 60.0
    names = [p.name for p in sc.capacity.providers]
    table = np.ones((n, len(names)))
    for ev in sc.capacity.events:
        j = names.index(ev.provider)
        end = ev.start_h + ev.duration_h
        down = (hours >= ev.start_h) & (hours < end)
        after = hours >= end
        missing = ev.degraded_share * np.exp(-(hours - end) / (24.0 * ev.recovery_days))
        avail = np.where(down, 0.0, np.where(after, 1.0 - missing, 1.0))
        table[:, j] *= avail
    return _f32(table)


def _event_table(sc: Scenario) -> np.ndarray:
    n = sc.episode_steps
    hours = np.arange(n) * sc.time.step_minutes / 60.0
    names = sc.tier_names
    table = np.ones((n, len(names)))
    for ev in sc.demand.events:
        active = hours >= ev.start_h
        mult = 1.0 + (ev.multiplier - 1.0) * np.exp(-(hours - ev.start_h) / ev.decay_h)
        mult = np.where(active, mult, 1.0)
        for name in ev.tiers:
            table[:, names.index(name)] *= mult
    return _f32(table)


ENV_VERSIONS = (0, 1)


def compile_params(sc: Scenario, version: int = 0) -> Params:
    """Convert a scenario into the arrays used by the batched step function of env ``version``."""
    if version not in ENV_VERSIONS:
        raise ValueError(f"version = {version!r}: must be one of {list(ENV_VERSIONS)}")
    if version == 0 and sc.action.burst != "rule":
        raise ValueError(f"scenario {sc.name!r}: action.burst = {sc.action.burst!r} needs Rationing-v1 (version 1)")
    dt_h = sc.time.step_minutes / 60.0
    dt_day = dt_h / 24.0
    dt_month = dt_day / DAYS_PER_MONTH
    spd = sc.steps_per_day
    tiers = sc.tiers
    provs = sc.capacity.providers
    burst = sc.capacity.burst
    agentic = sc.demand.agentic

    profile = demand_profile_table(sc)
    req_step = _f32([t.requests_per_user_day / spd for t in tiers])
    share0 = _f32([t.agentic_share for t in tiers])
    a, lo, hi = agentic.tail_alpha, agentic.multiplier_min, agentic.multiplier_max
    if hi > lo:
        # mean of a Pareto(alpha, lo) truncated at hi
        if abs(a - 1.0) < 1e-9:
            mean_mult = lo * np.log(hi / lo) / (1.0 - lo / hi)
        else:
            mean_mult = (a * lo**a / (1.0 - (lo / hi) ** a)) * (hi ** (1 - a) - lo ** (1 - a)) / (1 - a)
    else:
        mean_mult = lo
    tokens_per_req = sc.demand.chat_tokens_per_request * (1.0 - share0 + share0 * mean_mult)
    users0 = _f32([t.users for t in tiers])
    mean_demand = users0 * req_step * tokens_per_req

    weights = _f32([t.priority_weight for t in tiers])
    prio = (weights[:, None] >= weights[None, :]).astype(F32)

    memory = _f32([1.0 - np.exp(-dt_h / t.churn.memory_h) for t in tiers])
    contracted = _f32([p.contracted_gpus for p in provs])
    step_minutes = sc.time.step_minutes
    rz = sc.randomization
    obs_low, obs_high = bounds(len(provs), len(tiers), sc.action.quota_min, sc.action.quota_max, version)
    return Params(
        scenario=sc,
        tier_names=tuple(sc.tier_names),
        provider_names=tuple(p.name for p in provs),
        n_tiers=len(tiers),
        n_providers=len(provs),
        dt_h=dt_h,
        dt_s=dt_h * 3600.0,
        steps_per_day=spd,
        steps_per_week=7 * spd,
        episode_steps=sc.episode_steps,
        start_week_step=sc.time.start_weekday * spd,
        contracted_gpus=contracted,
        rent_usd_per_gpu_step=_f32([p.rent_usd_per_gpu_hour * dt_h for p in provs]),
        reclaim_table=_reclaim_table(sc),
        reclaim_noise_low=_f32([1.0 - p.reclaim_noise for p in provs]),
        reclaim_noise_span=_f32([2.0 * p.reclaim_noise for p in provs]),
        outage_start_prob=_f32([min(1.0, p.outage_rate_per_week * dt_day / 7.0) for p in provs]),
        outage_steps_low=_f32([p.outage_duration_h[0] / dt_h for p in provs]),
        outage_steps_high=_f32([p.outage_duration_h[1] / dt_h for p in provs]),
        recovery_decay=_f32([np.exp(-dt_day / p.recovery_days) for p in provs]),
        degraded_share=_f32([p.degraded_share for p in provs]),
        scheduled_availability=_scheduled_availability(sc),
        tokens_per_gpu_step=float(sc.capacity.tokens_per_gpu_s * dt_h * 3600.0),
        variable_cost_usd_per_token=float(sc.capacity.variable_cost_usd_per_mtok / 1e6),
        burst_max_gpus=float(burst.max_gpus),
        burst_step_gpus=float(burst.step_gpus),
        burst_rent_usd_per_gpu_step=float(burst.rent_usd_per_gpu_hour * dt_h),
        burst_delay_steps=max(1, int(round(burst.delay_h * 60.0 / step_minutes))),
        burst_buy_above=float(burst.buy_above_utilisation),
        burst_release_below=float(burst.release_below_utilisation),
        profile_table=profile,
        requests_per_user_step=req_step,
        chat_tokens_per_request=float(sc.demand.chat_tokens_per_request),
        agentic_share=share0,
        agentic_share_growth_per_step=float(agentic.share_growth_per_day * dt_day),
        agentic_min=float(lo),
        agentic_max=float(hi),
        agentic_alpha=float(a),
        agentic_tokens_growth_per_step=float(np.log1p(agentic.tokens_growth_per_day) * dt_day),
        usage_alpha=float(sc.demand.usage_tail_alpha),
        noise_low=float(1.0 - sc.demand.noise_cv * np.sqrt(3.0)),
        noise_span=float(2.0 * sc.demand.noise_cv * np.sqrt(3.0)),
        burst_prob=_f32([min(1.0, t.burst_rate_per_day * dt_day) for t in tiers]),
        burst_excess=_f32([t.burst_multiplier - 1.0 for t in tiers]),
        burst_decay=_f32([np.exp(-dt_h / t.burst_decay_h) for t in tiers]),
        event_table=_event_table(sc),
        retry_return_share=float(1.0 - (1.0 - sc.demand.retry_return_per_hour) ** dt_h),
        retry_abandon_share=float(1.0 - (1.0 - sc.demand.retry_abandon_per_hour) ** dt_h),
        mean_demand_tokens_step=_f32(mean_demand),
        users0=users0,
        price_usd_per_user_step=_f32([t.price_usd_per_month * dt_month for t in tiers]),
        api_price_usd_per_token=_f32([t.api_price_usd_per_mtok / 1e6 for t in tiers]),
        quota_tokens_per_user_step=_f32([t.quota_tokens_per_user_hour * dt_h for t in tiers]),
        priority_weight=weights,
        priority_matrix=prio,
        latency_target_s=_f32([t.latency_target_s for t in tiers]),
        late_penalty_usd_per_token=_f32([t.late_penalty_usd_per_mtok / 1e6 for t in tiers]),
        lifetime_value_usd=_f32([t.lifetime_value_usd for t in tiers]),
        retry_share=_f32([t.retry_share for t in tiers]),
        churn_base_step=_f32([t.churn.base_per_month * dt_month for t in tiers]),
        churn_throttle_step=_f32([t.churn.throttle_sensitivity_per_month * dt_month for t in tiers]),
        churn_throttle_exponent=_f32([t.churn.throttle_exponent for t in tiers]),
        churn_latency_step=_f32([t.churn.latency_sensitivity_per_month * dt_month for t in tiers]),
        memory_rate=memory,
        acquisition_step=_f32([t.churn.acquisition_per_month * dt_month for t in tiers]),
        base_latency_s=float(sc.serving.base_latency_s),
        max_contention_utilisation=float(sc.serving.max_contention_utilisation),
        max_latency_s=float(sc.serving.max_latency_s),
        queue_timeout_share=float(sc.serving.queue_timeout_per_step),
        collapse_pressure=float(sc.serving.collapse_pressure),
        collapse_after_steps=max(1, int(round(sc.serving.collapse_after_h / dt_h))),
        collapse_duration_steps=max(1, int(round(sc.serving.collapse_duration_h / dt_h))),
        collapse_capacity_share=float(sc.serving.collapse_capacity_share),
        nominal_capacity_tokens_step=float(contracted.sum() * sc.capacity.tokens_per_gpu_s * dt_h * 3600.0),
        log_quota_step=float(np.log(sc.action.quota_step_factor)),
        quota_min=float(sc.action.quota_min),
        quota_max=float(sc.action.quota_max),
        margin_weight=float(sc.reward.margin_weight),
        latency_weight=float(sc.reward.latency_weight),
        churn_weight=float(sc.reward.churn_weight),
        reward_scale_usd=float(sc.reward.scale_usd),
        randomization=_f32([rz.demand_scale, rz.capacity_scale, rz.reclaim_scale, rz.agentic_scale]),
        obs_low=obs_low,
        obs_high=obs_high,
        env_version=version,
        burst_policy=version >= 1 and sc.action.burst == "policy",
        batch_latency_floor=float(sc.serving.full_batch_speedup / sc.serving.max_batch) if version >= 1 else 1.0,
        collapse_failed_share=float(sc.serving.collapse_failed_share) if version >= 1 else 0.0,
        sla=compile_schedules([t.sla for t in tiers]) if version >= 1 else None,
    )
