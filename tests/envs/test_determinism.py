"""Determinism and parity: batched rows equal single envs with the same seed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs
from envs.sb3_vec_env import RationingVecEnv

SHORT = {"time": {"episode_days": 0.25}}  # 24 steps


def _rollout(env: envs.RationingEnv, seed: int, actions: np.ndarray) -> list[tuple]:
    out = []
    obs, _ = env.reset(seed=seed)
    out.append(("reset", obs))
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, info))
        if term or trunc:
            obs, _ = env.reset()
            out.append(("reset", obs))
    return out


def _assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=False):
        if isinstance(x[0], str):
            assert isinstance(y[0], str)
            np.testing.assert_array_equal(x[1], y[1])
            continue
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:4] == y[1:4]
        for key in x[4]:
            np.testing.assert_array_equal(x[4][key], y[4][key], err_msg=key)


def test_same_seed_same_trajectory() -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (60, 6)).astype(np.float32)
    a = _rollout(envs.RationingEnv("outage", overrides=SHORT), 7, actions)
    b = _rollout(envs.RationingEnv("outage", overrides=SHORT), 7, actions)
    _assert_same(a, b)


def test_different_seeds_differ() -> None:
    actions = np.zeros((10, 6), np.float32)
    a = _rollout(envs.RationingEnv(), 1, actions)
    b = _rollout(envs.RationingEnv(), 2, actions)
    assert not np.array_equal(a[-1][0], b[-1][0])


def test_randomized_episodes_are_reproducible_and_vary() -> None:
    env = envs.RationingEnv(randomize=True)
    env.reset(seed=3)
    first = env.core.scales.copy()
    env.reset()
    second = env.core.scales.copy()
    env.reset(seed=3)
    np.testing.assert_array_equal(env.core.scales, first)
    assert not np.array_equal(first, second)
    assert (first[0] >= 0.85).all() and (first[0] <= 1.2).all()


def test_sb3_vec_env_rows_equal_single_envs_across_episode_boundaries() -> None:
    n, steps, base_seed = 5, 60, 100  # 60 steps = 2.5 episodes of 24
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1.2, 1.2, (steps, n, 6)).astype(np.float32)
    vec = RationingVecEnv(n, scenario="launch-spike", seed=base_seed, overrides=SHORT)
    vec_obs = [vec.reset()]
    vec_out = []
    for t in range(steps):
        obs, rew, done, infos = vec.step(actions[t])
        vec_out.append((obs, rew, done, infos, {k: np.array(v) for k, v in vec.last_info.items()}))
    for k in range(n):
        single = envs.RationingEnv("launch-spike", overrides=SHORT)
        obs, _ = single.reset(seed=base_seed + k)
        np.testing.assert_array_equal(obs, vec_obs[0][k])
        for t in range(steps):
            obs, r, term, trunc, info = single.step(actions[t, k])
            v_obs, v_rew, v_done, v_infos, v_info = vec_out[t]
            assert r == v_rew[k]
            assert (term or trunc) == v_done[k]
            for key, value in info.items():
                np.testing.assert_array_equal(value, v_info[key][k], err_msg=f"row {k} step {t} {key}")
            if trunc:
                np.testing.assert_array_equal(obs, v_infos[k]["terminal_observation"])
                assert v_infos[k]["TimeLimit.truncated"] is True
                obs, _ = single.reset()
            else:
                assert "terminal_observation" not in v_infos[k]
            np.testing.assert_array_equal(obs, v_obs[k], err_msg=f"row {k} step {t} obs")


def test_row_position_does_not_matter() -> None:
    seeds = np.array([11, 22, 33, 44], dtype=np.uint64)
    a = envs.RationingCore("default", 4)
    b = envs.RationingCore("default", 4)
    a.reset(seeds)
    b.reset(seeds[::-1].copy())
    act = np.random.default_rng(2).uniform(-1, 1, (30, 4, 6)).astype(np.float32)
    for t in range(30):
        oa, ra, *_ = a.step(act[t])
        ob, rb, *_ = b.step(act[t][::-1])
        np.testing.assert_array_equal(oa, ob[::-1])
        np.testing.assert_array_equal(ra, rb[::-1])


def test_gymnasium_vector_env_same_step_autoreset_matches_single() -> None:
    vec = gym.make_vec("Rationing-v0", num_envs=2, overrides=SHORT)
    obs, _ = vec.reset(seed=[5, 6])
    single = envs.RationingEnv(overrides=SHORT)
    s_obs, _ = single.reset(seed=6)
    np.testing.assert_array_equal(obs[1], s_obs)
    for _t in range(30):
        obs, rew, term, trunc, info = vec.step(np.full((2, 6), 0.3, np.float32))
        s_obs, s_r, _, s_trunc, _ = single.step(np.full(6, 0.3, np.float32))
        assert rew[1] == s_r
        if s_trunc:
            assert info["_final_obs"][1]
            np.testing.assert_array_equal(info["final_obs"][1], s_obs)
            s_obs, _ = single.reset()
        np.testing.assert_array_equal(obs[1], s_obs)


def test_scenario_mix_rows_equal_single_scenario_envs() -> None:
    vec = RationingVecEnv(5, scenario=["default", "outage"], seed=40, overrides=SHORT)
    assert list(vec.row_scenario) == [0, 0, 0, 1, 1]
    obs = vec.reset()
    act = np.random.default_rng(3).uniform(-1, 1, (30, 5, 6)).astype(np.float32)
    singles = [envs.RationingEnv(s, overrides=SHORT) for s in ["default"] * 3 + ["outage"] * 2]
    s_obs = [e.reset(seed=40 + k)[0] for k, e in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(s_obs))
    for t in range(30):
        obs, rew, done, infos = vec.step(act[t])
        for k, e in enumerate(singles):
            o, r, _, trunc, _ = e.step(act[t, k])
            assert r == rew[k]
            if trunc:
                np.testing.assert_array_equal(o, infos[k]["terminal_observation"])
                o, _ = e.reset()
            np.testing.assert_array_equal(o, obs[k])


def test_stagger_spreads_rows_over_the_week_then_whole_episodes() -> None:
    vec = RationingVecEnv(4, seed=9, overrides=SHORT, stagger=True)  # 24-step episodes
    vec.reset()
    np.testing.assert_array_equal(vec.core.t, [0, 6, 12, 18])
    ends = []
    for step in range(60):
        _, _, done, infos = vec.step(np.zeros((4, 6), np.float32))
        ends += [(step, k) for k in np.flatnonzero(done)]
        assert all(infos[k]["TimeLimit.truncated"] for k in np.flatnonzero(done))
    first = {k: min(s for s, j in ends if j == k) for k in range(4)}
    assert first == {0: 23, 1: 17, 2: 11, 3: 5}
    # after the first (shortened) episode every row runs whole 24-step episodes
    for k in range(4):
        steps = [s for s, j in ends if j == k]
        assert all(b - a == 24 for a, b in zip(steps, steps[1:]))
