"""Gymnasium 1.x vector conventions of ``RationingVectorEnv``: autoreset mode, ``_key`` masks,
``max_episode_steps``, and Gymnasium's vector wrappers on top of it."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import ClipAction, NormalizeObservation, NormalizeReward, RecordEpisodeStatistics

import envs

N = 3
ZERO = np.zeros((N, 6), np.float32)


def _vec(**kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec("Rationing-v1", num_envs=N, **kwargs)


def test_metadata_declares_same_step_autoreset() -> None:
    vec = _vec()
    assert vec.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert envs.RationingVectorEnv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    nxt = _vec(autoreset_mode="NextStep")
    assert nxt.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert envs.RationingVectorEnv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP  # class level untouched
    with pytest.raises(ValueError, match="autoreset_mode = 'Disabled'"):
        _vec(autoreset_mode="Disabled")


def test_info_has_a_mask_per_key() -> None:
    vec = _vec(max_episode_steps=2)
    vec.reset(seed=0)
    _, _, _, _, info = vec.step(ZERO)
    core = vec.unwrapped.core
    keys = set(core.tier_info_keys) | set(core.scalar_info_keys) | set(envs.PROVIDER_INFO_KEYS)
    assert set(info) == keys | {f"_{k}" for k in keys}
    for k in keys:
        assert info[f"_{k}"].dtype == bool and info[f"_{k}"].shape == (N,) and info[f"_{k}"].all(), k
        assert info[k].shape[0] == N
    _, _, _, trunc, info = vec.step(ZERO)
    assert trunc.all() and info["_final_obs"].all() and info["_final_info"].all()
    fin = info["final_info"]
    assert set(fin) == keys | {f"_{k}" for k in keys} and all(fin[f"_{k}"].all() for k in keys)


@pytest.mark.parametrize("how", ["make_vec", "constructor"])
def test_max_episode_steps(how: str) -> None:
    vec = _vec(max_episode_steps=5) if how == "make_vec" else envs.RationingVectorEnv(N, max_episode_steps=5)
    assert vec.unwrapped.max_episode_steps == 5
    obs0, _ = vec.reset(seed=4)
    for t in range(1, 11):
        obs, _, term, trunc, info = vec.step(ZERO)
        assert not term.any() and trunc.all() == (t % 5 == 0) and not (trunc.any() and not trunc.all())
        if t % 5 == 0:
            assert "final_obs" in info
            np.testing.assert_array_equal(obs[:, :4], obs0[:, :4])  # back to Monday 00:00
    # longer than the scenario's week: the week still ends it, as TimeLimit would
    long = _vec(max_episode_steps=10_000)
    long.reset(seed=0)
    ends = [t for t in range(1, 700) if long.step(ZERO)[3].all()]
    assert ends == [672]
    with pytest.raises(ValueError, match="max_episode_steps = 0"):
        envs.RationingVectorEnv(N, max_episode_steps=0)


def test_next_step_autoreset_follows_the_same_episodes() -> None:
    """NEXT_STEP returns the last observation, then the first of the next episode (reward 0, masks False)."""
    same, nxt = _vec(max_episode_steps=4), _vec(max_episode_steps=4, autoreset_mode=AutoresetMode.NEXT_STEP)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (12, N, 6)).astype(np.float32)
    same.reset(seed=7)
    nxt.reset(seed=7)
    s_rewards, n_rewards, same_first = [], [], None
    for t in range(12):
        o_s, r_s, _, tr_s, i_s = same.step(actions[t])
        s_rewards.append(r_s)
        o_n, r_n, _, tr_n, i_n = nxt.step(actions[t] if t < 4 else actions[t - 1])
        n_rewards.append(r_n)
        if t == 3:
            assert tr_s.all() and tr_n.all() and "final_obs" not in i_n
            np.testing.assert_array_equal(o_n, i_s["final_obs"])  # the last observation itself
            same_first = o_s
        if t == 4:  # next-step reset: the first observation of the next episode, nothing happened
            assert not tr_n.any() and (r_n == 0).all() and not i_n["_served_tokens"].any()
            np.testing.assert_array_equal(o_n, same_first)
    # after the reset step, NEXT_STEP runs one step behind SAME_STEP on the same episodes
    np.testing.assert_array_equal(np.array(n_rewards[5:9]), np.array(s_rewards[4:8]))


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_record_episode_statistics(mode: AutoresetMode) -> None:
    vec = RecordEpisodeStatistics(_vec(max_episode_steps=6, autoreset_mode=mode))
    vec.reset(seed=1)
    total = np.zeros(N)
    for _ in range(6):
        _, reward, _, trunc, info = vec.step(ZERO)
        total += reward
    assert trunc.all() and info["_episode"].all()
    np.testing.assert_allclose(info["episode"]["r"], total, rtol=1e-5)
    np.testing.assert_array_equal(info["episode"]["l"], [6] * N)
    for _ in range(7 if mode is AutoresetMode.NEXT_STEP else 6):  # the next episode is counted afresh
        _, _, _, trunc, info = vec.step(ZERO)
    assert trunc.all() and (info["episode"]["l"] == 6).all()


def test_normalize_observation() -> None:
    with pytest.raises(ValueError, match="NEXT_STEP"):  # Gymnasium's own rule for observation wrappers
        NormalizeObservation(_vec())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vec = NormalizeObservation(_vec(autoreset_mode="NextStep", max_episode_steps=96))
    obs, _ = vec.reset(seed=0)
    seen = [obs]
    for _ in range(300):
        obs, *_ = vec.step(vec.action_space.sample())
        seen.append(obs)
    seen = np.concatenate(seen[100:])
    assert np.isfinite(seen).all() and vec.obs_rms.count > 900
    moving = seen.std(axis=0) > 1e-3
    assert np.abs(seen.mean(axis=0)[moving]).max() < 1.0 and 0.3 < np.median(seen.std(axis=0)[moving]) < 2.0


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_normalize_reward(mode: AutoresetMode) -> None:
    raw, wrapped = _vec(autoreset_mode=mode, max_episode_steps=50), NormalizeReward(
        _vec(autoreset_mode=mode, max_episode_steps=50), gamma=0.99)
    raw.reset(seed=2)
    wrapped.reset(seed=2)
    ratios = []
    for _ in range(120):
        _, r, *_ = raw.step(ZERO)
        _, w, *_ = wrapped.step(ZERO)
        assert np.isfinite(w).all()
        ratios.append(w[r != 0] / r[r != 0])
    # the same rewards divided by one running scale per step (equal across rows)
    assert all(np.allclose(x, x[0], rtol=1e-4) for x in ratios if len(x))
    assert wrapped.return_rms.count > 100


def test_clip_action() -> None:
    clipped, ref = ClipAction(_vec()), _vec()
    clipped.reset(seed=3)
    ref.reset(seed=3)
    wild = np.tile(np.array([5.0, -7.0, 0.5, 1.5, -1.5, 0.0], np.float32), (N, 1))
    for _ in range(5):
        o1, r1, *_ = clipped.step(wild)
        o2, r2, *_ = ref.step(np.clip(wild, -1, 1))
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
