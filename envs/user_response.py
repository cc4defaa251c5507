"""User response: retries of throttled demand, churn and acquisition.

Pure functions over batched arrays: ``N`` environments, ``T`` tiers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import power
from .params import Params


class ThrottleOutcome(NamedTuple):
    deferred_tokens: np.ndarray
    """(N, T) throttled demand that will retry later (joins the retry pool)."""
    lost_tokens: np.ndarray
    """(N, T) throttled demand given up for good."""


def split_throttled(p: Params, throttled_tokens: np.ndarray) -> ThrottleOutcome:
    """A tier's ``retry_share`` of throttled demand retries later; the rest is lost."""
    deferred = throttled_tokens * p.retry_share
    return ThrottleOutcome(deferred, throttled_tokens - deferred)


class UserState(NamedTuple):
    users: np.ndarray
    """(N, T) users (seats, organisations for API)."""
    frustration: np.ndarray
    """(N, T) remembered throttled-user share (exponential average, memory_h)."""
    latency_excess: np.ndarray
    """(N, T) remembered latency over target, (latency / target - 1)+ averaged."""


class UserStep(NamedTuple):
    state: UserState
    churned_users: np.ndarray
    new_users: np.ndarray


def user_step(p: Params, state: UserState, throttled_user_share: np.ndarray, latency_s: np.ndarray,
              failed_share: np.ndarray | None = None) -> UserStep:
    """Churn and acquisition for one step.

    Rationing-v1 passes ``failed_share`` (N, T), the share of the step's finished
    requests that failed (timed out or failed in a collapse): it adds to the
    throttled-user share (capped at 1) in the frustration memory, so a failed
    token frustrates at least as much as a throttled one (for which only the
    users at their quota count, a smaller share than the throttled tokens').

    churn hazard per step = base + throttle_sensitivity x frustration ** exponent
    + latency_sensitivity x latency_excess (all per step, capped at 0.5);
    new users per step = users x acquisition x max(0, 1 - frustration - latency_excess).
    An exponent > 1 makes paying tiers shrug off small, occasional limits but
    leave after repeated hard ones.
    """
    if failed_share is not None:
        throttled_user_share = np.minimum(throttled_user_share + failed_share, 1.0)
    k = p.memory_rate
    frustration = state.frustration + k * (throttled_user_share - state.frustration)
    excess = latency_s / p.latency_target_s - 1.0
    np.maximum(excess, 0.0, out=excess)
    np.minimum(excess, 10.0, out=excess)
    latency_excess = state.latency_excess + k * (excess - state.latency_excess)
    hazard = power(frustration, p.churn_throttle_exponent)
    hazard *= p.churn_throttle_step
    hazard += p.churn_base_step + p.churn_latency_step * latency_excess
    np.minimum(hazard, 0.5, out=hazard)
    churned = state.users * hazard
    quality = 1.0 - frustration - latency_excess
    np.maximum(quality, 0.0, out=quality)  # <= 1 since both terms are >= 0
    new = state.users * p.acquisition_step * quality
    users = state.users - churned + new
    return UserStep(UserState(users, frustration, latency_excess), churned, new)
