"""The vector reward (MO-Gymnasium's API) on every view of the core, and the scalar reward as its weighted sum."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.reward import component_weights
from envs.sb3_vec_env import RationingVecEnv
from envs.vector_reward import reward_names, reward_vector, scalarise

SHORT = {"time": {"episode_days": 0.25}}
WEIGHTS = {"reward": {"margin_weight": 0.7, "latency_weight": 2.5, "churn_weight": 0.3}}


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("overrides", [None, WEIGHTS])
def test_scalar_reward_is_exactly_the_weighted_sum_of_the_vector(version, overrides) -> None:
    core = envs.RationingCore("peak-contention", 16, overrides=overrides, version=version)
    core.reset(np.arange(16, dtype=np.uint64))
    rng = np.random.default_rng(0)
    for _ in range(40):
        _, reward, _, _, info = core.step(rng.uniform(-1, 1, (16, core.action_size)).astype(np.float32))
        vec = reward_vector(info, version)
        assert vec.shape == (16, 4 if version else 3) and vec.dtype == np.float32
        assert np.array_equal(scalarise(vec, core.params), reward)  # bit for bit, not approximately
        np.testing.assert_array_equal(vec[:, 0], info["margin_usd"])
        np.testing.assert_array_equal(vec[:, 1], -info["latency_penalty_usd"])
        np.testing.assert_array_equal(vec[:, 2], -info["churn_penalty_usd"])
        if version:
            np.testing.assert_array_equal(vec[:, 3], -info["sla_credit_total_usd"])
    assert component_weights(core.params)[:3] == ((0.7, 2.5, 0.3) if overrides else (1.0, 1.0, 1.0))


def test_single_env_vector_matches_scalar_env() -> None:
    vec_env = gym.make("Rationing-v1", reward="vector", overrides=SHORT, disable_env_checker=True)
    scalar_env = gym.make("Rationing-v1", overrides=SHORT)
    u = vec_env.unwrapped
    assert isinstance(u.reward_space, gym.spaces.Box) and u.reward_space.shape == (4,) and u.reward_dim == 4
    assert u.reward_space.dtype == np.float32 and u.reward_names == reward_names(1)
    assert not hasattr(scalar_env.unwrapped, "reward_space")
    vec_env.reset(seed=3)
    scalar_env.reset(seed=3)
    a = np.full(6, 0.3, np.float32)
    for _ in range(24):
        _, r_vec, _, trunc, info = vec_env.step(a)
        _, r, _, _, _ = scalar_env.step(a)
        assert r_vec.dtype == np.float32 and u.reward_space.contains(r_vec)
        assert float(scalarise(r_vec[None], u.core.params)[0]) == r
    assert trunc
    assert gym.make("Rationing-v0", reward="vector", disable_env_checker=True).unwrapped.reward_dim == 3


def test_bad_reward_mode_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^reward = 'vectors': must be one of scalar, vector$"):
        envs.RationingEnv(reward="vectors")


@pytest.mark.parametrize("mode", ["SameStep", "NextStep"])
def test_gymnasium_vector_env_returns_batch_by_reward_dim(mode) -> None:
    vec = gym.make_vec("Rationing-v1", num_envs=3, reward="vector", max_episode_steps=2, autoreset_mode=mode)
    assert vec.unwrapped.reward_dim == 4
    vec.reset(seed=0)
    for t in range(3):
        _, r, _, _, info = vec.step(np.zeros((3, 6), np.float32))
        assert r.shape == (3, 4) and r.dtype == np.float32
        if mode == "NextStep" and t == 2:  # the step that starts the next episode: zero reward
            assert not r.any()


def test_sb3_vec_env_vector_rewards() -> None:
    scalar = RationingVecEnv(4, scenario=["default", "outage"], seed=5, overrides=SHORT, version=1)
    vector = RationingVecEnv(4, scenario=["default", "outage"], seed=5, overrides=SHORT, version=1, reward="vector")
    assert vector.reward_dim == 4 and vector.reward_space.shape == (4,)
    scalar.reset()
    vector.reset()
    for _ in range(3):
        _, r, _, _ = scalar.step(np.zeros((4, 6), np.float32))
        _, rv, _, _ = vector.step(np.zeros((4, 6), np.float32))
        assert rv.shape == (4, 4)
        np.testing.assert_array_equal(rv, scalar.last_reward_vector)
        assert np.array_equal(scalarise(rv, scalar.core.params), r)


def test_mo_gymnasium_wrappers() -> None:
    mo_gym = pytest.importorskip("mo_gymnasium", reason="MO-Gymnasium not installed (pip install -e '.[mo]')")
    from mo_gymnasium.wrappers import LinearReward, MORecordEpisodeStatistics

    env = mo_gym.make("Rationing-v1", reward="vector", overrides=SHORT)
    p = env.unwrapped.core.params
    weights = np.asarray(component_weights(p)) / p.reward_scale_usd
    stats = MORecordEpisodeStatistics(env)
    lin = LinearReward(stats, weight=weights)
    scalar_env = gym.make("Rationing-v1", overrides=SHORT)
    lin.reset(seed=1)
    scalar_env.reset(seed=1)
    total, total_vec = 0.0, np.zeros(4)
    for _ in range(24):
        _, r, _, trunc, info = lin.step(np.zeros(6, np.float32))
        _, r_scalar, *_ = scalar_env.step(np.zeros(6, np.float32))
        assert r == pytest.approx(r_scalar, rel=1e-5, abs=1e-6)
        total += r
        total_vec += info["vector_reward"]
    assert trunc and info["episode"]["r"].shape == (4,)
    np.testing.assert_allclose(info["episode"]["r"], total_vec, rtol=1e-5)


def test_morl_baselines_capql_trains_on_the_vector_reward() -> None:
    pytest.importorskip("morl_baselines", reason="MORL-Baselines not installed (pip install -e '.[mo]')")
    import mo_gymnasium as mo_gym
    import torch
    from morl_baselines.common.evaluation import policy_evaluation_mo
    from morl_baselines.multi_policy.capql.capql import CAPQL

    env = mo_gym.make("Rationing-v1", reward="vector", overrides=SHORT)
    agent = CAPQL(env, learning_starts=48, batch_size=16, net_arch=[16, 16], log=False, seed=0, device="cpu")
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(total_timesteps=96, eval_env=env, ref_point=np.zeros(4), num_eval_weights_for_front=4,
                num_eval_episodes_for_front=1, eval_freq=10**9)
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters()))
    eval_env = mo_gym.make("Rationing-v1", reward="vector", overrides=SHORT)
    _, _, scalar_return, vec_return = policy_evaluation_mo(agent, eval_env, np.array([1.0, 0, 0, 0]), rep=1)
    assert vec_return.shape == (4,) and np.isfinite(vec_return).all()
