"""The compiled step: :meth:`envs.core.RationingCore.step` as one numba loop over env rows.

Why one fused kernel: at N = 1 the numpy step is ~250 small numpy calls (its time is
call overhead), at large N it is memory traffic of ~150 (N, T) temporaries. One
compiled call per step removes both. The model stays in its modules (the numpy functions
of :mod:`envs.capacity`, :mod:`envs.demand`, ... are the reference and the
documentation); this kernel follows :meth:`RationingCore.step` line by line, with
the helpers of :mod:`envs.fused_rows` and :mod:`envs.fused_supply`, in the same float32 order.

Rows inner (:mod:`envs.fused_layout`): each stage is a loop over tiers (or providers) around a
loop over rows, on (T, N) state and scratch and a (W, N) info buffer, so the loop over rows
reads and writes contiguous memory and compiles to SIMD (AVX-512: 16 rows per instruction);
each row still does the same float32 operations in the same order, so lanes change no number.
Per-row sums over tiers keep numpy's four-lane order (:func:`envs.fused_rows.lane_sum`). The
fair share's sort runs per row, only for rows whose backlog exceeds capacity. (The earlier
kernel computed each row start to end, tiers inner; rows inner made the step 1.5x faster at
N = 1,024: ``benchmarks/env_throughput.py``.)

The helpers are inlined by numba (``inline="always"``).
Part two (after numpy's ``exp``/``log``) is :func:`envs.fused_finish.finish_rows`. numba's
on-disk cache keys on a kernel's own file only; :func:`envs.kernel_cache.drop_stale` drops the
kernels' caches at import when any of the files they are built from changed.

State arrays are updated in place; ``info`` is a fresh (W, N) buffer per step whose
row blocks are the info keys (:func:`envs.info_keys.info_layout`).

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
from .fused_layout import lanes
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
    lane_dot,
    lane_sum,
    lane_uniforms,
    power32,
)
from .fused_supply import supply_lanes
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

    Rows inner: per-tier state and scratch are (T, N), per-provider (P, N), the burst pipeline
    (D, N) and ``info`` (W, N), so that each loop over rows runs on contiguous arrays (SIMD).
    ``actions`` is (N, A). ``quota_factor`` (T, N) is ``exp(log_quota_step x clipped action)``
    (numpy's, see :func:`step`). Writes the arguments of the step's other ``exp`` and ``log`` for
    numpy to evaluate in place: ``exp_in`` (T, N) ``-target / max(latency, 1e-6)``
    (:func:`envs.serving.latency_attainment`), ``log_in`` (2T, N) ``max(latency, 1e-3) / target`` and
    the quota multiplier (the observation).

    Returns -1, or before changing anything: ``row x width + column`` of the first NaN action,
    or -2 when a row's step index is past the ``growth`` table (the caller extends it).
    """
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds, growth_t, clock = fp
    T, n = users_a.shape
    A = actions.shape[1]
    for i in range(n):  # refuse NaN actions before any state changes
        if t[i] >= growth_t.shape[0]:
            return np.int64(-2)
        for j in range(A):
            if np.isnan(actions[i, j]):
                return np.int64(i * A + j)
    P = outage.shape[0]
    v1 = ci[_P.I_VERSION] >= 1
    nt = 26 if v1 else 21
    bp = nt * T  # provider blocks
    bs = bp + 2 * P  # scalars
    U = 3 * P  # first demand draw
    u = np.empty((3 * P + 3 * T, n), F32)
    ws = np.empty(n, np.int64)
    es = np.empty(n, np.int64)
    collapsed = np.empty(n, np.bool_)
    acc = np.empty((4, n), F32)
    billed = np.empty((P, n), F32)
    total = np.empty(n, F32)
    uncollapsed = np.empty(n, F32)
    cap = np.empty(n, F32)
    cap1 = np.empty(n, F32)
    batching = np.empty(n, F32)
    cfs = np.empty(n, F32)
    any_failed = np.zeros(n, np.bool_)
    served_sum = np.empty(n, F32)
    agentic = np.empty((T, n), F32)
    zs = np.empty((T, n), F32)
    thr_power = np.empty((T, n), F32)
    backlog = np.empty((T, n), F32)
    served = np.empty((T, n), F32)
    contention = np.empty((T, n), F32)
    lat = np.empty((T, n), F32)
    failed_t = np.empty((T, n), F32)
    churned = np.empty((T, n), F32)
    revenue = np.empty((T, n), F32)
    column = np.empty((3, T), F32)  # one row's backlog, served, ratio (fair share)
    order = np.empty(T, np.int64)
    start_week, spw, ep_steps = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK], ci[_P.I_EPISODE_STEPS]
    thr_exp, share_exp = c[_P.S_THR_EXP], c[_P.S_SHARE_EXP]
    half_step_admission = is_half_step32(thr_exp) and is_half_step32(share_exp)
    half_step_churn = True
    churn_nonnegative = True  # then no churn power needs its reciprocal: the division is skipped
    for j in range(T):
        half_step_churn = half_step_churn and is_half_step32(tier[_P.T_CHURN_EXP, j])
        churn_nonnegative = churn_nonnegative and tier[_P.T_CHURN_EXP, j] >= ZERO
    for i in range(n):
        ws[i] = (start_week + t[i]) % spw
        es[i] = min(t[i], ep_steps - 1)
        collapsed[i] = collapse_rem[i] > 0
    lane_uniforms(keys, t, u)
    supply_lanes(fp, t, ws, es, scales, outage, degraded, burst_gpus, pipeline, last_util, actions, u, billed,
                 acc, total, info, bp)
    lane_sum(info[bp:bp + P], acc, total)  # available GPUs
    for i in range(n):
        uncollapsed[i] = (total[i] + burst_gpus[i]) * c[_P.S_TOKENS_PER_GPU]
        cap[i] = uncollapsed[i] * (c[_P.S_COLLAPSE_CAP] if collapsed[i] else ONE)
    # quota, demand, retries, admission (envs.quota, envs.demand, envs.user_response.split_throttled)
    tail, a_exp = c[_P.S_AGENTIC_TAIL], c[_P.S_AGENTIC_EXP]
    for j in range(T):
        for i in range(n):
            agentic[j, i] = power32(ONE - tail * u[U + T + j, i], a_exp)
    q_min, q_max = c[_P.S_QUOTA_MIN], c[_P.S_QUOTA_MAX]
    noise_low, noise_span, chat = c[_P.S_NOISE_LOW], c[_P.S_NOISE_SPAN], c[_P.S_CHAT]
    for j in range(T):
        decay, burst_prob = tier[_P.T_BURST_DECAY, j], tier[_P.T_BURST_PROB, j]
        burst_excess = tier[_P.T_BURST_EXCESS, j]
        req, share0, quota_z = tier[_P.T_REQ, j], tier[_P.T_AGENTIC_SHARE, j], tier[_P.T_QUOTA_Z, j]
        for i in range(n):
            ti = t[i]
            q = min(max(quota_factor[j, i] * quota_a[j, i], q_min), q_max)  # envs.quota.apply_action
            quota_a[j, i] = q
            ex = burst_excess_a[j, i] * decay
            ex = ex + burst_excess if u[U + 2 * T + j, i] < burst_prob else ex
            burst_excess_a[j, i] = ex
            level = week[ws[i], j] * episode[es[i], j]
            level *= noise_low + noise_span * u[U + j, i]
            level *= ONE + ex
            level *= req
            level *= scales[0, i]
            us = users_a[j, i]
            requests = us * level
            share = share0 + c[_P.S_SHARE_GROWTH] * F32(ti)
            share *= scales[3, i]
            share = min(share, F32(0.95))
            at = agentic[j, i] * c[_P.S_AGENTIC_LO]
            at *= chat * growth_t[ti]
            tpr = at - chat
            tpr *= share
            tpr += chat
            fresh = requests * tpr
            pool = retry_pool_a[j, i]
            returning = pool * c[_P.S_RETURN]
            abandoned = (pool - returning) * c[_P.S_ABANDON]
            demand = fresh + returning
            z = q * us
            z *= quota_z
            z /= max(demand, F32(1e-3))
            z += ONE
            zs[j, i] = z
            retry_pool_a[j, i] = pool - returning - abandoned  # + deferred, below
            info[j, i], info[T + j, i], info[2 * T + j, i] = demand, fresh, returning
            info[18 * T + j, i], info[19 * T + j, i], info[20 * T + j, i] = q, share, at
    for j in range(T):
        if half_step_admission:  # one sqrt per tier for both powers
            for i in range(n):
                z64 = np.float64(zs[j, i])
                root = np.sqrt(z64)
                thr_power[j, i] = half_step_power_from_root(z64, root, thr_exp)
                zs[j, i] = half_step_power_from_root(z64, root, share_exp)
        else:
            for i in range(n):
                thr_power[j, i] = power32(zs[j, i], thr_exp)
                zs[j, i] = power32(zs[j, i], share_exp)
    for j in range(T):
        retry = tier[_P.T_RETRY, j]
        for i in range(n):
            demand = info[j, i]
            throttled = demand * thr_power[j, i]
            admitted = demand - throttled
            deferred = throttled * retry
            retry_pool_a[j, i] += deferred
            backlog[j, i] = queue_a[j, i] + admitted
            info[3 * T + j, i] = admitted
            info[4 * T + j, i], info[5 * T + j, i], info[6 * T + j, i] = throttled, deferred, throttled - deferred
            info[13 * T + j, i] = zs[j, i]
    # serving (envs.serving.serve / serve_v1)
    lane_sum(backlog, acc, total)
    served[:] = backlog
    weights = tier[_P.T_WEIGHT]
    for i in range(n):
        if not (v1 and total[i] <= cap[i]):  # fair share: a sort per row
            for j in range(T):
                column[0, j] = backlog[j, i]
            fair_share(column[0], weights, cap[i], column[1], column[2], order)
            for j in range(T):
                served[j, i] = column[1, j]
    for i in range(n):
        cap1[i] = max(cap[i], ONE)
        occupancy = min(total[i] / cap1[i], ONE)
        batching[i] = c[_P.S_BATCH_FLOOR] + c[_P.S_BATCH_SLOPE] * occupancy
        if v1:
            info[bs + 18, i] = occupancy
        cfs[i] = c[_P.S_COLLAPSE_FAILED] if collapsed[i] else ZERO
    for j in range(T):  # each tier's contention (envs.serving)
        contention[j] = ZERO
        for k in range(T):
            pkj = prio[k, j]
            for i in range(n):
                contention[j, i] += served[k, i] * pkj
    timeout, max_cont, dt_s, base_lat, max_lat = (c[_P.S_TIMEOUT], c[_P.S_MAX_CONT], c[_P.S_DT_S], c[_P.S_BASE_LAT],
                                                  c[_P.S_MAX_LAT])
    for j in range(T):
        for i in range(n):
            left = max(backlog[j, i] - served[j, i], ZERO)
            timed_out = left * timeout
            waiting = left - timed_out
            if v1:
                failed = waiting * cfs[i]
                queue_a[j, i] = waiting - failed
                still = left - failed
                all_failed = timed_out + failed
                failed_t[j, i] = all_failed  # failed tokens, for the failed share below
                any_failed[i] = any_failed[i] or all_failed != ZERO
                info[21 * T + j, i], info[22 * T + j, i] = all_failed, failed
            else:
                queue_a[j, i] = waiting
                still = left
            u_t = contention[j, i] / cap1[i]
            u_t = min(u_t, max_cont)
            wait = dt_s * still / max(served[j, i], F32(1e-6) * cap1[i])
            la = base_lat / (ONE - u_t)
            if v1:
                la *= batching[i]
            la += wait
            lat[j, i] = min(la, max_lat)
            info[9 * T + j, i] = timed_out
    for j in range(T):
        neg_target, target = tier[_P.T_NEG_TARGET, j], tier[_P.T_TARGET, j]
        for i in range(n):
            exp_in[j, i] = neg_target / max(lat[j, i], F32(1e-6))
            log_in[j, i] = max(lat[j, i], F32(1e-3)) / target
            log_in[T + j, i] = quota_a[j, i]
            info[7 * T + j, i], info[8 * T + j, i] = served[j, i], queue_a[j, i]
            info[10 * T + j, i] = lat[j, i]
    lane_sum(served, acc, served_sum)
    for i in range(n):
        util = served_sum[i] / cap1[i]
        pressure = total[i] / max(uncollapsed[i], ONE)
        overload[i], collapse_rem[i] = collapse_row(overload[i], collapse_rem[i], pressure, c[_P.S_COLLAPSE_PRESSURE],
                                                    ci[_P.I_COLLAPSE_AFTER], ci[_P.I_COLLAPSE_DURATION])
        info[bs, i], info[bs + 1, i], info[bs + 2, i] = cap[i], util, pressure
        info[bs + 3, i] = ONE if collapsed[i] else ZERO
        last_util[i] = util
    # users (envs.user_response.user_step), ledger (envs.economics)
    for j in range(T):
        k_mem, target = tier[_P.T_MEMORY, j], tier[_P.T_TARGET, j]
        for i in range(n):
            ts = info[13 * T + j, i]
            if v1 and any_failed[i]:
                ts = min(ts + failed_t[j, i] / max(served[j, i] + failed_t[j, i], ONE), ONE)
            fr = frustration_a[j, i] + k_mem * (ts - frustration_a[j, i])
            ex = lat[j, i] / target - ONE
            ex = min(max(ex, ZERO), F32(10.0))
            le = latency_excess_a[j, i] + k_mem * (ex - latency_excess_a[j, i])
            frustration_a[j, i] = fr
            latency_excess_a[j, i] = le
    churn_power = thr_power  # free again
    for j in range(T):
        e = tier[_P.T_CHURN_EXP, j]
        if half_step_churn and churn_nonnegative:
            for i in range(n):
                f64 = np.float64(frustration_a[j, i])
                churn_power[j, i] = F32(half_step_magnitude(f64, np.sqrt(f64), e))
        elif half_step_churn:
            for i in range(n):
                churn_power[j, i] = half_step_power32(frustration_a[j, i], e)
        else:
            for i in range(n):
                churn_power[j, i] = power32(frustration_a[j, i], e)
    for j in range(T):
        thr, base, lat_w = tier[_P.T_CHURN_THR, j], tier[_P.T_CHURN_BASE, j], tier[_P.T_CHURN_LAT, j]
        acq, price, api_price = tier[_P.T_ACQ, j], tier[_P.T_PRICE, j], tier[_P.T_API_PRICE, j]
        for i in range(n):
            fr = frustration_a[j, i]
            le = latency_excess_a[j, i]
            hz = churn_power[j, i] * thr
            hz += base + lat_w * le
            hz = min(hz, F32(0.5))
            us = users_a[j, i]
            ch = us * hz
            churned[j, i] = ch
            quality = max(ONE - fr - le, ZERO)
            new = us * acq * quality
            users_a[j, i] = us - ch + new
            revenue[j, i] = us * price + served[j, i] * api_price
            info[14 * T + j, i], info[15 * T + j, i] = users_a[j, i], ch
            info[16 * T + j, i], info[17 * T + j, i] = new, revenue[j, i]
    rent = uncollapsed  # free again
    lane_dot(billed, prov[_P.P_RENT], acc, rent)
    lane_sum(revenue, acc, total)
    lane_dot(churned, tier[_P.T_LTV], acc, cap1)
    for i in range(n):
        g = burst_gpus[i]
        burst_cost = g * c[_P.S_BURST_RENT]
        variable = served_sum[i] * c[_P.S_VAR_COST]
        cost = rent[i] + burst_cost + variable
        info[bs + 4, i], info[bs + 5, i], info[bs + 6, i] = g, cost, rent[i]
        info[bs + 7, i], info[bs + 8, i] = burst_cost, variable
        info[bs + 9, i], info[bs + 10, i] = total[i], total[i] - cost
        info[bs + 12, i], info[bs + 14, i], info[bs + 15, i] = cap1[i], F32(t[i]), F32(ws[i] * c64[_P.F_DT_H])
        t[i] = t[i] + 1
    if v1:
        lane_sum(pipeline, acc, total)
        for i in range(n):
            info[bs + 17, i] = total[i]
    return np.int64(-1)


drop_stale((step_rows, finish_rows))  # before their first call: caches built from other helper sources go


def step(core, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step every row of ``core`` (a :class:`~envs.core.RationingCore`) in place; returns (reward, info buffer).

    The info buffer is (W, N): row ``c`` is info column ``c`` (:func:`envs.info_keys.info_layout`).
    The step's ``exp`` and ``log`` run in numpy, in place on contiguous scratch arrays, between and
    before the two kernels, so that every number is numpy's own (libm's differ in the last bit).
    A NaN action is refused (``ValueError``) before any state changes.
    """
    p = core.params
    n, T = core.num_envs, p.n_tiers
    scratch = core.fused_scratch
    if scratch is None or scratch[0].shape[1] != n:
        scratch = core.fused_scratch = (np.empty((T, n), F32), np.empty((T, n), F32), np.empty((2 * T, n), F32))
    quota_factor, exp_in, log_in = scratch
    clipped_log_quota(actions, F32(p.log_quota_step), quota_factor)  # envs.quota.apply_action
    np.exp(quota_factor, out=quota_factor)
    info = np.empty((core.info_width, n), F32)
    reward = np.empty(n, F32)
    burst, coll = core.burst, core.collapse
    outage, degraded, pipeline, users, frustration, excess, quota, queue, retry, burst_excess, sla_s, sla_f, sla_w = \
        lanes(core)
    while True:
        status = step_rows(core.fused_params, core.t, core.keys, core.scales, outage, degraded, burst.gpus, pipeline,
                           coll.overload_steps, coll.collapse_remaining_steps, users, frustration, excess, quota,
                           queue, retry, burst_excess, core.last_utilisation, actions, quota_factor, exp_in, log_in,
                           info)
        if status != -2:
            break
        longer = fp_.growth_table(p, 2 * int(core.t.max()) + 1)  # rows stepped past their episode's end
        core.fused_params = core.fused_params._replace(growth=longer)
    if status >= 0:
        row, col = divmod(int(status), actions.shape[1])
        raise nan_action_error(p, row, col)
    np.exp(exp_in, out=exp_in)
    np.log(log_in, out=log_in)
    finish_rows(core.fused_params, core.t, coll.collapse_remaining_steps, users, queue, sla_s, sla_f, sla_w,
                exp_in, log_in, info, core.obs, reward)
    return reward, info
