"""Train a PPO rationing policy, then compare it with the tuned baselines.

    python train.py                                   # default scenario mix, a few minutes on 2 cores
    python train.py --scenario outage --timesteps 2000000 --seed 3
    python train.py --resume checkpoints/<run>        # continue an interrupted run (same weights as uninterrupted)
    python train.py --resume checkpoints/<run> --timesteps 8000000   # extend a run to 8M total steps
    python train.py --hp learning_rate=1e-4 --n-envs 64               # any hyperparameter; the minibatch adapts

Bad input: exit code 2, one line on stderr, nothing created or changed (README, "Errors").

Read top to bottom: arguments -> run folder -> environment -> PPO -> callbacks
(atomic checkpoints, evaluation on held-out seeds and scenarios, progress) ->
learn -> final evaluation table. Hyperparameters come from
``agents/ppo/hyperparams/ppo.yaml``; every option is listed by ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.common.cli import OneLineParser
from agents.common.files import kill_point, write_json_atomic
from agents.ppo import sb3
from agents.ppo.checkpoint import CheckpointError, pointer_info
from agents.ppo.config import ConfigError, PPOHyperparams, TrainArgs
from agents.ppo.parameterisation import ActionLayout
from agents.ppo.run_folder import new_run, resume_run, run_env_version, scenario_specs
from agents.ppo.run_policy import RUN_FILE
from agents.ppo.run_steps import clean_up, finish, restore, save_to, truncate_history

# --------------------------------------------------------------------------- arguments
MAX_REWARD_WEIGHT = 1e6


def parse_args(argv: list[str] | None = None) -> tuple[TrainArgs, set[str]]:
    """The arguments, and the names of the options given explicitly (``--resume`` refuses most of them)."""
    parser = OneLineParser(
        prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = {}
    for f in dataclasses.fields(TrainArgs):
        flag = "--" + f.name.replace("_", "-")
        defaults[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        help_text = f.metadata["help"]
        if f.type in ("bool",):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        elif f.name in ("scenario", "hp", "constraint"):
            parser.add_argument(flag, action="append", default=argparse.SUPPRESS,
                                metavar={"scenario": "NAME_OR_PATH", "hp": "KEY=VALUE"}.get(f.name, "TIER.METRIC>=X"),
                                help=help_text.replace("%(default)s", ", ".join(defaults[f.name])))
        else:
            kind = {"int | None": int, "int": int, "float | None": float, "float": float, "str | None": str,
                    "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text)
    ns = vars(parser.parse_args(argv))
    args = TrainArgs(**{**defaults, **ns})
    for name in ("timesteps", "n_envs", "checkpoint_every", "eval_every", "eval_seeds", "val_seeds", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} = {value}: must be >= 1")
    if args.seed < 0 or args.seed >= 1 << 24:
        parser.error(f"--seed = {args.seed}: must be >= 0 and < {1 << 24:,}")
    if args.eval_seeds > 1000 or args.val_seeds > 1000 or args.threads > 256:
        parser.error("--eval-seeds and --val-seeds must be <= 1000, --threads <= 256")
    if not (math.isfinite(args.lagrange_lr) and 0 < args.lagrange_lr <= 100):
        parser.error(f"--lagrange-lr = {args.lagrange_lr}: must be a finite number in (0, 100]")
    if not (math.isfinite(args.preference_alpha) and 0 < args.preference_alpha <= 100):
        parser.error(f"--preference-alpha = {args.preference_alpha}: must be a finite number in (0, 100]")
    for name in ("margin_weight", "latency_weight", "churn_weight"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_REWARD_WEIGHT):
            parser.error(f"--{name.replace('_', '-')} = {value}: must be a finite number in 0..{MAX_REWARD_WEIGHT:g}")
    return args, set(ns)


# -------------------------------------------------------------------------- environment
def eval_overrides(run: dict[str, Any], reward: bool = True) -> dict[str, Any] | None:
    """Scenario overrides for validation (with the run's reward weights) and the final table (without):
    a run trained with ``action.burst: policy`` is evaluated with the burst action on every scenario."""
    over = dict(run.get("reward_overrides") or {}) if reward else {}
    if run["action_layout"].get("n_extra", 0):
        over["action"] = {"burst": "policy"}
    return over or None


def make_env(run_dir: Path, run: dict[str, Any], hp: PPOHyperparams):
    """Batched env over the run's scenarios, target-quota wrapper, VecMonitor, VecNormalize (agents/ppo/sb3.py)."""
    return sb3.make_env(scenario_specs(run_dir, run), run, hp)


def tensorboard_logger(run_dir: Path, start: int):
    """SB3's logger writing TensorBoard events to ``tb/ppo``; after a resume, steps after ``start`` replace
    those the interrupted process logged (TensorBoard's purge step), so curves continue without duplicates."""
    from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat
    from torch.utils.tensorboard import SummaryWriter

    folder = run_dir / "tb" / "ppo"
    fmt = TensorBoardOutputFormat(str(folder))
    # the logs of step ``start`` were written before its checkpoint; later ones are logged again now
    fmt.writer.close()
    fmt.writer = SummaryWriter(log_dir=str(folder), purge_step=start + 1)
    return Logger(folder=str(folder), output_formats=[fmt])


def warm_start(model, run_dir: Path, run: dict[str, Any], hp: PPOHyperparams) -> dict[str, Any]:
    """Behaviour-clone the named (or best tuned) rule into the fresh PPO model."""
    from agents.common.policy import PolicyError
    from agents.ppo.drift import save_reference
    from agents.ppo.warmstart import clone, collect
    from agents.rules import best_tuned_baseline, tuned_file_for

    rule = hp.warm_start
    residual = hp.action_parameterisation == "residual"
    if residual:  # the residual's own rule: the policy starts as that rule exactly (agents/ppo/residual.py)
        rule = run["residual"]["rule"]
    elif rule == "best":
        tuned = tuned_file_for(run_env_version(run))
        try:
            rule = best_tuned_baseline(tuned)
        except PolicyError:
            rule = None
        if rule is None:
            raise ConfigError(f"warm_start = best: {tuned} names no best rule (run python -m agents.tune)")
    t0 = time.perf_counter()
    demos = collect(rule, scenario_specs(run_dir, run), hp.warm_start_envs, run["seed"], hp.gamma, hp.randomize,
                    run.get("reward_overrides") or None, ActionLayout.from_dict(run["action_layout"]),
                    version=run_env_version(run), preference=run.get("preference"),
                    residual=run["residual"] if residual else None)
    kill_point("warm_start")
    stats = clone(model, demos, hp.warm_start_epochs, seed=run["seed"], actor=not residual,
                  twin=hp.twin_baseline)
    save_reference(run_dir, run, model, demos.obs, seed=run["seed"])
    stats.update(rule=rule, seconds=round(time.perf_counter() - t0, 1))
    how = "residual on" if residual else "cloned"
    print(f"warm start: {how} {rule!r} from {stats['samples']:,} decisions (actor MSE {stats['actor_mse']:.4f}, "
          f"rule return {stats['rule_return']:.1f}) in {stats['seconds']} s")
    return stats


# --------------------------------------------------------------------------------- main
def train(args: TrainArgs, report: Callable[[dict[str, Any]], None] | None = None,
          explicit: set[str] | None = None) -> tuple[Path, int]:
    """Create (or resume) the run, warm-start, learn, finish. Every phase can be killed and resumed."""
    import torch
    from stable_baselines3.common.utils import set_random_seed

    from agents.ppo.callback import make_callback
    from agents.ppo.resume_state import take

    notes: list[str] = []
    run_dir, run = resume_run(args, explicit, notes) if args.resume else new_run(args, notes)
    for note in notes:
        print(note)
    hp = PPOHyperparams.model_validate(run["hyperparams"])
    config = {**run["config"], "progress": args.progress}
    torch.set_num_threads(args.threads if not args.resume or "threads" in (explicit or ()) else config["threads"])
    set_random_seed(run["seed"])
    env = make_env(run_dir, run, hp)
    model = sb3.make_model(env, hp, run["seed"])
    restored = restore(run_dir, run, model)  # refuses a bad checkpoint before anything changes
    clean_up(run_dir)
    if restored is None:  # a new run, or one killed before its first checkpoint: start (again) from scratch
        if hp.warm_start != "none":
            run["warm_start"] = warm_start(model, run_dir, run, hp)
        save_to(run_dir, run, take(model, {}), "latest", {"warm_start": run.get("warm_start")})
        start, counters = 0, {}
    else:
        start, counters = restored
        truncate_history(run_dir, start)
        if start and counters.get("best") is None and (run_dir / "best.json").exists():
            counters["best"] = pointer_info(run_dir, "best").get("score")
    total = hp.timesteps
    if start >= total:
        finish(run_dir, run, model, take(model, counters))
        print(f"run {run_dir} has {start:,} of {total:,} timesteps: finished")
        return run_dir, 0
    model.set_logger(tensorboard_logger(run_dir, start))
    callback = make_callback(run_dir, run, config, total, start, counters, args.progress, report)
    run.update(status="running", timesteps_done=start)
    write_json_atomic(run_dir / RUN_FILE, run)
    print(f"run folder {run_dir} | scenarios {', '.join(run['scenarios'])} | {hp.n_envs} envs | "
          f"{total:,} timesteps" + (f" (resuming at {start:,})" if start else ""))

    def _sigterm(signum, frame):  # treat SIGTERM like Ctrl-C
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():  # not in a Ray Tune trial's thread
        signal.signal(signal.SIGTERM, _sigterm)
    try:
        model.learn(total_timesteps=total - start, callback=callback, reset_num_timesteps=not start,
                    tb_log_name="ppo")
    except KeyboardInterrupt:
        snap = callback.snapshot or take(model, callback.counters())
        save_to(run_dir, run, snap, "latest")
        run.update(status="interrupted", timesteps_done=snap.timesteps)
        write_json_atomic(run_dir / RUN_FILE, run)
        print(f"\ninterrupted: saved checkpoint at {snap.timesteps:,} timesteps; "
              f"continue with: python train.py --resume {run_dir}", file=sys.stderr)
        return run_dir, 130
    finish(run_dir, run, model, take(model, callback.counters()))
    return run_dir, 0


def final_evaluation(run_dir: Path, n_seeds: int, progress: bool = True, all_plots: bool = False) -> None:
    """The table against the tuned baselines; the headline plots only unless ``all_plots``."""
    from agents.common.seeds import ALL_SCENARIOS
    from agents.evaluate.command import evaluate_and_report
    from agents.ppo.run_policy import read_run
    from agents.tradeoffs.constraints import Constraint

    run = read_run(run_dir)
    scenarios = list(dict.fromkeys([*ALL_SCENARIOS, *scenario_specs(run_dir, run)]))
    evaluate_and_report([str(run_dir), "baselines"], scenarios=scenarios, n_seeds=n_seeds, out=run_dir / "evaluation",
                        progress=progress, plots="all" if all_plots else "headline", overwrite=True,
                        env_version=run_env_version(run), overrides=eval_overrides(run, reward=False),
                        constraints=[Constraint.from_dict(d).name for d in run.get("constraints") or []])


def main(argv: list[str] | None = None) -> int:
    args, explicit = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from agents.common.files import FileRefused
    from agents.common.policy import PolicyError
    from envs import ScenarioError
    from envs.trace import TraceError

    try:
        run_dir, code = train(args, explicit=explicit)
        if code == 0 and args.final_eval:
            final_evaluation(run_dir, args.eval_seeds, args.progress, args.all_plots)
    except (ConfigError, ScenarioError, CheckpointError, TraceError, FileRefused, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
