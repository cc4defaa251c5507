"""Each constraint's satisfaction per policy and scenario, with 95% CIs over the evaluation seeds.

``python -m agents.evaluate ... --constraint "enterprise.latency_attainment>=0.99"`` (and the final
evaluation of a constrained ``train.py`` run) adds ``constraints.json`` and a Markdown table to the
evaluation: per policy, scenario and constraint, the metric's mean and 95% CI (Student t over seeds),
the share of seeds meeting it, and the verdict: **met** when the whole CI is on the allowed side of
the limit, **violated** when it is wholly on the other side, **unclear** otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.evaluate.metrics import mean_ci
from agents.tradeoffs.constraints import Constraint, episode_values


def verdict(c: Constraint, mean: float, half: float) -> str:
    lo, hi = mean - half, mean + half
    ok_all, ok_none = (lo >= c.limit, hi < c.limit) if c.op == ">=" else (hi <= c.limit, lo > c.limit)
    return "met" if ok_all else "violated" if ok_none else "unclear"


def constraint_rows(ev, constraints: list[Constraint], users0: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per policy, scenario and constraint (``users0``: users at the start per tier, by scenario)."""
    rows = []
    for cell in ev.cells:
        hours = cell.steps * cell.dt_h
        for c in constraints:
            values = episode_values(c, cell.metrics, cell.tier_names, users0[cell.scenario], hours)
            mean, half = (float(x) for x in mean_ci(values))
            half = 0.0 if not np.isfinite(half) else half
            rows.append({"policy": cell.label, "scenario": cell.scenario, "constraint": c.name,
                         "mean": mean, "ci95": half, "limit": c.limit, "op": c.op,
                         "seeds_met_share": float(np.mean(c.satisfied(values))), "n_seeds": int(len(values)),
                         "verdict": verdict(c, mean, half)})
    return rows


def constraint_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = ["## Constraints (mean ± 95% CI over seeds; met = the whole CI on the allowed side)", "",
           "| policy | scenario | constraint | value | seeds meeting it | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['policy']} | {r['scenario']} | {r['constraint']} | {r['mean']:.4f} ± {r['ci95']:.4f} | "
                   f"{r['seeds_met_share']:.0%} | {r['verdict']} |")
    return "\n".join(out) + "\n"


def all_met(rows: list[dict[str, Any]], policy: str, scenario: str) -> bool:
    """Every constraint met (CI) by ``policy`` on ``scenario``."""
    mine = [r for r in rows if r["policy"] == policy and r["scenario"] == scenario]
    return bool(mine) and all(r["verdict"] == "met" for r in mine)




def scenario_users0(scenarios: list[str], overrides: dict[str, Any] | None, env_version: int) -> dict[str, Any]:
    import envs

    return {sc: envs.RationingCore(sc, 1, overrides=overrides, version=env_version).params.users0 for sc in scenarios}


def check_constraints(texts: list[str] | None, scenarios: list[str], overrides: dict[str, Any] | None,
                      env_version: int) -> list[Constraint]:
    """Parse ``--constraint`` against every scenario's tiers (before any work); ConstraintError if bad."""
    import envs
    from agents.tradeoffs.constraints import parse_constraints

    out: list[Constraint] = []
    for sc in scenarios:
        out = parse_constraints(texts, envs.RationingCore(sc, 1, overrides=overrides, version=env_version).tier_names)
    return out


def write_constraint_report(ev, constraints: list[Constraint], out, overrides: dict[str, Any] | None) -> str:
    """``constraints.json`` into ``out`` and the table appended to its ``results.md``; returns the table."""
    import json
    from pathlib import Path

    rows = constraint_rows(ev, constraints, scenario_users0(ev.scenarios, overrides, ev.env_version))
    text = constraint_markdown(rows)
    out = Path(out)
    (out / "constraints.json").write_text(json.dumps({"constraints": [c.name for c in constraints], "rows": rows},
                                                     indent=1) + "\n")
    with open(out / "results.md", "a") as f:
        f.write("\n" + text)
    return text


__all__ = ["all_met", "check_constraints", "constraint_markdown", "constraint_rows", "verdict",
           "write_constraint_report"]
