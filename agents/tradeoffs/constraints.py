"""Operator constraints (``enterprise.latency_attainment>=0.99``): grammar, validation and their values.

Grammar: ``TIER.METRIC OP LIMIT`` (spaces allowed around ``OP``), with ``TIER`` a tier name of
the scenario or ``all``, ``OP`` one of ``>=`` ``<=`` and ``LIMIT`` a finite number; metrics:

| metric               | meaning (over an episode)                                               | range  |
|----------------------|-------------------------------------------------------------------------|--------|
| latency_attainment   | share of the tier's served tokens within its latency target             | 0..1   |
| churn_per_month      | users lost / users at the start, per 30 days (x 720 h / episode hours)  | 0..1   |
| throttled_share      | share of the tier's demanded tokens its quota refused                   | 0..1   |

A bad constraint is a :class:`ConstraintError` of one line naming the constraint, the part
(tier, metric, operator, limit) and what is allowed.

Each metric is a ratio of sums over the episode (``num / den``, per tier or over all tiers) of
a *bad* quantity: late tokens / served tokens (= 1 - attainment), churned users / users
(per step, x steps per month), throttled / demanded tokens. A constraint bounds it from above
(``latency_attainment >= 0.99`` is ``bad <= 0.01``; ``sense = +1``) or from below (``sense = -1``).
:mod:`agents.tradeoffs.lagrangian` turns the per-step ``num`` into the cost PPO-Lagrangian
charges, and :func:`episode_values` computes the metric per seed from an evaluation's metrics.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METRICS = ("latency_attainment", "churn_per_month", "throttled_share")
OPS = (">=", "<=")
HOURS_PER_MONTH = 720.0
_GRAMMAR = re.compile(r"^\s*([^.\s<>=]+)\.([^\s<>=]+)\s*(>=|<=|=>|=<|<|>|==|=)?\s*(.*?)\s*$")


class ConstraintError(ValueError):
    """A constraint that does not parse or does not fit the scenario; the message is one line."""


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint, e.g. ``Constraint("enterprise", "latency_attainment", ">=", 0.99)``."""

    tier: str
    metric: str
    op: str
    limit: float

    @property
    def name(self) -> str:
        """The canonical text (also a file- and TensorBoard-safe tag once ``>=``/``<=`` are replaced)."""
        return f"{self.tier}.{self.metric}{self.op}{self.limit:g}"

    @property
    def tag(self) -> str:
        return f"{self.tier}.{self.metric}_{'ge' if self.op == '>=' else 'le'}_{self.limit:g}"

    @property
    def sense(self) -> float:
        """+1: the bad quantity is bounded from above (the usual case), -1: from below."""
        upper = self.op == "<="
        return 1.0 if (upper != (self.metric == "latency_attainment")) else -1.0

    @property
    def bad_limit(self) -> float:
        """The limit on the bad quantity (1 - attainment for latency_attainment)."""
        return 1.0 - self.limit if self.metric == "latency_attainment" else self.limit

    def satisfied(self, value: np.ndarray | float) -> np.ndarray:
        v = np.asarray(value, np.float64)
        return v >= self.limit if self.op == ">=" else v <= self.limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Constraint:
        return cls(str(d["tier"]), str(d["metric"]), str(d["op"]), float(d["limit"]))


def parse_constraint(text: str, tier_names: list[str]) -> Constraint:
    """One constraint, checked against the scenario's tiers; :class:`ConstraintError` (one line) if bad."""
    where = f"--constraint {text!r}"
    m = _GRAMMAR.match(str(text))
    if not m or not m.group(3):
        raise ConstraintError(f"{where}: must read TIER.METRIC>=LIMIT or TIER.METRIC<=LIMIT, "
                              "e.g. enterprise.latency_attainment>=0.99")
    tier, metric, op, value = m.groups()
    if tier != "all" and tier not in tier_names:
        raise ConstraintError(f"{where}: tier {tier!r} must be one of {', '.join(tier_names)} or all")
    if metric not in METRICS:
        raise ConstraintError(f"{where}: metric {metric!r} must be one of {', '.join(METRICS)}")
    if op not in OPS:
        raise ConstraintError(f"{where}: operator {op!r} must be one of {', '.join(OPS)}")
    try:
        limit = float(value)
    except ValueError:
        raise ConstraintError(f"{where}: limit {value!r} must be a number") from None
    c = Constraint(tier, metric, op, limit)
    if not math.isfinite(limit) or not 0.0 < c.bad_limit < 1.0:
        raise ConstraintError(f"{where}: limit {value!r} must be a finite number strictly between 0 and 1")
    return c


def parse_constraints(texts: list[str] | None, tier_names: list[str]) -> list[Constraint]:
    """Every ``--constraint``; a repeated one is refused."""
    out: list[Constraint] = []
    for text in texts or []:
        c = parse_constraint(text, tier_names)
        if any((o.tier, o.metric, o.op) == (c.tier, c.metric, c.op) for o in out):
            raise ConstraintError(f"--constraint {text!r}: {c.tier}.{c.metric}{c.op} is given twice")
        out.append(c)
    return out


def _pick(x: np.ndarray, tier: str, tier_names: list[str]) -> np.ndarray:
    """(..., T) -> (...) the tier's column or the sum over tiers."""
    return x.sum(axis=-1) if tier == "all" else x[..., tier_names.index(tier)]


def step_terms(c: Constraint, info: dict[str, np.ndarray], tier_names: list[str],
               dt_h: float) -> tuple[np.ndarray, np.ndarray]:
    """(num, den), each (N,), of the bad quantity in one step's batched info (ratio of sums = the metric)."""
    if c.metric == "latency_attainment":
        return _pick(info["late_tokens"], c.tier, tier_names), _pick(info["served_tokens"], c.tier, tier_names)
    if c.metric == "churn_per_month":
        per_month = HOURS_PER_MONTH / dt_h
        return (_pick(info["churned_users"], c.tier, tier_names) * per_month,
                _pick(info["users"], c.tier, tier_names))
    return _pick(info["throttled_tokens"], c.tier, tier_names), _pick(info["demand_tokens"], c.tier, tier_names)


def metric_from_bad(c: Constraint, bad: np.ndarray | float) -> np.ndarray:
    """The metric (in the constraint's units) from the bad quantity."""
    b = np.asarray(bad, np.float64)
    return 1.0 - b if c.metric == "latency_attainment" else b


def episode_values(c: Constraint, metrics: dict[str, np.ndarray], tier_names: list[str], users0: np.ndarray,
                   episode_hours: float) -> np.ndarray:
    """(N,) the constraint's metric per seed from :func:`agents.evaluate.metrics.episode_metrics`."""
    if c.metric == "latency_attainment":
        key = "latency_attainment"
        return metrics[f"{key}_all"] if c.tier == "all" else metrics[key][:, tier_names.index(c.tier)]
    if c.metric == "throttled_share":
        key = "throttled_share"
        return metrics[f"{key}_all"] if c.tier == "all" else metrics[key][:, tier_names.index(c.tier)]
    churned = _pick(np.asarray(metrics["churned_users"], np.float64), c.tier, tier_names)
    start = float(_pick(np.asarray(users0, np.float64), c.tier, tier_names))
    return churned / start * (HOURS_PER_MONTH / episode_hours)


__all__ = ["METRICS", "OPS", "Constraint", "ConstraintError", "episode_values", "metric_from_bad",
           "parse_constraint", "parse_constraints", "step_terms"]
