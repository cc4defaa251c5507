"""Contracts (Rationing-v1): service-level agreements per tier and the credits they owe.

A tier may declare an SLA in its scenario entry (``tiers[i].sla``) with one or
both service-level objectives (SLOs), each a monthly threshold and a credit
schedule::

    sla:
      availability:            # share of finished requests that did not fail
        threshold: 0.995
        credits: [{below: 0.995, credit_share: 0.10}, {below: 0.99, credit_share: 0.25},
                  {below: 0.95, credit_share: 0.50}]
      latency_attainment:      # share of served tokens within the tier's latency target
        threshold: 0.99
        credits: [{below: 0.99, credit_share: 0.10}]

``credit_share`` is the share of the tier's bill owed back when the month's
attainment is under ``below``; with several steps the largest applicable one
counts, and a tier with both SLOs is owed the larger of the two credits (one
credit per contract and month, as the vendors' terms read).

**Availability** counts failed requests (tokens timed out in the queue or failed
during a collapse: ``info["failed_tokens"]``) against served ones; a request
refused by a quota (HTTP 429) does not count (docs/calibration.md, "Contracts and
service levels"). **Latency attainment** is the token-weighted share of served
tokens within the tier's latency target (the env's exponential latency model).

**A monthly credit inside a one-week episode.** The episode is a part of the
contract month whose attainment so far is the *running* attainment from the
episode start (token-weighted, 1 before any token finishes). Every step the
tier's bill for that step (its revenue this step: the monthly fee prorated to the
step, or the tokens billed) is credited by the schedule's share at the running
attainment: a per-step expected credit, prorated. Steady service under the SLO
for a whole week thus costs the week's share of the monthly credit; a breach
that later service repairs stops costing once the running attainment is back
over the threshold. The credit is charged in the reward (as lost revenue) and
reported per tier as ``info["sla_credit_usd"]``; ``info["sla_availability"]``
and ``info["sla_latency_attainment"]`` are the running attainments, which the
v1 observation also carries.

Pure functions over batched arrays: ``N`` environments, ``T`` tiers, ``K``
credit steps (the schedules padded to the longest one).
"""

from __future__ import annotations

from typing import Annotated, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

F32 = np.float32
SLO_KINDS = ("availability", "latency_attainment")
"""The SLO kinds, in the order of the compiled arrays' first axis."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreditStep(_Strict):
    below: Annotated[float, Field(gt=0.0, le=1.0)]
    """The month's attainment under this share owes the credit."""
    credit_share: Annotated[float, Field(gt=0.0, le=1.0)]
    """Credit as a share of the month's bill."""


class SLOConfig(_Strict):
    threshold: Annotated[float, Field(gt=0.0, le=1.0)]
    """The objective: monthly attainment promised (e.g. 0.995)."""
    credits: Annotated[list[CreditStep], Field(min_length=1, max_length=8)]
    """Credit schedule, thresholds decreasing and credits increasing."""

    @model_validator(mode="after")
    def _schedule(self) -> SLOConfig:
        below = [c.below for c in self.credits]
        share = [c.credit_share for c in self.credits]
        if below[0] > self.threshold:
            raise ValueError(f"credits[0].below = {below[0]}: must be <= threshold = {self.threshold}")
        for i in range(1, len(below)):
            if below[i] >= below[i - 1]:
                raise ValueError(f"credits[{i}].below = {below[i]}: must be < credits[{i - 1}].below = {below[i - 1]}")
            if share[i] < share[i - 1]:
                raise ValueError(f"credits[{i}].credit_share = {share[i]}: must be >= credits[{i - 1}]"
                                 f".credit_share = {share[i - 1]}")
        return self


class SLAConfig(_Strict):
    """A tier's service-level agreement (Rationing-v1; v0 ignores it)."""

    availability: SLOConfig | None = None
    latency_attainment: SLOConfig | None = None

    @model_validator(mode="after")
    def _one_slo(self) -> SLAConfig:
        if self.availability is None and self.latency_attainment is None:
            raise ValueError("must declare availability, latency_attainment or both")
        return self


class Schedules(NamedTuple):
    below: np.ndarray
    """(2, K, T) credit thresholds per SLO kind (:data:`SLO_KINDS`), credit step and tier; -1 pads (never owed)."""
    increment: np.ndarray
    """(2, K, T) credit added under the threshold (credit share of step k minus that of step k - 1)."""
    tiers: np.ndarray
    """(T,) bool, tiers with an SLA."""


def compile_schedules(slas: list[SLAConfig | None]) -> Schedules:
    """The credit schedules of the tiers (``None`` for a tier without SLA) as arrays."""
    slos = [[getattr(s, kind) if s is not None else None for s in slas] for kind in SLO_KINDS]
    k = max([len(o.credits) for row in slos for o in row if o is not None] + [1])
    below = np.full((2, k, len(slas)), -1.0, F32)
    inc = np.zeros((2, k, len(slas)), F32)
    for j, row in enumerate(slos):
        for i, slo in enumerate(row):
            shares = [0.0] + ([c.credit_share for c in slo.credits] if slo is not None else [])
            for m, step in enumerate(slo.credits if slo is not None else []):
                below[j, m, i] = step.below
                inc[j, m, i] = shares[m + 1] - shares[m]
    return Schedules(below, inc, np.asarray([s is not None for s in slas]))


def broadcast_schedules(sched: Schedules, n: int) -> Schedules:
    """The schedules with the tier axis broadcast to (..., N, T) rows, copied contiguous.

    NumPy is several times slower on (N, T) x (T,) broadcasts (a short inner
    loop) than on equal shapes; the batched core keeps these full-shape copies.
    """
    def full(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(x[..., None, :], x.shape[:-1] + (n, x.shape[-1])))
    return Schedules(full(sched.below), full(sched.increment), sched.tiers)


class SLAState(NamedTuple):
    served_tokens: np.ndarray
    """(N, T) tokens served since the episode start."""
    failed_tokens: np.ndarray
    """(N, T) tokens failed (timed out, failed in a collapse) since the episode start."""
    within_tokens: np.ndarray
    """(N, T) served tokens within the latency target since the episode start."""


class SLAStep(NamedTuple):
    state: SLAState
    availability: np.ndarray
    """(N, T) running availability, served / (served + failed)."""
    latency_attainment: np.ndarray
    """(N, T) running latency-target attainment, within / served."""
    credit_usd: np.ndarray
    """(N, T) credit owed this step, dollars."""


def sla_step(sched: Schedules, state: SLAState, served: np.ndarray, failed: np.ndarray, within: np.ndarray,
             bill_usd: np.ndarray) -> SLAStep:
    """Accumulate this step's tokens (in ``state``'s arrays), then charge ``bill_usd`` (N, T) x the credit share.

    The share is the schedule's at the running attainment.

    ``sched`` as compiled (``(2, K, T)`` arrays) or broadcast to the rows by
    :func:`broadcast_schedules` (``(2, K, N, T)``, faster).

    Running attainments count one token more on both sides of each ratio (1
    before any token finishes; negligible against the millions of a step).
    """
    s = np.add(state.served_tokens, served, out=state.served_tokens)  # the state is never handed out: in place
    f = np.add(state.failed_tokens, failed, out=state.failed_tokens)
    w = np.add(state.within_tokens, within, out=state.within_tokens)
    d = s + 1.0
    att = w + 1.0
    att /= d
    np.minimum(att, 1.0, out=att)
    if f.any():
        avail = d / (d + f)
        kinds = zip((avail, att), sched.below, sched.increment)
    else:  # nothing failed yet in any row (the common case): availability 1 owes nothing
        avail = np.ones_like(s)
        kinds = zip((att,), sched.below[1:], sched.increment[1:])
    share = None
    for running, below, inc in kinds:  # the SLO kinds
        breach = running < below[0]  # the first credit step has the highest threshold
        if not breach.any():
            continue
        owed = breach * inc[0]
        for k in range(1, below.shape[0]):  # further credit steps (at most 8), not tiers or envs
            owed += (running < below[k]) * inc[k]
        share = owed if share is None else np.maximum(share, owed, out=share)
    if share is None:
        return SLAStep(SLAState(s, f, w), avail, att, np.zeros_like(bill_usd))
    share *= bill_usd
    return SLAStep(SLAState(s, f, w), avail, att, share)
