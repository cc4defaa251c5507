"""The compiled step: :meth:`envs.core.RationingCore.step` as one numba loop over env rows.

Why one fused kernel: at N = 1 the numpy step is ~250 small numpy calls (its time is
call overhead), at large N it is memory traffic of ~150 (N, T) temporaries. One
compiled call per step, each row computed start to end in registers and small
scratch arrays, removes both. The model stays in its modules (the numpy functions
of :mod:`envs.capacity`, :mod:`envs.demand`, ... are the reference and the
documentation); this kernel follows :meth:`RationingCore.step` line by line, with
the per-row helpers of :mod:`envs.fused_rows`, in the same float32 order.

The row helpers are inlined by numba (``inline="always"``), and every per-row view is made
once per call, not per row (a view costs two atomic reference-count updates).
Part two (after numpy's ``exp``/``log``) is :func:`envs.fused_finish.finish_rows`. numba's
on-disk cache keys on a kernel's own file only; :func:`envs.kernel_cache.drop_stale` drops the
kernels' caches at import when any of the files they are built from changed.

State arrays are updated in place; ``info`` is a fresh (N, W) buffer per step whose
column blocks are the info keys (:func:`envs.info_keys.info_layout`).

**Same numbers.** Sums, products, the sort and every comparison follow numpy's float32
order exactly; ``exp`` and ``log`` are numpy's own (evaluated between the kernels, see
:func:`step`); powers are :func:`envs.fused_rows.power32`, the operations of
:func:`envs.arrays.power` that the numpy step uses. tests/envs/test_fused.py checks the two
steps are equal bit for bit over whole episodes of every scenario.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import fused_params as fp_
from .fused_finish import finish_rows
from .fused_rows import (
    JIT,
    ONE,
    ZERO,
    clipped_log_quota,
    collapse_row,
    fair_share,
    half_step_magnitude,
    half_step_power32,
    half_step_power_from_root,
    is_half_step32,
    power32,
    row_dot,
    row_sum,
    row_sum_at,
    uniforms,
)
from .kernel_cache import drop_stale
from .quota import nan_action_error

F32 = np.float32
_P = fp_

N_TIER_KEYS = (21, 26)
"""Per-tier info blocks of v0 and v1 (``TIER_INFO_KEYS`` and ``+ V1_TIER_INFO_KEYS`` order)."""


@njit(**JIT)
def step_rows(fp, t, keys, scales, outage, degraded, burst_gpus, pipeline, overload, collapse_rem,
              users_a, frustration_a, latency_excess_a, quota_a, queue_a, retry_pool_a, burst_excess_a, last_util,
              actions, quota_factor, exp_in, log_in, info):
    """Part one of a step, every row: up to latency and users (writes ``info`` and the state).

    ``quota_factor`` (N, T) is ``exp(log_quota_step x clipped action)`` (numpy's, see :func:`step`).
    Writes the arguments of the step's other ``exp`` and ``log`` for numpy to evaluate in place:
    ``exp_in`` (N, T) ``-target / max(latency, 1e-6)`` (:func:`envs.serving.latency_attainment`),
    ``log_in`` (N, 2T) ``max(latency, 1e-3) / target`` and the quota multiplier (the observation).

    Returns -1, or before changing anything: ``row x width + column`` of the first NaN action,
    or -2 when a row's step index is past the ``growth`` table (the caller extends it).
    """
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds, growth_t, clock = fp
    n, T = users_a.shape
    A = actions.shape[1]
    for i in range(n):  # refuse NaN actions before any state changes
        if t[i] >= growth_t.shape[0]:
            return np.int64(-2)
        for j in range(A):
            if np.isnan(actions[i, j]):
                return np.int64(i * A + j)
    P = outage.shape[1]
    D = pipeline.shape[1]
    v1 = ci[_P.I_VERSION] >= 1
    nt = 26 if v1 else 21
    bp = nt * T  # provider blocks
    bs = bp + 2 * P  # scalars
    u = np.empty(3 * P + 3 * T, F32)
    reclaim = np.empty(P, F32)
    billed = np.empty(P, F32)
    avail = np.empty(P, F32)
    backlog = np.empty(T, F32)
    served = np.empty(T, F32)
    ratio = np.empty(T, F32)
    order = np.empty(T, np.int64)
    lat = np.empty(T, F32)
    tmp = np.empty(T, F32)
    revenue = np.empty(T, F32)
    churned = np.empty(T, F32)
    agentic = np.empty(T, F32)
    zs = np.empty(T, F32)
    thr_power = np.empty(T, F32)
    churn_power = np.empty(T, F32)
    contention = np.empty(T, F32)
    start_week, spw, ep_steps = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK], ci[_P.I_EPISODE_STEPS]
    # row views made once: a view made per row costs two reference-count updates
    weights, rent_w, ltv = tier[_P.T_WEIGHT], prov[_P.P_RENT], tier[_P.T_LTV]
    thr_exp, share_exp = c[_P.S_THR_EXP], c[_P.S_SHARE_EXP]
    half_step_admission = is_half_step32(thr_exp) and is_half_step32(share_exp)
    half_step_churn = True
    churn_nonnegative = True  # then no churn power needs its reciprocal: the division is skipped
    for j in range(T):
        half_step_churn = half_step_churn and is_half_step32(tier[_P.T_CHURN_EXP, j])
        churn_nonnegative = churn_nonnegative and tier[_P.T_CHURN_EXP, j] >= ZERO
    for i in range(n):
        ti = t[i]
        ws = (start_week + ti) % spw
        es = min(ti, ep_steps - 1)
        uniforms(keys[i], ti, u)
        collapsed = collapse_rem[i] > 0
        # capacity (envs.capacity.provider_step)
        cap_scale = scales[1, i]
        for k in range(P):
            r = week[ws, T + k] * (prov[_P.P_NOISE_LOW, k] + prov[_P.P_NOISE_SPAN, k] * u[k])
            r *= scales[2, i]
            reclaim[k] = min(r, F32(0.95))
            rem = outage[i, k]
            starting = rem <= ZERO and u[P + k] < prov[_P.P_OUTAGE_PROB, k]
            ending = rem > ZERO and rem <= ONE
            if starting:
                duration = prov[_P.P_OUT_LOW, k] + prov[_P.P_OUT_SPAN, k] * u[2 * P + k]
                rem = max(duration, ONE)
            else:
                rem = max(rem - ONE, ZERO)
            deg = prov[_P.P_DEGRADED, k] if ending else degraded[i, k] * prov[_P.P_RECOVERY, k]
            outage[i, k] = rem
            degraded[i, k] = deg
            billed[k] = (prov[_P.P_CONTRACTED, k] * cap_scale) * (ONE - reclaim[k])
            a = billed[k] * (ONE - deg)
            a = a if rem <= ZERO else a * ZERO
            avail[k] = a * episode[es, T + k]
        # burst (envs.capacity.burst_step / burst_policy_step)
        g = burst_gpus[i]
        if ci[_P.I_BURST_ON]:
            slot = ti % D
            g = g + pipeline[i, slot]
            pipeline[i, slot] = ZERO
            step_g = c[_P.S_BURST_STEP]
            if ci[_P.I_BURST_POLICY]:
                ab = min(max(actions[i, T], -ONE), ONE)
                room = max(c[_P.S_BURST_MAX] - g - row_sum_at(pipeline, i), ZERO)
                pipeline[i, slot] = min(step_g * max(ab, ZERO), room)
                g = g - min(step_g * max(-ab, ZERO), g)
            else:
                room = max(c[_P.S_BURST_MAX] - g - row_sum_at(pipeline, i), ZERO)
                lu = last_util[i]
                pipeline[i, slot] = min(step_g, room) if lu > c[_P.S_BURST_BUY] else min(step_g, room) * ZERO
                g = g - (min(step_g, g) if lu < c[_P.S_BURST_RELEASE] else min(step_g, g) * ZERO)
            burst_gpus[i] = g
        uncollapsed = (row_sum(avail) + g) * c[_P.S_TOKENS_PER_GPU]
        cap = uncollapsed * (c[_P.S_COLLAPSE_CAP] if collapsed else ONE)
        # quota, demand, retries, admission (envs.quota, envs.demand, envs.user_response.split_throttled)
        tf = F32(ti)
        growth = growth_t[ti]
        q_min, q_max = c[_P.S_QUOTA_MIN], c[_P.S_QUOTA_MAX]
        # passes over the tiers (agentic powers; demand and z; admission powers; the rest) so that
        # the tiers' long latency chains (powf; division, sqrt, division) overlap instead of queueing
        for j in range(T):
            at = power32(ONE - c[_P.S_AGENTIC_TAIL] * u[3 * P + T + j], c[_P.S_AGENTIC_EXP])
            agentic[j] = at
        for j in range(T):
            q = min(max(quota_factor[i, j] * quota_a[i, j], q_min), q_max)  # envs.quota.apply_action
            quota_a[i, j] = q
            ex = burst_excess_a[i, j] * tier[_P.T_BURST_DECAY, j]
            if u[3 * P + 2 * T + j] < tier[_P.T_BURST_PROB, j]:
                ex += tier[_P.T_BURST_EXCESS, j]
            burst_excess_a[i, j] = ex
            level = week[ws, j] * episode[es, j]
            level *= c[_P.S_NOISE_LOW] + c[_P.S_NOISE_SPAN] * u[3 * P + j]
            level *= ONE + ex
            level *= tier[_P.T_REQ, j]
            level *= scales[0, i]
            us = users_a[i, j]
            requests = us * level
            share = tier[_P.T_AGENTIC_SHARE, j] + c[_P.S_SHARE_GROWTH] * tf
            share *= scales[3, i]
            share = min(share, F32(0.95))
            at = agentic[j] * c[_P.S_AGENTIC_LO]
            at *= c[_P.S_CHAT] * growth
            tpr = at - c[_P.S_CHAT]
            tpr *= share
            tpr += c[_P.S_CHAT]
            fresh = requests * tpr
            pool = retry_pool_a[i, j]
            returning = pool * c[_P.S_RETURN]
            abandoned = (pool - returning) * c[_P.S_ABANDON]
            demand = fresh + returning
            z = q * us
            z *= tier[_P.T_QUOTA_Z, j]
            z /= max(demand, F32(1e-3))
            z += ONE
            zs[j] = z
            retry_pool_a[i, j] = pool - returning - abandoned  # + deferred, below
            info[i, j], info[i, T + j], info[i, 2 * T + j] = demand, fresh, returning
            info[i, 18 * T + j], info[i, 19 * T + j], info[i, 20 * T + j] = q, share, at
        if half_step_admission:
            for j in range(T):  # one sqrt per tier for both powers, loop vectorised
                z64 = np.float64(zs[j])
                root = np.sqrt(z64)
                thr_power[j] = half_step_power_from_root(z64, root, thr_exp)
                zs[j] = half_step_power_from_root(z64, root, share_exp)
        else:
            for j in range(T):
                thr_power[j] = power32(zs[j], thr_exp)
                zs[j] = power32(zs[j], share_exp)
        for j in range(T):
            demand = info[i, j]
            throttled = demand * thr_power[j]
            tshare = zs[j]
            admitted = demand - throttled
            deferred = throttled * tier[_P.T_RETRY, j]
            retry_pool_a[i, j] += deferred
            backlog[j] = queue_a[i, j] + admitted
            info[i, 3 * T + j] = admitted
            info[i, 4 * T + j], info[i, 5 * T + j], info[i, 6 * T + j] = throttled, deferred, throttled - deferred
            info[i, 13 * T + j] = tshare
        # serving (envs.serving.serve / serve_v1)
        cap1 = max(cap, ONE)
        total = row_sum(backlog)
        if v1 and total <= cap:
            for j in range(T):
                served[j] = backlog[j]
        else:
            fair_share(backlog, weights, cap, served, ratio, order)
        occupancy = min(total / cap1, ONE)
        batching = c[_P.S_BATCH_FLOOR] + c[_P.S_BATCH_SLOPE] * occupancy
        cfs = c[_P.S_COLLAPSE_FAILED] if collapsed else ZERO
        any_failed = False
        for j in range(T):  # each tier's contention (envs.serving)
            u_t = ZERO
            for k in range(T):
                u_t += served[k] * prio[k, j]
            contention[j] = u_t
        for j in range(T):
            left = max(backlog[j] - served[j], ZERO)
            timed_out = left * c[_P.S_TIMEOUT]
            waiting = left - timed_out
            if v1:
                failed = waiting * cfs
                queue_a[i, j] = waiting - failed
                still = left - failed
                all_failed = timed_out + failed
                tmp[j] = all_failed  # failed tokens, for the failed share below
                any_failed = any_failed or all_failed != ZERO
                info[i, 21 * T + j], info[i, 22 * T + j] = all_failed, failed
            else:
                queue_a[i, j] = waiting
                still = left
            u_t = contention[j] / cap1
            u_t = min(u_t, c[_P.S_MAX_CONT])
            wait = c[_P.S_DT_S] * still / max(served[j], F32(1e-6) * cap1)
            la = c[_P.S_BASE_LAT] / (ONE - u_t)
            if v1:
                la *= batching
            la += wait
            lat[j] = min(la, c[_P.S_MAX_LAT])
            info[i, 9 * T + j] = timed_out
        for j in range(T):
            exp_in[i, j] = tier[_P.T_NEG_TARGET, j] / max(lat[j], F32(1e-6))
            log_in[i, j] = max(lat[j], F32(1e-3)) / tier[_P.T_TARGET, j]
            log_in[i, T + j] = quota_a[i, j]
            info[i, 7 * T + j], info[i, 8 * T + j] = served[j], queue_a[i, j]
            info[i, 10 * T + j] = lat[j]
        util = row_sum(served) / cap1
        pressure = total / max(uncollapsed, ONE)
        overload[i], collapse_rem[i] = collapse_row(overload[i], collapse_rem[i], pressure, c[_P.S_COLLAPSE_PRESSURE],
                                                    ci[_P.I_COLLAPSE_AFTER], ci[_P.I_COLLAPSE_DURATION])
        # users (envs.user_response.user_step), ledger (envs.economics)
        for j in range(T):
            ts = info[i, 13 * T + j]
            if v1 and any_failed:
                ts = min(ts + tmp[j] / max(served[j] + tmp[j], ONE), ONE)
            k_mem = tier[_P.T_MEMORY, j]
            fr = frustration_a[i, j] + k_mem * (ts - frustration_a[i, j])
            ex = lat[j] / tier[_P.T_TARGET, j] - ONE
            ex = min(max(ex, ZERO), F32(10.0))
            le = latency_excess_a[i, j] + k_mem * (ex - latency_excess_a[i, j])
            frustration_a[i, j] = fr
            latency_excess_a[i, j] = le
        if half_step_churn and churn_nonnegative:
            for j in range(T):
                f64 = np.float64(frustration_a[i, j])
                churn_power[j] = F32(half_step_magnitude(f64, np.sqrt(f64), tier[_P.T_CHURN_EXP, j]))
        elif half_step_churn:
            for j in range(T):
                churn_power[j] = half_step_power32(frustration_a[i, j], tier[_P.T_CHURN_EXP, j])
        else:
            for j in range(T):
                churn_power[j] = power32(frustration_a[i, j], tier[_P.T_CHURN_EXP, j])
        for j in range(T):
            fr = frustration_a[i, j]
            le = latency_excess_a[i, j]
            hz = churn_power[j] * tier[_P.T_CHURN_THR, j]
            hz += tier[_P.T_CHURN_BASE, j] + tier[_P.T_CHURN_LAT, j] * le
            hz = min(hz, F32(0.5))
            us = users_a[i, j]
            churned[j] = us * hz
            quality = max(ONE - fr - le, ZERO)
            new = us * tier[_P.T_ACQ, j] * quality
            users_a[i, j] = us - churned[j] + new
            revenue[j] = us * tier[_P.T_PRICE, j] + served[j] * tier[_P.T_API_PRICE, j]
            info[i, 14 * T + j], info[i, 15 * T + j] = users_a[i, j], churned[j]
            info[i, 16 * T + j], info[i, 17 * T + j] = new, revenue[j]
        rent = row_dot(billed, rent_w)
        burst_cost = g * c[_P.S_BURST_RENT]
        variable = row_sum(served) * c[_P.S_VAR_COST]
        cost = rent + burst_cost + variable
        for k in range(P):
            info[i, bp + k], info[i, bp + P + k] = avail[k], reclaim[k]
        info[i, bs], info[i, bs + 1], info[i, bs + 2], info[i, bs + 3] = cap, util, pressure, ONE if collapsed else ZERO
        info[i, bs + 4], info[i, bs + 5], info[i, bs + 6] = g, cost, rent
        info[i, bs + 7], info[i, bs + 8] = burst_cost, variable
        info[i, bs + 9], info[i, bs + 10] = row_sum(revenue), row_sum(revenue) - cost
        info[i, bs + 12], info[i, bs + 14], info[i, bs + 15] = row_dot(churned, ltv), F32(ti), F32(ws * c64[_P.F_DT_H])
        if v1:
            info[i, bs + 17], info[i, bs + 18] = row_sum_at(pipeline, i), occupancy
        last_util[i] = util
        t[i] = ti + 1
    return np.int64(-1)


drop_stale((step_rows, finish_rows))  # before their first call: caches built from other helper sources go


def step(core, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step every row of ``core`` (a :class:`~envs.core.RationingCore`) in place; returns (reward, info buffer).

    The step's ``exp`` and ``log`` run in numpy, in place on contiguous scratch arrays, between and
    before the two kernels, so that every number is numpy's own (libm's differ in the last bit).
    A NaN action is refused (``ValueError``) before any state changes.
    """
    p = core.params
    n, T = core.num_envs, p.n_tiers
    scratch = core.fused_scratch
    if scratch is None or scratch[0].shape[0] != n:
        scratch = core.fused_scratch = (np.empty((n, T), F32), np.empty((n, T), F32), np.empty((n, 2 * T), F32))
    quota_factor, exp_in, log_in = scratch
    clipped_log_quota(actions, F32(p.log_quota_step), quota_factor)  # envs.quota.apply_action
    np.exp(quota_factor, out=quota_factor)
    info = np.empty((n, core.info_width), F32)
    reward = np.empty(n, F32)
    prov, burst, coll, users, sla = core.providers, core.burst, core.collapse, core.users, core.sla
    while True:
        status = step_rows(core.fused_params, core.t, core.keys, core.scales, prov.outage_remaining_steps,
                           prov.degraded_share, burst.gpus, burst.pipeline, coll.overload_steps,
                           coll.collapse_remaining_steps, users.users, users.frustration, users.latency_excess,
                           core.quota_multiplier, core.queue_tokens, core.retry_pool_tokens, core.burst_excess,
                           core.last_utilisation, actions, quota_factor, exp_in, log_in, info)
        if status != -2:
            break
        longer = fp_.growth_table(p, 2 * int(core.t.max()) + 1)  # rows stepped past their episode's end
        core.fused_params = core.fused_params._replace(growth=longer)
    if status >= 0:
        row, col = divmod(int(status), actions.shape[1])
        raise nan_action_error(p, row, col)
    np.exp(exp_in, out=exp_in)
    np.log(log_in, out=log_in)
    finish_rows(core.fused_params, core.t, coll.collapse_remaining_steps, users.users, core.queue_tokens,
                sla.served_tokens, sla.failed_tokens, sla.within_tokens, exp_in, log_in, info, core.obs, reward)
    return reward, info
