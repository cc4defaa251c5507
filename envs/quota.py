"""Quotas: the action mapping and per-tier quota enforcement.

Action mapping (the only place it is defined): an action ``a`` in [-1, 1]^T
multiplies each tier's quota multiplier by ``quota_step_factor ** a`` and clips it
to ``[quota_min, quota_max]``. The quota a user of tier i gets per step is
``multiplier_i x quota_tokens_per_user_hour_i x step hours``.

Enforcement: usage per user within a tier is Lomax (Pareto II) distributed with
tail index ``alpha`` (Gini ``alpha / (2 alpha - 1)``), scaled so its mean is the
tier's demand per user this step. A user's admitted tokens are ``min(usage,
quota)``, so in closed form, with ``z = 1 + quota / (mean (alpha - 1))``::

    admitted_tokens      = demand_tokens x (1 - z ** -(alpha - 1))
    throttled_user_share = z ** -alpha          (share of users who hit the quota)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import power
from .params import Params


def apply_action(p: Params, quota_multiplier: np.ndarray, action: np.ndarray) -> np.ndarray:
    """New (N, T) quota multipliers after a (N, T) action in [-1, 1] (clipped)."""
    a = np.minimum(np.maximum(action, -1.0), 1.0)
    out = np.exp(p.log_quota_step * a)
    out *= quota_multiplier
    np.maximum(out, p.quota_min, out=out)
    np.minimum(out, p.quota_max, out=out)
    return out


def nan_action_error(p, row: int, col: int) -> ValueError:
    """The one-line error for a NaN at ``actions[row, col]``."""
    what = f"tier {p.tier_names[col]!r}" if col < p.n_tiers else "the burst order"
    return ValueError(f"action is NaN at row {row}, {what}: actions must be numbers "
                      "in [-1, 1] (out-of-range values and +-inf are clipped; NaN is refused)")


def action_for_multiplier(p: Params, current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The action that moves ``current`` multipliers as close as allowed to ``target``."""
    a = np.log(np.asarray(target, np.float64) / np.asarray(current, np.float64)) / p.log_quota_step
    return np.clip(a, -1.0, 1.0).astype(np.float32)


class Admission(NamedTuple):
    admitted_tokens: np.ndarray
    throttled_tokens: np.ndarray
    throttled_user_share: np.ndarray


def admit(p: Params, demand_tokens: np.ndarray, users: np.ndarray, quota_multiplier: np.ndarray) -> Admission:
    """Split (N, T) demand into admitted and throttled tokens under the quotas."""
    alpha = p.usage_alpha
    # z = 1 + quota / (mean usage x (alpha - 1)); per-user factors cancel: users x quota / demand
    z = quota_multiplier * users
    z *= p.quota_tokens_per_user_step / (alpha - 1.0)
    z /= np.maximum(demand_tokens, 1e-3)
    z += 1.0
    throttled = demand_tokens * power(z, 1.0 - alpha)
    throttled_share = power(z, -alpha)  # -> 0 as demand -> 0
    return Admission(demand_tokens - throttled, throttled, throttled_share)
