"""The causal-room measurement: its zero correction is the rule, and its search runs end to end."""

from __future__ import annotations

import numpy as np

import envs
from agents.evaluate.metrics import rollout
from agents.oracle.causal import LinearResidual, fit, returns
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
