"""Variance reduction with common random numbers: every training row has a twin that follows the rule.

The environment's randomness is counter-based (:mod:`envs.rng`): a row's demand noise,
outages, reclaims and domain-randomisation draws depend on its seed and episode, never
on the actions. So a second batched env with the same seeds, stagger and scenarios,
stepped in lockstep by the base rule, sees exactly the same exogenous world as the
training rows. With ``twin_baseline: true`` PPO is trained on

    reward_t = r_t(policy row) - r_t(rule twin)

The twin's reward is not affected by the policy's actions, so subtracting it leaves the
expected policy gradient unchanged, but it removes the part of the return that comes
from the world's draws (a busy week, an outage), which dwarfs the 1-3% a better
quota policy earns. ``rollout/ep_rew_mean`` in TensorBoard then reads as return over
the rule. Validation and evaluation use the plain reward.

The twin needs a rule that reads only the observation: the residual run's base rule
(:mod:`agents.ppo.residual`) or, for a target-parameterised run, the warm-start rule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class RuleTwinBaseline(VecEnvWrapper):
    """Wraps the training VecEnv; ``twin`` is a :class:`~envs.sb3_vec_env.RationingVecEnv` like the base one.

    Args:
        venv: the training env (its innermost layer a ``RationingVecEnv``).
        twin: a ``RationingVecEnv`` built with the same rows, scenarios, seed, stagger, randomisation.
        rule_actions: ``(corrections, raw obs) -> env actions`` for every row, each scenario's rows through
            its rule (:meth:`~agents.ppo.residual.ResidualActions.env_actions`); zero corrections are the rule.
    """

    def __init__(self, venv: VecEnv, twin: VecEnv,
                 rule_actions: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        super().__init__(venv)
        if twin.num_envs != venv.num_envs:
            raise ValueError(f"twin has {twin.num_envs} rows, the env {venv.num_envs}")
        self.twin = twin
        self.rule_actions = rule_actions
        self._zero = np.zeros((twin.num_envs, twin.action_space.shape[0]), np.float32)
        self._obs: np.ndarray | None = None
        """The twin rows' last observations."""

    def seed(self, seed: int | None = None):
        """Seeds the twin like the env (SB3 seeds the env when a model is made on it)."""
        self.twin.seed(seed)
        return self.venv.seed(seed)

    def reset(self):
        self._obs = self.twin.reset()
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        assert self._obs is not None, "reset() before step()"
        paired = getattr(self.venv, "step_async_paired", None)  # a ResidualActions right below: one rule call
        if paired is not None:
            self.twin.step_async(paired(actions, self._obs))
            return
        self.twin.step_async(self.rule_actions(self._zero, self._obs))
        self.venv.step_async(actions)

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        arrays = getattr(self.twin, "step_wait_arrays", None)  # a RationingVecEnv: no per-row infos to discard
        self._obs, twin_reward, twin_done = arrays() if arrays is not None else self.twin.step_wait()[:3]
        if not np.array_equal(done, twin_done):  # cannot happen: episodes end by the clock, in lockstep
            raise RuntimeError("twin rows ended episodes out of step with the training rows")
        return obs, (reward - twin_reward).astype(np.float32), done, infos
