"""Evaluate policies over scenarios and seeds; write tables, data files and plots.

    python -m agents.evaluate --policy checkpoints/<run> --policy time-of-use --scenario outage
    python -m agents.evaluate --policy static --policy aimd --policy aimd:untuned \\
        --scenario default --scenario outage --seeds 5 --out runs/eval

``--env-version {0,1}`` (default 1): evaluate on ``Rationing-v1`` or ``Rationing-v0``;
rules use that version's tuned file (``baselines.json`` / ``baselines-v0.json``) and a
trained policy made for the other version is refused with one line naming it
(``checkpoints/ppo-v0`` needs ``--env-version 0``).

``--policy``: a baseline name (tuned parameters from ``agents/rules/tuned/baselines.json``;
``<name>:untuned`` for the defaults; ``baselines`` for all of them) or a path a
registered loader accepts (see :mod:`agents.evaluate.resolve`). ``--scenario``: a shipped
name or a YAML path (default: all five). ``--seeds N`` runs evaluation seeds
``agents.common.seeds.EVAL_SEED_BASE + 0..N-1``, never used for tuning or training; the
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
  in :mod:`agents.evaluate.metrics`: ``latency_attainment`` = share of served tokens
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
import json
import re
import sys
from pathlib import Path
from typing import Any

from agents.common.cli import OneLineParser
from agents.common.policy import PolicyError
from agents.common.seeds import ALL_SCENARIOS, EVAL_SEED_BASE, SeedError
from agents.evaluate.results import EvaluateError, Evaluation, records
from agents.evaluate.runner import run_evaluation
from agents.evaluate.tables import _csv_rows, markdown
from agents.rules import RuleError


def write_outputs(ev: Evaluation, out: str | Path, plots: bool = True) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(records(ev), indent=1) + "\n")
    summary = {"env_version": ev.env_version, "scenarios": ev.scenarios, "policies": ev.labels, "n_seeds": ev.n_seeds,
               "seeds": [EVAL_SEED_BASE, EVAL_SEED_BASE + ev.n_seeds], "best_baseline": ev.best, "rows": ev.summary}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    fields, rows = _csv_rows(ev)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])
    (out / "results.md").write_text(markdown(ev))
    if plots:
        from agents.evaluate import plots as pl

        for c in ev.cells:
            pl.timeseries(c, out / f"timeseries_{_slug(c.scenario)}_{_slug(c.label)}.png")
        pl.headline_bars(ev, out / "headline.png")
        pl.margin_vs_attainment(ev, out / "margin_vs_attainment.png")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "policy"


def evaluate_and_report(policies: list[str], scenarios: list[str] | None = None, n_seeds: int = 5,
                        out: str | Path = "runs/eval", progress: bool = True, plots: bool = True,
                        tuned_file: str | Path | None = None, reference: bool = True,
                        overrides: dict[str, Any] | None = None, env_version: int = 1) -> Evaluation:
    """Run, write every output into ``out``, print the Markdown tables; returns the evaluation."""
    ev = run_evaluation(policies, scenarios, n_seeds, progress=progress, tuned_file=tuned_file, reference=reference,
                        overrides=overrides, env_version=env_version)
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
    ap.add_argument("--env-version", type=int, choices=(0, 1), default=1,
                    help="Rationing-v1 (default) or Rationing-v0")
    ap.add_argument("--tuned-file", default=None,
                    help="tuned baseline parameters (default: the shipped file of --env-version)")
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
                            plots=a.plots, tuned_file=a.tuned_file, reference=a.reference, env_version=a.env_version,
                            overrides={"time": {"episode_days": a.days}} if a.days else None)
    except (PolicyError, ScenarioError, SeedError, RuleError, EvaluateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
