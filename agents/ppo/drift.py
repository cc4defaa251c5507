"""How far the actor has moved from its warm start: so a behaviour clone never passes as a learned policy.

Right after the warm start, :func:`save_reference` keeps up to ``REFERENCE_SIZE``
observations the rule visited on the training scenarios and the cloned actor's deterministic
environment actions on them (``warmstart_reference.npz`` in the run folder, plain arrays).
At every validation, :func:`actor_moved` is the mean absolute difference, over those
observations and every action entry, between the current policy's environment actions and
the clone's (actions lie in [-1, 1]; 0 means the policy still acts exactly as the clone).
For a residual run (:mod:`agents.ppo.residual`) the warm start is the rule itself and the
difference is the policy's correction in environment-action units (0: still the rule).
It goes to ``eval_history.jsonl`` (``actor_moved``) and TensorBoard (``eval/actor_moved``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo.parameterisation import ActionLayout, target_to_env_action
from agents.ppo.residual import correction_in_actions

REFERENCE_FILE = "warmstart_reference.npz"
REFERENCE_SIZE = 4096


def env_actions(model, run: dict[str, Any], obs: np.ndarray) -> np.ndarray:
    """(M, A) deterministic environment actions of ``model`` (with its normalisation) on raw ``obs``."""
    vecnorm = model.get_env()
    action, _ = model.predict(vecnorm.normalize_obs(obs), deterministic=True)
    kind = run["hyperparams"]["action_parameterisation"]
    if kind == "target":
        action = target_to_env_action(action, obs, ActionLayout.from_dict(run["action_layout"]))
    elif kind == "residual":  # the rule depends on the scenario: measure the correction itself, in action units
        layout = ActionLayout.from_dict(run["action_layout"])
        action = correction_in_actions(action, run["residual"]["log_range"], layout.quota_step_factor)
    return np.asarray(action, dtype=np.float32)


def save_reference(run_dir: Path, run: dict[str, Any], model, obs: np.ndarray, seed: int) -> None:
    """Keep a sample of warm-start observations and the clone's actions on them (atomic write)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(obs), size=min(REFERENCE_SIZE, len(obs)), replace=False)
    ref = np.asarray(obs[np.sort(pick)], dtype=np.float32)
    tmp = Path(run_dir) / f".{REFERENCE_FILE}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.savez(f, obs=ref, actions=env_actions(model, run, ref))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, Path(run_dir) / REFERENCE_FILE)


def actor_moved(model, run: dict[str, Any], run_dir: Path) -> float | None:
    """Mean |current action - clone's action| on the reference observations; None without a warm start."""
    path = Path(run_dir) / REFERENCE_FILE
    if not path.is_file() or path.is_symlink():
        return None
    with np.load(path, allow_pickle=False) as data:
        obs, ref = data["obs"], data["actions"]
    return float(np.abs(env_actions(model, run, obs) - ref).mean())
