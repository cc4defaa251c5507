"""The front of one preference-conditioned run beside single-weighting runs (a sweep's) and the tuned rules.

    python -m agents.tradeoffs.front --run runs/pref/<run> --weights-grid 3 --scenario default --seeds 5 \\
        --compare runs/w-latency4 --compare runs/w-churn4 [--sweep runs/sweeps/front] --out runs/front-pref

Evaluates, on one scenario and the same evaluation seeds (common random numbers):

* the conditioned run (``train.py --preference``; its best checkpoint, or ``--checkpoint final``: the
  best is chosen by the mean balanced return at the simplex's corners and centre, or, in runs made
  before ``selection_weights``, by validation at ``1,1,1`` alone, which favours a checkpoint that moved
  least) at every weighting of ``--weights-grid N`` (the
  points ``3 (i, j, k) / N`` with ``i + j + k = N`` on the simplex the run was trained on) and of
  each ``--weights margin=..,latency=..,churn=..``;
* every ``--compare`` run folder and every run of ``--sweep DIR`` (``DIR/runs/*``): runs trained at
  one reward weighting each; the conditioned run is also evaluated at each of their weightings;
* the tuned rules (``--rules``, default every tuned baseline);
* the rules of each ``--tuned-rules FILE`` (``python -m agents.tune --weights ... --out FILE``: rules tuned at
  another weighting, the strongest rule there is at that weighting), labelled with the file's weights.

Writes to ``--out``: ``front.csv`` (per point: margin, latency attainment, churned users, each with its
95% CI, the return under the scenario's weights, Pareto flag over all points, and for a rule the
weighting of the conditioned run that weakly dominates it), ``pairs.csv`` (per compared run: the
return under that run's own weights of the run and of the conditioned run at the same weights, their
paired difference with its 95% CI, and the verdict: ``matches`` when the CI reaches 0 or lies above it,
and the training steps of both), ``front.md`` (both tables) and ``front.png``. Bad input: one line on
stderr, exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.cli import OneLineParser
from agents.tradeoffs.front_plot import RULE_KINDS, plot
from agents.tradeoffs.preference import OBJECTIVES, WEIGHT_SUM, weights_label

AXES = (("margin_usd", "margin_usd"), ("latency_attainment", "latency_attainment_all"),
        ("churned_users", "churned_users_all"), ("episode_return", "episode_return"))
"""(front column, evaluation metric): maximise margin and attainment, minimise churn."""


class FrontError(ValueError):
    """Bad arguments of the front command; the message is one line."""


def simplex_grid(n: int) -> list[tuple[float, ...]]:
    """Every weighting ``3 (i, j, k) / n`` with ``i + j + k = n`` (margin first, then latency, churn)."""
    if not 1 <= n <= 12:
        raise FrontError(f"--weights-grid {n}: must be 1..12 (the grid has (n+1)(n+2)/2 points)")
    pts = [(i, j, n - i - j) for i in range(n, -1, -1) for j in range(n - i, -1, -1)]
    return [tuple(WEIGHT_SUM * v / n for v in p) for p in pts]


def weighted_spec(path: str, weights) -> str:
    """The policy spec of a preference run acting at ``weights``: ``PATH@margin=..,latency=..,churn=..``."""
    return f"{path}@" + ",".join(f"{o}={v:g}" for o, v in zip(OBJECTIVES, weights))


def run_weights(run: dict[str, Any]) -> tuple[float, ...]:
    """A single-weighting run's reward weights (unset ones are 1: the shipped scenarios' weights)."""
    rw = (run.get("reward_overrides") or {}).get("reward") or {}
    return tuple(float(rw.get(f"{o}_weight", 1.0)) for o in OBJECTIVES)


def weighted_return(metrics: dict[str, np.ndarray], weights, scale_usd: float) -> np.ndarray:
    """Per-seed episode return under ``weights`` (the scalar reward's formula on the episode sums)."""
    w = np.asarray(weights, np.float64)
    margin = metrics["margin_usd"] - np.nan_to_num(metrics.get("sla_credit_usd_all", 0.0))
    return (w[0] * margin - w[1] * metrics["latency_penalty_usd"] - w[2] * metrics["churn_penalty_usd"]) / scale_usd


def read_runs(run: str, compare: list[str], sweep: str | None) -> tuple[dict[str, Any], dict[Path, dict[str, Any]]]:
    """(the preference run's run.json, {folder: run.json} of the compared single-weighting runs), validated."""
    from agents.ppo.checkpoint import CheckpointError
    from agents.ppo.run_policy import read_run

    def read(path: Path, what: str) -> dict[str, Any]:
        try:
            return read_run(path)
        except CheckpointError as exc:
            raise FrontError(f"{what} {str(path)!r}: {exc}") from None

    pref = read(Path(run), "--run")
    if not pref.get("preference"):
        raise FrontError(f"--run {run!r} was not trained with --preference (run.json has no preference)")
    paths = [Path(p) for p in compare]
    if sweep is not None:
        found = sorted(p.parent for p in (Path(sweep) / "runs").glob("*/run.json"))
        if not found:
            raise FrontError(f"--sweep {sweep!r}: no run folders under {sweep}/runs")
        paths += found
    others = {}
    for p in paths:
        meta = read(p, "--compare")
        if meta.get("preference"):
            raise FrontError(f"--compare {str(p)!r} is preference-conditioned; compare single-weighting runs")
        others[p] = meta
    return pref, others


def _tuned_rules(files: list[str]) -> list[tuple[str, list[str], tuple[float, ...] | None]]:
    """(file, its rules, its reward weights or None) of each ``--tuned-rules`` file."""
    from agents.common.policy import PolicyError
    from agents.rules import RULES
    from agents.rules.tuned import read_tuned

    out = []
    for f in files:
        if not Path(f).is_file():
            raise FrontError(f"--tuned-rules {f!r}: no such file (make one with python -m agents.tune --out)")
        try:
            data = read_tuned(f)
        except PolicyError as exc:
            raise FrontError(f"--tuned-rules {f!r}: {exc}") from None
        names = [r for r in data["rules"] if r in RULES]
        if not names:
            raise FrontError(f"--tuned-rules {f!r}: holds no rule (allowed: {', '.join(RULES)})")
        w = data.get("reward_weights")
        out.append((f, names, tuple(float(x) for x in w) if w else None))
    return out


def compute(run: str, weightings: list[tuple[float, ...]], compare: list[str], sweep: str | None, scenario: str,
            n_seeds: int, rules: list[str], progress: bool = False,
            checkpoint: str = "best", tuned_rules: list[str] = ()) -> tuple[list[dict], list[dict]]:
    """(front rows, pair rows); see the module docstring. ``checkpoint``: which of the conditioned run's
    checkpoints acts (``best``, the one its model selection chose, or ``final``); ``tuned_rules``: tuned
    files whose rules are added as points (kind ``weighted-rule``)."""
    from agents.evaluate.metrics import mean_ci
    from agents.evaluate.runner import run_evaluation
    from agents.rules import RuleContext
    from agents.sweep.front import pareto_flags

    pref, others = read_runs(run, compare, sweep)
    extra_rules = _tuned_rules(list(tuned_rules))
    scale = RuleContext(scenario, version=int(pref.get("env_version", 0))).params.reward_scale_usd
    extra = [run_weights(m) for m in others.values()]
    norm = [tuple(WEIGHT_SUM * v / sum(w) for v in w) for w in extra]
    weightings = list(dict.fromkeys([tuple(round(v, 6) for v in w) for w in [*weightings, *norm]]))
    acting = run
    if checkpoint != "best":
        from agents.ppo.checkpoint import CheckpointError
        from agents.ppo.run_policy import run_checkpoint

        try:
            acting = str(run_checkpoint(Path(run), (checkpoint,)))
        except CheckpointError as exc:
            raise FrontError(f"--checkpoint {checkpoint}: {exc}") from None
    spec = {w: weighted_spec(acting, w) for w in weightings}
    policies = [*spec.values(), *map(str, others), *rules]
    ev = run_evaluation(policies, [scenario], n_seeds, progress=progress, reference=False,
                        env_version=int(pref.get("env_version", 0)))
    cells = {c.spec.spec: c for c in ev.cells}
    weighted = []  # (cell, weights) of the rules tuned at other weightings, on the same seeds
    for f, names, w in extra_rules:
        ev_f = run_evaluation(names, [scenario], n_seeds, progress=progress, reference=False, tuned_file=f,
                              env_version=int(pref.get("env_version", 0)))
        weighted += [(c, w) for c in ev_f.cells]

    def point(c, policy: str, kind: str, weights) -> dict[str, Any]:
        row: dict[str, Any] = {"policy": policy, "kind": kind, "weights": weights_label(weights) if weights else ""}
        for col, metric in AXES:
            m, h = mean_ci(c.metrics[metric])
            row[col], row[f"{col}_ci95"] = float(m), float(h)
        return row

    rows = [point(cells[s], cells[s].label, "preference", cells[s].spec.weights) for s in spec.values()]
    rows += [point(cells[str(p)], cells[str(p)].label, "single", run_weights(m)) for p, m in others.items()]
    rows += [point(cells[r], cells[r].label, "rule", None) for r in rules]
    rows += [point(c, f"{c.label} [{weights_label(w) if w else 'scenario weights'}]", "weighted-rule", w)
             for c, w in weighted]
    flags = pareto_flags([(r["margin_usd"], r["latency_attainment"], r["churned_users"]) for r in rows])
    prefs = [r for r in rows if r["kind"] == "preference"]
    for r, flag in zip(rows, flags):
        r["pareto"] = flag
        if r["kind"] in RULE_KINDS:  # the conditioned run's weightings that weakly dominate this rule's point
            dom = [p["weights"] for p in prefs if p["margin_usd"] >= r["margin_usd"]
                   and p["latency_attainment"] >= r["latency_attainment"] and p["churned_users"] <= r["churned_users"]]
            r["dominated_by"] = " ".join(dom)
    pairs = []
    for (p, meta), w, wn in zip(others.items(), extra, norm):
        single, cond = cells[str(p)], cells[spec[tuple(round(v, 6) for v in wn)]]
        a, b = weighted_return(single.metrics, w, scale), weighted_return(cond.metrics, w, scale)
        d, h = mean_ci(b - a)
        pairs.append({"run": p.name, "weights": weights_label(w), "run_return": float(a.mean()),
                      "preference_return": float(b.mean()), "difference": float(d), "difference_ci95": float(h),
                      "verdict": "matches" if float(d) + float(h) >= 0 else "below",
                      "run_timesteps": int(meta.get("timesteps_done") or 0),
                      "preference_timesteps": int(pref.get("timesteps_done") or 0)})
    return rows, pairs


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def markdown(rows: list[dict], pairs: list[dict], title: str) -> str:
    out = [f"# {title}", "", "| policy | kind | weights m,l,c | margin $M | attainment % | churned users | "
           "return | Pareto | rule weakly dominated by |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['policy']} | {r['kind']} | {r['weights']} | {r['margin_usd'] / 1e6:.3f} ± "
                   f"{r['margin_usd_ci95'] / 1e6:.3f} | {100 * r['latency_attainment']:.2f} ± "
                   f"{100 * r['latency_attainment_ci95']:.2f} | {r['churned_users']:,.0f} ± "
                   f"{r['churned_users_ci95']:,.0f} | {r['episode_return']:.1f} | {'yes' if r['pareto'] else ''} | "
                   f"{r.get('dominated_by', '') or ('none' if r['kind'] in RULE_KINDS else '')} |")
    if pairs:
        out += ["", "Return under each compared run's own weights (paired over seeds, 95% CI):", "",
                "| run | weights | run | conditioned | difference | verdict | steps (run / conditioned) |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {p['run']} | {p['weights']} | {p['run_return']:.1f} | {p['preference_return']:.1f} | "
                f"{p['difference']:+.1f} ± {p['difference_ci95']:.1f} | {p['verdict']} | "
                f"{p['run_timesteps']:,} / {p['preference_timesteps']:,} |" for p in pairs]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.tradeoffs.front", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder trained with --preference")
    ap.add_argument("--weights-grid", type=int, default=3, metavar="N", help="simplex grid, N+1 points per edge")
    ap.add_argument("--weights", action="append", default=[], metavar="margin=..,latency=..,churn=..")
    ap.add_argument("--compare", action="append", default=[], metavar="RUN", help="a single-weighting run folder")
    ap.add_argument("--sweep", default=None, metavar="DIR", help="a sweep folder: its runs/* are compared")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rules", default="baselines", help="comma-separated rules, or 'baselines' (all tuned)")
    ap.add_argument("--tuned-rules", action="append", default=[], metavar="FILE",
                    help="a tuned-rules file (python -m agents.tune --weights ... --out FILE): its rules are points")
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint", choices=("best", "final"), default="best",
                    help="the conditioned run's checkpoint: best (chosen by its model selection) or final")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # a few rows per step: extra threads only cost time (badly on a busy machine)
    from agents.common.policy import PolicyError
    from agents.common.seeds import SeedError
    from agents.evaluate.results import EvaluateError
    from agents.rules import RULES
    from agents.tradeoffs.preference import PreferenceError, parse_weights
    from envs import ScenarioError

    out = Path(args.out)
    try:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FrontError(f"--out {args.out!r} exists and is not an empty folder")
        rules = list(RULES) if args.rules == "baselines" else [r for r in args.rules.split(",") if r]
        bad = [r for r in rules if r not in RULES]
        if bad:
            raise FrontError(f"--rules {bad[0]!r}: not a rule (allowed: baselines, {', '.join(RULES)})")
        weightings = simplex_grid(args.weights_grid) + [parse_weights(w) for w in args.weights]
        rows, pairs = compute(args.run, weightings, args.compare, args.sweep, args.scenario, args.seeds, rules,
                              args.progress, args.checkpoint, args.tuned_rules)
    except (FrontError, PreferenceError, PolicyError, EvaluateError, SeedError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "front.csv", rows)
    if pairs:
        _write_csv(out / "pairs.csv", pairs)
    which = "" if args.checkpoint == "best" else f" ({args.checkpoint} checkpoint)"
    title = f"{Path(args.run).name}{which} on {Path(args.scenario).stem}, {args.seeds} evaluation seeds"
    (out / "front.md").write_text(markdown(rows, pairs, title))
    (out / "front.json").write_text(json.dumps({"run": str(args.run), "scenario": args.scenario,
                                                "seeds": args.seeds, "rows": rows, "pairs": pairs}, indent=1) + "\n")
    plot(rows, out / "front.png", title)
    print(markdown(rows, pairs, title))
    print(f"wrote {out}/: front.csv, front.md, front.json, front.png" + (", pairs.csv" if pairs else ""))
    return 0


__all__ = ["FrontError", "compute", "main", "markdown", "read_runs", "run_weights", "simplex_grid", "weighted_return",
           "weighted_spec"]

if __name__ == "__main__":
    raise SystemExit(main())
