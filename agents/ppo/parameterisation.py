"""Policy-side action parameterisation: PPO picks target quotas, the env gets quota changes.

The environment's action is a *relative* change: ``a`` in [-1, 1] multiplies a
tier's quota by ``quota_step_factor ** a`` (see :mod:`envs.quota`). A policy that
outputs relative changes must integrate them (and its exploration noise
accumulates as a random walk in the quotas), which makes PPO slow and unstable
here. With ``action_parameterisation: target`` the network instead outputs a
*target* quota multiplier per tier, centred on nominal::

    t in [-1, 1]  ->  log target = t x (-log quota_min)   if t < 0
                                   t x log quota_max      if t >= 0

(t = 0 is the nominal quota, -1 the minimum, +1 the maximum), and
:func:`target_to_env_action` converts it, using the current multiplier that the
observation carries (``quota/<tier>`` = log multiplier), into the environment's
action, clipped to the per-step limit::

    env action = clip((log target - log current) / log quota_step_factor, -1, 1)

The conversion is part of the policy: checkpoints record it and exported
policies include it, so every policy still answers with environment actions.

Action entries after the T quota entries (``n_extra``: the burst action of a
Rationing-v1 scenario with ``action.burst: policy``) are not quotas: the network's
output passes through unchanged (clipped to [-1, 1]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from envs import observation


@dataclass(frozen=True)
class ActionLayout:
    """What the conversion needs: where the log quotas sit in the observation and the quota bounds."""

    quota_obs_start: int
    n_tiers: int
    quota_min: float
    quota_max: float
    quota_step_factor: float
    n_extra: int = 0
    """Action entries after the quotas (1: the v1 burst action), passed through."""

    @property
    def action_size(self) -> int:
        return self.n_tiers + self.n_extra

    @classmethod
    def from_params(cls, p) -> ActionLayout:
        sl = observation.tier_block(p, "quota")
        return cls(sl.start, p.n_tiers, p.quota_min, p.quota_max, float(np.exp(p.log_quota_step)),
                   p.action_size - p.n_tiers)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ActionLayout:
        return cls(int(d["quota_obs_start"]), int(d["n_tiers"]), float(d["quota_min"]), float(d["quota_max"]),
                   float(d["quota_step_factor"]), int(d.get("n_extra", 0)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_log_multiplier(target_action: np.ndarray, layout: ActionLayout) -> np.ndarray:
    t = np.clip(np.asarray(target_action, np.float32), -1.0, 1.0)
    return np.where(t < 0.0, -t * np.float32(np.log(layout.quota_min)), t * np.float32(np.log(layout.quota_max)))


def target_to_env_action(target_action: np.ndarray, obs: np.ndarray, layout: ActionLayout) -> np.ndarray:
    """Environment actions (N, A) from target actions (N, A) and raw observations (N, obs_size)."""
    current = obs[..., layout.quota_obs_start: layout.quota_obs_start + layout.n_tiers]
    quota = np.asarray(target_action)[..., : layout.n_tiers]
    delta = (target_log_multiplier(quota, layout) - current) / np.float32(np.log(layout.quota_step_factor))
    out = np.clip(delta, -1.0, 1.0).astype(np.float32)
    if layout.n_extra:
        extra = np.clip(np.asarray(target_action, np.float32)[..., layout.n_tiers:], -1.0, 1.0)
        out = np.concatenate([out, extra], axis=-1)
    return out


class ObsKeepingWrapper(VecEnvWrapper):
    """Base of the action wrappers that convert the policy's actions using the last raw observation."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self._obs: np.ndarray | None = None

    def reset(self):
        self._obs = self.venv.reset()
        return self._obs

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        self._obs = obs
        return obs, reward, done, infos


class TargetQuotaActions(ObsKeepingWrapper):
    """A VecEnv wrapper that accepts target actions and steps the env with relative ones."""

    def __init__(self, venv: VecEnv, layout: ActionLayout) -> None:
        super().__init__(venv)
        self.layout = layout

    def step_async(self, actions: np.ndarray) -> None:
        assert self._obs is not None, "reset() before step()"
        self.venv.step_async(target_to_env_action(actions, self._obs, self.layout))
