"""Episode rollouts in the batched core and the evaluation metrics, vectorised over seeds.

:func:`rollout` runs one policy over N seeds of one scenario as a single batch
(row k = seed k) and keeps the per-step info arrays it needs;
:func:`episode_metrics` turns them into per-seed metrics; :func:`mean_ci`
aggregates over seeds. Definitions (also in ``agents.evaluate``'s docstring):

* ``episode_return``: sum of rewards (units of the scenario's ``reward.scale_usd``).
* ``margin_usd``, ``revenue_usd``, ``cost_usd``, ``latency_penalty_usd``,
  ``churn_penalty_usd``: sums over the episode, dollars.
* ``latency_attainment[tier]``: share of the tier's served tokens within its latency
  target, token-weighted over steps: ``sum(served x attainment) / sum(served)``
  (the env models each step's latency as exponential with the step's mean).
* ``p95_latency_s[tier]``: 95th percentile of the latency of the tier's served
  tokens over the episode: the quantile of the mixture over steps of exponential
  latencies (mean = the step's ``latency_s``) weighted by served tokens; the same
  latency model as attainment.
* ``churned_users[tier]``: users lost over the episode.
* ``throttled_share[tier]``: share of the tier's demanded tokens (fresh and
  retried) refused by its quota: ``sum(throttled) / sum(demand)``;
  ``throttled_user_share[tier]``: time-average share of users at their quota.
* ``collapse_hours``: hours the service was collapsed (``info["collapsed"]``).
* ``sla_credit_usd_all`` and ``sla_credit_usd[tier]``: SLA credits owed over the episode,
  dollars (Rationing-v1; 0 on v0, which has no contracts).
* ``failed_share_all``: failed / (served + failed) tokens; failed = timed out +
  failed in a collapse (v1's ``failed_tokens``; on v0 the timed-out tokens, which
  v0 does not charge). ``availability[tier]``: served / (served + failed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from envs import RationingCore

#: Info keys a rollout keeps for metrics and plots.
RECORD_KEYS = (
    "reward", "margin_usd", "revenue_total_usd", "cost_usd", "latency_penalty_usd", "churn_penalty_usd",
    "served_tokens", "latency_s", "latency_attainment", "demand_tokens", "throttled_tokens",
    "throttled_user_share", "churned_users", "collapsed", "capacity_tokens", "quota_multiplier", "users",
    "timed_out_tokens", "failed_tokens", "sla_credit_usd",
)
#: Recorded keys only Rationing-v1 reports (skipped on v0).
V1_ONLY_KEYS = ("failed_tokens", "sla_credit_usd")

#: Per-seed scalar metrics, in table order.
SCALAR_METRICS = (
    "episode_return", "margin_usd", "revenue_usd", "cost_usd", "latency_penalty_usd", "churn_penalty_usd",
    "latency_attainment_all", "churned_users_all", "throttled_share_all", "collapse_hours", "sla_credit_usd_all",
    "failed_share_all",
)
#: Per-seed per-tier metrics.
TIER_METRICS = ("latency_attainment", "p95_latency_s", "churned_users", "throttled_share", "throttled_user_share",
                "sla_credit_usd", "availability")


class Rollout(NamedTuple):
    returns: np.ndarray
    """(N,) episode returns."""
    series: dict[str, np.ndarray]
    """key -> (steps, N, ...) per-step info arrays (float64) for the recorded keys."""


def rollout(
    policy: Any,
    core: RationingCore,
    seeds: np.ndarray,
    keys: Sequence[str] = RECORD_KEYS,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    """Run ``policy`` for one episode on every row of ``core`` (row k gets ``seeds[k]``).

    The policy is called as SB3's ``predict(obs, state, episode_start, deterministic=True)``
    with its state passed back. ``keys=()`` keeps only the returns (fast path for tuning).
    """
    n = core.num_envs
    if core.params.env_version == 0:
        keys = [k for k in keys if k not in V1_ONLY_KEYS]
    seeds = np.asarray(seeds, dtype=np.uint64)
    if seeds.shape != (n,):
        raise ValueError(f"{len(seeds)} seeds for {n} env rows")
    obs = core.reset(seeds)
    state = None
    start = np.ones(n, dtype=bool)
    steps = core.params.episode_steps
    total = np.zeros(n, dtype=np.float64)
    series: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for t in range(steps):
        action, state = policy.predict(obs, state=state, episode_start=start, deterministic=True)
        if t == 0:
            start = np.zeros(n, dtype=bool)
        obs, reward, _, _, info = core.step(np.asarray(action, dtype=np.float32))
        total += reward
        for k in keys:
            series[k].append(np.array(info[k], dtype=np.float64))  # a copy: never a view the core may reuse
        if on_step is not None:
            on_step()
    return Rollout(total, {k: np.stack(v) for k, v in series.items()})


def mixture_quantile(mean: np.ndarray, weight: np.ndarray, q: float = 0.95, iters: int = 60) -> np.ndarray:
    """Quantile ``q`` of a weighted mixture of exponentials along axis 0, by bisection.

    ``mean``, ``weight``: (S, ...) step means and weights; returns (...) (NaN where
    the weights sum to 0).
    """
    w = np.asarray(weight, dtype=np.float64)
    mu = np.maximum(np.asarray(mean, dtype=np.float64), 1e-9)
    wsum = w.sum(axis=0)
    wn = w / np.where(wsum > 0, wsum, 1.0)
    lo = np.zeros(wsum.shape)
    hi = mu.max(axis=0) * -np.log1p(-q) * 1.0001 + 1e-9  # quantile of the slowest component bounds the mixture's
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        cdf = (wn * -np.expm1(-mid / mu)).sum(axis=0)
        below = cdf < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.where(wsum > 0, 0.5 * (lo + hi), np.nan)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def episode_metrics(ro: Rollout, dt_h: float) -> dict[str, np.ndarray]:
    """Per-seed metrics from a rollout: scalars (N,), per-tier (N, T). See the module docstring."""
    s = ro.series
    served = s["served_tokens"]
    demand = s["demand_tokens"]
    within = (served * s["latency_attainment"]).sum(axis=0)
    out: dict[str, np.ndarray] = {
        "episode_return": ro.returns.astype(np.float64),
        "margin_usd": s["margin_usd"].sum(axis=0),
        "revenue_usd": s["revenue_total_usd"].sum(axis=0),
        "cost_usd": s["cost_usd"].sum(axis=0),
        "latency_penalty_usd": s["latency_penalty_usd"].sum(axis=0),
        "churn_penalty_usd": s["churn_penalty_usd"].sum(axis=0),
        "latency_attainment": _ratio(within, served.sum(axis=0)),
        "p95_latency_s": mixture_quantile(s["latency_s"], served, 0.95),
        "churned_users": s["churned_users"].sum(axis=0),
        "throttled_share": _ratio(s["throttled_tokens"].sum(axis=0), demand.sum(axis=0)),
        "throttled_user_share": s["throttled_user_share"].mean(axis=0),
        "latency_attainment_all": _ratio(within.sum(axis=-1), served.sum(axis=(0, 2))),
        "churned_users_all": s["churned_users"].sum(axis=(0, 2)),
        "throttled_share_all": _ratio(s["throttled_tokens"].sum(axis=(0, 2)), demand.sum(axis=(0, 2))),
        "collapse_hours": s["collapsed"].sum(axis=0) * dt_h,
    }
    failed = s["failed_tokens"] if "failed_tokens" in s else s["timed_out_tokens"]
    credit = s["sla_credit_usd"].sum(axis=0) if "sla_credit_usd" in s else np.zeros_like(out["churned_users"])
    out["sla_credit_usd"] = credit  # (N, T); the total is sla_credit_usd_all
    out["availability"] = _ratio(served.sum(axis=0), served.sum(axis=0) + failed.sum(axis=0))
    out["failed_share_all"] = _ratio(failed.sum(axis=(0, 2)), served.sum(axis=(0, 2)) + failed.sum(axis=(0, 2)))
    out["sla_credit_usd_all"] = credit.sum(axis=-1)
    return out


# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof: int) -> float:
    if dof < 1:
        return float("nan")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_ci(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the 95% confidence interval (Student t) over ``axis``; NaN-aware.

    One sample gives a NaN half-width.
    """
    x = np.asarray(x, dtype=np.float64)
    n = np.sum(~np.isnan(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(x, axis=axis) / np.where(n > 0, n, 1)
        mean = np.where(n > 0, mean, np.nan)
        dev = np.where(np.isnan(x), 0.0, x - np.expand_dims(mean, axis))
        sd = np.sqrt((dev ** 2).sum(axis=axis) / np.maximum(n - 1, 1))
        t = np.vectorize(t975, otypes=[float])(np.maximum(n - 1, 0))
        half = np.where(n > 1, t * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, half
