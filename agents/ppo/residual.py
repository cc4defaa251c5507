"""Residual parameterisation: the network corrects a tuned rule's quotas instead of replacing them.

With ``action_parameterisation: residual`` the policy is *rule x learned correction*.
The base rule (``residual_rule``; ``best`` = the best tuned rule of the env version,
with its tuned parameters, recorded in ``run.json`` so the run stands alone) computes
its target quota multipliers from the observation and the scenario's static facts
(:class:`~agents.rules.RuleContext`); the network's output ``c`` in [-1, 1] per tier
scales them::

    target_i = rule_target_i x exp(residual_log_range x c_i)
    env action = the rule's own conversion of target_i (RuleContext.action_to)

so ``c = 0`` *is* the rule, bit for bit (``exp(0) = 1``), and PPO starts from the
rule's return, not from an imperfect clone of it. The warm start zeroes the actor's
output layer (the mean correction is exactly 0) and fits only the observation
normalisation and the critic on the rule's rollouts. ``actor_moved`` is then the mean
absolute correction in environment-action units (``residual_log_range x |c| /
log quota_step_factor``): 0 means the policy is still the rule.

The base rule reads the scenario's facts (its demand profile, contracted GPUs, user
counts), so a residual policy is bound to a scenario before it acts:
:meth:`ResidualSpec.bind` with the scenario's :class:`~agents.rules.RuleContext`.
Training binds one rule per scenario of the mix; evaluation binds the evaluated
scenario's (exactly what the rule baseline itself sees).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from agents.common.policy import PolicyError
from agents.ppo.parameterisation import ObsKeepingWrapper


@dataclass(frozen=True)
class ResidualSpec:
    """The base rule (name and parameters) and the correction's range in natural-log multiplier units."""

    rule: str
    params: dict[str, Any]
    log_range: float

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "params": self.params, "log_range": self.log_range}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResidualSpec:
        if not isinstance(d, dict) or not isinstance(d.get("rule"), str) or not isinstance(d.get("params"), dict):
            raise PolicyError("residual: needs a mapping with 'rule' (a rule name) and 'params' (a mapping)")
        log_range = d.get("log_range")
        if not isinstance(log_range, (int, float)) or not 0.0 < float(log_range) <= 5.0:
            raise PolicyError(f"residual.log_range = {log_range!r}: must be a number in (0, 5]")
        return cls(d["rule"], dict(d["params"]), float(log_range))

    @classmethod
    def from_tuned(cls, rule: str, tuned_file: str | Path, log_range: float) -> ResidualSpec:
        """``rule`` (or ``best``) with its parameters from a tuned-baselines file."""
        from agents.rules import RULES, read_tuned

        if not Path(tuned_file).is_file():
            raise PolicyError(f"residual_rule: cannot read the tuned rules {str(tuned_file)!r}")
        data = read_tuned(tuned_file)  # one checked read: the best rule's name and its parameters
        name = data.get("best") if rule == "best" else rule
        if name not in RULES:
            raise PolicyError(f"residual_rule = {rule!r}: not a rule (allowed: best, {', '.join(RULES)})")
        entry = data["rules"].get(name)
        params = None if entry is None else dict(entry.get("params", {}))  # as tuned_params reads it
        if params is None:
            raise PolicyError(f"residual_rule = {name!r}: {str(tuned_file)!r} has no tuned parameters for it")
        return cls(name, dict(params), float(log_range))

    def bind(self, context) -> BoundResidual:
        """The rule with these parameters on one scenario (a :class:`~agents.rules.RuleContext`)."""
        from agents.rules import RuleError, make_rule, params_from_dict

        try:
            rule = make_rule(self.rule, context, params_from_dict(self.rule, self.params))
        except RuleError as exc:
            raise PolicyError(f"residual rule {self.rule!r}: {exc}") from None
        if rule.stateful:
            raise PolicyError(f"residual rule {self.rule!r} keeps memory between steps; the residual "
                              "parameterisation needs a rule that reads only the observation")
        return BoundResidual(rule, self.log_range)


class BoundResidual:
    """A residual on one scenario: network corrections and raw observations -> environment actions."""

    def __init__(self, rule, log_range: float) -> None:
        self.rule = rule
        self.log_range = float(log_range)
        self.n_tiers = rule.ctx.n_tiers

    def rule_target(self, obs: np.ndarray) -> np.ndarray:
        """(N, T) the rule's target multipliers for raw observations (N, obs_size)."""
        target, _ = self.rule.step_target(np.asarray(obs, np.float64), None)
        return target

    def env_action(self, correction: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """(N, A) float32 environment actions for corrections (N, T[+extra]) in [-1, 1] and raw obs."""
        x = np.asarray(obs, np.float64)
        c = np.clip(np.asarray(correction, np.float64)[:, : self.n_tiers], -1.0, 1.0)
        target = self.rule_target(x) * np.exp(self.log_range * c)
        return self.rule.ctx.action_to(x, target)


def correction_in_actions(correction: np.ndarray, log_range: float, quota_step_factor: float) -> np.ndarray:
    """Corrections expressed in environment-action units (one unit = one step's largest quota change)."""
    return log_range * np.clip(np.asarray(correction, np.float64), -1.0, 1.0) / np.log(quota_step_factor)


class ResidualActions(ObsKeepingWrapper):
    """A VecEnv wrapper over :class:`~envs.sb3_vec_env.RationingVecEnv` that takes corrections.

    Each scenario's rows get that scenario's bound rule (one call per scenario, not per row).
    """

    def __init__(self, venv: VecEnv, spec: ResidualSpec) -> None:
        super().__init__(venv)
        from agents.rules import RuleContext

        self.residual = spec
        self.bound = [spec.bind(RuleContext(core)) for core in venv.cores]
        self.rows = list(venv._rows)

    def env_actions(self, corrections: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """(N, A) environment actions for all rows: each scenario's rows through that scenario's rule."""
        out = np.empty((self.num_envs, self.venv.action_space.shape[0]), np.float32)
        for bound, rows in zip(self.bound, self.rows):
            out[rows] = bound.env_action(np.asarray(corrections)[rows], obs[rows])
        return out

    def step_async(self, actions: np.ndarray) -> None:
        assert self._obs is not None, "reset() before step()"
        self.venv.step_async(self.env_actions(actions, self._obs))

    def step_async_paired(self, corrections: np.ndarray, twin_obs: np.ndarray) -> np.ndarray:
        """:meth:`step_async` with ``corrections``, and returns the rule's actions for ``twin_obs``
        (:class:`~agents.ppo.twin.RuleTwinBaseline`): one rule call per scenario over both batches
        of rows instead of two (the rule works row by row, so the actions are the same)."""
        assert self._obs is not None, "reset() before step()"
        shape = (self.num_envs, self.venv.action_space.shape[0])
        mine, twin = np.empty(shape, np.float32), np.empty(shape, np.float32)
        corrections = np.asarray(corrections)
        for bound, rows in zip(self.bound, self.rows):
            c = corrections[rows]
            both = bound.env_action(np.concatenate([c, np.zeros_like(c)]),
                                    np.concatenate([self._obs[rows], twin_obs[rows]]))
            mine[rows], twin[rows] = both[: len(c)], both[len(c):]
        self.venv.step_async(mine)
        return twin


def env_action_converter(meta: dict[str, Any], context=None):
    """``(network output, raw obs) -> environment actions`` for a run.json or checkpoint manifest ``meta``.

    ``target`` and ``relative`` need no scenario; ``residual`` binds its rule to ``context`` (a
    :class:`~agents.rules.RuleContext`) and refuses without one.
    """
    from agents.ppo.parameterisation import ActionLayout, target_to_env_action

    kind = meta["hyperparams"].get("action_parameterisation", "relative")
    if kind == "target":
        layout = ActionLayout.from_dict(meta["action_layout"])
        return lambda action, obs: target_to_env_action(action, obs, layout)
    if kind == "residual":
        if context is None:
            raise PolicyError("a residual policy corrects a rule that reads the scenario: bind it to one first "
                              "(policy.for_scenario(RuleContext(scenario)))")
        return ResidualSpec.from_dict(meta.get("residual")).bind(context).env_action
    return lambda action, obs: np.clip(np.asarray(action, np.float32), -1.0, 1.0)
