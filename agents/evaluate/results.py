"""What an evaluation holds (:class:`Cell`, :class:`Evaluation`), its per-seed records and its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.evaluate.metrics import SCALAR_METRICS, TIER_METRICS, mean_ci
from agents.evaluate.resolve import PolicySpec


@dataclass
class Cell:
    """One policy on one scenario: per-seed metrics and the first seed's time series."""

    label: str
    spec: PolicySpec
    scenario: str
    seeds: np.ndarray
    tier_names: list[str]
    latency_target_s: np.ndarray
    dt_h: float
    start_weekday: int
    steps: int
    metrics: dict[str, np.ndarray]
    series: dict[str, np.ndarray]
    reference: bool = False


@dataclass
class Evaluation:
    cells: list[Cell]
    scenarios: list[str]
    labels: list[str]
    n_seeds: int
    summary: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, str | None] = field(default_factory=dict)
    env_version: int = 1
    aggregates: dict[str, Any] = field(default_factory=dict)
    """Across-scenario aggregates per policy (:mod:`agents.evaluate.headline`)."""


class EvaluateError(ValueError):
    """Bad evaluation arguments; the message is one line."""



# ----------------------------------------------------------------------------- summaries
def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def records(ev: Evaluation) -> list[dict[str, Any]]:
    """One JSON-ready record per policy, scenario and seed (the ``results.json`` schema)."""
    out = []
    for c in ev.cells:
        steps = c.steps
        for j, seed in enumerate(c.seeds):
            r: dict[str, Any] = {"policy": c.label, "spec": c.spec.spec, "kind": c.spec.kind, "scenario": c.scenario,
                                 "seed": int(seed), "steps": steps, "hours": steps * c.dt_h}
            r.update({m: _f(c.metrics[m][j]) for m in SCALAR_METRICS})
            r.update({m: {t: _f(c.metrics[m][j, i]) for i, t in enumerate(c.tier_names)} for m in TIER_METRICS})
            out.append(r)
    return out


def summarize(ev: Evaluation) -> None:
    """Fill ``ev.summary`` (one entry per cell) and ``ev.best`` (best tuned baseline per scenario)."""
    rows = []
    returns = {(c.label, c.scenario): c.metrics["episode_return"] for c in ev.cells}
    for c in ev.cells:
        scal = {}
        for m in SCALAR_METRICS:
            mean, ci = mean_ci(c.metrics[m])
            scal[m] = {"mean": _f(mean), "ci95": _f(ci)}
        tier = {}
        for m in TIER_METRICS:
            mean, ci = mean_ci(c.metrics[m])
            tier[m] = {t: {"mean": _f(mean[i]), "ci95": _f(ci[i])} for i, t in enumerate(c.tier_names)}
        rows.append({"policy": c.label, "spec": c.spec.spec, "kind": c.spec.kind, "tuned": c.spec.tuned,
                     "reference": c.reference, "scenario": c.scenario, "n_seeds": len(c.seeds),
                     "seeds": [int(c.seeds[0]), int(c.seeds[-1]) + 1], "metrics": scal, "tier_metrics": tier})
    best: dict[str, str | None] = {}
    for sc in ev.scenarios:
        cands = [r for r in rows if r["scenario"] == sc and r["kind"] == "baseline" and r["tuned"]]
        best[sc] = max(cands, key=lambda r: r["metrics"]["episode_return"]["mean"])["policy"] if cands else None
    for r in rows:
        b = best[r["scenario"]]
        ref = next((x for x in rows if x["scenario"] == r["scenario"] and x["policy"] == b), None)
        ret = r["metrics"]["episode_return"]["mean"]
        if ref is None:
            r.update(best_baseline=None, ratio_to_best_baseline=None, return_gap_to_best_baseline=None,
                     return_gap_ci95=None)
            continue
        base = ref["metrics"]["episode_return"]["mean"]
        r["best_baseline"] = b
        r["ratio_to_best_baseline"] = _f(ret / base) if base > 0 else None
        # paired over the same seeds: the CI of the difference is much tighter than either CI
        gap, gap_ci = mean_ci(returns[(r["policy"], r["scenario"])] - returns[(b, r["scenario"])])
        r["return_gap_to_best_baseline"] = _f(gap)
        r["return_gap_ci95"] = _f(gap_ci)
    # overall: the tuned baseline with the highest mean return over the scenarios evaluated
    tuned = sorted({r["policy"] for r in rows if r["kind"] == "baseline" and r["tuned"]})
    if tuned:
        def overall(p: str) -> float:
            return float(np.mean([r["metrics"]["episode_return"]["mean"] for r in rows if r["policy"] == p]))
        best["overall"] = max(tuned, key=overall)
    else:
        best["overall"] = None
    ev.summary, ev.best = rows, best




# ------------------------------------------------------------------------- what was evaluated
def _policy_record(c: Cell) -> dict[str, Any]:
    from agents.evaluate.resolve import _CACHE

    out: dict[str, Any] = {"label": c.label, "spec": c.spec.spec, "kind": c.spec.kind, "tuned": c.spec.tuned}
    if c.spec.weights is not None:
        out["preference_weights"] = list(c.spec.weights)
    if c.spec.path is not None:
        out["path"] = str(c.spec.path.resolve())
        policy = _CACHE.get(str(c.spec.path.resolve()))
        manifest = getattr(getattr(policy, "checkpoint", None), "manifest", None)
        meta = getattr(policy, "meta", None)
        if isinstance(manifest, dict):
            out.update(checkpoint=getattr(policy.checkpoint.path, "name", None),
                       checkpoint_step=manifest.get("timesteps"), training_commit=manifest.get("git_commit"))
        elif isinstance(meta, dict):
            training = meta.get("training") or {}
            out.update(checkpoint=training.get("checkpoint"), checkpoint_step=training.get("timesteps"),
                       training_commit=training.get("git_commit"))
    return out


def provenance(ev: Evaluation) -> dict[str, Any]:
    """What was evaluated: date, code commit, environment version, seeds, scenarios, policies."""
    import datetime as dt

    import envs
    from agents.common.provenance import git_commit, git_dirty
    from agents.common.seeds import EVAL_SEED_BASE

    policies = {}
    for c in ev.cells:
        policies.setdefault(c.label, _policy_record(c))
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "git_dirty": git_dirty(),
        "env_id": envs.ENV_IDS.get(ev.env_version),
        "env_version": ev.env_version,
        "seeds": {"first": EVAL_SEED_BASE, "count": ev.n_seeds, "range": [EVAL_SEED_BASE, EVAL_SEED_BASE + ev.n_seeds]},
        "scenarios": ev.scenarios,
        "policies": list(policies.values()),
    }


def bottom_lines(ev: Evaluation) -> list[str]:
    """One line per scenario and non-baseline policy: does it beat the best tuned baseline, paired over seeds?"""
    lines = []
    for sc in ev.scenarios:
        for r in ev.summary:
            if r["scenario"] != sc or r["kind"] == "baseline" or r.get("best_baseline") is None:
                continue
            gap, ci, n = r["return_gap_to_best_baseline"], r["return_gap_ci95"], r["n_seeds"]
            if gap is None:
                continue
            ci = ci if ci is not None else float("nan")
            beats = ci == ci and gap - ci > 0
            lines.append(f"{sc}: {r['policy']} {'beats' if beats else 'does not beat'} {r['best_baseline']} by "
                         f"{gap:+.1f} ± {ci:.1f} over {n} seeds" if beats else
                         f"{sc}: {r['policy']} does not beat {r['best_baseline']} ({gap:+.1f} ± {ci:.1f} over "
                         f"{n} seeds)")
    return lines
