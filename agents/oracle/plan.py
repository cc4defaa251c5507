"""A rule plus a per-row, per-time-block plan of quota adjustments: the policy the oracle searches over.

Two plan modes, both in log quota multiplier per (time block, tier):

* ``residual``: the rule's target multiplier times ``exp(plan[row, block, tier])``; a zero plan
  is the rule itself, so the best plan found is never worse than the rule on its seed.
* ``schedule``: the multiplier is ``exp(plan[row, block, tier])`` whatever the rule says (a direct
  quota schedule); the rule still runs, only for its memory.

Either way the target is converted to the environment's action by the rule's context
(:meth:`agents.rules.RuleContext.action_to`), so the plan obeys the same per-step limits
as every policy. The policy counts steps itself: every row starts its episode together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.rules import Rule

MODES = ("residual", "schedule")


class PlannedRule:
    """``rule`` adjusted by ``plan`` (rows, blocks, T) log multipliers; block b covers steps from b x block_steps."""

    def __init__(self, rule: Rule, plan: np.ndarray, block_steps: int, mode: str = "residual") -> None:
        if mode not in MODES:
            raise ValueError(f"plan mode {mode!r}: use one of {', '.join(MODES)}")
        self.rule, self.plan, self.block_steps, self.mode = rule, np.asarray(plan, np.float64), int(block_steps), mode
        self.t = 0

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        x = np.asarray(obs, dtype=np.float64)
        if episode_start is not None and np.all(episode_start):
            self.t = 0
        target, state = self.rule.step_target(x, state, episode_start)
        adj = self.plan[:, min(self.t // self.block_steps, self.plan.shape[1] - 1)]
        target = target * np.exp(adj) if self.mode == "residual" else np.exp(adj)
        self.t += 1
        return self.rule.ctx.action_to(x, target), state
