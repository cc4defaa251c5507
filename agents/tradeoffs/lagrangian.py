"""PPO-Lagrangian (as OmniSafe documents it): one multiplier per constraint, updated from the rollouts.

:class:`LagrangianRewards` sits on the batched env (under the target-quota wrapper, VecMonitor and
VecNormalize). Each step it charges every constraint's cost and hands PPO the shaped reward::

    r' = (r - sum_i lambda_i c_i) / (1 + sum_i lambda_i)        (normalise=True, the default)

where ``c_i`` is the step's bad quantity (:mod:`agents.tradeoffs.constraints`: late / served
tokens, churned users / users, ...) in units of its limit (``num_t / mean den / bad_limit``: its
rollout mean is the constraint's value over its limit, so ``c <= 1`` on average is the constraint
met). After every rollout (``n_steps`` steps) each multiplier takes a projected gradient step
on the rollout's constraint value ``J_i`` (the ratio of the rollout's sums)::

    lambda_i <- max(0, lambda_i + lr x (J_i / limit_i - 1))           (x -1 for a lower bound)

so a violated constraint's multiplier rises and a satisfied one's falls back to 0. The
multipliers are part of the resumable training state (``state_arrays``), and the training
callback writes them to ``lagrange.jsonl`` and TensorBoard (``lagrange/...``) after every rollout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from agents.tradeoffs.constraints import Constraint, metric_from_bad, step_terms

LAGRANGE_FILE = "lagrange.jsonl"


def shape_reward(reward: np.ndarray, costs: np.ndarray, multipliers: np.ndarray, normalise: bool = True) -> np.ndarray:
    """``(r - sum_i lambda_i c_i)``, divided by ``1 + sum_i lambda_i`` when ``normalise``; costs (K, N)."""
    lam = np.asarray(multipliers, np.float64)
    shaped = np.asarray(reward, np.float64) - lam @ np.asarray(costs, np.float64).reshape(len(lam), -1)
    return shaped / (1.0 + lam.sum()) if normalise else shaped


def update_multipliers(multipliers: np.ndarray, violation: np.ndarray, lr: float) -> np.ndarray:
    """OmniSafe's update ``max(0, lambda + lr x (Jc - limit))`` with ``violation = Jc - limit``."""
    return np.maximum(0.0, np.asarray(multipliers, np.float64) + lr * np.asarray(violation, np.float64))


class LagrangianRewards(VecEnvWrapper):
    """Shapes the reward with one Lagrange multiplier per constraint; updates them every ``n_steps`` steps."""

    def __init__(self, venv: VecEnv, constraints: list[Constraint], n_steps: int, lr: float,
                 normalise: bool = True) -> None:
        super().__init__(venv)
        self.base = venv.unwrapped
        """The batched env whose ``last_info`` the costs are read from."""
        self.constraints = list(constraints)
        self.n_steps, self.lr, self.normalise = int(n_steps), float(lr), bool(normalise)
        k = len(self.constraints)
        self.multipliers = np.zeros(k)
        self.num, self.den, self.den_ref = np.zeros(k), np.zeros(k), np.full(k, np.nan)
        self.steps, self.updates = 0, 0
        self.last_values = np.full(k, np.nan)
        """Each constraint's value (its metric) over the last full rollout."""

    def reset(self):
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        base = self.base
        costs = np.zeros((len(self.constraints), len(reward)))
        for i, c in enumerate(self.constraints):
            num, den = step_terms(c, base.last_info, base.tier_names, base.core.params.dt_h)
            self.num[i] += float(np.sum(num, dtype=np.float64))
            self.den[i] += float(np.sum(den, dtype=np.float64))
            ref = self.den_ref[i] if np.isfinite(self.den_ref[i]) else max(float(np.mean(den)), 1e-9)
            costs[i] = c.sense * np.asarray(num, np.float64) / ref / c.bad_limit
        shaped = shape_reward(reward, costs, self.multipliers, self.normalise).astype(np.float32)
        self.steps += 1
        if self.steps >= self.n_steps:
            self.update()
        return obs, shaped, done, infos

    def update(self) -> None:
        """End of a rollout: the constraint values, the multipliers' step, fresh sums."""
        bad = self.num / np.maximum(self.den, 1e-12)
        limits = np.array([c.bad_limit for c in self.constraints])
        sense = np.array([c.sense for c in self.constraints])
        self.multipliers = update_multipliers(self.multipliers, sense * (bad / limits - 1.0), self.lr)
        self.last_values = np.array([float(metric_from_bad(c, b)) for c, b in zip(self.constraints, bad)])
        self.den_ref = self.den / max(self.steps * self.num_envs, 1)
        self.num[:], self.den[:] = 0.0, 0.0
        self.steps = 0
        self.updates += 1

    # resumable state (agents.ppo.resume_state saves and restores these arrays)
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"multipliers": self.multipliers.copy(), "num": self.num.copy(), "den": self.den.copy(),
                "den_ref": self.den_ref.copy(), "last_values": self.last_values.copy(),
                "counters": np.array([self.steps, self.updates], np.int64)}

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        self.multipliers, self.num, self.den = (state[k].astype(np.float64) for k in ("multipliers", "num", "den"))
        self.den_ref, self.last_values = state["den_ref"].astype(np.float64), state["last_values"].astype(np.float64)
        self.steps, self.updates = (int(v) for v in state["counters"])


def wrap(vec: VecEnv, run: dict[str, Any], n_steps: int) -> VecEnv:
    """The run's env with the Lagrangian wrapper if the run has constraints (``run["constraints"]``)."""
    constraints = [Constraint.from_dict(d) for d in run.get("constraints") or []]
    if not constraints:
        return vec
    lag = run.get("lagrange") or {}
    return LagrangianRewards(vec, constraints, n_steps, float(lag.get("lr", 0.05)), bool(lag.get("normalise", True)))


def find(venv) -> LagrangianRewards | None:
    while venv is not None:
        if isinstance(venv, LagrangianRewards):
            return venv
        venv = getattr(venv, "venv", None)
    return None


def record(model, logger, run_dir: Path) -> dict[str, Any] | None:
    """After a rollout: the multipliers and constraint values to TensorBoard and ``lagrange.jsonl``."""
    lag = find(model.get_env())
    if lag is None or lag.updates == 0:
        return None
    entry = {"timesteps": int(model.num_timesteps), "update": lag.updates,
             "multipliers": {c.name: float(m) for c, m in zip(lag.constraints, lag.multipliers)},
             "values": {c.name: float(v) for c, v in zip(lag.constraints, lag.last_values)}}
    for c, m, v in zip(lag.constraints, lag.multipliers, lag.last_values):
        logger.record(f"lagrange/lambda_{c.tag}", float(m))
        logger.record(f"lagrange/value_{c.tag}", float(v))
    with open(Path(run_dir) / LAGRANGE_FILE, "a") as f:
        f.write(json.dumps(entry) + "\n")
    return entry


def truncate_log(run_dir: Path, upto: int) -> None:
    """On resume: keep the ``lagrange.jsonl`` lines at or before ``upto`` timesteps (whole lines)."""
    path = Path(run_dir) / LAGRANGE_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if int(json.loads(line)["timesteps"]) <= upto:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(f".{path.name}.tmp-resume")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    tmp.replace(path)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / LAGRANGE_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


__all__ = ["LAGRANGE_FILE", "LagrangianRewards", "find", "read_log", "record", "shape_reward", "truncate_log",
           "update_multipliers", "wrap"]
