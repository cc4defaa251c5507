"""Capacity and burst GPUs of the compiled step (:func:`envs.fused_step.step_rows`), every row, rows inner.

Mirrors :func:`envs.capacity.provider_step` and :func:`envs.capacity.burst_step` /
:func:`envs.capacity.burst_policy_step` in their float32 order; inlined into the kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import fused_params as _P
from .fused_rows import INLINE, ONE, ZERO, lane_sum

F32 = np.float32


@njit(**INLINE)
def supply_lanes(fp, t, ws, es, scales, outage, degraded, burst_gpus, pipeline, last_util, actions, u, billed,
                 acc, total, info, bp):
    """Providers' reclaim, outages and available GPUs (``info`` rows ``bp`` ..), ``billed`` (P, N) GPUs, and
    the burst pipeline (D, N) and ``burst_gpus`` (N,) after this step's arrivals and orders.

    ``ws``/``es`` (N,) are each row's step of the week and of the episode table, ``u`` (draws, N) its
    uniforms; ``acc`` (4, N) and ``total`` (N,) are scratch."""
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds, growth_t, clock = fp
    T = tier.shape[1]
    P, n = outage.shape
    D = pipeline.shape[0]
    # capacity (envs.capacity.provider_step)
    for k in range(P):
        low, span, prob = prov[_P.P_NOISE_LOW, k], prov[_P.P_NOISE_SPAN, k], prov[_P.P_OUTAGE_PROB, k]
        out_low, out_span, recovery = prov[_P.P_OUT_LOW, k], prov[_P.P_OUT_SPAN, k], prov[_P.P_RECOVERY, k]
        degraded_k, contracted = prov[_P.P_DEGRADED, k], prov[_P.P_CONTRACTED, k]
        for i in range(n):
            r = week[ws[i], T + k] * (low + span * u[k, i])
            r *= scales[2, i]
            reclaim = min(r, F32(0.95))
            rem = outage[k, i]
            starting = rem <= ZERO and u[P + k, i] < prob
            ending = rem > ZERO and rem <= ONE
            duration = out_low + out_span * u[2 * P + k, i]
            rem = max(duration, ONE) if starting else max(rem - ONE, ZERO)
            deg = degraded_k if ending else degraded[k, i] * recovery
            outage[k, i] = rem
            degraded[k, i] = deg
            b = (contracted * scales[1, i]) * (ONE - reclaim)
            billed[k, i] = b
            a = b * (ONE - deg)
            a = a if rem <= ZERO else a * ZERO
            info[bp + k, i] = a * episode[es[i], T + k]
            info[bp + P + k, i] = reclaim
    # burst (envs.capacity.burst_step / burst_policy_step)
    if ci[_P.I_BURST_ON]:
        for i in range(n):
            slot = t[i] % D
            burst_gpus[i] = burst_gpus[i] + pipeline[slot, i]
            pipeline[slot, i] = ZERO
        lane_sum(pipeline, acc, total)  # on order
        step_g, burst_max = c[_P.S_BURST_STEP], c[_P.S_BURST_MAX]
        policy = ci[_P.I_BURST_POLICY]
        buy, release = c[_P.S_BURST_BUY], c[_P.S_BURST_RELEASE]
        for i in range(n):
            g = burst_gpus[i]
            room = max(burst_max - g - total[i], ZERO)
            slot = t[i] % D
            if policy:
                ab = min(max(actions[i, T], -ONE), ONE)
                pipeline[slot, i] = min(step_g * max(ab, ZERO), room)
                g = g - min(step_g * max(-ab, ZERO), g)
            else:
                lu = last_util[i]
                pipeline[slot, i] = min(step_g, room) if lu > buy else min(step_g, room) * ZERO
                g = g - (min(step_g, g) if lu < release else min(step_g, g) * ZERO)
            burst_gpus[i] = g
