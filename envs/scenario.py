"""Scenario files: schema, loading and validation.

A scenario is a YAML file in ``envs/scenarios/`` (or any path) that describes one
simulated world: the cloud providers and their contested capacity, the subscription
tiers and their demand, how users respond to limits and latency, and the reward
weights. Every number carries its unit in its name (``_usd``, ``_s``, ``_h``,
``_tokens``, ``_per_day``...).

A scenario may start from another one with ``base: <name>``; the base is loaded
first and the file's fields are deep-merged over it: mappings merge key by key,
lists of named items (``providers``, ``tiers``) merge item by item on ``name``
(a new name is appended), other lists are replaced whole.

Validation is strict: an unknown field, a wrong type or an out-of-range value is
refused with a :class:`ScenarioError` whose one-line message names the file, the
field path, the value and what is allowed, e.g.::

    scenario 'bad.yaml': field tiers[2].price_usd_per_month = -5: must be >= 0

This module loads, merges and validates scenario files; the models themselves
(:class:`Scenario` and its sections) live in :mod:`envs.scenario_schema` and are
re-exported here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .scenario_schema import (
    ActionConfig,
    AgenticConfig,
    BurstConfig,
    CapacityConfig,
    ChurnConfig,
    DemandConfig,
    DemandEvent,
    NonNeg,
    OutageEvent,
    Positive,
    ProfileConfig,
    ProviderConfig,
    RandomizationConfig,
    RewardConfig,
    Scenario,
    ServingConfig,
    Share,
    TierConfig,
    TimeConfig,
    TimezoneShare,
    TraceConfig,
)
from .scenario_schema import _Strict as _Strict  # noqa: F401  (kept importable from here)

__all__ = [
    "SCENARIO_DIR",
    "ActionConfig",
    "AgenticConfig",
    "BurstConfig",
    "CapacityConfig",
    "ChurnConfig",
    "DemandConfig",
    "DemandEvent",
    "NonNeg",
    "OutageEvent",
    "Positive",
    "ProfileConfig",
    "ProviderConfig",
    "RandomizationConfig",
    "RewardConfig",
    "Scenario",
    "ScenarioError",
    "ServingConfig",
    "Share",
    "TierConfig",
    "TimeConfig",
    "TimezoneShare",
    "TraceConfig",
    "available_scenarios",
    "load_scenario",
]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
MAX_SCENARIO_BYTES = 4 << 20


class ScenarioError(ValueError):
    """A scenario file or name that cannot be used; the message is one line."""


# -------------------------------------------------------------------------- loading
def available_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``envs/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def _resolve_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text in available_scenarios():
        return SCENARIO_DIR / f"{text}.yaml"
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    raise ScenarioError(
        f"unknown scenario {text!r}: use one of {available_scenarios()} or a path to a .yaml file"
    )


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        elif _named_list(value) and _named_list(out.get(key)):
            merged = {item["name"]: item for item in out[key]}
            for item in value:
                merged[item["name"]] = _deep_merge(merged.get(item["name"], {}), item)
            out[key] = list(merged.values())
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_raw(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ScenarioError(f"scenario {path.name!r}: 'base' chain loops through {[p.name for p in seen]}")
    try:
        if not path.is_file():
            raise ScenarioError(f"scenario {str(path)!r}: not a regular file")
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"scenario {str(path)!r}: {path.stat().st_size:,} bytes, more than the limit of "
                                f"{MAX_SCENARIO_BYTES:,}")
        raw = yaml.safe_load(path.read_bytes()[:MAX_SCENARIO_BYTES].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"scenario {str(path)!r}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"scenario {path.name!r}:{where} is not valid YAML") from None
    except OSError as exc:
        raise ScenarioError(f"scenario {str(path)!r}: cannot read ({exc.strerror})") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"scenario {path.name!r}: must be a YAML mapping of fields")
    trace = raw.get("demand", {}).get("trace") if isinstance(raw.get("demand"), dict) else None
    if isinstance(trace, dict) and isinstance(trace.get("path"), str):
        trace["path"] = str((path.parent / trace["path"]).resolve())  # relative to this file
    base_name = raw.pop("base", None)
    if base_name is not None:
        if not isinstance(base_name, str):
            raise ScenarioError(f"scenario {path.name!r}: field base = {base_name!r}: must be a scenario name")
        sibling = path.parent / f"{base_name}.yaml"
        base_path = sibling if sibling.is_file() else _resolve_path(base_name)
        raw = _deep_merge(_read_raw(base_path, seen + (path,)), raw)
    return raw


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _value_at(raw: Any, loc: tuple[Any, ...]) -> tuple[bool, Any]:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


def _error_message(source: str, raw: dict[str, Any], exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    # Drop pydantic's internal tags (e.g. 'function-after[...]') from the location.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    field = _format_loc(loc)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"scenario {source}: unknown field {field!r}"
    if err["type"] == "missing":
        return f"scenario {source}: field {field!r} is required"
    if err["type"] == "value_error":
        # Our own validators already say "name = value: must ...".
        prefix = f"field {field}." if field else "field "
        return f"scenario {source}: {prefix}{msg}"
    found, value = _value_at(raw, loc)
    shown = f" = {value!r}" if found else ""
    return f"scenario {source}: field {field}{shown}: {msg[:1].lower() + msg[1:]}"


def load_scenario(name_or_path: str | Path | Scenario, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario by shipped name or file path.

    ``overrides`` is a nested mapping merged over the file (e.g.
    ``{"reward": {"churn_weight": 2.0}}``) before validation. Raises
    :class:`ScenarioError` with a one-line message on any problem.
    """
    if isinstance(name_or_path, Scenario):
        if not overrides:
            return name_or_path
        raw = name_or_path.model_dump(mode="python")
        source = repr(name_or_path.name)
    else:
        path = _resolve_path(name_or_path)
        raw = _read_raw(path)
        source = repr(path.name if path.parent == SCENARIO_DIR else str(path))
    if overrides:
        raw = _deep_merge(raw, overrides)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(_error_message(source, raw, exc)) from None
