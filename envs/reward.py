"""Reward: gross margin minus weighted latency misses minus weighted churn.

    reward = (margin_weight x margin_usd
              - latency_weight x latency_penalty_usd
              - churn_weight x churn_penalty_usd) / scale_usd

with ``latency_penalty_usd = sum_i late_tokens_i x late_penalty_usd_per_mtok_i / 1e6``
(late tokens = served tokens x (1 - attainment)) and
``churn_penalty_usd = sum_i churned_users_i x lifetime_value_usd_i``.

Rationing-v1 also subtracts SLA credits (:mod:`envs.contracts`), dollars of
revenue given back, weighted like the margin::

    reward_v1 = reward - margin_weight x sla_credit_usd / scale_usd
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import row_dot
from .params import Params


class RewardTerms(NamedTuple):
    reward: np.ndarray
    """(N,) scaled reward."""
    latency_penalty_usd: np.ndarray
    """(N,) unweighted latency penalty, dollars."""
    churn_penalty_usd: np.ndarray
    """(N,) unweighted lifetime value lost to churn, dollars."""


def reward(p: Params, margin_usd: np.ndarray, late_tokens: np.ndarray, churned_users: np.ndarray,
           sla_credit_usd: np.ndarray | None = None) -> RewardTerms:
    # row-wise (envs.arrays), not BLAS: results must not depend on the batch size
    latency_pen = row_dot(late_tokens, p.late_penalty_usd_per_token)
    churn_pen = row_dot(churned_users, p.lifetime_value_usd)
    r = p.margin_weight * margin_usd - p.latency_weight * latency_pen - p.churn_weight * churn_pen
    if sla_credit_usd is not None:  # v1
        r = r - p.margin_weight * sla_credit_usd
    r *= 1.0 / p.reward_scale_usd
    return RewardTerms(r, latency_pen, churn_pen)
