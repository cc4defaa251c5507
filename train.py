"""Train a PPO rationing policy, then compare it with the tuned baselines.

    python train.py                                   # default scenario mix, a few minutes on 2 cores
    python train.py --scenario outage --timesteps 2000000 --seed 3
    python train.py --resume checkpoints/<run>        # continue an interrupted run

Read top to bottom: arguments -> run folder -> environment -> PPO -> callbacks
(atomic checkpoints, evaluation on held-out seeds and scenarios, progress) ->
learn -> final evaluation table. Hyperparameters come from
``agents/ppo/hyperparams/ppo.yaml``; every option is listed by ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.cli import OneLineParser
from agents.common.files import write_json_atomic
from agents.ppo.checkpoint import CheckpointError, pointer
from agents.ppo.config import VALIDATION_SEED_BASE, ConfigError, PPOHyperparams, TrainArgs, train_row_seed
from agents.ppo.parameterisation import ActionLayout, TargetQuotaActions, target_to_env_action
from agents.ppo.run_folder import new_run, restore, resume_run, run_env_version, save_to
from agents.ppo.run_policy import RUN_FILE


# --------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> TrainArgs:
    parser = OneLineParser(
        prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in dataclasses.fields(TrainArgs):
        flag = "--" + f.name.replace("_", "-")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        help_text = f.metadata["help"]
        if f.type in ("bool",):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif f.name == "scenario":
            parser.add_argument(flag, action="append", default=None, metavar="NAME_OR_PATH",
                                help=help_text.replace("%(default)s", ", ".join(default)))
        else:
            kind = {"int | None": int, "int": int, "float | None": float, "str | None": str, "str": str}[f.type]
            parser.add_argument(flag, type=kind, default=default, help=help_text)
    ns = parser.parse_args(argv)
    args = TrainArgs(**{k: v for k, v in vars(ns).items() if v is not None or k != "scenario"})
    for name in ("timesteps", "n_envs", "checkpoint_every", "eval_every", "eval_seeds", "val_seeds", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} = {value}: must be >= 1")
    if args.seed < 0:
        parser.error(f"--seed = {args.seed}: must be >= 0")
    return args



# -------------------------------------------------------------------------- environment
def eval_overrides(run: dict[str, Any], reward: bool = True) -> dict[str, Any] | None:
    """Scenario overrides for validation (with the run's reward weights) and the final table (without):
    a run trained with ``action.burst: policy`` is evaluated with the burst action on every scenario."""
    over = dict(run.get("reward_overrides") or {}) if reward else {}
    if run["action_layout"].get("n_extra", 0):
        over["action"] = {"burst": "policy"}
    return over or None


def make_env(run: dict[str, Any], hp: PPOHyperparams):
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from envs.sb3_vec_env import RationingVecEnv

    vec = RationingVecEnv(hp.n_envs, scenario=run["scenarios"], seed=train_row_seed(run["seed"]),
                          randomize=hp.randomize, overrides=run.get("reward_overrides") or None,
                          stagger=hp.stagger, version=run_env_version(run))
    if hp.action_parameterisation == "target":
        vec = TargetQuotaActions(vec, ActionLayout.from_dict(run["action_layout"]))
    return VecNormalize(VecMonitor(vec), norm_obs=hp.norm_obs, norm_reward=hp.norm_reward, clip_obs=hp.clip_obs,
                        gamma=hp.gamma)


def make_model(env, hp: PPOHyperparams, seed: int, tb_dir: Path | None):
    import torch.nn as nn
    from stable_baselines3 import PPO

    return PPO(
        "MlpPolicy", env, n_steps=hp.n_steps, batch_size=hp.batch_size, n_epochs=hp.n_epochs,
        learning_rate=(lambda progress: hp.learning_rate * progress) if hp.lr_schedule == "linear"
        else hp.learning_rate, gamma=hp.gamma, gae_lambda=hp.gae_lambda, clip_range=hp.clip_range,
        ent_coef=hp.ent_coef, vf_coef=hp.vf_coef, max_grad_norm=hp.max_grad_norm,
        policy_kwargs={"net_arch": list(hp.net_arch), "log_std_init": hp.log_std_init,
                       "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[hp.activation]},
        tensorboard_log=str(tb_dir) if tb_dir else None, seed=seed, device="cpu", verbose=0,
    )


def warm_start(model, run: dict[str, Any], hp: PPOHyperparams) -> dict[str, Any]:
    """Behaviour-clone the named (or best tuned) rule into the fresh PPO model."""
    from agents.ppo.warmstart import clone, collect
    from agents.rules import tuned_file_for

    rule = hp.warm_start
    if rule == "best":
        rule = json.loads(tuned_file_for(run_env_version(run)).read_text())["best"]
    t0 = time.perf_counter()
    demos = collect(rule, run["scenarios"], hp.warm_start_envs, run["seed"], hp.gamma, hp.randomize,
                    run.get("reward_overrides") or None, ActionLayout.from_dict(run["action_layout"]),
                    version=run_env_version(run))
    stats = clone(model, demos, hp.warm_start_epochs, seed=run["seed"])
    stats.update(rule=rule, seconds=round(time.perf_counter() - t0, 1))
    print(f"warm start: cloned {rule!r} from {stats['samples']:,} decisions (actor MSE {stats['actor_mse']:.4f}, "
          f"rule return {stats['rule_return']:.1f}) in {stats['seconds']} s")
    return stats


# -------------------------------------------------------------------------- evaluation
def validation_return(model, run: dict[str, Any], scenarios: list[str], n_seeds: int) -> dict[str, float]:
    """Mean episode return of the deterministic policy per scenario, on validation seeds."""
    import envs
    from agents.evaluate.metrics import rollout

    vecnorm = model.get_env()
    layout = ActionLayout.from_dict(run["action_layout"])
    target = run["hyperparams"]["action_parameterisation"] == "target"

    class Deterministic:
        """The model being trained behind the shared ``predict``: normalise, act, convert targets."""

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            action, _ = model.predict(vecnorm.normalize_obs(obs), deterministic=True)
            return (target_to_env_action(action, obs, layout) if target else action), state

    seeds = np.arange(n_seeds, dtype=np.uint64) + np.uint64(VALIDATION_SEED_BASE)
    out = {}
    for scenario in scenarios:
        core = envs.RationingCore(scenario, n_seeds, overrides=eval_overrides(run),
                                  version=run_env_version(run))
        out[scenario] = float(rollout(Deterministic(), core, seeds, keys=()).returns.mean())
    return out


def make_callback(run_dir: Path, run: dict[str, Any], args: TrainArgs, total: int, start: int,
                  report: Callable[[dict[str, Any]], None] | None = None):
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    import envs

    scenarios = list(dict.fromkeys(run["scenarios"] + envs.available_scenarios()))
    history_path = run_dir / "eval_history.jsonl"

    class RunCallback(BaseCallback):
        """Atomic checkpoints, evaluation on held-out seeds/scenarios with best-model keeping, progress."""

        def _on_training_start(self) -> None:
            self.next_ckpt = start + args.checkpoint_every
            self.next_eval = start + args.eval_every
            self.best = json.loads((run_dir / "best.json").read_text()).get("score") if (
                run_dir / "best.json").exists() else None
            self.last_eval = self.best
            self.t0, self.n0 = time.perf_counter(), self.model.num_timesteps
            hp = run["hyperparams"]
            self.unfreeze_at = hp.get("warm_start_critic_steps", 0) if hp.get("warm_start", "none") != "none" else 0
            self.frozen = start < self.unfreeze_at
            if self.frozen:  # critic warm-up after behaviour cloning: the actor stays the clone
                from agents.ppo.warmstart import set_actor_trainable

                set_actor_trainable(self.model.policy, False)
            self.bar = tqdm(total=total, initial=start, unit="step", unit_scale=True, dynamic_ncols=True,
                            disable=not args.progress, desc="train")

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            n = self.model.num_timesteps
            if self.frozen and n >= self.unfreeze_at:
                from agents.ppo.warmstart import set_actor_trainable

                set_actor_trainable(self.model.policy, True)
                self.frozen = False
            self.bar.update(n - self.bar.n)
            rate = (n - self.n0) / max(time.perf_counter() - self.t0, 1e-9)
            post = {"steps/s": f"{rate:,.0f}"}
            if self.last_eval is not None:
                post["eval"] = f"{self.last_eval:.1f}"
            self.bar.set_postfix(post, refresh=False)
            if n >= self.next_eval or n >= total:
                self.next_eval += args.eval_every
                self.evaluate()
            if n >= self.next_ckpt:
                self.next_ckpt += args.checkpoint_every
                save_to(run_dir, run, self.model, "latest")
                run["timesteps_done"] = n
                write_json_atomic(run_dir / RUN_FILE, run)

        def evaluate(self) -> None:
            n = self.model.num_timesteps
            returns = validation_return(self.model, run, scenarios, n_seeds=args.val_seeds)
            score = float(np.mean(list(returns.values())))
            self.last_eval = score
            self.logger.record("eval/mean_return", score)
            for name, value in returns.items():
                self.logger.record(f"eval/return_{name}", value)
            entry = {"timesteps": n, "score": score, "returns": returns,
                     "wall_s": round(time.perf_counter() - self.t0, 2)}
            with open(history_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            if self.best is None or score > self.best:
                self.best = score
                save_to(run_dir, run, self.model, "best", {"score": score, "returns": returns})
            if report is not None:  # e.g. agents.sweep reports each evaluation to Ray Tune
                report(entry)

        def _on_training_end(self) -> None:
            self.bar.update(self.model.num_timesteps - self.bar.n)
            self.bar.close()

    return RunCallback()


# --------------------------------------------------------------------------------- main
def train(args: TrainArgs, report: Callable[[dict[str, Any]], None] | None = None) -> tuple[Path, int]:
    import torch
    from stable_baselines3.common.utils import set_random_seed

    run_dir, run = resume_run(args) if args.resume else new_run(args)
    hp = PPOHyperparams.model_validate(run["hyperparams"])
    torch.set_num_threads(run["config"]["threads"] if args.resume else args.threads)
    set_random_seed(run["seed"])
    env = make_env(run, hp)
    model = make_model(env, hp, run["seed"], run_dir / "tb")
    start = restore(run_dir, run, model) if args.resume else 0
    if not args.resume and hp.warm_start != "none":
        run["warm_start"] = warm_start(model, run, hp)
        write_json_atomic(run_dir / RUN_FILE, run)
    total = hp.timesteps
    if start >= total:
        print(f"run {run_dir} already has {start:,} of {total:,} timesteps")
        return run_dir, 0
    callback = make_callback(run_dir, run, args if not args.resume else TrainArgs(**{
        **run["config"], "progress": args.progress}), total, start, report)
    run["status"] = "running"
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
        save_to(run_dir, run, model, "latest")
        run.update(status="interrupted", timesteps_done=int(model.num_timesteps))
        write_json_atomic(run_dir / RUN_FILE, run)
        print(f"\ninterrupted: saved checkpoint at {model.num_timesteps:,} timesteps; "
              f"continue with: python train.py --resume {run_dir}", file=sys.stderr)
        return run_dir, 130
    save_to(run_dir, run, model, "latest")
    save_to(run_dir, run, model, "final")
    if pointer(run_dir, "best") is None:
        save_to(run_dir, run, model, "best")
    run.update(status="finished", timesteps_done=int(model.num_timesteps))
    write_json_atomic(run_dir / RUN_FILE, run)
    return run_dir, 0


def final_evaluation(run_dir: Path, n_seeds: int) -> None:
    from agents.evaluate.command import evaluate_and_report

    run = json.loads((run_dir / RUN_FILE).read_text())
    evaluate_and_report([str(run_dir), "baselines"], scenarios=None, n_seeds=n_seeds, out=run_dir / "evaluation",
                        env_version=run_env_version(run), overrides=eval_overrides(run, reward=False))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from envs import ScenarioError

    try:
        run_dir, code = train(args)
        if code == 0 and args.final_eval:
            final_evaluation(run_dir, args.eval_seeds)
    except (ConfigError, ScenarioError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
