"""Tiered token demand: diurnal/weekly profiles, chat vs agentic, bursts, retries.

Pure functions over batched arrays: ``N`` environments, ``T`` tiers; tokens are
blended input + output tokens per step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import power
from .params import Params


class DemandStep(NamedTuple):
    fresh_tokens: np.ndarray
    """(N, T) new demand this step."""
    requests: np.ndarray
    """(N, T) new requests this step."""
    agentic_tokens_per_request: np.ndarray
    """(N, T) mean tokens of an agentic request this step."""
    agentic_share: np.ndarray
    """(N, T) share of requests that are agentic."""
    burst_excess: np.ndarray
    """(N, T) random-burst state: demand multiplier minus 1."""


def agentic_multiplier(p: Params, u: np.ndarray) -> np.ndarray:
    """Truncated-Pareto draw in [agentic_min, agentic_max] by inverse CDF of ``u``."""
    lo, hi, a = p.agentic_min, p.agentic_max, p.agentic_alpha
    tail = 1.0 - (lo / hi) ** a
    x = power(1.0 - tail * u, -1.0 / a)
    x *= lo
    return x


def fresh_demand(
    p: Params,
    users: np.ndarray,
    t: np.ndarray,
    week_step: np.ndarray,
    burst_excess: np.ndarray,
    u_noise: np.ndarray,
    u_agentic: np.ndarray,
    u_burst: np.ndarray,
    demand_scale: np.ndarray,
    agentic_scale: np.ndarray,
) -> DemandStep:
    """New token demand per tier for one step.

    requests = users x requests/user/step x profile(week step) x noise x burst x
    scheduled events x demand_scale; tokens/request mixes chat and agentic
    (agentic = chat x a truncated-Pareto multiplier, growing over the episode).
    """
    excess = burst_excess * p.burst_decay
    excess += (u_burst < p.burst_prob) * p.burst_excess
    level = p.profile_table[week_step] * p.event_table[np.minimum(t, p.episode_steps - 1)]
    level *= p.noise_low + p.noise_span * u_noise
    level *= 1.0 + excess
    level *= p.requests_per_user_step
    level *= demand_scale[:, None]
    requests = users * level

    tf = t.astype(np.float32)[:, None]
    share = p.agentic_share + p.agentic_share_growth_per_step * tf
    share *= agentic_scale[:, None]
    np.minimum(share, 0.95, out=share)  # >= 0 by construction
    agentic_tokens = agentic_multiplier(p, u_agentic)
    agentic_tokens *= p.chat_tokens_per_request * np.exp(p.agentic_tokens_growth_per_step * tf)
    tokens_per_request = agentic_tokens - p.chat_tokens_per_request
    tokens_per_request *= share
    tokens_per_request += p.chat_tokens_per_request
    return DemandStep(requests * tokens_per_request, requests, agentic_tokens, share, excess)


class RetryFlows(NamedTuple):
    returning_tokens: np.ndarray
    """(N, T) throttled demand from earlier steps that comes back now."""
    abandoned_tokens: np.ndarray
    """(N, T) retry-pool demand that gives up this step."""
    pool_tokens: np.ndarray
    """(N, T) retry pool after this step's return and abandonment."""


def retry_flows(p: Params, pool_tokens: np.ndarray) -> RetryFlows:
    """Move part of the retry pool back into demand and let part of it give up."""
    returning = pool_tokens * p.retry_return_share
    abandoned = (pool_tokens - returning) * p.retry_abandon_share
    return RetryFlows(returning, abandoned, pool_tokens - returning - abandoned)
