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
registered loader accepts (see :mod:`agents.evaluate.resolve`); a run trained with
``--preference`` acts at given weights with ``PATH@margin=1,latency=0.5,churn=2``. ``--scenario``: a shipped
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
* ``results.json``: ``{"evaluated": {...}, "records": [...]}``. ``evaluated`` says what was
  evaluated: ``date``, ``commit`` (of this code), ``env_id``, ``env_version``, ``seeds``
  (``{"first", "count", "range": [first, end)}``), ``scenarios`` and ``policies`` (label, spec,
  kind, tuned, and for trained policies ``checkpoint_step``, ``path`` and the ``training_commit``).
  ``records`` holds one record per policy, scenario and seed::

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
* ``results.md`` starts with one bottom line per scenario and trained policy: "beats
  fair-share by +x ± y over N seeds" when the paired 95% CI of the return difference
  lies above 0, else "does not beat ...".
* PNG plots (``--plots all``, the default; ``headline`` writes only the first two below;
  ``none``): ``timeseries_<scenario>_<policy>.png`` (a week of the first seed:
  capacity and demand, quota multiplier per tier, latency per tier against its
  target), ``headline.png`` (bars with 95% CI), ``margin_vs_attainment.png``.

``--out`` must be a new or empty folder; ``--overwrite`` replaces an earlier evaluation in it
(its results, summaries and plots are deleted first, so no stale file remains).
Bad input prints ``error: ...`` (one line) on stderr, exits with status 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from agents.common.cli import OneLineParser
from agents.common.files import kill_point
from agents.common.policy import PolicyError
from agents.common.seeds import ALL_SCENARIOS, EVAL_SEED_BASE, SeedError
from agents.evaluate.results import EvaluateError, Evaluation, bottom_lines, provenance, records
from agents.evaluate.runner import run_evaluation
from agents.evaluate.tables import _csv_rows, markdown
from agents.rules import RuleError, tuned_file_for

OUTPUT_PATTERNS = ("results.md", "results.json", "summary.json", "summary.csv", "constraints.json", "*.png")
PLOT_MODES = ("all", "headline", "none")


def check_out(out: str | Path, overwrite: bool = False) -> Path:
    """Refuse an ``--out`` that is a file, or a used folder without ``overwrite``; changes nothing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EvaluateError(f"--out {str(out)!r} is a file, not a folder")
    if out.is_dir():
        used = sorted(p.name for p in out.iterdir())
        if used and not overwrite:
            raise EvaluateError(f"--out {str(out)!r} already holds {len(used)} file(s) ({', '.join(used[:3])}"
                                f"{', ...' if len(used) > 3 else ''}): use --overwrite to replace an earlier "
                                "evaluation, or another --out")
        ours = {p for pattern in OUTPUT_PATTERNS for p in out.glob(pattern)}
        foreign = [p.name for p in out.iterdir() if p not in ours]
        if used and foreign:
            raise EvaluateError(f"--out {str(out)!r} holds files that are not an evaluation's ({foreign[0]!r}); "
                                "not overwriting it")
    return out


def write_outputs(ev: Evaluation, out: str | Path, plots: bool | str = True, overwrite: bool = False) -> Path:
    out = check_out(out, overwrite)
    mode = "all" if plots is True else "none" if plots is False else plots
    out.mkdir(parents=True, exist_ok=True)
    for pattern in OUTPUT_PATTERNS:  # stale outputs of an earlier evaluation
        for old in out.glob(pattern):
            old.unlink()
    (out / "results.json").write_text(json.dumps({"evaluated": provenance(ev), "records": records(ev)},
                                                 indent=1) + "\n")
    summary = {"env_version": ev.env_version, "scenarios": ev.scenarios, "policies": ev.labels, "n_seeds": ev.n_seeds,
               "seeds": [EVAL_SEED_BASE, EVAL_SEED_BASE + ev.n_seeds], "best_baseline": ev.best,
               "bottom_lines": bottom_lines(ev), "rows": ev.summary}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    fields, rows = _csv_rows(ev)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in rows])
    (out / "results.md").write_text(report_text(ev))
    if mode != "none":
        from agents.evaluate import plots as pl

        pl.headline_bars(ev, out / "headline.png")
        pl.margin_vs_attainment(ev, out / "margin_vs_attainment.png")
        if mode == "all":
            for c in ev.cells:
                pl.timeseries(c, out / f"timeseries_{_slug(c.scenario)}_{_slug(c.label)}.png")
    return out


def report_text(ev: Evaluation) -> str:
    lines = bottom_lines(ev)
    head = "".join(f"**{line}**\n\n" for line in lines)
    return head + markdown(ev)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "policy"


def evaluate_and_report(policies: list[str], scenarios: list[str] | None = None, n_seeds: int = 5,
                        out: str | Path = "runs/eval", progress: bool = True, plots: bool | str = True,
                        tuned_file: str | Path | None = None, reference: bool = True,
                        overrides: dict[str, Any] | None = None, overwrite: bool = False,
                        env_version: int = 1, constraints: list[str] | None = None) -> Evaluation:
    """Run, write every output into ``out``, print the Markdown tables; returns the evaluation.

    ``constraints`` (``--constraint TIER.METRIC>=LIMIT``): also report each one's satisfaction per policy
    and scenario with CIs (``constraints.json``, a table in ``results.md``; :mod:`agents.tradeoffs.report`).
    """
    check_out(out, overwrite)  # before any work: a refused --out changes nothing
    parsed = []
    if constraints:
        from agents.tradeoffs.constraints import ConstraintError
        from agents.tradeoffs.report import check_constraints

        try:
            parsed = check_constraints(constraints, list(dict.fromkeys(scenarios or ALL_SCENARIOS)), overrides,
                                       env_version)
        except ConstraintError as exc:
            raise EvaluateError(str(exc)) from None
    kill_point("final_eval")
    shipped = tuned_file_for(env_version)
    tuned_file = shipped if tuned_file is None else tuned_file
    if not Path(tuned_file).is_file():
        raise EvaluateError(f"--tuned-file {str(tuned_file)!r} does not exist (the shipped one is {shipped})")
    ev = run_evaluation(policies, scenarios, n_seeds, progress=progress, tuned_file=tuned_file, reference=reference,
                        overrides=overrides, env_version=env_version)
    write_outputs(ev, out, plots=plots, overwrite=overwrite)
    print(report_text(ev))
    if parsed:
        from agents.tradeoffs.report import write_constraint_report

        print(write_constraint_report(ev, parsed, out, overrides))
    print(f"wrote {out}/: results.md, results.json, summary.json, summary.csv"
          + ("" if plots in (False, "none") else ", PNG plots"))
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
    ap.add_argument("--seeds", type=int, default=20,
                    help="evaluation seeds per scenario (default: 20; claims need paired CIs over >= 20)")
    ap.add_argument("--out", default="runs/eval", help="output folder (default: runs/eval)")
    ap.add_argument("--env-version", type=int, choices=(0, 1), default=1,
                    help="Rationing-v1 (default) or Rationing-v0")
    ap.add_argument("--tuned-file", default=None,
                    help="tuned baseline parameters (default: the shipped file of --env-version)")
    ap.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                    help="add the best tuned baseline when no tuned baseline is among the policies")
    ap.add_argument("--days", type=float, default=None,
                    help="episode length override in days (0 < days <= 90), for quick looks (default: the scenario's)")
    ap.add_argument("--plots", nargs="?", const="all", default="all", choices=PLOT_MODES,
                    help="which PNG plots: all (default), headline (the two summary plots), none")
    ap.add_argument("--no-plots", dest="plots", action="store_const", const="none", help="same as --plots none")
    ap.add_argument("--constraint", action="append", metavar="TIER.METRIC>=LIMIT",
                    help="report this constraint's satisfaction per policy and scenario (CI over seeds), repeatable; "
                         "e.g. enterprise.latency_attainment>=0.99 (agents/tradeoffs/constraints.py)")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation in --out")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args(argv)
    if a.days is not None and not (math.isfinite(a.days) and 0 < a.days <= 90):
        ap.error(f"--days = {a.days}: must be a number of days in (0, 90]")
    if any(Path(str(p).split("@")[0]).exists() for p in a.policy or []):
        import torch  # a trained policy: a few rows per step, extra threads only cost time on shared cores

        torch.set_num_threads(1)
    from agents.common.files import FileRefused
    from envs import ScenarioError
    from envs.trace import TraceError

    try:
        evaluate_and_report(a.policy or ["baselines"], a.scenario, a.seeds, a.out, progress=a.progress,
                            plots=a.plots, tuned_file=a.tuned_file, reference=a.reference, env_version=a.env_version,
                            overrides={"time": {"episode_days": a.days}} if a.days is not None else None,
                            overwrite=a.overwrite, constraints=a.constraint)
    except (PolicyError, ScenarioError, SeedError, RuleError, EvaluateError, TraceError, FileRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
