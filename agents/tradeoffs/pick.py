"""Pick the weighting of a preference-conditioned run that meets an operator's requirements.

    python -m agents.tradeoffs.pick --run runs/pref/<run> --scenario default \\
        --require "latency_attainment>=0.985" --require "churned_users<=43000" [--maximise margin_usd] \\
        --out runs/pick
    python -m agents.tradeoffs.pick --run runs/pref/<run> --scenario default --dominate tier-priority --out runs/pick

One conditioned policy acts at any weighting, so an operator's question ("the most margin with at
least 98.5% attainment and at most 43k churned users", or "at least as good as rule X on all three")
is a search over weightings, not a new training run. The search is on **validation seeds** (never the
evaluation seeds): the run acts at every weighting of the simplex grid ``--search-grid N``; the
weightings whose means meet every requirement are feasible, and the pick is the feasible one with the
most of ``--maximise`` (margin, attainment, or the fewest churned users). ``--dominate RULE`` requires
at least the rule's margin and attainment and at most its churned users on the same validation seeds
and picks the feasible weighting whose smallest slack (each axis' slack over its spread on the grid)
is largest: the most robust dominance. Without a feasible weighting the pick is the one whose largest
shortfall is smallest, and it says so.

Then the picked weighting (and the rule) are evaluated once on the evaluation seeds (``--seeds``):
each axis' mean and 95% CI, each requirement met on the mean and with the whole CI on its side, and
for ``--dominate`` the paired differences to the rule. Writes ``pick.json`` and ``pick.md`` to ``--out``.
Axes are the front's (:mod:`agents.tradeoffs.front`): ``margin_usd`` per episode,
``latency_attainment`` (share of served tokens within target, all tiers), ``churned_users`` (all tiers).
Bad input: one line on stderr, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.cli import OneLineParser
from agents.tradeoffs.front import AXES, FrontError, read_runs, simplex_grid, weighted_spec
from agents.tradeoffs.preference import weights_label

METRIC = {col: metric for col, metric in AXES[:3]}
"""Front axis -> evaluation metric."""
HIGHER_IS_BETTER = {"margin_usd": True, "latency_attainment": True, "churned_users": False}


@dataclass(frozen=True)
class Requirement:
    """``axis >= limit`` or ``axis <= limit`` on one of the front's axes."""

    axis: str
    op: str
    limit: float

    def slack(self, value: float) -> float:
        """How far ``value`` is inside the requirement (negative: outside), in the axis' units."""
        return value - self.limit if self.op == ">=" else self.limit - value

    @property
    def label(self) -> str:
        return f"{self.axis}{self.op}{self.limit:g}"


def parse_requirement(text: str) -> Requirement:
    """``AXIS>=X`` or ``AXIS<=X``; a bad one is a one-line :class:`FrontError`."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*", text)
    if not m:
        raise FrontError(f"--require {text!r}: write AXIS>=X or AXIS<=X with AXIS one of {', '.join(METRIC)}")
    axis, op, value = m.groups()
    if axis not in METRIC:
        raise FrontError(f"--require {text!r}: axis {axis!r} is not one of {', '.join(METRIC)}")
    try:
        limit = float(value)
    except ValueError:
        raise FrontError(f"--require {text!r}: {value!r} is not a number") from None
    return Requirement(axis, op, limit)


def dominance(point: dict[str, float]) -> list[Requirement]:
    """At least ``point``'s margin and attainment, at most its churned users."""
    return [Requirement(a, ">=" if HIGHER_IS_BETTER[a] else "<=", float(point[a])) for a in METRIC]


def choose(points: list[dict[str, Any]], requirements: list[Requirement], maximise: str | None) -> dict[str, Any]:
    """The pick among ``points`` (each: ``weights`` and the axes' means); see the module docstring.

    ``maximise`` None: the largest smallest slack, each slack over the axis' spread over ``points``.
    Returns ``{"weights", "feasible" (count), "met" (bool), "score"}``."""
    spread = {a: max(float(np.ptp([p[a] for p in points])), 1e-12) for a in METRIC}

    def worst(p: dict[str, Any]) -> float:
        return min((r.slack(p[r.axis]) / spread[r.axis] for r in requirements), default=0.0)

    feasible = [p for p in points if all(r.slack(p[r.axis]) >= 0 for r in requirements)]
    if feasible and maximise is not None:
        sign = 1.0 if HIGHER_IS_BETTER[maximise] else -1.0
        best = max(feasible, key=lambda p: sign * p[maximise])
        score = float(best[maximise])
    else:
        best = max(feasible or points, key=worst)
        score = worst(best)
    return {"weights": best["weights"], "feasible": len(feasible), "met": bool(feasible), "score": score}


def _means(cell) -> dict[str, float]:
    return {a: float(np.mean(cell.metrics[m])) for a, m in METRIC.items()}


def search(run: str, scenario: str, grid: int, n_validation: int, rule: str | None, tuned_file: str | None,
           progress: bool = False) -> tuple[list[dict[str, Any]], dict[str, float] | None, int]:
    """(the run's points at every grid weighting, the rule's point or None, env version), validation seeds."""
    from agents.common.seeds import validation_seeds
    from agents.evaluate.runner import run_evaluation

    pref, _ = read_runs(run, [], None)
    version = int(pref.get("env_version", 0))
    weightings = simplex_grid(grid)
    specs = [weighted_spec(run, w) for w in weightings]
    ev = run_evaluation(specs + ([rule] if rule else []), [scenario], n_validation, progress=progress,
                        reference=False, env_version=version, tuned_file=tuned_file,
                        seeds=validation_seeds(n_validation))
    cells = {c.spec.spec: c for c in ev.cells}
    points = [{"weights": w, **_means(cells[s])} for w, s in zip(weightings, specs)]
    return points, (_means(cells[rule]) if rule else None), version


def confirm(run: str, weights, scenario: str, n_seeds: int, rule: str | None, tuned_file: str | None,
            requirements: list[Requirement], version: int) -> dict[str, Any]:
    """The picked weighting (and the rule) on the evaluation seeds: means, CIs, verdicts, paired differences."""
    from agents.evaluate.metrics import mean_ci
    from agents.evaluate.runner import run_evaluation

    spec = weighted_spec(run, weights)
    ev = run_evaluation([spec] + ([rule] if rule else []), [scenario], n_seeds, progress=False, reference=False,
                        env_version=version, tuned_file=tuned_file)
    cells = {c.spec.spec: c for c in ev.cells}
    out: dict[str, Any] = {"axes": {}, "requirements": [], "rule": None}
    for a, m in METRIC.items():
        mean, h = mean_ci(cells[spec].metrics[m])
        out["axes"][a] = {"mean": float(mean), "ci95": float(h)}
    for r in requirements:
        v = out["axes"][r.axis]
        out["requirements"].append({"requirement": r.label, "mean": v["mean"], "ci95": v["ci95"],
                                    "met_on_mean": r.slack(v["mean"]) >= 0,
                                    "met_with_ci": r.slack(v["mean"]) - v["ci95"] >= 0})
    if rule:
        diff = {}
        for a, m in METRIC.items():
            d, h = mean_ci(cells[spec].metrics[m] - cells[rule].metrics[m])
            rm, rh = mean_ci(cells[rule].metrics[m])
            diff[a] = {"rule_mean": float(rm), "rule_ci95": float(rh), "difference": float(d),
                       "difference_ci95": float(h)}
        sign = {a: 1.0 if HIGHER_IS_BETTER[a] else -1.0 for a in METRIC}
        out["rule"] = {"name": rule, "axes": diff,
                       "dominates_on_means": all(sign[a] * diff[a]["difference"] >= 0 for a in METRIC),
                       "dominates_with_ci": all(sign[a] * diff[a]["difference"] - diff[a]["difference_ci95"] >= 0
                                                for a in METRIC)}
    return out


def markdown(result: dict[str, Any]) -> str:
    c, p = result["confirmed"], result["pick"]
    lines = [f"# Pick on {result['scenario']}: {result['run']}", "",
             f"Searched {result['searched']} weightings (grid {result['search_grid']}) on {result['validation_seeds']} "
             f"validation seeds; {p['feasible']} met every requirement there. "
             f"Picked **{weights_label(p['weights'])}**" + ("" if p["met"] else " (none met them: the smallest "
                                                            "shortfall)") + ".", "",
             f"On {result['seeds']} evaluation seeds:", "", "| requirement | mean ± 95% CI | met on the mean | "
             "met with the CI |", "|---|---|---|---|"]
    for r in c["requirements"]:
        lines.append(f"| {r['requirement']} | {r['mean']:,.4g} ± {r['ci95']:,.2g} | "
                     f"{'yes' if r['met_on_mean'] else 'no'} | {'yes' if r['met_with_ci'] else 'no'} |")
    if c["rule"]:
        lines += ["", f"Against `{c['rule']['name']}` (paired over the seeds):", "",
                  "| axis | rule | picked minus rule |", "|---|---|---|"]
        lines += [f"| {a} | {v['rule_mean']:,.4g} ± {v['rule_ci95']:,.2g} | {v['difference']:+,.4g} ± "
                  f"{v['difference_ci95']:,.2g} |" for a, v in c["rule"]["axes"].items()]
        lines += ["", f"Dominates on the means: {'yes' if c['rule']['dominates_on_means'] else 'no'}; with the "
                  f"paired CIs: {'yes' if c['rule']['dominates_with_ci'] else 'no'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.tradeoffs.pick", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder trained with --preference")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--require", action="append", default=[], metavar="AXIS>=X", help="margin_usd, "
                    "latency_attainment or churned_users, >= or <= a number; repeatable")
    ap.add_argument("--maximise", choices=tuple(METRIC), default=None,
                    help="among the feasible weightings, the most of this axis (churned_users: the fewest)")
    ap.add_argument("--dominate", default=None, metavar="RULE", help="require at least this rule's point")
    ap.add_argument("--tuned-file", default=None, help="the tuned rules file --dominate's rule comes from")
    ap.add_argument("--search-grid", type=int, default=8, metavar="N", help="simplex grid searched (1..12)")
    ap.add_argument("--validation-seeds", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=10, help="evaluation seeds the pick is confirmed on")
    ap.add_argument("--out", required=True)
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from agents.common.policy import PolicyError
    from agents.common.seeds import SeedError
    from agents.evaluate.results import EvaluateError
    from agents.rules import RULES
    from agents.tradeoffs.preference import PreferenceError
    from envs import ScenarioError

    out = Path(args.out)
    try:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FrontError(f"--out {args.out!r} exists and is not an empty folder")
        if not 1 <= args.search_grid <= 12:
            raise FrontError(f"--search-grid {args.search_grid}: must be 1..12 (the grid has (n+1)(n+2)/2 points)")
        requirements = [parse_requirement(r) for r in args.require]
        if args.dominate is not None and args.dominate not in RULES:
            raise FrontError(f"--dominate {args.dominate!r}: not a rule (allowed: {', '.join(RULES)})")
        if not requirements and args.dominate is None:
            raise FrontError("nothing to meet: give --require AXIS>=X (or <=) or --dominate RULE")
        if args.dominate is not None and args.maximise is not None:
            raise FrontError("--maximise with --dominate: the pick is the most robust dominance; drop one")
        points, rule_point, version = search(args.run, args.scenario, args.search_grid, args.validation_seeds,
                                             args.dominate, args.tuned_file, args.progress)
        if rule_point is not None:
            requirements += dominance(rule_point)
        pick = choose(points, requirements, args.maximise)
        confirmed = confirm(args.run, pick["weights"], args.scenario, args.seeds, args.dominate, args.tuned_file,
                            requirements, version)
    except (FrontError, PreferenceError, PolicyError, EvaluateError, SeedError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"run": str(args.run), "scenario": args.scenario, "search_grid": args.search_grid,
              "searched": len(points), "validation_seeds": args.validation_seeds, "seeds": args.seeds,
              "requirements": [r.label for r in requirements], "maximise": args.maximise, "dominate": args.dominate,
              "rule_validation_point": rule_point, "validation_points": points, "pick": pick, "confirmed": confirmed}
    out.mkdir(parents=True, exist_ok=True)
    (out / "pick.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "pick.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out}/: pick.json, pick.md")
    return 0


__all__ = ["Requirement", "choose", "confirm", "dominance", "main", "parse_requirement", "search"]

if __name__ == "__main__":
    raise SystemExit(main())
