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


def test_burst_action_passes_through_the_target_conversion() -> None:
    import envs
    from agents.ppo.parameterisation import ActionLayout, target_to_env_action

    core = envs.RationingCore("default", 3, overrides={"action": {"burst": "policy"}}, version=1)
    layout = ActionLayout.from_params(core.params)
    assert layout.n_extra == 1 and layout.action_size == 7
    assert ActionLayout.from_dict(layout.to_dict()) == layout
    assert ActionLayout.from_dict({k: v for k, v in layout.to_dict().items() if k != "n_extra"}).n_extra == 0
    obs = core.reset(np.arange(3))
    target = np.array([[0.0] * 6 + [0.7], [1.0] * 6 + [-2.0], [-1.0] * 6 + [0.0]], np.float32)
    env_action = target_to_env_action(target, obs, layout)
    assert env_action.shape == (3, 7)
    np.testing.assert_array_equal(env_action[:, 6], np.float32([0.7, -1.0, 0.0]))
    np.testing.assert_array_equal(env_action[:, :6], target_to_env_action(target[:, :6], obs, layout)[:, :6])
