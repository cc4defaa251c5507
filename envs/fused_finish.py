"""Part two of the compiled step (:mod:`envs.fused_step`): latency attainment, SLA credits, reward, observation.

One numba loop over env rows, run after numpy evaluated the step's ``exp`` and ``log`` in place
on the arguments :func:`envs.fused_step.step_rows` wrote; the same float32 operations in the
same order as :meth:`envs.core.RationingCore.step` (tests/envs/test_fused.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import fused_params as _P
from .fused_rows import JIT, ONE, ZERO, lane_dot, lane_sum, sla_share

F32 = np.float32


@njit(**JIT)
def finish_rows(fp, t, collapse_rem, users_a, queue_a, sla_s, sla_f, sla_w, exp_out, log_out, info, obs, reward):
    """Part two, every row, after numpy evaluated ``exp_out`` and ``log_out`` in place
    (:func:`envs.fused_step.step_rows`; the same rows-inner layout: (T, N) state, (W, N) ``info``):
    latency attainment, SLA credits, reward, observation ``obs`` (N, obs_size)."""
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds, growth_t, clock = fp
    T, n = users_a.shape
    P = prov.shape[1]
    v1 = ci[_P.I_VERSION] >= 1
    nt = 26 if v1 else 21
    bp = nt * T
    bs = bp + 2 * P
    acc = np.empty((4, n), F32)
    lat_pen = np.empty(n, F32)
    credit_total = np.empty(n, F32)
    start_week, spw = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK]
    avail_below, avail_inc, att_below, att_inc = sla[0, 0], sla[1, 0], sla[0, 1], sla[1, 1]
    for j in range(T):
        for i in range(n):
            attainment = ONE - exp_out[j, i]
            info[11 * T + j, i] = attainment
            served = info[7 * T + j, i]
            late = served * (ONE - attainment)
            info[12 * T + j, i] = late
            if v1:
                s = sla_s[j, i] + served
                f = sla_f[j, i] + info[21 * T + j, i]
                w = sla_w[j, i] + (served - late)
                sla_s[j, i], sla_f[j, i], sla_w[j, i] = s, f, w
                d = s + ONE
                info[24 * T + j, i] = d / (d + f) if f != ZERO else ONE  # running availability
                info[25 * T + j, i] = min((w + ONE) / d, ONE)  # running latency attainment
    if v1:
        for j in range(T):
            for i in range(n):
                share = max(sla_share(info[24 * T + j, i], avail_below, avail_inc, j),
                            sla_share(info[25 * T + j, i], att_below, att_inc, j))
                info[23 * T + j, i] = share * info[17 * T + j, i]
        lane_sum(info[23 * T:24 * T], acc, credit_total)
    lane_dot(info[12 * T:13 * T], tier[_P.T_LATE_PEN], acc, lat_pen)
    margin_w, latency_w, churn_w, inv_scale = c[_P.S_MARGIN_W], c[_P.S_LATENCY_W], c[_P.S_CHURN_W], c[_P.S_INV_SCALE]
    for i in range(n):
        r = margin_w * info[bs + 10, i] - latency_w * lat_pen[i] - churn_w * info[bs + 12, i]
        if v1:
            r = r - margin_w * credit_total[i]
            info[bs + 16, i] = credit_total[i]
        r *= inv_scale
        reward[i] = r
        info[bs + 11, i], info[bs + 13, i] = lat_pen[i], r
    # observation (envs.observation.build_v1, build), clipped to its bounds as it is written
    low, high = bounds[0], bounds[1]
    for i in range(n):
        nws = (start_week + t[i]) % spw
        for k in range(4):
            obs[i, k] = min(max(clock[nws, k], low[k]), high[k])
    for k in range(P):
        contracted = prov[_P.P_CONTRACTED, k]
        for i in range(n):
            obs[i, 4 + k] = min(max(info[bp + k, i] / contracted, low[4 + k]), high[4 + k])
    k = 4 + P
    for i in range(n):
        obs[i, k] = min(max(info[bs + 4, i] / c[_P.S_CONTRACTED_SUM], low[k]), high[k])
        obs[i, k + 1] = min(max(info[bs + 1, i], low[k + 1]), high[k + 1])
        obs[i, k + 2] = min(max(ONE if collapse_rem[i] > 0 else ZERO, low[k + 2]), high[k + 2])
    b = 7 + P
    nominal = c[_P.S_NOMINAL_CAP]
    for j in range(T):
        mean_demand, users0 = tier[_P.T_MEAN_DEMAND, j], tier[_P.T_USERS0, j]
        k0, k1, k2, k3, k4, k5 = b + j, b + T + j, b + 2 * T + j, b + 3 * T + j, b + 4 * T + j, b + 5 * T + j
        for i in range(n):
            obs[i, k0] = min(max(info[j, i] / mean_demand, low[k0]), high[k0])
            obs[i, k1] = min(max(queue_a[j, i] / nominal, low[k1]), high[k1])
            obs[i, k2] = min(max(log_out[j, i], low[k2]), high[k2])
            obs[i, k3] = min(max(info[13 * T + j, i], low[k3]), high[k3])
            obs[i, k4] = min(max(users_a[j, i] / users0, low[k4]), high[k4])
            obs[i, k5] = min(max(log_out[T + j, i], low[k5]), high[k5])
    if v1:
        b = 7 + P + 6 * T
        for i in range(n):
            obs[i, b] = min(max(info[bs + 17, i] * c[_P.S_INV_CONTRACTED], low[b]), high[b])
        for j in range(T):
            k0, k1 = b + 1 + j, b + 1 + T + j
            for i in range(n):
                obs[i, k0] = min(max(info[24 * T + j, i], low[k0]), high[k0])
                obs[i, k1] = min(max(info[25 * T + j, i], low[k1]), high[k1])
    return ZERO
