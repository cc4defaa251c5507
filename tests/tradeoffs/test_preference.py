"""Preference conditioning: per-episode weights in the observation, the reward they weight, fixed-weight policies."""

from __future__ import annotations

import numpy as np

from agents.tradeoffs.preference import (
    PreferencePolicy,
    PreferenceRewards,
    draw_weights,
    measure_objective_scales,
    objective_sizes,
    preference_reward,
)
from envs.sb3_vec_env import RationingVecEnv
from envs.vector_reward import scalarise

SHORT = {"time": {"episode_days": 1 / 24}}  # 4 steps of 15 minutes


def test_weights_in_observation_and_reward_redrawn_per_episode() -> None:
    base = RationingVecEnv(4, scenario="default", seed=2, overrides=SHORT, version=1)
    env = PreferenceRewards(base, seed=7)
    obs = env.reset()
    assert obs.shape == (4, base.observation_space.shape[0] + 3) and env.observation_space.contains(obs[0])
    first = obs[:, -3:].copy()
    np.testing.assert_allclose(first.sum(axis=1), 3.0, rtol=1e-5)
    for t in range(4):
        obs, reward, done, infos = env.step(np.zeros((4, 6), np.float32))
        w = first if t < 3 else None
        if w is not None:
            np.testing.assert_allclose(reward, preference_reward(base.last_reward_vector, w, 1e4), rtol=1e-6)
            np.testing.assert_array_equal(obs[:, -3:], first)
    assert done.all() and not np.allclose(obs[:, -3:], first)  # new episode, new weights
    np.testing.assert_array_equal(infos[0]["terminal_observation"][-3:], first[0])
    # batch-independent draws: row 1's weights are the same in a batch of 2
    np.testing.assert_array_equal(draw_weights(7, np.arange(2), np.zeros(2))[1], first[1])


def test_default_weights_give_the_scalar_reward() -> None:
    base = RationingVecEnv(3, scenario="default", seed=2, overrides=SHORT, version=1)
    base.reset()
    _, reward, _, _ = base.step(np.zeros((3, 6), np.float32))
    ones = np.ones((3, 3), np.float32)
    np.testing.assert_allclose(preference_reward(base.last_reward_vector, ones, 1e4),
                               scalarise(base.last_reward_vector, base.core.params), rtol=1e-5)
    np.testing.assert_allclose(preference_reward(base.last_reward_vector, ones, 1e4), reward, rtol=1e-5)


def test_balanced_rewards_have_one_size_at_every_weighting() -> None:
    v = np.array([[8000.0, -60.0, -4000.0, -100.0], [9000.0, -80.0, -3000.0, 0.0]])  # margin, latency, churn, credits
    s = objective_sizes(v[None])
    assert s == [8450.0, 70.0, 3500.0]  # mean |margin + credits|, mean |latency|, mean |churn|
    corners = 3.0 * np.eye(3)
    for k in range(3):  # a corner's reward is its objective in units of its own size
        got = preference_reward(v, np.repeat(corners[k:k + 1], 2, axis=0), 1e4, s)
        want = (v[:, 0] + v[:, 3]) / s[0] if k == 0 else v[:, k] / s[k]
        np.testing.assert_allclose(got, want)
    ones = np.ones((2, 3))  # 1,1,1: the scalar reward up to a positive constant (the same best policy)
    np.testing.assert_allclose(preference_reward(v, ones, 1e4, s), preference_reward(v, ones, 1e4) * 1e4 / sum(s))
    base = RationingVecEnv(2, scenario="default", seed=2, overrides=SHORT, version=1)
    env = PreferenceRewards(base, seed=7, objective_scales=s)
    env.reset()
    _, reward, _, _ = env.step(np.zeros((2, 6), np.float32))
    np.testing.assert_allclose(reward, preference_reward(base.last_reward_vector, env.weights, 1e4, s), rtol=1e-6)


def test_over_a_rule_twin_each_row_earns_its_weighted_reward_minus_its_twins() -> None:
    """Common random numbers at every weighting: a row that acts as its twin earns exactly 0; otherwise the
    difference of the two rows' rewards at the row's own weights."""
    from agents.ppo.twin import RuleTwinBaseline

    def stack():
        base = RationingVecEnv(3, scenario="default", seed=2, overrides=SHORT, version=1)
        twin = RationingVecEnv(3, scenario="default", seed=2, overrides=SHORT, version=1)
        def hold(corrections, obs):  # the twin's rule: hold the quotas
            return np.zeros((3, 6), np.float32)

        return base, twin, PreferenceRewards(RuleTwinBaseline(base, twin, hold), seed=7,
                                             objective_scales=[8e3, 70.0, 4e3])

    base, twin, env = stack()
    env.reset()
    for _ in range(3):
        _, reward, _, _ = env.step(np.zeros((3, 6), np.float32))
        np.testing.assert_array_equal(reward, np.zeros(3, np.float32))
    base, twin, env = stack()
    env.reset()
    _, reward, _, _ = env.step(np.full((3, 6), 0.7, np.float32))
    w, s = env.weights, [8e3, 70.0, 4e3]
    want = preference_reward(base.last_reward_vector, w, 1e4, s) - preference_reward(twin.last_reward_vector, w, 1e4, s)
    np.testing.assert_allclose(reward, want, rtol=1e-6)
    assert np.all(reward != 0)


def test_balanced_returns_are_the_summed_rewards_at_fixed_weights() -> None:
    """An episode's balanced return (model selection) is the sum of its per-step preference rewards."""
    from agents.tradeoffs.preference import balanced_returns

    steps = np.random.default_rng(3).normal(size=(50, 2, 4)) * [8000.0, 60.0, 4000.0, 100.0]
    s = [8450.0, 70.0, 3500.0]
    for w in ((3.0, 0.0, 0.0), (0.5, 2.0, 0.5), (1.0, 1.0, 1.0)):
        per_step = sum(preference_reward(v, np.tile(np.float64(w), (2, 1)), 1e4, s) for v in steps)
        np.testing.assert_allclose(balanced_returns(steps.sum(axis=0), w, s), per_step, rtol=1e-12)


def test_objective_scales_are_measured_on_the_rule_deterministically() -> None:
    from agents.ppo.residual import ResidualSpec
    from agents.rules import tuned_file_for

    spec = ResidualSpec.from_tuned("best", tuned_file_for(1), 1.0)
    a = measure_objective_scales(["default"], 1, SHORT, spec.rule, spec.params, rows=2)
    assert a == measure_objective_scales(["default"], 1, SHORT, spec.rule, spec.params, rows=2)
    assert len(a) == 3 and all(x > 0 for x in a) and a[0] > a[2] > a[1]  # margin > churn > latency per step


def test_preference_policy_appends_fixed_weights() -> None:
    class Echo:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return obs[:, -3:], state

    pol = PreferencePolicy(Echo(), [2.0, 0.5, 0.5])
    action, _ = pol.predict(np.zeros((2, 58), np.float32))
    np.testing.assert_array_equal(action, [[2.0, 0.5, 0.5]] * 2)
    single, _ = pol.predict(np.zeros(58, np.float32))
    assert single.shape == (3,)
