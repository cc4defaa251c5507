"""The compiled :class:`~envs.params.Params` packed into a few arrays for the compiled step (:mod:`envs.fused_step`).

NumPy evaluates ``float32_array op python_float`` in float32 with the Python float
rounded to float32 first (NEP 50 weak scalars); numba would promote to float64.
So every scalar the numpy model functions combine with float32 arrays is stored
here as the float32 it becomes there, and every scalar expression the numpy code
evaluates in Python (float64) is evaluated here the same way before rounding
(e.g. ``1.0 - (lo / hi) ** a``). The index constants name each entry.

Arrays: ``tier`` (K, T) per-tier constants, ``prov`` (K, P) per-provider constants,
``f32`` and ``f64`` scalars, ``ints``, ``week`` (steps_per_week, T + P) the demand
profile and reclaim tables side by side, ``episode`` (episode_steps, T + P) the
event and scheduled-availability tables, ``priority`` (T, T), ``sla`` (2, 2, K, T)
below/increment per SLO kind, ``obs_bounds`` (2, obs_size), ``growth`` (episode_steps + 1,)
the agentic tokens-per-request growth factor per step index (numpy's ``exp``, so the
compiled step needs no ``exp`` of its own), ``clock`` (steps_per_week, 4) the
observation's hour and week sines and cosines per step of the week.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .fused_rows import clock_table
from .params import Params

F32 = np.float32

# tier rows
(T_REQ, T_AGENTIC_SHARE, T_BURST_PROB, T_BURST_EXCESS, T_BURST_DECAY, T_USERS0, T_PRICE, T_API_PRICE,
 T_QUOTA_Z, T_WEIGHT, T_TARGET, T_NEG_TARGET, T_LATE_PEN, T_LTV, T_RETRY, T_CHURN_BASE, T_CHURN_THR,
 T_CHURN_EXP, T_CHURN_LAT, T_MEMORY, T_ACQ, T_MEAN_DEMAND) = range(22)
# provider rows
(P_CONTRACTED, P_RENT, P_NOISE_LOW, P_NOISE_SPAN, P_OUTAGE_PROB, P_OUT_LOW, P_OUT_SPAN, P_RECOVERY,
 P_DEGRADED) = range(9)
# float32 scalars
(S_LOG_QUOTA, S_QUOTA_MIN, S_QUOTA_MAX, S_TOKENS_PER_GPU, S_COLLAPSE_CAP, S_BURST_MAX, S_BURST_STEP,
 S_BURST_BUY, S_BURST_RELEASE, S_BURST_RENT, S_NOISE_LOW, S_NOISE_SPAN, S_SHARE_GROWTH, S_AGENTIC_TAIL,
 S_AGENTIC_EXP, S_AGENTIC_LO, S_TOKENS_GROWTH, S_CHAT, S_RETURN, S_ABANDON, S_THR_EXP, S_SHARE_EXP,
 S_TIMEOUT, S_MAX_CONT, S_DT_S, S_BASE_LAT, S_BATCH_FLOOR, S_BATCH_SLOPE, S_MAX_LAT, S_COLLAPSE_FAILED,
 S_COLLAPSE_PRESSURE, S_VAR_COST, S_MARGIN_W, S_LATENCY_W, S_CHURN_W, S_INV_SCALE, S_CONTRACTED_SUM,
 S_INV_CONTRACTED, S_NOMINAL_CAP) = range(39)
# float64 scalars
F_HOUR_ANGLE, F_WEEK_ANGLE, F_DT_H = range(3)
# ints
(I_START_WEEK, I_STEPS_PER_WEEK, I_EPISODE_STEPS, I_BURST_DELAY, I_COLLAPSE_AFTER, I_COLLAPSE_DURATION,
 I_VERSION, I_BURST_POLICY, I_BURST_ON, I_NOMINAL_CAP_DIV) = range(10)


class FusedParams(NamedTuple):
    tier: np.ndarray
    prov: np.ndarray
    f32: np.ndarray
    f64: np.ndarray
    ints: np.ndarray
    week: np.ndarray
    episode: np.ndarray
    priority: np.ndarray
    sla: np.ndarray
    obs_bounds: np.ndarray
    growth: np.ndarray
    clock: np.ndarray


def fusable(p: Params) -> bool:
    """Whether the compiled step reproduces numpy's row sums (``envs.arrays``) for these sizes.

    NumPy's ``einsum`` row sums accumulate in 4 lanes for rows of up to 15 entries
    (the compiled step mirrors that order); longer rows keep the numpy step.
    """
    return max(p.n_tiers, p.n_providers, p.burst_delay_steps) <= 15


def fuse(p: Params) -> FusedParams:
    """Pack ``p`` (any version) for :func:`envs.fused_step.step_rows`."""
    f = float
    tier = np.stack([
        p.requests_per_user_step, p.agentic_share, p.burst_prob, p.burst_excess, p.burst_decay, p.users0,
        p.price_usd_per_user_step, p.api_price_usd_per_token,
        p.quota_tokens_per_user_step / (p.usage_alpha - 1.0),  # as envs.quota.admit computes it
        p.priority_weight, p.latency_target_s, -p.latency_target_s, p.late_penalty_usd_per_token,
        p.lifetime_value_usd, p.retry_share, p.churn_base_step, p.churn_throttle_step, p.churn_throttle_exponent,
        p.churn_latency_step, p.memory_rate, p.acquisition_step, p.mean_demand_tokens_step,
    ]).astype(F32)
    prov = np.stack([
        p.contracted_gpus, p.rent_usd_per_gpu_step, p.reclaim_noise_low, p.reclaim_noise_span, p.outage_start_prob,
        p.outage_steps_low, p.outage_steps_high - p.outage_steps_low, p.recovery_decay, p.degraded_share,
    ]).astype(F32)
    lo, hi, a = p.agentic_min, p.agentic_max, p.agentic_alpha
    contracted_sum = p.contracted_gpus.sum()
    scalars = [
        p.log_quota_step, p.quota_min, p.quota_max, p.tokens_per_gpu_step, p.collapse_capacity_share,
        p.burst_max_gpus, p.burst_step_gpus, p.burst_buy_above, p.burst_release_below, p.burst_rent_usd_per_gpu_step,
        p.noise_low, p.noise_span, p.agentic_share_growth_per_step, 1.0 - (lo / hi) ** a, -1.0 / a, lo,
        p.agentic_tokens_growth_per_step, p.chat_tokens_per_request, p.retry_return_share, p.retry_abandon_share,
        1.0 - p.usage_alpha, -p.usage_alpha, p.queue_timeout_share, p.max_contention_utilisation, p.dt_s,
        p.base_latency_s, p.batch_latency_floor, 1.0 - p.batch_latency_floor, p.max_latency_s,
        p.collapse_failed_share, p.collapse_pressure, p.variable_cost_usd_per_token, p.margin_weight,
        p.latency_weight, p.churn_weight, 1.0 / p.reward_scale_usd, contracted_sum,
        1.0 / f(contracted_sum), p.nominal_capacity_tokens_step,
    ]
    f64 = np.asarray([2.0 * np.pi / p.steps_per_day, 2.0 * np.pi / p.steps_per_week, p.dt_h], np.float64)
    ints = np.asarray([
        p.start_week_step, p.steps_per_week, p.episode_steps, p.burst_delay_steps, p.collapse_after_steps,
        p.collapse_duration_steps, p.env_version, int(p.burst_policy), int(p.burst_max_gpus > 0.0), 0,
    ], np.int64)
    T = p.n_tiers
    if p.sla is not None:
        sla = np.stack([p.sla.below, p.sla.increment]).astype(F32)
    else:
        sla = np.full((2, 2, 1, T), -1.0, F32)
        sla[1] = 0.0
    return FusedParams(
        tier=np.ascontiguousarray(tier), prov=np.ascontiguousarray(prov),
        f32=np.asarray([F32(x) for x in scalars], F32), f64=f64, ints=ints,
        week=np.ascontiguousarray(np.concatenate([p.profile_table, p.reclaim_table], axis=1), F32),
        episode=np.ascontiguousarray(np.concatenate([p.event_table, p.scheduled_availability], axis=1), F32),
        priority=np.ascontiguousarray(p.priority_matrix, F32), sla=np.ascontiguousarray(sla),
        obs_bounds=np.ascontiguousarray(np.stack([p.obs_low, p.obs_high]), F32),
        growth=growth_table(p, p.episode_steps + 1),
        clock=clock_table(f64, p.steps_per_week),
    )


def growth_table(p: Params, length: int) -> np.ndarray:
    """(length,) agentic tokens-per-request growth at step index 0..length-1, as :func:`envs.demand.fresh_demand`
    computes it (``exp(growth_per_step x float32(t))`` in numpy)."""
    return np.exp(p.agentic_tokens_growth_per_step * np.arange(length).astype(F32))
