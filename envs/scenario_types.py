"""The bounded number types every scenario field uses, and the strict base model (no unknown field, no inf/NaN)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# Every number is finite (``allow_inf_nan=False``) and of a representable size: with these bounds a
# scenario that passes validation never produces a non-finite observation, reward or info value
# (tests/envs/test_scenario_values.py steps random scenarios drawn up to the bounds).
MAX_VALUE = 1e12
MIN_POSITIVE = 1e-9
NonNeg = Annotated[float, Field(ge=0.0, le=MAX_VALUE)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(ge=MIN_POSITIVE, le=MAX_VALUE)]
Money = Annotated[float, Field(ge=0.0, le=1e6)]
"""Prices, rents and costs in US dollars (per month, GPU hour or million tokens)."""
Rate = Annotated[float, Field(ge=0.0, le=1e4)]
"""Events or fractions per day, week or month."""
Hours = Annotated[float, Field(ge=1e-6, le=1e6)]
"""Durations, memories and decay times (hours or days)."""
Big = Annotated[float, Field(ge=0.0, le=1e6)]


def _range(lo: float, hi: float) -> Any:
    return Annotated[float, Field(ge=lo, le=hi)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
