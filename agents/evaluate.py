"""Evaluate policies over scenarios and seeds; write tables, data files and plots.

    python -m agents.evaluate --policy checkpoints/<run> --policy time-of-use --scenario outage
    python -m agents.evaluate --policy static --policy aimd --policy aimd:untuned \\
        --scenario default --scenario outage --seeds 5 --out runs/eval

``--policy``: a baseline name (tuned parameters from ``agents/tuned/baselines.json``;
``<name>:untuned`` for the defaults; ``baselines`` for all of them) or a path a
registered loader accepts (see :mod:`agents.policy`). ``--scenario``: a shipped
name or a YAML path (default: all five). ``--seeds N`` runs evaluation seeds
``agents.seeds.EVAL_SEED_BASE + 0..N-1``, never used for tuning or training; the
same seeds give identical numbers. All seeds of a policy and scenario run as one
batch in :class:`envs.RationingCore` (domain randomisation off).

If no tuned baseline is among the policies, the best one of the tuning run
(``best`` in the tuned file) is added as the reference. Per scenario, the *best
tuned baseline* is the tuned baseline with the highest mean return; every
policy's ``ratio_to_best_baseline`` is its mean return over that baseline's
(undefined, empty, when that return is <= 0), ``return_gap_to_best_baseline``
the difference and ``return_gap_ci95`` its 95% CI paired over the seeds (both
policies see the same seeds, so the paired CI is much tighter than either one).

Output folder ``--out``:

* ``results.md``: the Markdown tables (also printed): headline metrics, then one
  table per per-tier metric; mean and 95% confidence interval (Student t) over seeds.
* ``results.json``: a list of records, one per policy, scenario and seed::

      {"policy": "aimd", "spec": "aimd", "kind": "baseline", "scenario": "outage", "seed": 1000000,
       "steps": 672, "hours": 168.0,
       "episode_return": 245.8, "margin_usd": 5.7e6, "revenue_usd": 6.6e6, "cost_usd": 9.4e5,
       "latency_penalty_usd": ..., "churn_penalty_usd": ...,
       "latency_attainment_all": 0.96, "churned_users_all": 51234.0, "throttled_share_all": 0.31,
       "collapse_hours": 0.0,
       "latency_attainment": {"free": 0.98, ...}, "p95_latency_s": {"free": 12.1, ...},
       "churned_users": {...}, "throttled_share": {...}, "throttled_user_share": {...}}

  Money in US dollars summed over the episode; shares in [0, 1]; ``null`` where a
  value is undefined (e.g. attainment of a tier that served nothing). Definitions
  in :mod:`agents.metrics`: ``latency_attainment`` = share of served tokens
  within the tier's target (token-weighted over steps), ``p95_latency_s`` = 95th
  percentile of the served tokens' latency (mixture of the steps' exponential
  latencies), ``throttled_share`` = throttled / demanded tokens,
  ``collapse_hours`` = hours collapsed.
* ``summary.json`` / ``summary.csv``: per policy and scenario, mean and ``ci95``
  (half-width) of every metric, the ratio to the best tuned baseline; the best
  tuned baseline per scenario and overall.
* PNG plots: ``timeseries_<scenario>_<policy>.png`` (a week of the first seed:
  capacity and demand, quota multiplier per tier, latency per tier against its
  target), ``headline.png`` (bars with 95% CI), ``margin_vs_attainment.png``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import RULES, RuleContext, RuleError
from .cli import OneLineParser
from .metrics import SCALAR_METRICS, TIER_METRICS, episode_metrics, mean_ci, rollout
from .policy import TUNED_FILE, PolicyError, PolicySpec, best_tuned_baseline, parse_policy, resolve_policy
from .seeds import ALL_SCENARIOS, EVAL_SEED_BASE, SeedError, eval_seeds

CHUNK_ROWS = 256
"""Seeds stepped together at most (bounds the memory of the per-step records)."""
SERIES_KEYS = ("capacity_tokens", "demand_tokens", "served_tokens", "quota_multiplier", "latency_s", "collapsed",
               "throttled_tokens")


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


class EvaluateError(ValueError):
    """Bad evaluation arguments; the message is one line."""


# ------------------------------------------------------------------------------- running
def expand_specs(specs: list[str]) -> list[str]:
    out: list[str] = []
    for s in specs:
        out += list(RULES) if s == "baselines" else [s]
    return list(dict.fromkeys(out))


def _labels(specs: list[PolicySpec]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        n = seen.get(s.label, 0) + 1
        seen[s.label] = n
        out.append(s.label if n == 1 else f"{s.label}#{n}")
    return out


def run_evaluation(policies: list[str], scenarios: list[str] | None = None, n_seeds: int = 5,
                   progress: bool = True, tuned_file: str | Path = TUNED_FILE, reference: bool = True,
                   overrides: dict[str, Any] | None = None) -> Evaluation:
    """Run every policy on every scenario over ``n_seeds`` evaluation seeds."""
    from envs import RationingCore

    scenarios = list(dict.fromkeys(scenarios or ALL_SCENARIOS))
    seeds = eval_seeds(n_seeds)
    specs = [parse_policy(s, tuned_file) for s in expand_specs(policies)]
    if not specs:
        raise EvaluateError("no policy given (use --policy NAME_OR_PATH)")
    refs = [False] * len(specs)
    if reference and not any(s.kind == "baseline" and s.tuned for s in specs):
        best = best_tuned_baseline(tuned_file)
        if best is not None:
            specs.append(parse_policy(best, tuned_file))
            refs.append(True)
    labels = _labels(specs)
    contexts = {sc: RuleContext(sc, overrides) for sc in scenarios}  # validates every scenario first
    chunks = [seeds[i: i + CHUNK_ROWS] for i in range(0, len(seeds), CHUNK_ROWS)]
    total = sum(contexts[sc].params.episode_steps for sc in scenarios) * len(seeds) * len(specs)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="env-step", unit_scale=True, dynamic_ncols=True,
                   mininterval=0.5)
    cells: list[Cell] = []
    try:
        for spec, label, ref in zip(specs, labels, refs):
            for sc in scenarios:
                ctx = contexts[sc]
                policy = resolve_policy(spec, ctx, tuned_file)
                parts, series = [], None
                for chunk in chunks:
                    core = RationingCore(sc, len(chunk), overrides=overrides)
                    if bar is not None:
                        bar.set_postfix_str(f"{label} | {sc}", refresh=False)
                    tick = functools.partial(bar.update, len(chunk)) if bar is not None else None
                    try:
                        ro = rollout(policy, core, chunk, on_step=tick)
                    except (ValueError, RuntimeError) as exc:
                        if spec.kind == "baseline":
                            raise
                        raise PolicyError(f"policy {spec.spec!r} cannot act on scenario {sc!r}: "
                                          f"{type(exc).__name__}: {exc}") from None
                    parts.append(episode_metrics(ro, ctx.params.dt_h))
                    if series is None:
                        series = {k: ro.series[k][:, 0] for k in SERIES_KEYS}
                metrics = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                cells.append(Cell(label, spec, sc, seeds, ctx.tier_names, ctx.latency_target_s, ctx.params.dt_h,
                                  int(ctx.params.start_week_step // ctx.params.steps_per_day),
                                  ctx.params.episode_steps, metrics, series or {}, ref))
    finally:
        if bar is not None:
            bar.close()
    ev = Evaluation(cells, scenarios, labels, n_seeds)
    summarize(ev)
    return ev


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


# ------------------------------------------------------------------------------- tables
def _pm(mean: float | None, ci: float | None, scale: float = 1.0, digits: int = 1, comma: bool = False) -> str:
    if mean is None:
        return "n/a"
    fmt = f"{{:,.{digits}f}}" if comma else f"{{:.{digits}f}}"
    text = fmt.format(mean * scale)
    return text if ci is None else f"{text} ± {fmt.format(ci * scale)}"


HEADLINE = (  # column, metric, scale, digits, thousands separators
    ("return", "episode_return", 1.0, 1, False),
    ("margin $k", "margin_usd", 1e-3, 0, True),
    ("revenue $k", "revenue_usd", 1e-3, 0, True),
    ("cost $k", "cost_usd", 1e-3, 0, True),
    ("attainment %", "latency_attainment_all", 100.0, 1, False),
    ("churned users", "churned_users_all", 1.0, 0, True),
    ("throttled %", "throttled_share_all", 100.0, 1, False),
    ("collapse h", "collapse_hours", 1.0, 1, False),
)
TIER_TABLES = (  # title, metric, scale, digits, thousands separators
    ("Latency-target attainment per tier (% of served tokens within target)", "latency_attainment", 100.0, 1, False),
    ("p95 latency per tier (s)", "p95_latency_s", 1.0, 1, True),
    ("Churned users per tier", "churned_users", 1.0, 0, True),
    ("Throttled share per tier (% of demanded tokens refused by quota)", "throttled_share", 100.0, 1, False),
)


def markdown(ev: Evaluation) -> str:
    seeds = f"{ev.n_seeds} evaluation seeds ({EVAL_SEED_BASE}..{EVAL_SEED_BASE + ev.n_seeds - 1})"
    lines = [f"# Evaluation: mean ± 95% CI over {seeds}", ""]
    lines.append("Return in units of the scenario's `reward.scale_usd` ($10k by default); money summed over the "
                 "episode. *vs best* = return / return of the best tuned baseline on that scenario (marked **); "
                 "*Δ return vs best* = the difference, with its CI paired over the same seeds.")
    lines.append("")
    head = ["scenario", "policy", *[h[0] for h in HEADLINE[:1]], "vs best", "Δ return vs best",
            *[h[0] for h in HEADLINE[1:]]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(ev.summary, key=lambda r: (ev.scenarios.index(r["scenario"]), ev.labels.index(r["policy"])))
    for r in order:
        m = r["metrics"]
        name = f"**{r['policy']}**" if ev.best.get(r["scenario"]) == r["policy"] else r["policy"]
        if r["reference"]:
            name += " (reference)"
        ratio = r.get("ratio_to_best_baseline")
        cells = [r["scenario"], name, _pm(m["episode_return"]["mean"], m["episode_return"]["ci95"]),
                 "n/a" if ratio is None else f"{ratio:.3f}",
                 _pm(r.get("return_gap_to_best_baseline"), r.get("return_gap_ci95"))]
        cells += [_pm(m[k]["mean"], m[k]["ci95"], s, d, c) for _, k, s, d, c in HEADLINE[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Best tuned baseline: " + ", ".join(f"{sc}: {ev.best.get(sc) or 'n/a'}" for sc in ev.scenarios)
                 + f"; overall (mean return): {ev.best.get('overall') or 'n/a'}.")
    for title, metric, scale, digits, comma in TIER_TABLES:
        tiers = list(order[0]["tier_metrics"][metric]) if order else []
        lines += ["", f"## {title}", "", "| scenario | policy | " + " | ".join(tiers) + " |",
                  "|" + "---|" * (2 + len(tiers))]
        for r in order:
            tm = r["tier_metrics"][metric]
            vals = [_pm(tm[t]["mean"], tm[t]["ci95"], scale, digits, comma) if t in tm else "n/a" for t in tiers]
            lines.append(f"| {r['scenario']} | {r['policy']} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _csv_rows(ev: Evaluation) -> tuple[list[str], list[dict[str, Any]]]:
    out = []
    for r in ev.summary:
        row: dict[str, Any] = {"policy": r["policy"], "spec": r["spec"], "kind": r["kind"], "scenario": r["scenario"],
                               "n_seeds": r["n_seeds"], "best_baseline": r.get("best_baseline"),
                               "ratio_to_best_baseline": r.get("ratio_to_best_baseline"),
                               "return_gap_to_best_baseline": r.get("return_gap_to_best_baseline"),
                               "return_gap_ci95": r.get("return_gap_ci95")}
        for m, v in r["metrics"].items():
            row[f"{m}_mean"], row[f"{m}_ci95"] = v["mean"], v["ci95"]
        for m, per in r["tier_metrics"].items():
            for t, v in per.items():
                row[f"{m}.{t}_mean"], row[f"{m}.{t}_ci95"] = v["mean"], v["ci95"]
        out.append(row)
    fields = list(dict.fromkeys(k for row in out for k in row))
    return fields, out


def write_outputs(ev: Evaluation, out: str | Path, plots: bool = True) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(records(ev), indent=1) + "\n")
    summary = {"scenarios": ev.scenarios, "policies": ev.labels, "n_seeds": ev.n_seeds,
               "seeds": [EVAL_SEED_BASE, EVAL_SEED_BASE + ev.n_seeds], "best_baseline": ev.best, "rows": ev.summary}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    fields, rows = _csv_rows(ev)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])
    (out / "results.md").write_text(markdown(ev))
    if plots:
        from . import plots as pl

        for c in ev.cells:
            pl.timeseries(c, out / f"timeseries_{_slug(c.scenario)}_{_slug(c.label)}.png")
        pl.headline_bars(ev, out / "headline.png")
        pl.margin_vs_attainment(ev, out / "margin_vs_attainment.png")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "policy"


def evaluate_and_report(policies: list[str], scenarios: list[str] | None = None, n_seeds: int = 5,
                        out: str | Path = "runs/eval", progress: bool = True, plots: bool = True,
                        tuned_file: str | Path = TUNED_FILE, reference: bool = True,
                        overrides: dict[str, Any] | None = None) -> Evaluation:
    """Run, write every output into ``out``, print the Markdown tables; returns the evaluation."""
    ev = run_evaluation(policies, scenarios, n_seeds, progress=progress, tuned_file=tuned_file, reference=reference,
                        overrides=overrides)
    write_outputs(ev, out, plots=plots)
    print(markdown(ev))
    print(f"wrote {out}/: results.md, results.json, summary.json, summary.csv" + (", PNG plots" if plots else ""))
    return ev


# ---------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.evaluate", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", action="append", metavar="NAME_OR_PATH",
                    help="baseline name (tuned; NAME:untuned for defaults; 'baselines' for all) or a policy folder; "
                         "repeatable (default: all baselines)")
    ap.add_argument("--scenario", action="append", metavar="NAME_OR_PATH",
                    help=f"scenario, repeatable (default: {', '.join(ALL_SCENARIOS)})")
    ap.add_argument("--seeds", type=int, default=5, help="evaluation seeds per scenario (default: 5)")
    ap.add_argument("--out", default="runs/eval", help="output folder (default: runs/eval)")
    ap.add_argument("--tuned-file", default=str(TUNED_FILE), help="tuned baseline parameters")
    ap.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                    help="add the best tuned baseline when no tuned baseline is among the policies")
    ap.add_argument("--days", type=float, default=None,
                    help="episode length override in days, for quick looks (default: the scenario's)")
    ap.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args(argv)
    from envs import ScenarioError

    try:
        evaluate_and_report(a.policy or ["baselines"], a.scenario, a.seeds, a.out, progress=a.progress,
                            plots=a.plots, tuned_file=a.tuned_file, reference=a.reference,
                            overrides={"time": {"episode_days": a.days}} if a.days else None)
    except (PolicyError, ScenarioError, SeedError, RuleError, EvaluateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
