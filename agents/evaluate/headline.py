"""Across-scenario aggregates of an evaluation: rliable-style scores and the share of the oracle gap closed.

Filled into ``Evaluation.aggregates`` after the per-scenario summary:

* ``normalized_iqm``: IQM over every (scenario, seed) of ``(return - static) / (best rule - static)``
  (per-scenario means of ``static`` and of that scenario's best tuned rule), with its stratified
  bootstrap 95% CI; needs ``static`` among the policies.
* ``p_improvement``: probability that the policy beats the scenario's best tuned rule on a random
  pair of seeds, averaged over scenarios, with its stratified bootstrap 95% CI.
* ``oracle_gap_closed[scenario]``: ``(policy - rule) / (oracle - rule)`` on mean returns over the
  same seeds, where the oracle (``python -m agents.oracle``, cached in ``agents/oracle/bounds.json``)
  adjusted ``rule`` with hindsight; with a paired bootstrap 95% CI. Absent when a seed has no bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluate.aggregate import (
    normalized,
    pooled_iqm,
    probability_of_improvement,
    stratified_bootstrap_ci,
)
from agents.evaluate.results import Evaluation

REPS = 2000


def _returns(ev: Evaluation) -> dict[tuple[str, str], np.ndarray]:
    return {(c.label, c.scenario): np.asarray(c.metrics["episode_return"], np.float64) for c in ev.cells}


def oracle_gap(policy: np.ndarray, rule: np.ndarray, oracle: np.ndarray, reps: int = REPS,
               seed: int = 0) -> tuple[float, float, float]:
    """Share of the rule-to-oracle gap closed, with a 95% CI from resampling the (paired) seeds."""
    def share(idx: np.ndarray) -> np.ndarray:
        gap = oracle[idx].mean(axis=-1) - rule[idx].mean(axis=-1)
        return (policy[idx].mean(axis=-1) - rule[idx].mean(axis=-1)) / np.where(gap > 0, gap, np.nan)
    n = len(policy)
    point = float(share(np.arange(n)))
    boot = share(np.random.default_rng(seed).integers(0, n, size=(reps, n)))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (np.nan, np.nan)
    return point, float(lo), float(hi)


def add_aggregates(ev: Evaluation, env_id: str, bounds_file: str | Path | None = None) -> dict[str, Any]:
    """Compute the aggregates of every policy into ``ev.aggregates`` (and return them)."""
    from agents.oracle.bounds import BOUNDS_FILE, lookup

    ret = _returns(ev)
    out: dict[str, Any] = {}
    best = {sc: ev.best.get(sc) for sc in ev.scenarios}
    have_static = all(("static", sc) in ret for sc in ev.scenarios)
    for label in ev.labels:
        if not all((label, sc) in ret for sc in ev.scenarios):
            continue
        agg: dict[str, Any] = {}
        if have_static and all(best.values()):
            scores = {sc: normalized(ret[(label, sc)], float(ret[("static", sc)].mean()),
                                     float(ret[(best[sc], sc)].mean())) for sc in ev.scenarios}
            agg["normalized_iqm"] = dict(zip(("value", "lo", "hi"),
                                             stratified_bootstrap_ci(pooled_iqm, scores, reps=REPS)))
        if all(best.values()):
            mine = {sc: ret[(label, sc)] for sc in ev.scenarios}
            theirs = {sc: ret[(best[sc], sc)] for sc in ev.scenarios}
            agg["p_improvement"] = dict(zip(("value", "lo", "hi"), stratified_bootstrap_ci(
                probability_of_improvement, mine, theirs, reps=REPS // 4)))
        gaps = {}
        for sc in ev.scenarios:
            cell = next(c for c in ev.cells if c.label == label and c.scenario == sc)
            bounds = lookup(env_id, sc, [int(s) for s in cell.seeds], bounds_file or BOUNDS_FILE)
            if bounds is None or (bounds[0]["rule"], sc) not in ret:
                continue
            oracle = np.array([b["return"] for b in bounds])
            gaps[sc] = {"rule": bounds[0]["rule"], "oracle_mean": float(oracle.mean()),
                        **dict(zip(("value", "lo", "hi"), oracle_gap(ret[(label, sc)],
                                                                      ret[(bounds[0]["rule"], sc)], oracle)))}
        if gaps:
            agg["oracle_gap_closed"] = gaps
        out[label] = agg
    ev.aggregates = out
    return out


def markdown_section(ev: Evaluation) -> list[str]:
    """Markdown lines of the aggregates (empty if there are none)."""
    agg = getattr(ev, "aggregates", None) or {}
    if not agg:
        return []

    def ci(d: dict | None, pct: bool = False) -> str:
        if not d or d.get("value") is None or not np.isfinite(d["value"]):
            return "n/a"
        f = (lambda v: f"{100 * v:.0f}%") if pct else (lambda v: f"{v:.3f}")
        return f"{f(d['value'])} [{f(d['lo'])}, {f(d['hi'])}]"

    lines = ["", "## Across scenarios", "",
             "IQM of the normalised return (0 = static, 1 = each scenario's best tuned rule) and the probability "
             "of beating that rule on a random pair of seeds, with stratified bootstrap 95% CIs; share of the "
             "rule-to-oracle gap closed (the oracle plans with hindsight: a reference, not a target).", ""]
    scen = [sc for sc in ev.scenarios if any(sc in a.get("oracle_gap_closed", {}) for a in agg.values())]
    head = ["policy", "normalised IQM", "P(beats best rule)", *[f"gap closed: {sc}" for sc in scen]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, a in agg.items():
        cells = [label, ci(a.get("normalized_iqm")), ci(a.get("p_improvement"))]
        cells += [ci(a.get("oracle_gap_closed", {}).get(sc), pct=True) for sc in scen]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
