"""Economics: revenue, cost and gross margin per step, in US dollars."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import row_dot, row_sum
from .params import Params


class Ledger(NamedTuple):
    revenue_usd: np.ndarray
    """(N, T) subscriptions prorated to the step + API tokens served x price."""
    rent_usd: np.ndarray
    """(N,) contracted GPUs not reclaimed x rent (paid whether used or not)."""
    burst_cost_usd: np.ndarray
    """(N,) burst GPUs x premium rent."""
    variable_cost_usd: np.ndarray
    """(N,) tokens served x variable cost."""
    cost_usd: np.ndarray
    """(N,) rent + burst + variable."""
    margin_usd: np.ndarray
    """(N,) total revenue - cost (gross margin)."""


def ledger(p: Params, users: np.ndarray, served_tokens: np.ndarray, billed_gpus: np.ndarray,
           burst_gpus: np.ndarray) -> Ledger:
    revenue = users * p.price_usd_per_user_step + served_tokens * p.api_price_usd_per_token
    rent = row_dot(billed_gpus, p.rent_usd_per_gpu_step)
    burst = burst_gpus * p.burst_rent_usd_per_gpu_step
    variable = row_sum(served_tokens) * p.variable_cost_usd_per_token
    cost = rent + burst + variable
    margin = row_sum(revenue) - cost
    return Ledger(revenue, rent, burst, variable, cost, margin)
