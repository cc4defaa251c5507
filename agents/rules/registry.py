"""Every rule by name, and rule parameters to and from plain data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .allocation import FairShareRule, PredictiveRule, TierPriorityRule
from .base import Dim, Rule, tier_values
from .context import RuleContext, RuleError
from .feedback import AIMDRule, LatencyGradientRule
from .schedules import StaticRule, TimeOfUseRule
from .timeofday import FairShareTodRule

RULES: dict[str, type[Rule]] = {
    r.name: r for r in (StaticRule, TimeOfUseRule, TierPriorityRule, AIMDRule, PredictiveRule, FairShareRule,
                        LatencyGradientRule, FairShareTodRule)
}
"""Every rule by name, in the order tables list them."""


# ------------------------------------------------------------------------ params <-> data
def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a Params dataclass (per-tier dicts copied)."""
    return {f.name: (dict(v) if isinstance(v := getattr(params, f.name), dict) else v)
            for f in dataclasses.fields(params)}


def params_from_dict(rule: str | type[Rule], data: dict[str, Any] | None) -> Any:
    """Build a rule's Params from a (possibly partial) dict; unknown keys and wrong types are one-line errors."""
    cls = RULES[rule] if isinstance(rule, str) else rule
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RuleError(f"{cls.name}: unknown parameter {unknown[0]!r} (parameters: {', '.join(fields) or 'none'})")
    defaults = cls.Params()
    values: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if isinstance(default, dict):
            if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
                raise RuleError(f"{cls.name}.{name}: must map tier names to numbers, got {value!r}")
            values[name] = {str(t): float(v) for t, v in value.items()}
        elif isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or float(value) != int(value):
                raise RuleError(f"{cls.name}.{name}: must be an integer, got {value!r}")
            values[name] = int(value)
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RuleError(f"{cls.name}.{name}: must be a number, got {value!r}")
            values[name] = float(value)
    return dataclasses.replace(defaults, **values)


def flat_coordinates(rule: type[Rule], tier_names: Sequence[str]) -> list[tuple[Dim, str | None]]:
    """The search coordinates of a rule: one per scalar dim, one per tier of per-tier dims."""
    return [(d, t) for d in rule.space for t in (tier_names if d.per_tier else [None])]


def with_value(params: Any, dim: Dim, tier: str | None, value: float) -> Any:
    """``params`` with one coordinate set (integers rounded)."""
    v: Any = int(round(value)) if dim.integer else float(value)
    if tier is None:
        return dataclasses.replace(params, **{dim.name: v})
    return dataclasses.replace(params, **{dim.name: {**getattr(params, dim.name), tier: v}})


def get_value(params: Any, dim: Dim, tier: str | None, tier_names: Sequence[str]) -> float:
    v = getattr(params, dim.name)
    if tier is None:
        return float(v)
    return float(tier_values(tier_names, v, dim.name)[list(tier_names).index(tier)])


def make_rule(name: str, context: RuleContext, params: Any = None) -> Rule:
    """A rule by name; ``params`` a Params instance, a dict, or None for the defaults."""
    cls = RULES[name]
    if isinstance(params, dict) or params is None:
        params = params_from_dict(cls, params)
    return cls(context, params)

