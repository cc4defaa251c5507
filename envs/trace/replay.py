"""Trace demand compiled for the core: binning, tier mapping and the :class:`Replay` table.

:func:`bin_trace` sums a trace's records into step-sized bins (tiling and time
scaling); :func:`build_replay` maps records to tiers and bins them into one
period of per-step, per-tier demand; :func:`load_replay` does it for a scenario's
``demand.trace``. Mapping rules are described in :mod:`envs.trace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .readers import Trace, TraceError, load_trace

F32 = np.float32


def bin_trace(trace: Trace, values: np.ndarray, bin_s: float, time_scale: float = 1.0,
              period_s: float | None = None) -> np.ndarray:
    """Sum ``values`` (one per record) into bins of ``bin_s`` episode seconds from the origin.

    Windowed records spread uniformly over their window. The result has
    ``ceil(span x time_scale / bin_s)`` bins (at least 1), or ``period_s / bin_s``
    when a period is given (requests past it wrap around; windowed mass past it is dropped).
    """
    x0 = (trace.timestamp_s - trace.origin_s) * time_scale
    span = trace.span_s * time_scale if period_s is None else period_s
    n = max(1, int(math.ceil(span / bin_s - 1e-9)))
    d = trace.duration_s * time_scale
    if d <= 0:
        idx = (x0 // bin_s).astype(np.int64) % n if period_s is not None else np.minimum(
            (x0 // bin_s).astype(np.int64), n - 1)
        return np.bincount(idx, weights=values, minlength=n)[:n]
    # Cumulative mass at bin edges: M(e) = sum w * clip((e - x0) / d, 0, 1), x0 sorted.
    edges = np.arange(n + 1) * bin_s
    cw = np.concatenate([[0.0], np.cumsum(values)])
    cx = np.concatenate([[0.0], np.cumsum(values * x0)])
    i1 = np.searchsorted(x0, edges - d, side="right")
    i2 = np.searchsorted(x0, edges, side="left")
    mass = cw[i1] + (edges * (cw[i2] - cw[i1]) - (cx[i2] - cx[i1])) / d
    return np.diff(mass)



@dataclass(frozen=True)
class Replay:
    """Trace demand compiled for the core.

    ``table`` (L, T): tokens per step per tier at the starting users, one trace
    period of L steps; ``covered`` (T,) tiers driven by the trace;
    ``offset_steps`` the fixed start offset; ``randomize_offset`` draw a random
    start per episode.
    """

    table: np.ndarray
    covered: np.ndarray
    offset_steps: int
    randomize_offset: bool
    source: str

    @property
    def period(self) -> int:
        return int(self.table.shape[0])

    def episode_table(self, episode_steps: int, offset_steps: int | None = None) -> np.ndarray:
        off = self.offset_steps if offset_steps is None else int(offset_steps)
        return self.table[(off + np.arange(episode_steps)) % self.period]


def _tier_weights(trace: Trace, cfg: Any, tier_names: list[str]) -> np.ndarray:
    """(records, T) share of each record's tokens going to each tier."""
    n, T = len(trace.timestamp_s), len(tier_names)
    src = repr(trace.name)
    pos = {name: i for i, name in enumerate(tier_names)}

    def by_label(labels: np.ndarray, table: dict[str, str] | None, default: str | None, what: str) -> np.ndarray:
        w = np.zeros((n, T))
        uniq, inv = np.unique(labels.astype(str), return_inverse=True)
        for j, lab in enumerate(uniq):
            lab = str(lab)
            tier = table.get(lab, default) if table is not None else lab
            if tier is None or tier not in pos:
                row = int(np.flatnonzero(inv == j)[0]) + 1
                allowed = tier_names if table is None else "a tier in tenant_tiers or a default_tier"
                raise TraceError(f"trace {src}: row {row}: {what} {lab!r} maps to no tier (need {allowed})")
            w[inv == j, pos[tier]] = 1.0
        return w

    if cfg.shares:
        s = np.array([cfg.shares.get(t, 0.0) for t in tier_names])
        return np.broadcast_to(s / s.sum(), (n, T))
    if cfg.tenant_tiers:
        if trace.tenant is None:
            raise TraceError(f"trace {src}: tenant_tiers needs a 'tenant' column")
        return by_label(trace.tenant, dict(cfg.tenant_tiers), cfg.default_tier, "tenant")
    if cfg.tier_column or (cfg.tier_column is None and trace.tier is not None):
        if trace.tier is None:
            raise TraceError(f"trace {src}: tier_column is set but the trace has no 'tier' column")
        return by_label(trace.tier, None, None, "tier")
    if "api" not in pos:
        raise TraceError(f"trace {src}: no tier column and no mapping; the scenario has no 'api' tier "
                         f"(give shares or tenant_tiers)")
    w = np.zeros((n, T))
    w[:, pos["api"]] = 1.0
    return w


def replay_table(trace: Trace, params: Any, cfg: Any, offset_steps: int | None = None) -> np.ndarray:
    """(episode_steps, T) float32 trace demand tokens per step per tier at the starting users.

    ``params`` are compiled :class:`~envs.params.Params`, ``cfg`` a
    :class:`~envs.scenario.TraceConfig`. Tiers the trace does not cover are 0.
    """
    rep = build_replay(trace, params, cfg)
    return rep.episode_table(params.episode_steps, offset_steps).astype(F32)


def build_replay(trace: Trace, params: Any, cfg: Any) -> Replay:
    """Bin a trace into one period of per-step, per-tier demand (see :class:`Replay`)."""
    tpr = cfg.tokens_per_request if cfg.tokens_per_request is not None else params.chat_tokens_per_request
    tokens = trace.tokens(tpr)
    w = _tier_weights(trace, cfg, list(params.tier_names))
    period_s = None if cfg.period_h is None else cfg.period_h * 3600.0
    table = np.stack([bin_trace(trace, tokens * w[:, j], params.dt_s, cfg.time_scale, period_s)
                      for j in range(w.shape[1])], axis=1)
    covered = w.sum(axis=0) > 0
    table *= cfg.scale
    if cfg.volume == "scenario":
        mean = table.mean(axis=0)
        target = np.asarray(params.mean_demand_tokens_step, dtype=np.float64)
        ratio = np.divide(target, mean, out=np.zeros_like(mean), where=mean > 0)
        table *= ratio * cfg.scale
    offset = int(round(cfg.start_offset_h / params.dt_h)) % table.shape[0]
    return Replay(table.astype(F32), covered, offset, bool(cfg.randomize_offset), trace.name)


def load_replay(scenario: Any, params: Any) -> Replay | None:
    """The scenario's trace replay, or None when ``demand.trace`` is unset."""
    cfg = scenario.demand.trace
    if cfg is None:
        return None
    trace = load_trace(cfg.path, cfg.format, cfg.time_unit)
    return build_replay(trace, params, cfg)

