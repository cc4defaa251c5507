"""Contested capacity: rented GPUs that providers reclaim, outages, burst capacity.

All functions are pure over batched arrays: ``N`` environments, ``P`` providers.
Shares are in [0, 1]; GPU counts are float32.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import row_sum
from .params import Params


class ProviderState(NamedTuple):
    outage_remaining_steps: np.ndarray
    """(N, P) steps left in a random outage (0 = up)."""
    degraded_share: np.ndarray
    """(N, P) share of capacity still missing after an outage (decays)."""


class ProviderStep(NamedTuple):
    state: ProviderState
    available_gpus: np.ndarray
    """(N, P) GPUs serving this step."""
    billed_gpus: np.ndarray
    """(N, P) GPUs paid for this step (contract minus what the provider reclaimed)."""
    reclaimed_share: np.ndarray
    """(N, P) share of the contract reclaimed by the provider for its own work."""


def provider_step(
    p: Params,
    state: ProviderState,
    t: np.ndarray,
    week_step: np.ndarray,
    u_reclaim: np.ndarray,
    u_outage: np.ndarray,
    u_duration: np.ndarray,
    capacity_scale: np.ndarray,
    reclaim_scale: np.ndarray,
) -> ProviderStep:
    """Advance provider capacity by one step.

    ``t`` (N,) step in episode, ``week_step`` (N,) step in week, ``u_*`` (N, P)
    uniforms, ``*_scale`` (N,) per-episode randomisation multipliers.
    """
    reclaim = p.reclaim_table[week_step] * (p.reclaim_noise_low + p.reclaim_noise_span * u_reclaim)
    reclaim *= reclaim_scale[:, None]
    np.minimum(reclaim, 0.95, out=reclaim)  # >= 0 by construction

    remaining = state.outage_remaining_steps
    up_before = remaining <= 0.0
    starting = up_before & (u_outage < p.outage_start_prob)
    duration = p.outage_steps_low + (p.outage_steps_high - p.outage_steps_low) * u_duration
    ending = (remaining > 0.0) & (remaining <= 1.0)
    remaining = np.where(starting, np.maximum(duration, 1.0), np.maximum(remaining - 1.0, 0.0))
    degraded = np.where(ending, p.degraded_share, state.degraded_share * p.recovery_decay)
    up = remaining <= 0.0

    billed = (p.contracted_gpus * capacity_scale[:, None]) * (1.0 - reclaim)
    available = billed * (1.0 - degraded)
    available *= up
    available *= p.scheduled_availability[np.minimum(t, p.episode_steps - 1)]
    return ProviderStep(ProviderState(remaining, degraded), available, billed, reclaim)


class BurstState(NamedTuple):
    gpus: np.ndarray
    """(N,) burst GPUs serving now."""
    pipeline: np.ndarray
    """(N, D) GPUs ordered and not yet arrived; slot ``t % D`` arrives at step t."""


def burst_step(p: Params, state: BurstState, t: np.ndarray, last_utilisation: np.ndarray) -> BurstState:
    """The scenario's fixed burst-buying rule.

    Orders ``burst.step_gpus`` when last step's utilisation exceeded
    ``buy_above_utilisation`` (up to ``max_gpus`` including orders in flight);
    releases the same amount when it was under ``release_below_utilisation``.
    Orders arrive ``delay_steps`` later.
    """
    if p.burst_max_gpus <= 0.0:
        return state
    rows = np.arange(t.shape[0])
    slot = t % p.burst_delay_steps
    pipeline = state.pipeline.copy()
    gpus = state.gpus + pipeline[rows, slot]
    pipeline[rows, slot] = 0.0
    in_flight = row_sum(pipeline)
    room = np.maximum(p.burst_max_gpus - gpus - in_flight, 0.0)
    order = np.minimum(p.burst_step_gpus, room) * (last_utilisation > p.burst_buy_above)
    release = np.minimum(p.burst_step_gpus, gpus) * (last_utilisation < p.burst_release_below)
    pipeline[rows, slot] = order
    return BurstState(gpus - release, pipeline)


def burst_policy_step(p: Params, state: BurstState, t: np.ndarray, burst_action: np.ndarray) -> BurstState:
    """Rationing-v1 with ``action.burst: policy``: the policy orders or releases burst GPUs.

    ``burst_action`` (N,) in [-1, 1] (clipped): ``a > 0`` orders ``a x burst.step_gpus``
    (up to ``max_gpus`` including orders in flight), arriving ``delay_steps`` later;
    ``a < 0`` releases ``-a x step_gpus`` of the GPUs serving now. Same lead time and
    premium rent as the fixed rule, whose decision is ``a = +1`` above
    ``buy_above_utilisation``, ``-1`` under ``release_below_utilisation``, else 0.
    """
    if p.burst_max_gpus <= 0.0:
        return state
    a = np.minimum(np.maximum(burst_action, -1.0), 1.0)
    rows = np.arange(t.shape[0])
    slot = t % p.burst_delay_steps
    pipeline = state.pipeline.copy()
    gpus = state.gpus + pipeline[rows, slot]
    pipeline[rows, slot] = 0.0
    room = np.maximum(p.burst_max_gpus - gpus - row_sum(pipeline), 0.0)
    order = np.minimum(p.burst_step_gpus * np.maximum(a, 0.0), room)
    release = np.minimum(p.burst_step_gpus * np.maximum(-a, 0.0), gpus)
    pipeline[rows, slot] = order
    return BurstState(gpus - release, pipeline)


def capacity_tokens(p: Params, available_gpus: np.ndarray, burst_gpus: np.ndarray) -> np.ndarray:
    """(N,) tokens the fleet can serve this step when serving normally (the core applies a collapse)."""
    return (row_sum(available_gpus) + burst_gpus) * p.tokens_per_gpu_step
