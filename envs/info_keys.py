"""The names of the step's info entries (:meth:`envs.core.RationingCore.step`), by shape."""

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
