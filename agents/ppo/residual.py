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
    family: tuple[dict[str, Any], ...] | None = None
    """A preference run's rule family (:mod:`agents.tradeoffs.family`): members ``{"weights", "params"}``;
    the base is then the family's blend at each row's weights, and ``params`` the member nearest 1,1,1."""

    def to_dict(self) -> dict[str, Any]:
        out = {"rule": self.rule, "params": self.params, "log_range": self.log_range}
        if self.family is not None:
            out["family"] = [{"weights": list(m["weights"]), "params": dict(m["params"])} for m in self.family]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResidualSpec:
        if not isinstance(d, dict) or not isinstance(d.get("rule"), str) or not isinstance(d.get("params"), dict):
            raise PolicyError("residual: needs a mapping with 'rule' (a rule name) and 'params' (a mapping)")
        log_range = d.get("log_range")
        if not isinstance(log_range, (int, float)) or not 0.0 < float(log_range) <= 5.0:
            raise PolicyError(f"residual.log_range = {log_range!r}: must be a number in (0, 5]")
        family = d.get("family")
        if family is not None:
            if not isinstance(family, list) or len(family) < 3 or not all(
                    isinstance(m, dict) and isinstance(m.get("params"), dict) and isinstance(m.get("weights"), list)
                    and len(m["weights"]) == 3 for m in family):
                raise PolicyError("residual.family: a list of at least 3 mappings with 'weights' (3 numbers) and "
                                  "'params' (a mapping)")
            family = tuple({"weights": [float(x) for x in m["weights"]], "params": dict(m["params"])}
                           for m in family)
        return cls(d["rule"], dict(d["params"]), float(log_range), family)

    @classmethod
    def from_family(cls, rule: str, files: list[str], log_range: float) -> ResidualSpec:
        """``rule`` (or ``best``) tuned at several weightings (:func:`agents.tradeoffs.family.read_family`)."""
        from agents.rules import RULES
        from agents.tradeoffs.family import nearest_member, read_family

        name, members = read_family(rule, files)
        if name not in RULES:
            raise PolicyError(f"residual_rule = {rule!r}: not a rule (allowed: best, {', '.join(RULES)})")
        return cls(name, dict(nearest_member(members)["params"]), float(log_range), tuple(members))

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

    def _make(self, context, params: dict[str, Any]):
        from agents.rules import RuleError, make_rule, params_from_dict

        try:
            rule = make_rule(self.rule, context, params_from_dict(self.rule, params))
        except RuleError as exc:
            raise PolicyError(f"residual rule {self.rule!r}: {exc}") from None
        if rule.stateful:
            raise PolicyError(f"residual rule {self.rule!r} keeps memory between steps; the residual "
                              "parameterisation needs a rule that reads only the observation")
        return rule

    def bind(self, context) -> BoundResidual:
        """The rule with these parameters (and a family's members) on one scenario (a
        :class:`~agents.rules.RuleContext`)."""
        members = None
        if self.family is not None:
            members = [(m["weights"], self._make(context, m["params"])) for m in self.family]
        return BoundResidual(self._make(context, self.params), self.log_range, members)


class BoundResidual:
    """A residual on one scenario: network corrections and raw observations -> environment actions.

    With ``members`` (a rule family: ``(weights, bound rule)`` pairs) the base target is the family's
    blend at each row's weights (:mod:`agents.tradeoffs.family`); rows without weights act at 1,1,1."""

    def __init__(self, rule, log_range: float, members: list | None = None) -> None:
        self.rule = rule
        self.log_range = float(log_range)
        self.n_tiers = rule.ctx.n_tiers
        self.members = members
        self.blend = None
        if members is not None:
            from agents.tradeoffs.family import Blend

            self.blend = Blend([w for w, _ in members])

    def rule_target(self, obs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """(N, T) the rule's target multipliers for raw observations (N, obs_size) (a family's at ``weights``
        (N, 3), default 1,1,1)."""
        x = np.asarray(obs, np.float64)
        if self.members is None:
            return self.rule.step_target(x, None)[0]
        from agents.tradeoffs.family import blend_targets
        from agents.tradeoffs.preference import VALIDATION_WEIGHTS

        w = np.broadcast_to(np.asarray(VALIDATION_WEIGHTS if weights is None else weights, np.float64),
                            (len(x), 3))
        return blend_targets(lambda k, rows: self.members[k][1].step_target(x[rows], None)[0],
                             self.blend.coefficients(w), self.n_tiers)

    def env_action(self, correction: np.ndarray, obs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """(N, A) float32 environment actions for corrections (N, T[+extra]) in [-1, 1] and raw obs
        (``weights`` (N, 3): a family's rows' weights)."""
        x = np.asarray(obs, np.float64)
        c = np.clip(np.asarray(correction, np.float64)[:, : self.n_tiers], -1.0, 1.0)
        target = self.rule_target(x, weights) * np.exp(self.log_range * c)
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
        self.row_weights: np.ndarray | None = None
        """(N, 3) each row's preference weights (a rule family's base depends on them): set by
        :class:`~agents.tradeoffs.preference.PreferenceRewards` above; None: 1,1,1."""

    def set_row_weights(self, weights: np.ndarray) -> None:
        self.row_weights = weights

    def _weights(self, rows) -> np.ndarray | None:
        return None if self.row_weights is None or self.residual.family is None else self.row_weights[rows]

    def env_actions(self, corrections: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """(N, A) environment actions for all rows: each scenario's rows through that scenario's rule."""
        out = np.empty((self.num_envs, self.venv.action_space.shape[0]), np.float32)
        for bound, rows in zip(self.bound, self.rows):
            out[rows] = bound.env_action(np.asarray(corrections)[rows], obs[rows], self._weights(rows))
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
            c, w = corrections[rows], self._weights(rows)
            both = bound.env_action(np.concatenate([c, np.zeros_like(c)]),
                                    np.concatenate([self._obs[rows], twin_obs[rows]]),
                                    None if w is None else np.concatenate([w, w]))
            mine[rows], twin[rows] = both[: len(c)], both[len(c):]
        self.venv.step_async(mine)
        return twin


def env_action_converter(meta: dict[str, Any], context=None):
    """``(network output, raw obs[, weights]) -> environment actions`` for a run.json or checkpoint manifest
    ``meta`` (``weights`` (N, 3): the rows' preference weights, which only a rule family's base reads).

    ``target`` and ``relative`` need no scenario; ``residual`` binds its rule to ``context`` (a
    :class:`~agents.rules.RuleContext`) and refuses without one.
    """
    from agents.ppo.parameterisation import ActionLayout, target_to_env_action

    kind = meta["hyperparams"].get("action_parameterisation", "relative")
    if kind == "target":
        layout = ActionLayout.from_dict(meta["action_layout"])
        return lambda action, obs, weights=None: target_to_env_action(action, obs, layout)
    if kind == "residual":
        if context is None:
            raise PolicyError("a residual policy corrects a rule that reads the scenario: bind it to one first "
                              "(policy.for_scenario(RuleContext(scenario)))")
        return ResidualSpec.from_dict(meta.get("residual")).bind(context).env_action
    return lambda action, obs, weights=None: np.clip(np.asarray(action, np.float32), -1.0, 1.0)
