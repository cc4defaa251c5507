"""PPO support for ``train.py``: config, action parameterisation, warm start, checkpoints, runs as policies.

* :mod:`agents.ppo.config`: ``TrainArgs`` (every ``train.py`` option) and the validated hyperparameters
  of ``agents/ppo/hyperparams/ppo.yaml``.
* :mod:`agents.ppo.parameterisation`: the target-quota action parameterisation (a ``VecEnv`` wrapper).
* :mod:`agents.ppo.warmstart`: behaviour cloning of a tuned rule before PPO.
* :mod:`agents.ppo.checkpoint`: atomic, checksummed checkpoints (safetensors, npz, manifest).
* :mod:`agents.ppo.run_policy`: a run or checkpoint folder as a policy (``PPOPolicy``).

Names are imported on first use (the modules need torch and stable-baselines3).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainArgs": "config", "PPOHyperparams": "config", "ConfigError": "config", "load_hyperparams": "config",
    "HYPERPARAMS_FILE": "config",
    "ActionLayout": "parameterisation", "TargetQuotaActions": "parameterisation",
    "collect": "warmstart", "clone": "warmstart",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "to_sb3": "sb3", "save_sb3_zip": "sb3",
    "PPOPolicy": "run_policy", "load_run_policy": "run_policy", "read_run": "run_policy",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"agents.ppo.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'agents.ppo' has no attribute {name!r}")
