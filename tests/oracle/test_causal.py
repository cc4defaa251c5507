"""The causal-room measurement: its zero correction is the rule, and its search runs end to end."""

from __future__ import annotations

import numpy as np

import envs
from agents.evaluate.metrics import rollout
from agents.oracle.causal import MEMORY_DECAY, LinearResidual, fit, raw_features, returns
from agents.ppo.residual import ResidualSpec
from agents.rules import RuleContext, make_rule, params_from_dict, tuned_file_for


def test_zero_weights_are_the_rule_and_candidates_share_the_world() -> None:
    spec = ResidualSpec.from_tuned("best", tuned_file_for(1), 1.0)
    core = envs.RationingCore("default", 1, version=1)
    obs_size, t = core.obs_size, core.n_tiers
    w = np.zeros((3, obs_size + 1, t))
    w[1, -1, 0] = 0.3  # candidate 1: 35% more quota for the first tier, always
    model = LinearResidual(np.zeros(obs_size), np.ones(obs_size), w)
    seeds = np.array([7, 8], dtype=np.uint64)
    got = returns(model, spec, "default", seeds, 1)
    ref_core = envs.RationingCore("default", 2, version=1)
    rule = make_rule(spec.rule, RuleContext(ref_core), params_from_dict(spec.rule, spec.params))
    expected = rollout(rule, ref_core, seeds, keys=()).returns
    assert np.array_equal(got[0], expected) and np.array_equal(got[2], expected)
    assert not np.array_equal(got[1], expected)


def test_fit_runs_and_returns_one_candidate() -> None:
    spec = ResidualSpec.from_tuned("best", tuned_file_for(1), 1.0)
    lines: list[str] = []
    model = fit(spec, 1, generations=1, population=2, seeds_per=1, sigma=0.01, log=lines.append)
    assert model.weights.shape[0] == 1 and np.isfinite(model.weights).all()
    assert len(lines) == 1 and "over the rule" in lines[0]


def test_memory_features_start_empty_and_follow_each_row() -> None:
    obs = np.arange(6, dtype=np.float64).reshape(2, 3)
    raw, state = raw_features(obs, None, memory=True)
    assert raw.shape == (2, 9) and np.array_equal(raw[:, :3], obs) and not raw[:, 3:].any()
    later = obs + np.array([[1.0], [2.0]])
    raw, state2 = raw_features(later, state, memory=True)
    assert np.array_equal(raw[:, 3:6], np.array([[1.0] * 3, [2.0] * 3]))  # change since the last step
    assert np.allclose(raw[:, 6:], MEMORY_DECAY * (later - obs))  # deviation from the moving average
    raw, _ = raw_features(later, state2, memory=True, episode_start=np.array([False, True]))
    assert not raw[0, 3:6].any() and raw[0, 6:].any()  # row 0 kept its history: no change this step, off the average
    assert not raw[1, 3:].any()  # row 1 started a new episode: no history


def test_memory_model_at_zero_weights_is_the_rule() -> None:
    spec = ResidualSpec.from_tuned("best", tuned_file_for(1), 1.0)
    obs_size = envs.RationingCore("default", 1, version=1).obs_size
    w = np.zeros((2, 3 * obs_size + 1, 6))
    w[1, obs_size:2 * obs_size, 0] = 0.5  # candidate 1 reacts to the last step's changes only
    model = LinearResidual(np.zeros(3 * obs_size), np.ones(3 * obs_size), w, memory=True)
    got = returns(model, spec, "default", np.array([3], dtype=np.uint64), 1)
    ref_core = envs.RationingCore("default", 1, version=1)
    rule = make_rule(spec.rule, RuleContext(ref_core), params_from_dict(spec.rule, spec.params))
    expected = rollout(rule, ref_core, np.array([3], dtype=np.uint64), keys=()).returns
    assert np.array_equal(got[0], expected) and not np.array_equal(got[1], expected)
