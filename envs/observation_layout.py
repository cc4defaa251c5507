"""Observation layout that needs only the provider and tier counts: block order, index names, bounds.

:data:`TIER_BLOCKS` orders the per-tier blocks, :func:`names` names every index
and :func:`bounds` gives the per-index clipping bounds. :mod:`envs.params`
compiles the bounds into ``Params.obs_low``/``obs_high`` and :mod:`envs.observation`
(the layout table, :func:`~envs.observation.build`) re-exports all three; this
module imports nothing from ``envs`` so both can use it.
"""

from __future__ import annotations

import numpy as np

TIER_BLOCKS = ("demand", "queue", "latency_over_target", "throttled_share", "users", "quota")
V1_TIER_BLOCKS = ("sla_availability", "sla_latency_attainment")
"""Per-tier blocks Rationing-v1 appends after ``burst_on_order`` (which follows the v0 layout)."""


def names(provider_names: tuple[str, ...] | list[str], tier_names: tuple[str, ...] | list[str],
          version: int = 0) -> list[str]:
    """Name of every observation index, in order (v1 appends to the v0 layout)."""
    out = ["hour_sin", "hour_cos", "week_sin", "week_cos"]
    out += [f"capacity/{p}" for p in provider_names]
    out += ["burst_capacity", "utilisation", "collapsed"]
    for block in TIER_BLOCKS:
        out += [f"{block}/{t}" for t in tier_names]
    if version >= 1:
        out += ["burst_on_order"]
        for block in V1_TIER_BLOCKS:
            out += [f"{block}/{t}" for t in tier_names]
    return out


def bounds(n_providers: int, n_tiers: int, quota_min: float, quota_max: float,
           version: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-index (low, high) of the observation; :func:`envs.observation.build` clips to them."""
    P, T = n_providers, n_tiers
    low = [-1.0] * 4 + [0.0] * P + [0.0, 0.0, 0.0]
    high = [1.0] * 4 + [10.0] * P + [10.0, 1.0, 1.0]
    blocks = {
        "demand": (0.0, 1000.0),
        "queue": (0.0, 1000.0),
        "latency_over_target": (-20.0, 20.0),
        "throttled_share": (0.0, 1.0),
        "users": (0.0, 1000.0),
        "quota": (float(np.log(quota_min)), float(np.log(quota_max))),
    }
    for block in TIER_BLOCKS:
        lo, hi = blocks[block]
        low += [lo] * T
        high += [hi] * T
    if version >= 1:  # burst GPUs on order / contracted, running SLA attainments
        low += [0.0] + [0.0] * (len(V1_TIER_BLOCKS) * T)
        high += [10.0] + [1.0] * (len(V1_TIER_BLOCKS) * T)
    return np.asarray(low, dtype=np.float32), np.asarray(high, dtype=np.float32)
