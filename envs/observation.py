"""Observation layout: names, units and scaling of every index.

The observation is a float32 vector; its layout for a scenario with providers
``p_1..p_P`` and tiers ``t_1..t_T`` is (``build`` fills it, ``names`` lists it):

| index            | name                      | meaning (scaling)                                        |
|------------------|---------------------------|----------------------------------------------------------|
| 0, 1             | hour_sin, hour_cos        | time of day, sin/cos of 2 pi hour/24                      |
| 2, 3             | week_sin, week_cos        | time of week, sin/cos of 2 pi hour/168 (0 = Monday 00:00) |
| 4 .. 4+P-1       | capacity/<provider>       | GPUs available / contracted GPUs                          |
| 4+P              | burst_capacity            | burst GPUs / total contracted GPUs                        |
| 5+P              | utilisation               | tokens served / capacity tokens this step                 |
| 6+P              | collapsed                 | 1 while the service is collapsed, else 0                  |
| then 6 blocks of T, each in tier order:                                                                  |
| block 0          | demand/<tier>             | demand tokens / week-average demand per step at start     |
| block 1          | queue/<tier>              | queued tokens / nominal capacity tokens per step          |
| block 2          | latency_over_target/<tier>| log(latency / target)                                     |
| block 3          | throttled_share/<tier>    | share of users hitting the quota, 0..1                    |
| block 4          | users/<tier>              | users / users at episode start                            |
| block 5          | quota/<tier>              | log(quota multiplier)                                     |

Every entry is clipped to the bounds given by :func:`bounds` (finite, generous).
``TIER_BLOCKS``, :func:`names` and :func:`bounds` are defined in
:mod:`envs.observation_layout` (they need only the counts; :mod:`envs.params`
uses them too) and re-exported here.

Size: ``7 + P + 6 T`` (45 for 2 providers and 6 tiers).

Rationing-v1 appends (so every v0 index keeps its place): ``burst_on_order``
(burst GPUs ordered and not yet serving / total contracted GPUs), then the blocks
``sla_availability/<tier>`` and ``sla_latency_attainment/<tier>`` (running
attainments since the episode start, :mod:`envs.contracts`), 0..1. Size
``8 + P + 8 T`` (58 for 2 providers and 6 tiers).
"""

from __future__ import annotations

import numpy as np

from .observation_layout import TIER_BLOCKS, V1_TIER_BLOCKS, bounds, names
from .params import Params

__all__ = ["TIER_BLOCKS", "V1_TIER_BLOCKS", "bounds", "build", "build_v1", "names", "size", "tier_block"]


def size(p: Params) -> int:
    v0 = 7 + p.n_providers + 6 * p.n_tiers
    return v0 if p.env_version == 0 else v0 + 1 + len(V1_TIER_BLOCKS) * p.n_tiers


def build_v1(p: Params, out: np.ndarray, on_order_gpus: np.ndarray, availability: np.ndarray,
             latency_attainment: np.ndarray) -> None:
    """Fill the v1 entries after the v0 layout (call before :func:`build`, which clips every entry)."""
    b = 7 + p.n_providers + 6 * p.n_tiers
    T = p.n_tiers
    out[:, b] = on_order_gpus
    out[:, b] *= 1.0 / float(p.contracted_gpus.sum())
    out[:, b + 1 : b + 1 + T] = availability
    out[:, b + 1 + T : b + 1 + 2 * T] = latency_attainment


def tier_block(p: Params, block: str) -> slice:
    """Slice of the observation holding ``block`` (one of TIER_BLOCKS) for all tiers."""
    start = 7 + p.n_providers + TIER_BLOCKS.index(block) * p.n_tiers
    return slice(start, start + p.n_tiers)


def build(
    p: Params,
    out: np.ndarray,
    week_step: np.ndarray,
    available_gpus: np.ndarray,
    burst_gpus: np.ndarray,
    utilisation: np.ndarray,
    collapsed: np.ndarray,
    demand_tokens: np.ndarray,
    queue_tokens: np.ndarray,
    latency_s: np.ndarray,
    throttled_share: np.ndarray,
    users: np.ndarray,
    quota_multiplier: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` (N, size) in place and return it."""
    P, T = p.n_providers, p.n_tiers
    hour_angle = (2.0 * np.pi / p.steps_per_day) * week_step
    week_angle = (2.0 * np.pi / p.steps_per_week) * week_step
    out[:, 0] = np.sin(hour_angle)
    out[:, 1] = np.cos(hour_angle)
    out[:, 2] = np.sin(week_angle)
    out[:, 3] = np.cos(week_angle)
    out[:, 4 : 4 + P] = available_gpus / p.contracted_gpus
    out[:, 4 + P] = burst_gpus / p.contracted_gpus.sum()
    out[:, 5 + P] = utilisation
    out[:, 6 + P] = collapsed
    b = 7 + P
    out[:, b : b + T] = demand_tokens / p.mean_demand_tokens_step
    b += T
    out[:, b : b + T] = queue_tokens / p.nominal_capacity_tokens_step
    b += T
    out[:, b : b + T] = np.log(np.maximum(latency_s, 1e-3) / p.latency_target_s)
    b += T
    out[:, b : b + T] = throttled_share
    b += T
    out[:, b : b + T] = users / p.users0
    b += T
    out[:, b : b + T] = np.log(quota_multiplier)
    np.maximum(out, p.obs_low, out=out)
    np.minimum(out, p.obs_high, out=out)
    return out
