"""Part two of the compiled step (:mod:`envs.fused_step`): latency attainment, SLA credits, reward, observation.

One numba loop over env rows, run after numpy evaluated the step's ``exp`` and ``log`` in place
on the arguments :func:`envs.fused_step.step_rows` wrote; the same float32 operations in the
same order as :meth:`envs.core.RationingCore.step` (tests/envs/test_fused.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import fused_params as _P
from .fused_rows import JIT, ONE, ZERO, row_dot, row_sum, sla_share

F32 = np.float32


@njit(**JIT)
def finish_rows(fp, t, collapse_rem, users_a, queue_a, sla_s, sla_f, sla_w, exp_out, log_out, info, obs, reward):
    """Part two, every row, after numpy evaluated ``exp_out`` and ``log_out`` in place
    (:func:`envs.fused_step.step_rows`):
    latency attainment, SLA credits, reward, observation."""
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds, growth_t, clock = fp
    n, T = users_a.shape
    P = prov.shape[1]
    v1 = ci[_P.I_VERSION] >= 1
    nt = 26 if v1 else 21
    bp = nt * T
    bs = bp + 2 * P
    late = np.empty(T, F32)
    credit = np.empty(T, F32)
    start_week, spw = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK]
    avail_below, avail_inc, att_below, att_inc = sla[0, 0], sla[1, 0], sla[0, 1], sla[1, 1]
    late_pen_w = tier[_P.T_LATE_PEN]
    for i in range(n):
        for j in range(T):
            info[i, 11 * T + j] = ONE - exp_out[i, j]
            served = info[i, 7 * T + j]
            late[j] = served * (ONE - info[i, 11 * T + j])
            info[i, 12 * T + j] = late[j]
            if v1:
                s = sla_s[i, j] + served
                f = sla_f[i, j] + info[i, 21 * T + j]
                w = sla_w[i, j] + (served - late[j])
                sla_s[i, j], sla_f[i, j], sla_w[i, j] = s, f, w
                d = s + ONE
                info[i, 24 * T + j] = d / (d + f) if f != ZERO else ONE  # running availability
                info[i, 25 * T + j] = min((w + ONE) / d, ONE)  # running latency attainment
        if v1:
            for j in range(T):
                share = max(sla_share(info[i, 24 * T + j], avail_below, avail_inc, j),
                            sla_share(info[i, 25 * T + j], att_below, att_inc, j))
                credit[j] = share * info[i, 17 * T + j]
                info[i, 23 * T + j] = credit[j]
        lat_pen = row_dot(late, late_pen_w)
        r = c[_P.S_MARGIN_W] * info[i, bs + 10] - c[_P.S_LATENCY_W] * lat_pen - c[_P.S_CHURN_W] * info[i, bs + 12]
        if v1:
            credit_total = row_sum(credit)
            r = r - c[_P.S_MARGIN_W] * credit_total
            info[i, bs + 16] = credit_total
        r *= c[_P.S_INV_SCALE]
        reward[i] = r
        info[i, bs + 11], info[i, bs + 13] = lat_pen, r
        # observation (envs.observation.build_v1, build)
        nws = (start_week + t[i]) % spw
        for k in range(4):
            obs[i, k] = clock[nws, k]
        for k in range(P):
            obs[i, 4 + k] = info[i, bp + k] / prov[_P.P_CONTRACTED, k]
        obs[i, 4 + P] = info[i, bs + 4] / c[_P.S_CONTRACTED_SUM]
        obs[i, 5 + P] = info[i, bs + 1]
        obs[i, 6 + P] = ONE if collapse_rem[i] > 0 else ZERO
        b = 7 + P
        for j in range(T):
            obs[i, b + j] = info[i, j] / tier[_P.T_MEAN_DEMAND, j]
            obs[i, b + T + j] = queue_a[i, j] / c[_P.S_NOMINAL_CAP]
            obs[i, b + 2 * T + j] = log_out[i, j]
            obs[i, b + 3 * T + j] = info[i, 13 * T + j]
            obs[i, b + 4 * T + j] = users_a[i, j] / tier[_P.T_USERS0, j]
            obs[i, b + 5 * T + j] = log_out[i, T + j]
        if v1:
            b = 7 + P + 6 * T
            obs[i, b] = info[i, bs + 17] * c[_P.S_INV_CONTRACTED]
            for j in range(T):
                obs[i, b + 1 + j] = info[i, 24 * T + j]
                obs[i, b + 1 + T + j] = info[i, 25 * T + j]
        for k in range(obs.shape[1]):
            obs[i, k] = min(max(obs[i, k], bounds[0, k]), bounds[1, k])
    return ZERO
