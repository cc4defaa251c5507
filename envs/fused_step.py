"""The compiled step: :meth:`envs.core.RationingCore.step` as one numba loop over env rows.

Why one fused kernel: at N = 1 the numpy step is ~250 small numpy calls (its time is
call overhead), at large N it is memory traffic of ~150 (N, T) temporaries. One
compiled call per step, each row computed start to end in registers and small
scratch arrays, removes both. The model stays in its modules (the numpy functions
of :mod:`envs.capacity`, :mod:`envs.demand`, ... are the reference and the
documentation); this kernel follows :meth:`RationingCore.step` line by line, with
the per-row helpers of :mod:`envs.fused_rows`, in the same float32 order.

State arrays are updated in place; ``info`` is a fresh (N, W) buffer per step whose
column blocks are the info keys (:func:`info_layout`).

**Tolerance.** Sums, products, the sort and every comparison follow numpy's float32
order exactly. ``exp`` and ``log`` of float32 are numpy's own SIMD routines in the
numpy step and libm's here; they may differ in the last bit (relative 6e-8), which
the dynamics carry on. tests/envs/test_fused.py bounds the difference between the two
steps over whole episodes of every scenario (rtol 1e-4 per step, 1e-5 on returns);
the pinned v0 returns (rtol 1e-6) hold.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import fused_params as fp_
from . import observation
from .fused_rows import JIT, ONE, ZERO, collapse_row, fair_share, row_dot, row_sum, scalar_pow, sla_share, uniforms
from .info_keys import PROVIDER_INFO_KEYS, SCALAR_INFO_KEYS, TIER_INFO_KEYS, V1_SCALAR_INFO_KEYS, V1_TIER_INFO_KEYS
from .quota import apply_action
from .serving import latency_attainment

F32 = np.float32
_P = fp_

N_TIER_KEYS = (21, 26)
"""Per-tier info blocks of v0 and v1 (``TIER_INFO_KEYS`` and ``+ V1_TIER_INFO_KEYS`` order)."""


def info_layout(n_tiers: int, n_providers: int, version: int, tier_keys, provider_keys, scalar_keys) -> dict:
    """Info key -> column slice of the kernel's info buffer (tier blocks, provider blocks, scalars)."""
    T, P = n_tiers, n_providers
    out = {k: slice(i * T, (i + 1) * T) for i, k in enumerate(tier_keys)}
    base = len(tier_keys) * T
    out |= {k: slice(base + i * P, base + (i + 1) * P) for i, k in enumerate(provider_keys)}
    base += len(provider_keys) * P
    out |= {k: base + i for i, k in enumerate(scalar_keys)}
    return out


@njit(**JIT)
def step_rows(fp, t, keys, scales, outage, degraded, burst_gpus, pipeline, overload, collapse_rem,
              users_a, frustration_a, latency_excess_a, quota_a, queue_a, retry_pool_a, burst_excess_a, last_util,
              actions, growth_a, info):
    """Part one of a step, every row: up to latency and users (writes ``info`` and the state)."""
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds = fp
    n, T = users_a.shape
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
    start_week, spw, ep_steps = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK], ci[_P.I_EPISODE_STEPS]
    for i in range(n):
        ti = t[i]
        ws = (start_week + ti) % spw
        es = min(ti, ep_steps - 1)
        uniforms(keys[i], ti, u)
        inf = info[i]
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
            pipe = pipeline[i]
            g = g + pipe[slot]
            pipe[slot] = ZERO
            step_g = c[_P.S_BURST_STEP]
            if ci[_P.I_BURST_POLICY]:
                ab = min(max(actions[i, T], -ONE), ONE)
                room = max(c[_P.S_BURST_MAX] - g - row_sum(pipe), ZERO)
                pipe[slot] = min(step_g * max(ab, ZERO), room)
                g = g - min(step_g * max(-ab, ZERO), g)
            else:
                room = max(c[_P.S_BURST_MAX] - g - row_sum(pipe), ZERO)
                lu = last_util[i]
                pipe[slot] = min(step_g, room) if lu > c[_P.S_BURST_BUY] else min(step_g, room) * ZERO
                g = g - (min(step_g, g) if lu < c[_P.S_BURST_RELEASE] else min(step_g, g) * ZERO)
            burst_gpus[i] = g
        uncollapsed = (row_sum(avail) + g) * c[_P.S_TOKENS_PER_GPU]
        cap = uncollapsed * (c[_P.S_COLLAPSE_CAP] if collapsed else ONE)
        # quota, demand, retries, admission (envs.quota, envs.demand, envs.user_response.split_throttled)
        tf = F32(ti)
        growth = growth_a[i]
        for j in range(T):
            q = quota_a[i, j]
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
            at = scalar_pow(ONE - c[_P.S_AGENTIC_TAIL] * u[3 * P + T + j], c[_P.S_AGENTIC_EXP])
            at *= c[_P.S_AGENTIC_LO]
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
            throttled = demand * scalar_pow(z, c[_P.S_THR_EXP])
            tshare = scalar_pow(z, c[_P.S_SHARE_EXP])
            admitted = demand - throttled
            deferred = throttled * tier[_P.T_RETRY, j]
            retry_pool_a[i, j] = pool - returning - abandoned + deferred
            backlog[j] = queue_a[i, j] + admitted
            inf[j], inf[T + j], inf[2 * T + j], inf[3 * T + j] = demand, fresh, returning, admitted
            inf[4 * T + j], inf[5 * T + j], inf[6 * T + j] = throttled, deferred, throttled - deferred
            inf[13 * T + j], inf[18 * T + j], inf[19 * T + j], inf[20 * T + j] = tshare, q, share, at
        # serving (envs.serving.serve / serve_v1)
        cap1 = max(cap, ONE)
        total = row_sum(backlog)
        if v1 and total <= cap:
            served[:] = backlog
        else:
            fair_share(backlog, tier[_P.T_WEIGHT], cap, served, ratio, order)
        occupancy = min(total / cap1, ONE)
        batching = c[_P.S_BATCH_FLOOR] + c[_P.S_BATCH_SLOPE] * occupancy
        cfs = c[_P.S_COLLAPSE_FAILED] if collapsed else ZERO
        any_failed = False
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
                inf[21 * T + j], inf[22 * T + j] = all_failed, failed
            else:
                queue_a[i, j] = waiting
                still = left
            u_t = ZERO
            for k in range(T):
                u_t += served[k] * prio[k, j]
            u_t /= cap1
            u_t = min(u_t, c[_P.S_MAX_CONT])
            wait = c[_P.S_DT_S] * still / max(served[j], F32(1e-6) * cap1)
            la = c[_P.S_BASE_LAT] / (ONE - u_t)
            if v1:
                la *= batching
            la += wait
            lat[j] = min(la, c[_P.S_MAX_LAT])
            inf[7 * T + j], inf[8 * T + j] = served[j], queue_a[i, j]
            inf[9 * T + j], inf[10 * T + j] = timed_out, lat[j]
        util = row_sum(served) / cap1
        pressure = total / max(uncollapsed, ONE)
        overload[i], collapse_rem[i] = collapse_row(overload[i], collapse_rem[i], pressure, c[_P.S_COLLAPSE_PRESSURE],
                                                    ci[_P.I_COLLAPSE_AFTER], ci[_P.I_COLLAPSE_DURATION])
        # users (envs.user_response.user_step), ledger (envs.economics)
        for j in range(T):
            ts = inf[13 * T + j]
            if v1 and any_failed:
                ts = min(ts + tmp[j] / max(served[j] + tmp[j], ONE), ONE)
            k_mem = tier[_P.T_MEMORY, j]
            fr = frustration_a[i, j] + k_mem * (ts - frustration_a[i, j])
            ex = lat[j] / tier[_P.T_TARGET, j] - ONE
            ex = min(max(ex, ZERO), F32(10.0))
            le = latency_excess_a[i, j] + k_mem * (ex - latency_excess_a[i, j])
            hz = fr ** tier[_P.T_CHURN_EXP, j]
            hz *= tier[_P.T_CHURN_THR, j]
            hz += tier[_P.T_CHURN_BASE, j] + tier[_P.T_CHURN_LAT, j] * le
            hz = min(hz, F32(0.5))
            us = users_a[i, j]
            churned[j] = us * hz
            quality = max(ONE - fr - le, ZERO)
            new = us * tier[_P.T_ACQ, j] * quality
            users_a[i, j] = us - churned[j] + new
            frustration_a[i, j] = fr
            latency_excess_a[i, j] = le
            revenue[j] = us * tier[_P.T_PRICE, j] + served[j] * tier[_P.T_API_PRICE, j]
            inf[14 * T + j], inf[15 * T + j] = users_a[i, j], churned[j]
            inf[16 * T + j], inf[17 * T + j] = new, revenue[j]
        rent = row_dot(billed, prov[_P.P_RENT])
        burst_cost = g * c[_P.S_BURST_RENT]
        variable = row_sum(served) * c[_P.S_VAR_COST]
        cost = rent + burst_cost + variable
        for k in range(P):
            inf[bp + k], inf[bp + P + k] = avail[k], reclaim[k]
        inf[bs], inf[bs + 1], inf[bs + 2], inf[bs + 3] = cap, util, pressure, ONE if collapsed else ZERO
        inf[bs + 4], inf[bs + 5], inf[bs + 6], inf[bs + 7], inf[bs + 8] = g, cost, rent, burst_cost, variable
        inf[bs + 9], inf[bs + 10] = row_sum(revenue), row_sum(revenue) - cost
        inf[bs + 12], inf[bs + 14], inf[bs + 15] = row_dot(churned, tier[_P.T_LTV]), F32(ti), F32(ws * c64[_P.F_DT_H])
        if v1:
            inf[bs + 17], inf[bs + 18] = row_sum(pipeline[i]), occupancy
        last_util[i] = util
        t[i] = ti + 1


@njit(**JIT)
def finish_rows(fp, t, collapse_rem, users_a, queue_a, sla_s, sla_f, sla_w, info, obs, reward):
    """Part two, every row, after numpy filled ``latency_attainment``: SLA credits, reward, observation.

    The observation's two log blocks (latency, quota) are left to numpy (:func:`step`).
    """
    tier, prov, c, c64, ci, week, episode, prio, sla, bounds = fp
    n, T = users_a.shape
    P = prov.shape[1]
    v1 = ci[_P.I_VERSION] >= 1
    nt = 26 if v1 else 21
    bp = nt * T
    bs = bp + 2 * P
    late = np.empty(T, F32)
    credit = np.empty(T, F32)
    start_week, spw = ci[_P.I_START_WEEK], ci[_P.I_STEPS_PER_WEEK]
    for i in range(n):
        inf = info[i]
        for j in range(T):
            served = inf[7 * T + j]
            late[j] = served * (ONE - inf[11 * T + j])
            inf[12 * T + j] = late[j]
            if v1:
                s = sla_s[i, j] + served
                f = sla_f[i, j] + inf[21 * T + j]
                w = sla_w[i, j] + (served - late[j])
                sla_s[i, j], sla_f[i, j], sla_w[i, j] = s, f, w
                d = s + ONE
                running_att = min((w + ONE) / d, ONE)
                running_avail = d / (d + f) if f != ZERO else ONE
                share = max(sla_share(running_avail, sla[0, 0], sla[1, 0], j),
                            sla_share(running_att, sla[0, 1], sla[1, 1], j))
                credit[j] = share * inf[17 * T + j]
                inf[23 * T + j], inf[24 * T + j], inf[25 * T + j] = credit[j], running_avail, running_att
        lat_pen = row_dot(late, tier[_P.T_LATE_PEN])
        r = c[_P.S_MARGIN_W] * inf[bs + 10] - c[_P.S_LATENCY_W] * lat_pen - c[_P.S_CHURN_W] * inf[bs + 12]
        if v1:
            credit_total = row_sum(credit)
            r = r - c[_P.S_MARGIN_W] * credit_total
            inf[bs + 16] = credit_total
        r *= c[_P.S_INV_SCALE]
        reward[i] = r
        inf[bs + 11], inf[bs + 13] = lat_pen, r
        # observation (envs.observation.build_v1, build)
        o = obs[i]
        nws = (start_week + t[i]) % spw
        o[0] = np.sin(c64[_P.F_HOUR_ANGLE] * nws)
        o[1] = np.cos(c64[_P.F_HOUR_ANGLE] * nws)
        o[2] = np.sin(c64[_P.F_WEEK_ANGLE] * nws)
        o[3] = np.cos(c64[_P.F_WEEK_ANGLE] * nws)
        for k in range(P):
            o[4 + k] = inf[bp + k] / prov[_P.P_CONTRACTED, k]
        o[4 + P] = inf[bs + 4] / c[_P.S_CONTRACTED_SUM]
        o[5 + P] = inf[bs + 1]
        o[6 + P] = ONE if collapse_rem[i] > 0 else ZERO
        b = 7 + P
        for j in range(T):
            o[b + j] = inf[j] / tier[_P.T_MEAN_DEMAND, j]
            o[b + T + j] = queue_a[i, j] / c[_P.S_NOMINAL_CAP]
            o[b + 3 * T + j] = inf[13 * T + j]
            o[b + 4 * T + j] = users_a[i, j] / tier[_P.T_USERS0, j]
        if v1:
            b = 7 + P + 6 * T
            o[b] = inf[bs + 17] * c[_P.S_INV_CONTRACTED]
            for j in range(T):
                o[b + 1 + j] = inf[24 * T + j]
                o[b + 1 + T + j] = inf[25 * T + j]
        for k in range(o.shape[0]):
            o[k] = min(max(o[k], bounds[0, k]), bounds[1, k])
    return ZERO


def step(core, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step every row of ``core`` (a :class:`~envs.core.RationingCore`) in place; returns (reward, info buffer).

    ``exp`` and ``log`` run in numpy between the two kernels, on contiguous arrays as in the
    numpy step, so that every number is numpy's own (libm's differ in the last bit).
    """
    p = core.params
    n, T = core.num_envs, p.n_tiers
    core.quota_multiplier = quota = apply_action(p, core.quota_multiplier, actions[:, :T])
    growth = np.exp(p.agentic_tokens_growth_per_step * core.t.astype(F32))
    info = np.empty((n, core.info_width), F32)
    reward = np.empty(n, F32)
    prov, burst, coll, users, sla = core.providers, core.burst, core.collapse, core.users, core.sla
    step_rows(core.fused_params, core.t, core.keys, core.scales, prov.outage_remaining_steps, prov.degraded_share,
              burst.gpus, burst.pipeline, coll.overload_steps, coll.collapse_remaining_steps, users.users,
              users.frustration, users.latency_excess, quota, core.queue_tokens, core.retry_pool_tokens,
              core.burst_excess, core.last_utilisation, actions, growth, info)
    latency = info[:, 10 * T: 11 * T].copy()
    info[:, 11 * T: 12 * T] = latency_attainment(p, latency)
    finish_rows(core.fused_params, core.t, coll.collapse_remaining_steps, users.users, core.queue_tokens,
                sla.served_tokens, sla.failed_tokens, sla.within_tokens, info, core.obs, reward)
    lat_block, quota_block = observation.tier_block(p, "latency_over_target"), observation.tier_block(p, "quota")
    log_latency = np.log(np.maximum(latency, 1e-3) / p.latency_target_s)
    for block, value in ((lat_block, log_latency), (quota_block, np.log(quota))):
        np.maximum(value, p.obs_low[block], out=value)
        core.obs[:, block] = np.minimum(value, p.obs_high[block], out=value)
    return reward, info


def row_info(core, k: int) -> dict:
    """Row ``k`` of the last compiled step's info as the single env reports it (floats and (T,)/(P,) views)."""
    T, P = core.n_tiers, core.params.n_providers
    row = core.info_buffer[k]
    nt = len(core.tier_info_keys)
    tiers = row[: nt * T].reshape(nt, T)
    scalars = row[nt * T + 2 * P:].tolist()
    out = dict(zip(TIER_INFO_KEYS, tiers))
    out.update(zip(SCALAR_INFO_KEYS, scalars))
    out.update(zip(PROVIDER_INFO_KEYS, row[nt * T: nt * T + 2 * P].reshape(2, P)))
    if nt > len(TIER_INFO_KEYS):
        out.update(zip(V1_TIER_INFO_KEYS, tiers[len(TIER_INFO_KEYS):]))
        out.update(zip(V1_SCALAR_INFO_KEYS, scalars[len(SCALAR_INFO_KEYS):]))
    return out
