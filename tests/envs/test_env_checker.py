"""The env passes Gymnasium's and stable-baselines3's checkers with no warnings."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.sb3_vec_env import RationingVecEnv


@pytest.mark.parametrize("scenario", envs.available_scenarios())
def test_gymnasium_check_env_no_warnings(scenario: str) -> None:
    env = gym.make("Rationing-v0", scenario=scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_sb3_check_env_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(envs.RationingEnv(), warn=True)
        RationingVecEnv(4)


def test_make_vec_uses_native_vector_env() -> None:
    vec = gym.make_vec("Rationing-v0", num_envs=3, scenario="outage")
    assert isinstance(vec.unwrapped, envs.RationingVectorEnv)
    obs, _ = vec.reset(seed=1)
    assert obs.shape == (3, len(vec.unwrapped.obs_names))
    obs, reward, term, trunc, info = vec.step(vec.action_space.sample())
    assert reward.shape == (3,) and info["served_tokens"].shape == (3, 6)


def test_spaces_and_names_agree() -> None:
    env = gym.make("Rationing-v0")
    u = env.unwrapped
    assert u.tier_names == ["free", "pro", "max", "team", "enterprise", "api"]
    assert env.action_space.shape == (6,)
    assert env.observation_space.shape == (len(u.obs_names),) == (45,)
    assert len(set(u.obs_names)) == len(u.obs_names)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)


def test_info_has_documented_keys_and_shapes() -> None:
    env = gym.make("Rationing-v0")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(6, np.float32))
    for key in ("demand_tokens", "admitted_tokens", "served_tokens", "throttled_tokens", "latency_s", "users",
                "churned_users", "revenue_usd"):
        assert info[key].shape == (6,), key
        assert info[key].dtype == np.float32, key
    for key in ("capacity_tokens", "cost_usd", "margin_usd"):
        assert isinstance(info[key], float), key
    assert set(envs.TIER_INFO_KEYS) | set(envs.SCALAR_INFO_KEYS) | set(envs.PROVIDER_INFO_KEYS) == set(info)


def test_episode_is_a_week_of_15_minute_steps() -> None:
    env = gym.make("Rationing-v0")
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(6, np.float32))
        assert not terminated
        steps += 1
    assert steps == 672


def test_step_before_reset_is_refused() -> None:
    env = envs.RationingEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(6, np.float32))
