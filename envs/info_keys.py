"""The names of the step's info entries (:meth:`envs.core.RationingCore.step`), by shape, and where the
compiled step keeps them (:func:`info_layout`, :func:`buffer_row_info`)."""

from __future__ import annotations

#: Per-tier info keys, each an array of shape (N, T) in the core, (T,) in the single env.
TIER_INFO_KEYS = (
    "demand_tokens", "fresh_demand_tokens", "retry_tokens", "admitted_tokens", "throttled_tokens",
    "deferred_tokens", "lost_tokens", "served_tokens", "queue_tokens", "timed_out_tokens",
    "latency_s", "latency_attainment", "late_tokens", "throttled_user_share", "users",
    "churned_users", "new_users", "revenue_usd", "quota_multiplier", "agentic_share",
    "agentic_tokens_per_request",
)
#: Scalar info keys, each an array of shape (N,) in the core, a float in the single env.
SCALAR_INFO_KEYS = (
    "capacity_tokens", "utilisation", "pressure", "collapsed", "burst_gpus", "cost_usd", "rent_usd",
    "burst_cost_usd", "variable_cost_usd", "revenue_total_usd", "margin_usd", "latency_penalty_usd",
    "churn_penalty_usd", "reward", "step", "hour_of_week",
)
#: Per-provider info key, shape (N, P).
PROVIDER_INFO_KEYS = ("provider_gpus", "reclaimed_share")
#: Per-tier info keys Rationing-v1 adds, (N, T).
V1_TIER_INFO_KEYS = ("failed_tokens", "collapse_failed_tokens", "sla_credit_usd", "sla_availability",
                     "sla_latency_attainment")
#: Scalar info keys Rationing-v1 adds, (N,).
V1_SCALAR_INFO_KEYS = ("sla_credit_total_usd", "burst_on_order_gpus", "batch_occupancy")


def info_layout(n_tiers: int, n_providers: int, version: int, tier_keys, provider_keys, scalar_keys) -> dict:
    """Info key -> row slice (blocks) or row (scalars) of the kernel's info buffer (info_width, N)."""
    T, P = n_tiers, n_providers
    out = {k: slice(i * T, (i + 1) * T) for i, k in enumerate(tier_keys)}
    base = len(tier_keys) * T
    out |= {k: slice(base + i * P, base + (i + 1) * P) for i, k in enumerate(provider_keys)}
    base += len(provider_keys) * P
    out |= {k: base + i for i, k in enumerate(scalar_keys)}
    return out


def buffer_row_info(core, k: int) -> dict:
    """Row ``k`` of the last compiled step's info as the single env reports it (floats and (T,)/(P,) views)."""
    T, P = core.n_tiers, core.params.n_providers
    row = core.info_buffer[:, k]  # (info_width, N): row k is column k
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
