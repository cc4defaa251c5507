"""The compiled step's memory layout: rows inner (:mod:`envs.fused_step`).

The kernels loop over env rows innermost, so every per-tier array is (T, N), per-provider (P, N),
the burst pipeline (D, N) and the info buffer (W, N): each loop over rows reads and writes
contiguous memory and compiles to SIMD. The core keeps this state as (N, T) transposed views of
(T, N) arrays (:func:`to_lanes_layout`), so its (N, T) reads, writes and resets work as before.
"""

from __future__ import annotations

import numpy as np

from .capacity import BurstState, ProviderState
from .contracts import SLAState
from .user_response import UserState


def to_lanes_layout(core) -> None:
    """Rebind ``core``'s (N, K) state arrays to transposed views of (K, N) copies (same values)."""
    def moved(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.T).T

    core.providers = ProviderState(*(moved(a) for a in core.providers))
    core.burst = BurstState(core.burst.gpus, moved(core.burst.pipeline))
    core.users = UserState(*(moved(a) for a in core.users))
    core.sla = SLAState(*(moved(a) for a in core.sla))
    core.quota_multiplier, core.queue_tokens, core.retry_pool_tokens, core.burst_excess = (
        moved(a) for a in (core.quota_multiplier, core.queue_tokens, core.retry_pool_tokens, core.burst_excess))


def lanes(core) -> tuple:
    """The core's state as the kernels take it, rows inner: outage, degraded (P, N), pipeline (D, N),
    users, frustration, latency excess, quota, queue, retry pool, burst excess, SLA served, failed,
    within (T, N): views of the core's state arrays (cached while those arrays stay the same).

    State replaced by a C-ordered (N, K) array (a copy, an assignment) is moved back to the
    rows-inner layout here, once (:func:`to_lanes_layout`).
    """
    prov, burst, users = core.providers, core.burst, core.users
    state = (prov.outage_remaining_steps, prov.degraded_share, burst.pipeline, users.users, users.frustration,
             users.latency_excess, core.quota_multiplier, core.queue_tokens, core.retry_pool_tokens,
             core.burst_excess, *core.sla)
    cached = core.__dict__.get("_fused_lanes")
    if cached is not None and all(a is b for a, b in zip(cached[0], state)):
        return cached[1]
    if not all(a.T.flags.c_contiguous for a in state):
        to_lanes_layout(core)
        return lanes(core)
    out = tuple(a.T for a in state)
    core._fused_lanes = (state, out)
    return out
