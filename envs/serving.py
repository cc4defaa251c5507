"""Serving and latency: per-tier queues, weighted fair sharing, latency, collapse.

Pure functions over batched arrays: ``N`` environments, ``T`` tiers.

**Batching interference (Rationing-v1, :func:`serve_v1`).** Continuous batching
puts every admitted request in the same batch, so per-token latency of *every*
tier grows with the total load, whatever its priority. The curve: with batch
occupancy ``U = min(total backlog / capacity, 1)`` the engine runs a batch of
``b = 1 + (B - 1) U`` (``B = serving.max_batch``, 64) and a step's time grows
linearly with the batch (memory-bound decode: weights read once per step, KV cache
per sequence), ``t(b) = t(1) (1 + k (b - 1))``. docs/calibration.md ("Capacity and
cost", latency cost of batching): batch 64 gives about 14x the tokens/s of batch 1
(``serving.full_batch_speedup``), so ``t(64) / t(1) = 64 / 14 = 4.6`` (about 4x).
The scenario's ``base_latency_s`` is the latency at full occupancy (the operating
point ``tokens_per_gpu_s`` is measured at), so the service-time factor is::

    batching(U) = t(b) / t(B) = floor + (1 - floor) U,   floor = speedup / B = 0.22

i.e. an idle service answers in 22% of ``base_latency_s`` and every tier slows
toward ``base_latency_s`` as admitted load (any tier's) fills the batch. Priority
queueing stays on top of it: v1 latency of tier i is
``base_latency_s x batching(U) / (1 - u_i) + wait_i`` (u_i: load of tiers of
priority >= i, as in v0). v1 also fails work in a collapse: each collapsed step a
``collapse_failed_share`` of the backlog left unserved errors out (failed
requests, with the timed-out tokens: ``info["failed_tokens"]``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import row_matmul, row_sum
from .params import Params


def weighted_fair_share(backlog: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Weighted max-min fair split of ``capacity`` (N,) over ``backlog`` (N, T).

    Tier i gets ``min(backlog_i, w_i x lambda)`` with lambda chosen so that the
    total equals ``min(capacity, sum backlog)``: a share a tier does not use is
    lent to the others in proportion to their weights. Closed form by sorting the
    backlog/weight ratios (no loop over tiers).
    """
    n, t = backlog.shape
    ratio = backlog / weights
    order = np.argsort(ratio, axis=1)
    rows = np.arange(n)[:, None]
    r_sorted = ratio[rows, order]
    w_sorted = weights[order]
    cum_w = np.cumsum(w_sorted, axis=1)
    cum_b = np.cumsum(r_sorted * w_sorted, axis=1)  # backlog of the k lowest-ratio tiers
    w_total = cum_w[:, -1:]
    # capacity needed if lambda equals the k-th ratio: those tiers in full, the rest at w x ratio
    served_if = cum_b + r_sorted * (w_total - cum_w)
    full = (served_if <= capacity[:, None]).sum(axis=1)  # tiers served in full
    # padding with a zero column makes "none in full" index 0 of the cumulative sums
    pad = np.zeros((n, 1), dtype=backlog.dtype)
    b_done = np.concatenate([pad, cum_b], axis=1)[rows[:, 0], full]
    w_done = np.concatenate([pad, cum_w], axis=1)[rows[:, 0], full]
    lam = (capacity - b_done) / np.maximum(w_total[:, 0] - w_done, 1e-12)
    # lam is +inf-like when every tier fits: min() then returns the backlog
    served = np.minimum(backlog, weights * lam[:, None])
    np.maximum(served, 0.0, out=served)
    return served


def fair_share_rows(backlog: np.ndarray, weights: np.ndarray, capacity: np.ndarray, total: np.ndarray) -> np.ndarray:
    """:func:`weighted_fair_share` computed only for the rows whose ``total`` backlog exceeds capacity.

    Rows where everything fits are served in full (no sort); each row's result
    depends on that row alone, whichever rows are in the batch (batched = single).
    """
    fits = total <= capacity
    if fits.all():
        return backlog.copy()
    if not fits.any():
        return weighted_fair_share(backlog, weights, capacity)
    served = backlog.copy()
    rows = np.flatnonzero(~fits)
    served[rows] = weighted_fair_share(backlog[rows], weights, capacity[rows])
    return served


class ServingStep(NamedTuple):
    served_tokens: np.ndarray
    """(N, T) tokens served this step."""
    queue_tokens: np.ndarray
    """(N, T) admitted tokens still waiting after this step."""
    timed_out_tokens: np.ndarray
    """(N, T) queued tokens that timed out this step."""
    latency_s: np.ndarray
    """(N, T) mean latency of this step's work, seconds."""
    utilisation: np.ndarray
    """(N,) served / capacity."""
    pressure: np.ndarray
    """(N,) backlog / capacity (before collapse); > collapse_pressure is overload."""


def serve(
    p: Params, queue_tokens: np.ndarray, admitted_tokens: np.ndarray, capacity_tokens: np.ndarray,
    uncollapsed_capacity_tokens: np.ndarray,
) -> ServingStep:
    """Serve queued + admitted work with weighted fair sharing and compute latency.

    Latency of tier i = base latency x 1 / (1 - u_i) (M/M/1 contention, where u_i
    is the utilisation by tiers of priority >= i, capped at
    ``max_contention_utilisation``) + the wait of the tokens left queued
    (``step seconds x queue_i / served_i``), capped at ``max_latency_s``.
    """
    backlog = queue_tokens + admitted_tokens
    cap = np.maximum(capacity_tokens, 1.0)
    served = weighted_fair_share(backlog, p.priority_weight, capacity_tokens)
    left = backlog - served
    np.maximum(left, 0.0, out=left)
    timed_out = left * p.queue_timeout_share
    queue = left - timed_out

    # load of tiers with priority >= i (row-wise, batch-independent: see envs.arrays)
    u_tier = row_matmul(served, p.priority_matrix)
    u_tier /= cap[:, None]
    np.minimum(u_tier, p.max_contention_utilisation, out=u_tier)
    wait = p.dt_s * left / np.maximum(served, 1e-6 * cap[:, None])
    latency = p.base_latency_s / (1.0 - u_tier) + wait
    np.minimum(latency, p.max_latency_s, out=latency)
    util = row_sum(served) / cap
    pressure = row_sum(backlog) / np.maximum(uncollapsed_capacity_tokens, 1.0)
    return ServingStep(served, queue, timed_out, latency, util, pressure)


class ServingStepV1(NamedTuple):
    base: ServingStep
    collapse_failed_tokens: np.ndarray
    """(N, T) unserved tokens that failed in a collapse this step."""
    failed_tokens: np.ndarray
    """(N, T) timed out + failed in a collapse (the timed-out array itself when nothing collapsed)."""
    occupancy: np.ndarray
    """(N,) batch occupancy U (total backlog / capacity, at most 1)."""


def batching_factor(p: Params, occupancy: np.ndarray) -> np.ndarray:
    """(N,) service-time factor of the batching curve (module docstring), 1 at full occupancy."""
    return p.batch_latency_floor + (1.0 - p.batch_latency_floor) * occupancy


def serve_v1(
    p: Params, queue_tokens: np.ndarray, admitted_tokens: np.ndarray, capacity_tokens: np.ndarray,
    uncollapsed_capacity_tokens: np.ndarray, collapsed: np.ndarray,
) -> ServingStepV1:
    """:func:`serve` with batching interference and collapse failures (module docstring)."""
    backlog = queue_tokens + admitted_tokens
    cap = np.maximum(capacity_tokens, 1.0)
    total = row_sum(backlog)
    served = fair_share_rows(backlog, p.priority_weight, capacity_tokens, total)
    left = backlog - served
    np.maximum(left, 0.0, out=left)
    timed_out = left * p.queue_timeout_share
    waiting = left - timed_out
    if collapsed.any():
        failed = waiting * np.where(collapsed, p.collapse_failed_share, 0.0).astype(waiting.dtype)[:, None]
        queue = waiting - failed
        all_failed = timed_out + failed
        still = left - failed  # tokens that waited (timed out or queued on)
    else:
        failed = np.zeros_like(waiting)
        queue = waiting
        all_failed = timed_out
        still = left

    u_tier = row_matmul(served, p.priority_matrix)
    u_tier /= cap[:, None]
    np.minimum(u_tier, p.max_contention_utilisation, out=u_tier)
    occupancy = np.minimum(total / cap, 1.0)
    wait = p.dt_s * still / np.maximum(served, 1e-6 * cap[:, None])
    latency = p.base_latency_s / (1.0 - u_tier)
    latency *= batching_factor(p, occupancy).astype(latency.dtype)[:, None]
    latency += wait
    np.minimum(latency, p.max_latency_s, out=latency)
    util = row_sum(served) / cap
    pressure = total / np.maximum(uncollapsed_capacity_tokens, 1.0)
    return ServingStepV1(ServingStep(served, queue, timed_out, latency, util, pressure), failed, all_failed,
                         occupancy)


class CollapseState(NamedTuple):
    overload_steps: np.ndarray
    """(N,) consecutive overloaded steps."""
    collapse_remaining_steps: np.ndarray
    """(N,) steps left in a collapse (0 = serving normally)."""


def collapse_step(p: Params, state: CollapseState, pressure: np.ndarray) -> CollapseState:
    """Sustained overload (pressure > collapse_pressure for collapse_after steps) collapses the service."""
    overload = pressure > p.collapse_pressure
    count = (state.overload_steps + 1) * overload
    remaining = np.maximum(state.collapse_remaining_steps - 1, 0)
    start = (count >= p.collapse_after_steps) & (remaining <= 0)
    remaining += p.collapse_duration_steps * start
    count *= ~start
    return CollapseState(count, remaining)


def latency_attainment(p: Params, latency_s: np.ndarray) -> np.ndarray:
    """(N, T) share of served tokens within target, latency exponential with the step's mean."""
    return 1.0 - np.exp(-p.latency_target_s / np.maximum(latency_s, 1e-6))
