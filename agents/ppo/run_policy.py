"""A trained PPO run (or one of its checkpoints) behind the shared ``predict`` interface.

``load_run_policy(path)`` accepts a run folder (``checkpoints/<run>``, with a
``run.json``; it uses the best checkpoint, else the final, else the latest) or
a checkpoint folder (with a ``manifest.json``). Weights are read from
safetensors and normalisation statistics from ``.npz`` without pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.files import FileRefused, read_text_checked
from agents.ppo.checkpoint import Checkpoint, CheckpointError, load_checkpoint, pointer

RUN_FILE = "run.json"
RUN_FORMAT = "rationing-run"


def _activation(name: str):
    import torch.nn as nn

    return {"tanh": nn.Tanh, "relu": nn.ReLU}[name]


def build_policy(hyperparams: dict[str, Any], obs_size: int, n_tiers: int):
    """``n_tiers``: the action size (tiers, plus the burst entry of a v1 ``action.burst: policy`` run)."""
    """An SB3 ``ActorCriticPolicy`` with the run's architecture (CPU, eval mode)."""
    from gymnasium import spaces
    from stable_baselines3.common.policies import ActorCriticPolicy

    obs_space = spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float32)
    act_space = spaces.Box(-1.0, 1.0, shape=(n_tiers,), dtype=np.float32)
    policy = ActorCriticPolicy(
        obs_space,
        act_space,
        lr_schedule=lambda _: 0.0,
        net_arch=list(hyperparams["net_arch"]),
        activation_fn=_activation(hyperparams["activation"]),
        log_std_init=float(hyperparams["log_std_init"]),
        use_sde=bool(hyperparams.get("use_sde", False)),
    )
    policy.set_training_mode(False)
    return policy


class PPOPolicy:
    """Deterministic PPO actor with its observation normalisation.

    ``predict(obs)`` takes raw environment observations, shape ``(obs_size,)`` or
    ``(N, obs_size)``, and returns actions in [-1, 1] of shape ``(T,)`` or ``(N, T)``.
    """

    def __init__(self, checkpoint: Checkpoint, name: str | None = None) -> None:
        import torch

        m = checkpoint.manifest
        self.name = name or Path(checkpoint.path).name
        self.checkpoint = checkpoint
        self.obs_names: list[str] = list(m["obs_names"])
        self.tier_names: list[str] = list(m["tier_names"])
        self.hyperparams: dict[str, Any] = dict(m["hyperparams"])
        self.env_id: str = str(m.get("env_id", "Rationing-v0"))
        self.env_version: int = int(m.get("env_version", 0))
        n_extra = int((m.get("action_layout") or {}).get("n_extra", 0))
        from agents.tradeoffs.preference import VALIDATION_WEIGHTS, PreferenceError, preference_inputs

        try:  # a preference-conditioned run: its weights are inputs after the env's observation
            self.preference_inputs = preference_inputs(m)
        except PreferenceError as exc:
            raise CheckpointError(f"checkpoint {str(checkpoint.path)!r}: manifest {exc}") from None
        self.weights = tuple(VALIDATION_WEIGHTS) if self.preference_inputs else None
        self.policy = build_policy(self.hyperparams, len(self.obs_names) + self.preference_inputs,
                                   len(self.tier_names) + n_extra)
        try:
            self.policy.load_state_dict(checkpoint.policy_state, strict=True)
        except RuntimeError:
            raise CheckpointError(
                f"checkpoint {str(checkpoint.path)!r}: weights do not match the architecture in its manifest"
            ) from None
        self.parameterisation = self.hyperparams.get("action_parameterisation", "relative")
        from agents.ppo.residual import ResidualSpec, env_action_converter

        self.residual: ResidualSpec | None = None
        self._convert = None  # (network output, raw obs) -> env actions; a residual's is set by for_scenario()
        if self.parameterisation == "residual":
            try:
                self.residual = ResidualSpec.from_dict(m.get("residual"))
            except ValueError as exc:
                raise CheckpointError(f"checkpoint {str(checkpoint.path)!r}: manifest {exc}") from None
        else:
            self._convert = env_action_converter(m)
        norm = checkpoint.normalization
        self.norm_obs = bool(norm["norm_obs"])
        # float64 like SB3's VecNormalize: features with tiny training variance magnify float32 rounding
        self.obs_mean = norm["obs_mean"].astype(np.float64)
        self.obs_std = np.sqrt(norm["obs_var"].astype(np.float64) + float(norm["epsilon"]))
        self.clip_obs = float(norm["clip_obs"])
        self._torch = torch

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        if not self.norm_obs:
            return obs.astype(np.float32)
        x = (np.asarray(obs, np.float64) - self.obs_mean) / self.obs_std
        return np.clip(x, -self.clip_obs, self.clip_obs).astype(np.float32)

    def at_weights(self, weights) -> PPOPolicy:
        """This preference-conditioned policy acting at fixed ``weights`` (margin, latency, churn; summing to 3)."""
        import copy

        from agents.common.policy import PolicyError
        from agents.tradeoffs.preference import weights_label

        if not self.preference_inputs:
            raise PolicyError(f"policy {self.name!r} was not trained with --preference: it has no weights to set")
        out = copy.copy(self)
        out.weights = tuple(float(w) for w in weights)
        out.name = f"{self.name}@{weights_label(out.weights)}"
        return out

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        inputs = obs.reshape(1, -1) if single else obs
        if self.preference_inputs and inputs.shape[1] == len(self.obs_names):  # then the weights it acts at
            from agents.tradeoffs.preference import append_weights

            inputs = append_weights(inputs, self.weights)
        x = self.normalize(inputs)
        with self._torch.no_grad():
            actions = self.policy._predict(self._torch.as_tensor(x), deterministic=deterministic).numpy()
        actions = np.clip(actions, -1.0, 1.0).astype(np.float32)
        if self._convert is None:
            from agents.common.policy import PolicyError

            raise PolicyError(f"policy {self.name!r} corrects the rule {self.residual.rule!r}, which reads the "
                              "scenario: bind it first with policy.for_scenario(RuleContext(...))")
        weights = inputs[:, len(self.obs_names):] if self.preference_inputs else None  # a rule family reads them
        actions = self._convert(actions, obs.reshape(1, -1) if single else obs, weights)
        return (actions[0] if single else actions), state

    def for_scenario(self, context) -> PPOPolicy:
        """This policy on one scenario (a :class:`~agents.rules.RuleContext`): a residual policy binds its
        rule to the scenario's facts; other parameterisations need none and return ``self``."""
        if self.residual is None:
            return self
        import copy

        bound = copy.copy(self)
        bound._convert = self.residual.bind(context).env_action
        return bound


def read_run(run_dir: Path) -> dict[str, Any]:
    """Parse a run folder's ``run.json``; one-line error if it is not a run folder."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    try:
        data = json.loads(read_text_checked(path, follow_symlinks=False))
    except FileNotFoundError:
        raise CheckpointError(f"{str(run_dir)!r} is not a run folder (no {RUN_FILE})") from None
    except FileRefused as exc:
        raise CheckpointError(f"run {str(run_dir)!r}: {exc}") from None
    except (OSError, ValueError):
        raise CheckpointError(f"run {str(run_dir)!r}: {RUN_FILE} is unreadable or corrupt") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{str(run_dir)!r} is not a run folder ({RUN_FILE} has no format {RUN_FORMAT!r})")
    return data


def run_checkpoint(run_dir: Path, which: tuple[str, ...] = ("best", "final", "latest")) -> Path:
    """The checkpoint folder of a run: the first of ``which`` pointers that exists."""
    read_run(run_dir)
    for name in which:
        folder = pointer(run_dir, name)
        if folder is not None:
            return folder
    raise CheckpointError(f"run {str(run_dir)!r} has no checkpoint yet ({', '.join(which)})")


def is_run_or_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return (p / RUN_FILE).is_file() or (p / "manifest.json").is_file()


def load_run_policy(path: str | Path) -> PPOPolicy:
    """Load a run folder (best checkpoint) or a checkpoint folder as a policy."""
    p = Path(path)
    if (p / RUN_FILE).is_file():
        folder = run_checkpoint(p)
        name = p.name
    elif (p / "manifest.json").is_file():
        folder, name = p, f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    else:
        raise CheckpointError(f"{str(p)!r} is neither a run folder (run.json) nor a checkpoint (manifest.json)")
    return PPOPolicy(load_checkpoint(folder, with_optimizer=False), name=name)
