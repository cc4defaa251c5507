"""Preference conditioning: weights over the reward's components drawn per episode and shown to the policy.

:class:`PreferenceRewards` wraps :class:`envs.sb3_vec_env.RationingVecEnv`. At the start of every
episode each row draws weights ``w`` over the objectives (:data:`OBJECTIVES`: margin, latency
penalty, churn penalty; SLA credits count with the margin, as in the scalar reward) from a
Dirichlet(alpha) scaled to sum to 3 (so ``(1, 1, 1)`` is the scenario's default weighting), appends
them to the observation (``preference/<objective>``) and is rewarded ``w . v / scale_usd`` with
``v`` the vector reward (:mod:`envs.vector_reward`). One policy trained this way can then be run at
any weights by fixing them (:class:`PreferencePolicy`).

The draws are counter-based (row ``k``'s ``e``-th episode uses ``default_rng([seed, k, e])``), so
they do not depend on the batch size and resume exactly (``state_arrays``).

Status: the env side and the fixed-weight policy wrapper; ``train.py`` / ``agents.evaluate`` options
and the front command are not wired yet (see the README, "Trade-offs").
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

OBJECTIVES = ("margin", "latency", "churn")
"""Weighted objectives; vector entries 0, 1, 2 (and 3, the v1 credits, with the margin's weight)."""


def preference_names() -> list[str]:
    return [f"preference/{o}" for o in OBJECTIVES]


def draw_weights(seed: int, rows: np.ndarray, episodes: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(len(rows), 3) weights, Dirichlet(alpha) x 3, one per (row, episode): independent of the batch."""
    return np.stack([3.0 * np.random.default_rng([seed, int(k), int(e)]).dirichlet(np.full(len(OBJECTIVES), alpha))
                     for k, e in zip(rows, episodes)]).astype(np.float32)


def preference_reward(vector: np.ndarray, weights: np.ndarray, scale_usd: float) -> np.ndarray:
    """``w . v / scale`` per row: margin and SLA credits share ``w[0]``, latency ``w[1]``, churn ``w[2]``."""
    v = np.asarray(vector, np.float64)
    w = np.asarray(weights, np.float64)
    out = w[:, 0] * v[:, 0] + w[:, 1] * v[:, 1] + w[:, 2] * v[:, 2]
    if v.shape[1] > 3:
        out = out + w[:, 0] * v[:, 3]
    return out / scale_usd


class PreferenceRewards(VecEnvWrapper):
    """Per-episode weights in the observation (appended) and the reward they weight."""

    def __init__(self, venv: VecEnv, seed: int, alpha: float = 1.0) -> None:
        low = np.concatenate([venv.observation_space.low, np.zeros(len(OBJECTIVES), np.float32)])
        high = np.concatenate([venv.observation_space.high, np.full(len(OBJECTIVES), 3.0, np.float32)])
        super().__init__(venv, observation_space=spaces.Box(low, high, dtype=np.float32))
        self.seed, self.alpha = int(seed), float(alpha)
        self.episodes = np.zeros(self.num_envs, np.int64)
        self.weights = draw_weights(self.seed, np.arange(self.num_envs), self.episodes, self.alpha)

    def _with(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self.weights], axis=1).astype(np.float32)

    def reset(self):
        return self._with(self.venv.reset())

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)

    def step_wait(self):
        obs, _, done, infos = self.venv.step_wait()
        base = self.venv
        while not hasattr(base, "last_reward_vector"):
            base = base.venv
        reward = preference_reward(base.last_reward_vector, self.weights, base.core.params.reward_scale_usd)
        for k in np.flatnonzero(done):  # the ended episode's last observation keeps its weights
            if "terminal_observation" in infos[k]:
                infos[k]["terminal_observation"] = np.concatenate([infos[k]["terminal_observation"], self.weights[k]])
        if done.any():
            rows = np.flatnonzero(done)
            self.episodes[rows] += 1
            self.weights[rows] = draw_weights(self.seed, rows, self.episodes[rows], self.alpha)
        return self._with(obs), reward.astype(np.float32), done, infos

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"episodes": self.episodes.copy(), "weights": self.weights.copy()}

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        self.episodes, self.weights = state["episodes"].astype(np.int64), state["weights"].astype(np.float32)


class PreferencePolicy:
    """A preference-conditioned policy at fixed weights: appends them to every observation it is given."""

    def __init__(self, policy, weights) -> None:
        self.policy = policy
        self.weights = np.asarray(weights, np.float32).reshape(len(OBJECTIVES))

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        x = obs.reshape(1, -1) if single else obs
        x = np.concatenate([x, np.broadcast_to(self.weights, (len(x), len(self.weights)))], axis=1)
        action, state = self.policy.predict(x, state=state, episode_start=episode_start, deterministic=deterministic)
        return (action[0] if single else action), state


__all__ = ["OBJECTIVES", "PreferencePolicy", "PreferenceRewards", "draw_weights", "preference_names",
           "preference_reward"]
