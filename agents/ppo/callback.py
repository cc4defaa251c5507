"""The training callback of ``train.py``: checkpoints at rollout boundaries, validation, best model, progress.

Every rollout starts with a :func:`agents.ppo.resume_state.take` snapshot (a few small arrays);
every ``checkpoint_every`` timesteps it is written as the ``latest`` checkpoint, and Ctrl-C /
SIGTERM write the last one, so a resumed run repeats exactly the steps of an uninterrupted one.
Validation (mean deterministic return on the validation seeds of each scenario, the run's own
and the shipped ones) runs every ``eval_every`` timesteps; the best score keeps ``best``.
TensorBoard tags use scenario names (``eval/return_<name>``), never file paths.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.files import kill_point
from agents.ppo.config import VALIDATION_SEED_BASE
from agents.ppo.drift import actor_moved
from agents.ppo.resume_state import take
from agents.ppo.run_folder import scenario_specs
from agents.ppo.run_steps import HISTORY_FILE, save_to


def validation_scenarios(run_dir: Path, run: dict[str, Any]) -> dict[str, str]:
    """Name -> what to load: the run's own (training) scenarios, nothing else.

    Model selection sees only validation seeds of the scenarios the run trains on: held-out
    scenarios are evaluated once, at the end, and choose nothing; a run on a custom or single
    scenario is selected on that scenario.
    """
    return dict(zip(run["scenarios"], scenario_specs(run_dir, run)))


def deterministic(model, run: dict[str, Any], weights=None):
    """``core -> policy``: the model being trained behind the shared ``predict`` on one scenario's core
    (normalise, act, convert to environment actions; a residual run binds its rule to that scenario; a
    preference run acts at ``weights``: one weighting for every row, by default ``VALIDATION_WEIGHTS``, or one
    per row, (N, 3))."""
    from agents.ppo.residual import env_action_converter
    from agents.rules import RuleContext
    from agents.tradeoffs.preference import VALIDATION_WEIGHTS, append_weights

    vecnorm = model.get_env()
    w = np.asarray(VALIDATION_WEIGHTS if weights is None else weights, np.float64)
    inputs = (lambda obs: append_weights(obs, w)) if run.get("preference") else (lambda obs: obs)

    class Deterministic:
        def __init__(self, convert) -> None:
            self.convert = convert

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            x = inputs(obs)
            action, _ = model.predict(vecnorm.normalize_obs(x), deterministic=True)
            weights = x[:, -w.shape[-1]:] if run.get("preference") else None  # a rule family's base reads them
            return self.convert(action, obs, weights), state

    def policy_for(core) -> Deterministic:
        return Deterministic(env_action_converter(run, RuleContext(core)))

    return policy_for


def validation_return(model, run: dict[str, Any], scenarios: dict[str, str], n_seeds: int) -> dict[str, float]:
    """Mean episode return of the deterministic policy per scenario (by name), on validation seeds."""
    import envs
    from agents.evaluate.metrics import rollout

    policy_for = deterministic(model, run)
    seeds = np.arange(n_seeds, dtype=np.uint64) + np.uint64(VALIDATION_SEED_BASE)
    out = {}
    for name, spec in scenarios.items():
        core = envs.RationingCore(spec, n_seeds, overrides=run.get("reward_overrides") or None,
                                  version=int(run.get("env_version", 0)))
        out[name] = float(rollout(policy_for(core), core, seeds, keys=()).returns.mean())
    return out


def make_callback(run_dir: Path, run: dict[str, Any], config: dict[str, Any], total: int, start: int,
                  counters: dict[str, Any], progress: bool,
                  report: Callable[[dict[str, Any]], None] | None = None):
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    scenarios = validation_scenarios(run_dir, run)
    history_path = run_dir / HISTORY_FILE
    every_ckpt, every_eval = int(config["checkpoint_every"]), int(config["eval_every"])

    class RunCallback(BaseCallback):
        """Atomic checkpoints, evaluation on held-out seeds/scenarios with best-model keeping, progress."""

        def counters(self) -> dict[str, Any]:
            return {"next_ckpt": self.next_ckpt, "next_eval": self.next_eval, "best": self.best,
                    "last_eval": self.last_eval}

        def _on_training_start(self) -> None:
            hp = run["hyperparams"]
            self.unfreeze_at = hp.get("warm_start_critic_steps", 0) if hp.get("warm_start", "none") != "none" else 0
            self.next_ckpt = int(counters.get("next_ckpt") or start + every_ckpt)
            # the first validation comes when the critic warm-up ends, before the actor moves: the warm
            # start itself (the rule, for a residual run) is a candidate of the model selection
            first = min(start + every_eval, self.unfreeze_at) if start < self.unfreeze_at else start + every_eval
            self.next_eval = int(counters.get("next_eval") or first)
            self.best = counters.get("best")
            self.last_eval = counters.get("last_eval")
            self.snapshot = None
            self.t0, self.n0 = time.perf_counter(), self.model.num_timesteps
            self.frozen = start < self.unfreeze_at
            if self.frozen:  # critic warm-up after behaviour cloning: the actor stays the clone
                from agents.ppo.warmstart import set_actor_trainable

                set_actor_trainable(self.model.policy, False)
            if run.get("constraints"):  # PPO-Lagrangian: the multipliers' log continues from the checkpoint
                from agents.tradeoffs.lagrangian import truncate_log

                truncate_log(run_dir, start)
            self.bar = tqdm(total=total, initial=start, unit="step", unit_scale=True, dynamic_ncols=True,
                            disable=not progress, desc="train")

        def _on_rollout_start(self) -> None:
            n = self.model.num_timesteps
            self.snapshot = take(self.model, self.counters())
            if n >= self.next_ckpt and n > start:
                self.next_ckpt += every_ckpt
                self.snapshot.state["cb.next_ckpt"] = np.asarray(self.next_ckpt, np.float64)
                save_to(run_dir, run, self.snapshot, "latest")

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            kill_point("ppo")
            n = self.model.num_timesteps
            if self.frozen and n >= self.unfreeze_at:
                from agents.ppo.warmstart import set_actor_trainable

                set_actor_trainable(self.model.policy, True)
                self.frozen = False
            if run.get("constraints"):
                from agents.tradeoffs.lagrangian import record

                record(self.model, self.logger, run_dir)
            self.bar.update(n - self.bar.n)
            rate = (n - self.n0) / max(time.perf_counter() - self.t0, 1e-9)
            post = {"steps/s": f"{rate:,.0f}"}
            if self.last_eval is not None:
                post["eval"] = f"{self.last_eval:.1f}"
            self.bar.set_postfix(post, refresh=False)
            if n >= self.next_eval or n >= total:
                self.next_eval += every_eval
                self.evaluate()

        def evaluate(self) -> None:
            n = self.model.num_timesteps
            returns = validation_return(self.model, run, scenarios, n_seeds=int(config["val_seeds"]))
            score = float(np.mean(list(returns.values())))
            extra = {}
            if run.get("constraints"):  # select on return among policies that meet the constraints
                from agents.tradeoffs.selection import constrained_score

                score, extra = constrained_score(deterministic(self.model, run), run, scenarios,
                                                 int(config["val_seeds"]), score)
            elif (run.get("preference") or {}).get("selection_weights"):  # mean balanced return over weightings
                from agents.tradeoffs.selection import preference_score

                score, extra = preference_score(lambda w: deterministic(self.model, run, w), run, scenarios,
                                                int(config["val_seeds"]))
            self.last_eval = score
            self.logger.record("eval/mean_return", score)
            for name, value in returns.items():
                self.logger.record(f"eval/return_{name}", value)
            entry = {"timesteps": n, "score": score, "returns": returns,
                     "wall_s": round(time.perf_counter() - self.t0, 2), **extra}
            moved = actor_moved(self.model, run, run_dir)
            if moved is not None:  # how far the actor is from its behaviour-cloned warm start
                entry["actor_moved"] = moved
                self.logger.record("eval/actor_moved", moved)
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
