"""``fair-share-tod``: weighted fair share with a per-tier time-of-week adjustment table."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .allocation import FairShareParams, FairShareRule
from .base import Dim
from .context import per_tier

BLOCK_HOURS = 4
"""Hours per block of the adjustment table: 6 blocks a day, starting at 0h, 4h, ..., 20h (scenario clock)."""
DAY_TYPES = ("weekday", "weekend")
TABLE_FIELDS = tuple(f"{d}_{h}h" for d in DAY_TYPES for h in range(0, 24, BLOCK_HOURS))
"""Params fields of the table, in (day type, block) order: ``weekday_0h`` .. ``weekend_20h``."""
LOG_RANGE = 1.5
"""Tuning range of each table entry: log multipliers in [-1.5, 1.5] (x0.22 .. x4.5)."""


@dataclass(frozen=True)
class FairShareTodParams(FairShareParams):
    """Fair share's parameters, plus per tier a natural-log multiplier for each (day type, 4-hour block).

    ``weekday_8h = {"free": 0.3}``: on Monday to Friday 08:00-11:59 the free tier's quota is
    e^0.3 = 1.35 x what fair share sets. Zero (the default) everywhere is ``fair-share``.
    """

    weekday_0h: dict[str, float] = per_tier(0.0)
    weekday_4h: dict[str, float] = per_tier(0.0)
    weekday_8h: dict[str, float] = per_tier(0.0)
    weekday_12h: dict[str, float] = per_tier(0.0)
    weekday_16h: dict[str, float] = per_tier(0.0)
    weekday_20h: dict[str, float] = per_tier(0.0)
    weekend_0h: dict[str, float] = per_tier(0.0)
    weekend_4h: dict[str, float] = per_tier(0.0)
    weekend_8h: dict[str, float] = per_tier(0.0)
    weekend_12h: dict[str, float] = per_tier(0.0)
    weekend_16h: dict[str, float] = per_tier(0.0)
    weekend_20h: dict[str, float] = per_tier(0.0)


assert tuple(f.name for f in fields(FairShareTodParams) if f.name not in
             {g.name for g in fields(FairShareParams)}) == TABLE_FIELDS


class FairShareTodRule(FairShareRule):
    """``fair-share-tod``: ``fair-share``, then a per-tier time-of-week multiplier from a learned table.

    Rule: tier i's target is fair share's target (capped at ``open_multiplier``, floored
    at ``min_multiplier``) times ``exp(table[day type, block, i])``, where the day type
    is weekday (Monday-Friday) or weekend and the block is the 4-hour block of the
    scenario-clock hour the action applies to (read from the observation's time
    features). The table's 2 x 6 x T log multipliers are parameters (``weekday_0h`` ..
    ``weekend_20h``, per tier), tuned with fair share's own; all zero it is ``fair-share``.
    What it can learn that fair share cannot: the demand profile's predictable shape,
    e.g. admit more API tokens or throttle the free tier less at weekday peaks than the
    one-step forecast suggests. Causal: only the observation and the scenario's static
    facts. ``seed_from``: the tuner also starts it from ``fair-share``'s tuned values.
    """

    name = "fair-share-tod"
    Params = FairShareTodParams
    seed_from = "fair-share"
    space = FairShareRule.space + tuple(Dim(f, -LOG_RANGE, LOG_RANGE, per_tier=True) for f in TABLE_FIELDS)

    def _setup(self) -> None:
        super()._setup()
        k = self.k
        b, t = k[TABLE_FIELDS[0]].shape
        table = np.stack([k[f] for f in TABLE_FIELDS], axis=1)  # (B, 12, T)
        self.tod = np.exp(table).reshape(b, len(DAY_TYPES), 24 // BLOCK_HOURS, t)  # (B, 2, 6, T) multipliers

    def target(self, obs, state):
        week_step = self.ctx.week_step(obs)
        base = self.fair_share_target(obs, week_step)
        hour, day = self.ctx.clock(obs, week_step)
        weekend = (day >= 5).astype(np.int64)
        block = hour // BLOCK_HOURS
        if self.tod.shape[0] == 1:
            return base * self.tod[0, weekend, block], state
        return base * self.tod[np.arange(obs.shape[0]), weekend, block], state
