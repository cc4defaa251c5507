"""The parity check of an export: both loaders against the checkpoint run the way training ran it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.export.describe import ExportError
from agents.export.exported import (
    load_policy,
)
from agents.ppo.checkpoint import CheckpointError

PARITY_TOLERANCE = 1e-5


# ---------------------------------------------------------------------- parity
def rollout_observations(policy, scenarios: list[str], overrides: dict[str, Any] | None, n_envs: int = 16,
                         steps: int = 64, seed: int = 7_000_000, version: int = 0) -> np.ndarray:
    """Observations of short rollouts of each scenario, half the rows driven by ``policy``, half random."""
    import envs

    rng = np.random.default_rng(seed)
    out = []
    for j, s in enumerate(scenarios):
        core = envs.RationingCore(s, n_envs, overrides=overrides or None, version=version)
        obs = core.reset(np.arange(n_envs, dtype=np.uint64) + seed + 1000 * j).copy()
        for _ in range(steps):
            out.append(obs.copy())
            action, _ = policy.predict(obs)
            action[n_envs // 2:] = rng.uniform(-1, 1, (n_envs - n_envs // 2, core.action_size))
            obs = core.step(action)[0].copy()
    return np.concatenate(out)


class SB3Reference:
    """A checkpoint's policy exactly as training ran it: VecNormalize's normalisation (float64), the SB3
    ``ActorCriticPolicy.predict(deterministic=True)`` (clipped to the action space), then the run's action
    parameterisation (``agents.ppo.parameterisation.target_to_env_action`` for ``target``)."""

    def __init__(self, ckpt) -> None:
        from agents.ppo.run_policy import build_policy

        m = ckpt.manifest
        self.policy = build_policy(m["hyperparams"], len(m["obs_names"]), len(m["tier_names"]))
        try:
            self.policy.load_state_dict(ckpt.policy_state, strict=True)
        except RuntimeError:
            raise CheckpointError(f"checkpoint {str(ckpt.path)!r}: weights do not match the architecture in its "
                                  "manifest") from None
        norm = ckpt.normalization
        self.norm_obs, self.clip_obs = bool(norm["norm_obs"]), float(norm["clip_obs"])
        self.obs_mean = np.asarray(norm["obs_mean"], np.float64)
        self.obs_std = np.sqrt(np.asarray(norm["obs_var"], np.float64) + float(norm["epsilon"]))
        self.layout = None
        if m["hyperparams"].get("action_parameterisation", "relative") == "target":
            from agents.ppo.parameterisation import ActionLayout

            self.layout = ActionLayout.from_dict(m["action_layout"])

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``VecNormalize.normalize_obs``: float32 obs - float64 mean, / float64 std, clip."""
        if not self.norm_obs:
            return obs
        return np.clip((obs - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        x = obs.reshape(1, -1) if single else obs
        action = self.policy.predict(self.normalize(x), deterministic=True)[0]
        if self.layout is not None:
            from agents.ppo.parameterisation import target_to_env_action

            action = target_to_env_action(action, x, self.layout)
        return (action[0] if single else action), state


def parity_check(folder: Path, reference: SB3Reference, obs: np.ndarray) -> dict[str, Any]:
    """Max |action difference| of both exported backends against ``reference`` (the SB3 policy)."""
    ref, _ = reference.predict(obs)
    result: dict[str, Any] = {"observations": int(len(obs)), "reference": "stable-baselines3: VecNormalize "
                              "normalisation, ActorCriticPolicy.predict(deterministic=True), action parameterisation",
                              "tolerance": PARITY_TOLERANCE}
    for backend in ("numpy", "onnx"):
        policy = load_policy(folder, backend=backend)
        err = float(np.max(np.abs(policy.predict(obs)[0] - ref)))
        result[f"max_abs_action_error_{backend}"] = err
        if not err <= PARITY_TOLERANCE:
            raise ExportError(f"exported {backend} policy differs from the checkpoint by {err:.3g} > "
                              f"{PARITY_TOLERANCE} on rollout observations; export aborted")
    return result


