"""Rules that allocate the current capacity between tiers: ``tier-priority``, ``predictive``, ``fair-share``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .base import Dim, Rule
from .context import RuleContext, per_tier


@dataclass(frozen=True)
class TierPriorityParams:
    """Thresholds of the shedding signal and the per-tier cut / open multipliers."""

    wait_threshold_s: float = 60.0
    """Predicted queue wait (queued tokens / current capacity x step seconds) that starts shedding."""
    latency_threshold: float = 1.0
    """Worst tier's latency / target that starts shedding."""
    escalation: float = 2.0
    """Tier of priority rank r (0 = lowest) is cut when the signal passes escalation ** r."""
    release: float = 0.5
    """Hysteresis: a tier already cut is reopened only when the signal falls below release x its threshold."""
    protect_ranks: int = 1
    """The top ``protect_ranks`` priority levels are never cut."""
    cut: dict[str, float] = per_tier(0.5, free=0.25)
    open: dict[str, float] = per_tier(1.0)


class TierPriorityRule(Rule):
    """``tier-priority``: protect the high tiers; shed the lowest tiers first under pressure.

    Signal ``s = max(predicted wait / wait_threshold_s, max_i latency_i / target_i / latency_threshold)``
    where predicted wait = queued tokens / current capacity tokens per step x step
    seconds. Tiers are ranked by priority weight (0 = lowest; equal weights share a
    rank). A tier of rank r is cut to its ``cut`` multiplier while ``s >=
    escalation ** r`` (``release x`` that once it is cut: hysteresis read from its
    current quota), otherwise it runs at its ``open`` multiplier. The top
    ``protect_ranks`` ranks are never cut.
    """

    name = "tier-priority"
    Params = TierPriorityParams
    space = (
        Dim("wait_threshold_s", 1.0, 900.0, log=True),
        Dim("latency_threshold", 0.5, 8.0, log=True),
        Dim("escalation", 1.05, 8.0, log=True),
        Dim("release", 0.2, 1.0),
        Dim("protect_ranks", 0, 3, integer=True),
        # widened (issue 12): the coordinate-search tune stopped at cut[free] = 1.0 (the old top) and
        # open[max] = open[enterprise] = 0.5 (the old bottom). A "cut" above 1 still sheds relative to a
        # higher open quota; an open quota below 0.5 rations a tier all the time. Ends now the env's
        # quota range [0.05, 4] for cut, 0.1 for open.
        Dim("cut", 0.05, 4.0, log=True, per_tier=True),
        Dim("open", 0.1, 4.0, log=True, per_tier=True),
    )

    def target(self, obs, state):
        c, k = self.ctx, self.k
        wait = c.params.dt_s * c.queue_tokens(obs).sum(axis=1) / np.maximum(c.capacity_tokens(obs), 1.0)
        lat = c.latency_ratio(obs).max(axis=1)
        s = np.maximum(wait[:, None] / k["wait_threshold_s"], lat[:, None] / k["latency_threshold"])  # (N, 1)
        cut, open_ = k["cut"], k["open"]
        already_cut = c.multipliers(obs) <= np.sqrt(cut * open_) * (1.0 + 1e-6)
        threshold = k["escalation"] ** c.priority_rank * np.where(already_cut, k["release"], 1.0)
        protected = c.priority_rank >= c.n_ranks - k["protect_ranks"]
        shed = (s >= threshold) & ~protected
        return np.where(shed, cut, open_), state



def _capacity_limits(ctx: RuleContext, budget: np.ndarray, latency_factor: np.ndarray) -> np.ndarray:
    """(N, T) load of tiers with priority >= i that keeps tier i's mean latency within latency_factor x target.

    Latency = base / (1 - u_i) (envs.serving), u_i = utilisation by tiers of
    priority >= i, so u_i <= 1 - base / (latency_factor x target_i).
    """
    share = 1.0 - ctx.params.base_latency_s / (latency_factor * ctx.latency_target_s)
    return budget[:, None] * np.clip(share, 0.02, 1.0)


@dataclass(frozen=True)
class PredictiveAdmissionParams:
    """Capacity headroom, latency budget and forecast margin of predictive admission."""

    headroom: float = 0.95
    """Share of the current capacity the rule plans to use."""
    latency_factor: float = 1.0
    """Plan for each tier's mean latency to stay within latency_factor x its target."""
    demand_margin: float = 1.0
    """Forecast demand (persistence x weekly profile) is multiplied by this."""
    open_multiplier: float = 2.0
    """Quota of a tier whose whole forecast demand fits."""
    min_multiplier: float = 0.05
    """Lowest quota the rule sets."""


class PredictiveRule(Rule):
    """``predictive``: admit only what the current capacity can serve within each tier's latency target.

    From the observation only: current capacity C (GPUs last seen x tokens/GPU,
    burst and collapse included), queued tokens Q, forecast demand D (last step's
    demand x the weekly profile's change to the next step, x ``demand_margin``).
    Tiers are filled in priority order (highest first): the load of tiers with
    priority >= i, queue included, may use at most ``headroom x C x (1 - base
    latency / (latency_factor x target_i))`` (mean latency within target under
    the env's contention model; limits are made non-decreasing down the order).
    A tier asks for what its ``open_multiplier`` quota would admit of D_i (the
    rest would be throttled anyway), so unused room passes down the order. Each
    tier's admitted budget A_i is turned into the quota multiplier that admits A_i
    of D_i under the Lomax usage model (:meth:`RuleContext.multiplier_for_admitted`),
    capped at ``open_multiplier`` and floored at ``min_multiplier``.
    """

    name = "predictive"
    Params = PredictiveAdmissionParams
    space = (
        Dim("headroom", 0.5, 1.5),
        Dim("latency_factor", 0.25, 8.0, log=True),
        Dim("demand_margin", 0.7, 4.0, log=True),
        Dim("open_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
    )

    def target(self, obs, state):
        c, k = self.ctx, self.k
        demand = c.demand_forecast(obs) * k["demand_margin"]
        users = c.users(obs)
        wanted = c.admitted_at(demand, users, k["open_multiplier"])  # the most a tier takes at its open quota
        queue = c.queue_tokens(obs)
        limit = _capacity_limits(c, c.capacity_tokens(obs), k["latency_factor"]) * k["headroom"]
        o = c.order_desc
        d, q, lim = wanted[:, o], queue[:, o], limit[:, o]
        lim = np.maximum.accumulate(lim, axis=1)        # non-decreasing down the priority order
        s = np.cumsum(d + q, axis=1)                     # cumulative load if everything were admitted
        # cum_j = min(cum_{j-1} + q_j + d_j, lim_j)  =>  cum_j = s_j + min(0, min_{k<=j} (lim_k - s_k))
        cum = s + np.minimum(np.minimum.accumulate(lim - s, axis=1), 0.0)
        prev = np.concatenate([np.zeros((cum.shape[0], 1)), cum[:, :-1]], axis=1)
        admitted = np.maximum(cum - prev - q, 0.0)[:, c.inverse_order]
        target = c.multiplier_for_admitted(demand, users, admitted)
        return np.clip(target, k["min_multiplier"], k["open_multiplier"]), state


def weighted_max_min(demand: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Weighted max-min fair split of ``capacity`` (N,) over ``demand`` (N, T), weights (N or 1, T).

    Tier i gets ``min(demand_i, w_i x lambda)``, lambda set so the total is
    ``min(capacity, sum demand)``: a share a tier does not need is lent to the
    others by weight. Same closed form as :func:`envs.serving.weighted_fair_share`,
    with per-row weights, in float64; compiled (one loop over rows, :func:`_max_min_rows`).
    """
    demand = np.ascontiguousarray(demand, np.float64)
    weights = np.ascontiguousarray(np.atleast_2d(weights), np.float64)
    capacity = np.ascontiguousarray(np.broadcast_to(capacity, demand.shape[:1]), np.float64)
    if weights.shape[0] not in (1, demand.shape[0]) or weights.shape[1] != demand.shape[1]:
        raise ValueError(f"weights of shape {weights.shape} for demand of shape {demand.shape}")
    out = np.empty_like(demand)
    _max_min_rows(demand, weights, capacity, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _max_min_rows(demand, weights, capacity, out) -> None:  # pragma: no cover - compiled
    """Row by row: tiers sorted by demand / weight (stable), the first ``full`` of them served in full,
    the rest ``w_i x lambda``. ``needed_k = cum_d_k + r_k (W - cum_w_k)`` is the capacity used if
    lambda were the k-th smallest ratio ``r_k``."""
    n, t = demand.shape
    per_row = weights.shape[0] > 1
    ratio = np.empty(t)
    order = np.empty(t, np.int64)
    cum_w = np.empty(t)
    cum_d = np.empty(t)
    for i in range(n):
        iw = i if per_row else 0
        for j in range(t):
            ratio[j] = demand[i, j] / weights[iw, j]
            order[j] = j
        for j in range(1, t):  # stable insertion sort, NaN last (numpy's order)
            k = order[j]
            m = j - 1
            while m >= 0 and (ratio[order[m]] > ratio[k] or (np.isnan(ratio[order[m]]) and not np.isnan(ratio[k]))):
                order[m + 1] = order[m]
                m -= 1
            order[m + 1] = k
        cw = 0.0
        cd = 0.0
        for m in range(t):
            o = order[m]
            cw += weights[iw, o]
            cd += ratio[o] * weights[iw, o]
            cum_w[m] = cw
            cum_d[m] = cd
        w_total = cum_w[t - 1]
        full = 0
        for m in range(t):
            if cum_d[m] + ratio[order[m]] * (w_total - cum_w[m]) <= capacity[i]:
                full += 1
        d_done = cum_d[full - 1] if full > 0 else 0.0
        w_done = cum_w[full - 1] if full > 0 else 0.0
        lam = np.maximum(capacity[i] - d_done, 0.0) / np.maximum(w_total - w_done, 1e-12)
        for j in range(t):
            out[i, j] = np.minimum(demand[i, j], weights[iw, j] * lam)


@dataclass(frozen=True)
class FairShareParams:
    """Capacity budget, forecast margin and tier weights of weighted fair share."""

    headroom: float = 0.95
    """Share of the current capacity (minus the queue) handed out."""
    demand_margin: float = 1.0
    open_multiplier: float = 2.0
    min_multiplier: float = 0.05
    weights: dict[str, float] = per_tier(1.0, free=1.0, pro=3.0, max=5.0, team=5.0, enterprise=10.0, api=4.0)


class FairShareRule(Rule):
    """``fair-share``: capacity partitioned per tier by weight, unused share lent out.

    Budget B = ``headroom x`` current capacity minus queued tokens. Each tier's
    admitted budget is its weighted max-min fair share of B over the forecast
    demand (persistence x weekly profile x ``demand_margin``), counting only what
    the ``open_multiplier`` quota would admit: tier i gets ``min(D_i, w_i x lambda)``.
    The budget becomes a quota multiplier through the
    Lomax usage model, capped at ``open_multiplier``, floored at ``min_multiplier``.
    """

    name = "fair-share"
    Params = FairShareParams
    space = (
        # widened (issue 12) from 1.5: a CMA-ES tune stopped there (the Lomax usage model over-predicts
        # what a quota admits, so handing out more than the capacity can still fill it)
        Dim("headroom", 0.5, 2.0),
        # widened (issue 12) from 4.0: CMA-ES stopped there. A large margin makes a tier ask for more than
        # its forecast, so fair share lends less of its share away.
        Dim("demand_margin", 0.7, 8.0, log=True),
        Dim("open_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
        Dim("weights", 0.5, 20.0, log=True, per_tier=True),
    )

    def target(self, obs, state):
        return self.fair_share_target(obs, self.ctx.week_step(obs)), state

    def fair_share_target(self, obs: np.ndarray, week_step: np.ndarray) -> np.ndarray:
        """(N, T) the target multipliers, given the observation's step of the week."""
        c, k = self.ctx, self.k
        demand = c.demand_forecast(obs, week_step) * k["demand_margin"]
        users = c.users(obs)
        wanted = c.admitted_at(demand, users, k["open_multiplier"])  # the most a tier takes at its open quota
        budget = np.maximum(k["headroom"][:, 0] * c.capacity_tokens(obs) - c.queue_tokens(obs).sum(axis=1), 0.0)
        admitted = weighted_max_min(wanted, k["weights"], budget)
        target = c.multiplier_for_admitted(demand, users, admitted)
        return np.clip(target, k["min_multiplier"], k["open_multiplier"])


