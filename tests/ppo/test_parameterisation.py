"""Target-quota parameterisation: the conversion reaches its targets within the per-step limit."""

from __future__ import annotations

import numpy as np

import envs
from agents.ppo.parameterisation import ActionLayout, target_log_multiplier, target_to_env_action


def test_target_centre_and_ends() -> None:
    layout = ActionLayout.from_params(envs.RationingCore("default", 1).params)
    logs = target_log_multiplier(np.array([[-1.0, 0.0, 1.0, -0.5, 0.5, 2.0]]), layout)
    np.testing.assert_allclose(np.exp(logs), [[0.05, 1.0, 4.0, np.sqrt(0.05), 2.0, 4.0]], rtol=1e-5)


def test_env_reaches_the_target_and_holds_it() -> None:
    core = envs.RationingCore("default", 3)
    layout = ActionLayout.from_params(core.params)
    obs = core.reset(np.arange(3))
    target = np.array([[0.3] * 6, [-0.8] * 6, [1.0] * 6], np.float32)
    steps = []
    for _ in range(8):
        action = target_to_env_action(target, obs, layout)
        assert np.all(np.abs(action) <= 1.0)
        steps.append(action)
        obs, *_ = core.step(action)
    np.testing.assert_allclose(np.log(core.quota_multiplier), target_log_multiplier(target, layout), atol=1e-5)
    np.testing.assert_allclose(steps[-1], 0.0, atol=1e-5)  # once there, no further change
    assert np.abs(steps[0][1]).max() == 1.0  # a far target is approached at the per-step limit
