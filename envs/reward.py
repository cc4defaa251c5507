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

One formula for the scalar and the vector reward: the *components*
(:data:`COMPONENTS`, dollars per step, signed so that higher is better:
``margin_usd``, ``-latency_penalty_usd``, ``-churn_penalty_usd`` and on v1
``-sla_credit_usd``) are what ``reward="vector"`` returns (:mod:`envs.vector_reward`),
and the scalar reward is :func:`weighted_sum` of them with :func:`component_weights`,
bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .arrays import row_dot
from .params import Params

#: Reward components (dollars per step, higher is better) in vector order; v0 has the first three.
COMPONENTS = ("margin_usd", "latency_penalty_usd", "churn_penalty_usd", "sla_credit_usd")
#: Sign of each component in the vector (penalties and credits are costs: negated).
COMPONENT_SIGNS = (1.0, -1.0, -1.0, -1.0)


def n_components(version: int) -> int:
    """Reward components of env ``version``: 3 on v0, 4 (with SLA credits) on v1."""
    return 4 if version >= 1 else 3


def component_weights(p: Params) -> tuple[float, ...]:
    """Weight of each signed component in the scalar reward (before ``/ scale_usd``)."""
    w = (p.margin_weight, p.latency_weight, p.churn_weight, p.margin_weight)
    return w[: n_components(p.env_version)]


def weighted_sum(columns: Sequence[np.ndarray], weights: Sequence[float], scale_usd: float) -> np.ndarray:
    """``sum_i weights_i x columns_i / scale_usd``, accumulated left to right (the scalar reward's formula)."""
    r = weights[0] * columns[0]
    for w, c in zip(weights[1:], columns[1:]):
        r = r + w * c
    r *= 1.0 / scale_usd
    return r


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
    columns = [margin_usd, -latency_pen, -churn_pen]
    if sla_credit_usd is not None:  # v1
        columns.append(-sla_credit_usd)
    weights = (p.margin_weight, p.latency_weight, p.churn_weight, p.margin_weight)
    r = weighted_sum(columns, weights[: len(columns)], p.reward_scale_usd)
    return RewardTerms(r, latency_pen, churn_pen)
