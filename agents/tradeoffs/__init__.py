"""Trade-offs the way operators state them: constraints (PPO-Lagrangian) and preference-conditioned policies.

:mod:`agents.tradeoffs.constraints` parses ``--constraint "enterprise.latency_attainment>=0.99"``;
:mod:`agents.tradeoffs.lagrangian` trains PPO with one Lagrange multiplier per constraint;
:mod:`agents.tradeoffs.report` reports each constraint's satisfaction in an evaluation;
:mod:`agents.tradeoffs.preference` conditions one policy on per-episode weights (``train.py --preference``)
and :mod:`agents.tradeoffs.front` draws its front beside single-weighting runs and the tuned rules;
:mod:`agents.tradeoffs.family` blends a rule tuned at several weightings as such a policy's base;
:mod:`agents.tradeoffs.pick` finds the weighting that meets an operator's targets (validation seeds).
The vector reward these build on is :mod:`envs.vector_reward`.
"""

from agents.tradeoffs.constraints import Constraint, ConstraintError, parse_constraint, parse_constraints

__all__ = ["Constraint", "ConstraintError", "parse_constraint", "parse_constraints"]
