"""Rules that react to measured latency: ``aimd`` and ``latency-gradient`` (both keep state)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Dim, Rule
from .context import per_tier


@dataclass(frozen=True)
class AIMDParams:
    """Additive-increase / multiplicative-decrease of a global multiplier, split by tier weights."""

    g0: float = 1.0
    """Global multiplier at the start of an episode."""
    increase: float = 0.05
    """Added to the global multiplier each healthy step."""
    decrease: float = 0.7
    """Factor applied to the global multiplier on a breach."""
    breach_ratio: float = 1.0
    """A breach: some tier's latency / target above this."""
    g_min: float = 0.1
    g_max: float = 2.0
    weights: dict[str, float] = per_tier(1.0)
    """Tier multiplier = global multiplier x weight."""


class AIMDRule(Rule):
    """``aimd``: cut a global quota multiplier on a latency breach, raise it additively while healthy.

    As in adaptive concurrency limiters (TCP-style AIMD): each step, if any tier's
    last latency exceeds ``breach_ratio x`` its target, ``g <- max(g x decrease,
    g_min)``, else ``g <- min(g + increase, g_max)``. Tier i's quota multiplier is
    ``g x weights[i]``. ``g`` is the rule's state, shape (N,), starting at ``g0``.
    """

    name = "aimd"
    Params = AIMDParams
    stateful = True
    space = (
        Dim("g0", 0.1, 4.0, log=True),
        Dim("increase", 0.001, 0.5, log=True),
        Dim("decrease", 0.3, 0.95),
        Dim("breach_ratio", 0.5, 8.0, log=True),
        Dim("g_min", 0.05, 1.0, log=True),
        Dim("g_max", 0.5, 4.0, log=True),
        Dim("weights", 0.1, 4.0, log=True, per_tier=True),
    )

    def initial_state(self, obs):
        return np.broadcast_to(self.k["g0"][:, 0], (obs.shape[0],)).astype(np.float64)

    def target(self, obs, state):
        k = self.k
        breach = self.ctx.latency_ratio(obs).max(axis=1) > k["breach_ratio"][:, 0]
        g = np.where(breach, np.maximum(state * k["decrease"][:, 0], k["g_min"][:, 0]),
                     np.minimum(state + k["increase"][:, 0], k["g_max"][:, 0]))
        return g[:, None] * k["weights"], g



@dataclass(frozen=True)
class LatencyGradientParams:
    """Gradient2-style limit per tier."""

    tolerance: float = 1.5
    """Short-run latency may exceed the long-run reference by this factor before the limit shrinks."""
    smoothing: float = 0.05
    """Per-step weight of the newest latency in the long-run average."""
    min_gradient: float = 0.5
    """Largest cut in one step (limit x min_gradient)."""
    increase: float = 0.05
    """Added to the multiplier each step (probing for room)."""
    max_multiplier: float = 2.0
    min_multiplier: float = 0.05


class LatencyGradientRule(Rule):
    """``latency-gradient``: scale each tier's limit by long-run / short-run latency.

    The Gradient2 concurrency limiter applied per tier: ``gradient_i =
    clip(tolerance x ref_i / latency_i, min_gradient, 1)`` with ``ref_i = min(long-run
    average latency_i, target_i)``; the multiplier becomes ``m_i x gradient_i +
    increase``, clipped to ``[min_multiplier, max_multiplier]``. The long-run
    average (state, (N, T), starting at the targets) follows the observed latency
    with weight ``smoothing`` per step.
    """

    name = "latency-gradient"
    Params = LatencyGradientParams
    stateful = True
    space = (
        # widened (issue 12) from 1.0: the tune stopped there; below 1 the limit shrinks before the short-run
        # latency reaches the long-run reference (pre-emptive, for targets the mean latency overshoots)
        Dim("tolerance", 0.5, 4.0, log=True),
        Dim("smoothing", 0.005, 0.5, log=True),
        Dim("min_gradient", 0.5, 0.95),
        Dim("increase", 0.005, 0.5, log=True),
        Dim("max_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
    )

    def initial_state(self, obs):
        return np.tile(self.ctx.latency_target_s, (obs.shape[0], 1))

    def target(self, obs, state):
        c, k = self.ctx, self.k
        short = c.latency_s(obs)
        ref = np.minimum(state, c.latency_target_s)
        gradient = np.clip(k["tolerance"] * ref / np.maximum(short, 1e-6), k["min_gradient"], 1.0)
        target = np.clip(c.multipliers(obs) * gradient + k["increase"], k["min_multiplier"], k["max_multiplier"])
        new_state = state + k["smoothing"] * (short - state)
        return target, new_state


