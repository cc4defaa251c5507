"""Sweeps of train.py on Ray Tune, and the margin / latency-attainment / churn front.

    python -m agents.sweep --config sweeps/smoke.yaml                 # Ray started locally on this machine
    python -m agents.sweep --config sweeps/front.yaml --address HOST:6379   # attach to a running cluster
    python -m agents.sweep --config sweeps/front.yaml                 # again: resumes the interrupted sweep

Needs the ``sweep`` extra (``pip install -e ".[sweep]"``: Ray Tune, Optuna). The sweep file
(schema in :mod:`agents.sweep.config`) names the train.py arguments every trial shares
(``base``) and a search space over train.py arguments and ``hp.<name>`` PPO hyperparameters.
Each trial runs train.py's ``train()`` in its Ray worker (one torch thread) and writes the
same run folder as ``train.py`` under ``<output>/runs/<trial id>``; every validation
evaluation (``eval_history.jsonl``) is reported to Tune, so ASHA can stop poor trials. A
failed trial does not stop the sweep. Tune's state lives in ``<output>/tune``: running the
command again on the same sweep folder resumes it (unfinished trials continue from their
latest checkpoint; ``--retry-failed`` also reruns failed ones).

Afterwards each trial's best checkpoint and the tuned baselines are evaluated on the
evaluation seeds (``front.seeds``) of the same scenarios; ``front.csv`` has one row per
policy (mean margin, latency attainment, churned users, return over scenarios and seeds;
``pareto`` = no other policy has at least the margin and attainment and at most the churn,
better in one) and ``front.png`` plots margin against attainment, coloured by churn.
``trials.csv`` lists the trials with their parameters, status and last score.
"""

from __future__ import annotations

import sys

from agents.sweep.front import _short, front

try:
    import ray
    from ray import tune
except ImportError:  # pragma: no cover - depends on the installed extras
    _MSG = 'agents.sweep needs Ray Tune: pip install -e ".[sweep]"'
    if __name__ == "__main__":
        print(f"error: {_MSG}", file=sys.stderr)
        raise SystemExit(2) from None
    raise ImportError(_MSG) from None

import argparse
import csv
import importlib.util
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from agents.common.cli import OneLineParser
from agents.ppo.checkpoint import pointer
from agents.ppo.config import HYPERPARAMS_FILE, ConfigError, TrainArgs
from agents.sweep.config import SweepConfig, SweepConfigError, load_sweep

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------- trials
def _train_module():
    """train.py (a script at the repository root, not a package module)."""
    spec = importlib.util.spec_from_file_location("rationing_train", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _trial_hyperparams(base_file: str, hp: dict[str, Any], out: Path) -> str:
    """The base hyperparameter file with the trial's ``hp.*`` values in every entry."""
    raw = yaml.safe_load(Path(base_file).read_text()) or {}
    raw = {k: ({**v, **hp} if isinstance(v, dict) else v) for k, v in raw.items()}
    raw.setdefault("default", dict(hp))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    tmp.replace(out)
    return str(out)


def trial_args(cfg: SweepConfig, params: dict[str, Any], trial_id: str) -> TrainArgs:
    sweep = Path(cfg.output)
    base = cfg.base.model_dump()
    base["hyperparams"] = base["hyperparams"] or str(HYPERPARAMS_FILE)
    hp = dict(params.get("hp") or {})
    if hp:
        base["hyperparams"] = _trial_hyperparams(base["hyperparams"], hp, sweep / "hyperparams" / f"{trial_id}.yaml")
    base.update({k: v for k, v in params.items() if k != "hp"})
    if isinstance(base["scenario"], str):
        base["scenario"] = [base["scenario"]]
    run_dir = sweep / "runs" / trial_id
    if run_dir.exists() and pointer(run_dir, "latest") is None:  # stopped before its first checkpoint: start over
        shutil.rmtree(run_dir)
    resume = str(run_dir) if (run_dir / "run.json").exists() else None
    return TrainArgs(**base, run_name=trial_id, output=str(sweep / "runs"), resume=resume, final_eval=False,
                     progress=False)


def _metrics(entry: dict[str, Any]) -> dict[str, Any]:
    out = {"score": entry["score"], "timesteps": entry["timesteps"], "train_wall_s": entry.get("wall_s")}
    out.update({f"return/{k}": v for k, v in entry.get("returns", {}).items()})
    return out


def run_trial(params: dict[str, Any], cfg: SweepConfig) -> None:
    """Tune's function trainable: train.py's train() in this worker, each evaluation reported to Tune."""
    import torch

    trial_id = tune.get_context().get_trial_id()
    args = trial_args(cfg, params, trial_id)
    torch.set_num_threads(args.threads)
    reported = []

    def report(entry: dict[str, Any]) -> None:
        reported.append(entry)
        tune.report(_metrics(entry))

    run_dir, code = _train_module().train(args, report=report)
    if code != 0:
        raise RuntimeError(f"train.py stopped with code {code} in {run_dir}")
    if not reported:  # resumed a finished run: report its last evaluation so the trial has a result
        history = run_dir / "eval_history.jsonl"
        lines = history.read_text().splitlines() if history.exists() else []
        if lines:
            tune.report(_metrics(json.loads(lines[-1])))


# ---------------------------------------------------------------------------- tuner
def _domain(dom) -> Any:
    if dom.kind == "choice":
        return tune.choice(dom.choice)
    if dom.kind == "grid":
        return tune.grid_search(dom.grid)
    if dom.kind == "uniform":
        return tune.uniform(*dom.uniform)
    return tune.loguniform(*dom.loguniform)


def param_space(cfg: SweepConfig) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for key, dom in cfg.search_space.items():
        if key.startswith("hp."):
            space.setdefault("hp", {})[key[3:]] = _domain(dom)
        else:
            space[key] = _domain(dom)
    return space


def _scheduler(cfg: SweepConfig):
    if cfg.scheduler.type == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    from agents.ppo.config import load_hyperparams

    hp_file = cfg.base.hyperparams or HYPERPARAMS_FILE
    max_t = cfg.base.timesteps or load_hyperparams(hp_file, cfg.base.scenario).timesteps
    return ASHAScheduler(time_attr="timesteps", max_t=max_t, grace_period=cfg.scheduler.grace_period or
                         cfg.base.eval_every, reduction_factor=cfg.scheduler.reduction_factor,
                         brackets=cfg.scheduler.brackets)


def _searcher(cfg: SweepConfig):
    if cfg.searcher == "random":
        return None
    try:
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise SweepConfigError('searcher optuna: optuna is not installed (pip install -e ".[sweep]")') from None
    return OptunaSearch(seed=cfg.base.seed)


def _trainable(cfg: SweepConfig):
    return tune.with_resources(tune.with_parameters(run_trial, cfg=cfg), {"cpu": cfg.resources_per_trial.cpu})


def tune_path(cfg: SweepConfig) -> Path:
    return Path(cfg.output) / "tune" / cfg.name


def run_sweep(cfg: SweepConfig, resume: bool = True, retry_failed: bool = False):
    path = tune_path(cfg)
    if resume and tune.Tuner.can_restore(str(path)):
        print(f"resuming sweep {path}")
        tuner = tune.Tuner.restore(str(path), trainable=_trainable(cfg), resume_unfinished=True,
                                   resume_errored=retry_failed)
    else:
        tuner = tune.Tuner(
            _trainable(cfg),
            param_space=param_space(cfg),
            tune_config=tune.TuneConfig(metric=cfg.metric, mode=cfg.mode, num_samples=cfg.num_samples,
                                        scheduler=_scheduler(cfg), search_alg=_searcher(cfg),
                                        max_concurrent_trials=cfg.max_concurrent),
            run_config=tune.RunConfig(name=cfg.name, storage_path=str(path.parent),
                                      failure_config=tune.FailureConfig(max_failures=0), verbose=1),
        )
    return tuner.fit()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _last_line(error: BaseException) -> str:
    """The exception's own message: the last line of Ray's wrapped traceback, without colour codes."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def write_trials(results, out: Path, max_t: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        m = r.metrics or {}
        trial_id = m.get("trial_id") or Path(r.path).name
        status = "error" if r.error else ("finished" if m.get("done") else "stopped")
        if status == "finished" and max_t and (m.get("timesteps") or 0) < max_t:
            status = "stopped"  # by the scheduler (ASHA) before its budget
        rows.append({"trial": trial_id, **_flat(r.config or {}), "status": status,
                     "timesteps": m.get("timesteps"), "score": m.get("score"),
                     "error": _last_line(r.error) if r.error else ""})
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return rows



# ---------------------------------------------------------------------------- main
def _init_ray(address: str | None) -> None:
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=256 * 1024 * 1024)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.sweep", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="sweep YAML file (see agents/sweep/config.py)")
    ap.add_argument("--address", default=None, help="Ray cluster to attach to (default: start Ray on this machine)")
    ap.add_argument("--output", default=None, help="sweep folder (default: the file's output)")
    ap.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                    help="resume the sweep if its folder has one (default: yes)")
    ap.add_argument("--retry-failed", action="store_true", help="when resuming, rerun failed trials too")
    ap.add_argument("--front", action=argparse.BooleanOptionalAction, default=True,
                    help="evaluate the trials and the baselines and write front.csv / front.png")
    ns = ap.parse_args(argv)
    try:
        cfg = load_sweep(ns.config, ns.output)
        if cfg.searcher == "optuna":
            _searcher(cfg)
    except SweepConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _init_ray(ns.address)
    try:
        results = run_sweep(cfg, resume=ns.resume, retry_failed=ns.retry_failed)
    finally:
        ray.shutdown()
    rows = write_trials(results, out / "trials.csv", cfg.base.timesteps)
    failed = [r["trial"] for r in rows if r["status"] == "error"]
    stopped = sum(r["status"] == "stopped" for r in rows)
    print(f"sweep {cfg.name}: {len(rows)} trials ({len(failed)} failed, {stopped} stopped early) in "
          f"{time.perf_counter() - t0:.0f} s; {out / 'trials.csv'}")
    saved = tune.ExperimentAnalysis(str(tune_path(cfg))).trials  # the state a resume would start from
    if any(t.status not in ("TERMINATED", "ERROR") for t in saved):
        print(f"sweep interrupted with unfinished trials: run the same command again to resume "
              f"({tune_path(cfg)})", file=sys.stderr)
        return 130
    from agents.ppo.run_policy import run_checkpoint

    run_dirs = []
    for r in rows:
        d = out / "runs" / r["trial"]
        try:
            run_checkpoint(d)
        except Exception:  # a trial that failed before its first checkpoint
            continue
        run_dirs.append(d)
    if ns.front and run_dirs:
        try:
            swept = [k for k in rows[0] if k not in ("trial", "status", "timesteps", "score", "error")]
            params = {r["trial"]: " ".join(f"{k}={_short(r[k])}" for k in swept if r.get(k) is not None)
                      for r in rows}
            front_rows = front(cfg, run_dirs, params)
        except (ConfigError, ValueError) as exc:
            print(f"error: front: {exc}", file=sys.stderr)
            return 2
        best = max(front_rows, key=lambda r: r["episode_return"])
        print(f"front: {len(front_rows)} policies ({sum(r['pareto'] for r in front_rows)} Pareto-optimal), best "
              f"return {best['policy']}; {out / 'front.csv'}, {out / 'front.png'}")
    return 1 if failed and len(failed) == len(rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
