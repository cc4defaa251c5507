"""The vector reward (MO-Gymnasium's API): the reward's components, in dollars, higher is better.

``gymnasium.make("Rationing-v1", reward="vector")`` (likewise ``make_vec`` and
:class:`envs.sb3_vec_env.RationingVecEnv`) returns, instead of the scalar reward, a
float32 vector per step:

| index | name                  | meaning (dollars per step)                          |
|-------|-----------------------|-----------------------------------------------------|
| 0     | margin_usd            | gross margin (revenue - rent - burst - variable)    |
| 1     | latency_penalty_usd   | minus the latency-miss penalty                      |
| 2     | churn_penalty_usd     | minus the lifetime value of churned users           |
| 3     | sla_credit_usd        | minus the SLA credits owed (Rationing-v1 only)      |

``env.unwrapped.reward_space`` is a ``Box`` of that shape and ``env.unwrapped.reward_dim``
its length, so MO-Gymnasium's wrappers (``LinearReward``, ``MORecordEpisodeStatistics``)
and MORL-Baselines' algorithms work on it. The scalar reward of the same step is
``envs.reward.weighted_sum`` of the vector's entries with
``envs.reward.component_weights(params)`` (one formula, :mod:`envs.reward`), bit for bit.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from .reward import COMPONENT_SIGNS, COMPONENTS, component_weights, n_components, weighted_sum

REWARD_MODES = ("scalar", "vector")
#: Info key of each component (the v1 credits are summed over tiers in ``sla_credit_total_usd``).
_INFO_KEYS = ("margin_usd", "latency_penalty_usd", "churn_penalty_usd", "sla_credit_total_usd")


def check_reward_mode(reward: str) -> str:
    """The reward mode, or a one-line ``ValueError`` naming the value and what is allowed."""
    if reward not in REWARD_MODES:
        raise ValueError(f"reward = {reward!r}: must be one of {', '.join(REWARD_MODES)}")
    return reward


def reward_names(version: int) -> list[str]:
    """Name of each vector entry on env ``version``."""
    return list(COMPONENTS[: n_components(version)])


def reward_space(version: int) -> spaces.Box:
    """The vector reward's space: unbounded dollars, float32, ``(reward_dim,)``."""
    d = n_components(version)
    return spaces.Box(-np.inf, np.inf, shape=(d,), dtype=np.float32)


def reward_info_keys(version: int) -> tuple[str, ...]:
    """The info keys :func:`reward_vector` reads on env ``version`` (one per vector entry)."""
    return _INFO_KEYS[: n_components(version)]


def reward_vector(info: dict[str, np.ndarray], version: int) -> np.ndarray:
    """(N, reward_dim) float32 vector rewards from a core step's info (arrays with a leading batch dim)."""
    cols = [s * np.asarray(info[k], np.float32) if s < 0 else np.asarray(info[k], np.float32)
            for k, s in zip(reward_info_keys(version), COMPONENT_SIGNS)]
    return np.stack(cols, axis=-1).astype(np.float32, copy=False)


def scalarise(vector: np.ndarray, params) -> np.ndarray:
    """The scalar reward of (N, reward_dim) vectors under the scenario's weights: equals the env's reward."""
    v = np.asarray(vector, np.float32)
    return weighted_sum([v[..., i] for i in range(v.shape[-1])], component_weights(params), params.reward_scale_usd)


__all__ = ["REWARD_MODES", "check_reward_mode", "reward_info_keys", "reward_names", "reward_space", "reward_vector",
           "scalarise"]
