"""Synthetic request traces for tests and the fit's self-check, and the test sample file.

:func:`synthetic_trace` draws requests from the synthetic demand model;
:func:`write_sample_trace` regenerates ``tests/data/sample_trace.csv``
(``python -m envs.trace``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from .readers import _ALIASES, Trace, _finish


def synthetic_trace(
    scenario: Any = "default",
    tiers: list[str] | None = None,
    days: float = 1.0,
    seed: int = 0,
    requests_per_step: float | dict[str, float] = 20.0,
    token_mu: float = 7.0,
    token_sigma: float = 0.8,
    output_share: float = 0.12,
    n_tenants: int = 0,
    tenant_alpha: float = 1.5,
) -> dict[str, np.ndarray]:
    """Requests drawn from the synthetic model's profiles: for tests and for the fit's self-check.

    Per step and tier, a Poisson number of requests with mean
    ``requests_per_step x profile(week step)`` (the scenario's
    ``demand_profile_table``), times uniform noise of the scenario's ``noise_cv``;
    arrival times uniform within the step; tokens/request lognormal(``token_mu``,
    ``token_sigma``) split into input and output by ``output_share``; tenants (if
    ``n_tenants``) with Lomax(``tenant_alpha``) weights. Returns columns
    ``timestamp, input_tokens, output_tokens, tier[, tenant]``, sorted by time.
    """
    from ..params import demand_profile_table
    from ..scenario import load_scenario

    sc = load_scenario(scenario)
    rng = np.random.default_rng(seed)
    names = sc.tier_names
    tiers = list(names) if tiers is None else list(tiers)
    prof = demand_profile_table(sc).astype(np.float64)
    dt_s = sc.time.step_minutes * 60.0
    steps = int(round(days * sc.steps_per_day))
    week = (sc.time.start_weekday * sc.steps_per_day + np.arange(steps)) % prof.shape[0]
    cv = sc.demand.noise_cv
    ts, tier_col = [], []
    for name in tiers:
        rate = requests_per_step[name] if isinstance(requests_per_step, dict) else requests_per_step
        lam = rate * prof[week, names.index(name)] * (1 - cv * np.sqrt(3) + 2 * cv * np.sqrt(3) * rng.random(steps))
        counts = rng.poisson(lam)
        step_of = np.repeat(np.arange(steps), counts)
        ts.append((step_of + rng.random(len(step_of))) * dt_s)
        tier_col.append(np.full(len(step_of), name, dtype=object))
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    n = len(t)
    total = np.maximum(2.0, np.round(np.exp(token_mu + token_sigma * rng.standard_normal(n))))
    out_tok = np.maximum(1.0, np.round(total * output_share))
    cols = {"timestamp": np.round(t[order], 3), "input_tokens": total - out_tok, "output_tokens": out_tok,
            "tier": np.concatenate(tier_col)[order]}
    if n_tenants:
        wts = (1.0 - rng.random(n_tenants)) ** (-1.0 / tenant_alpha) - 1.0
        cols["tenant"] = np.array([f"t{k}" for k in rng.choice(n_tenants, n, p=wts / wts.sum())], dtype=object)
    return cols


def write_csv(cols: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write trace columns (as from :func:`synthetic_trace`) as a plain CSV."""
    path = Path(path)
    keys = list(cols)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for row in zip(*(cols[k] for k in keys)):
            w.writerow([f"{v:g}" if isinstance(v, (float, np.floating)) else v for v in row])
    return path


def trace_from_columns(cols: dict[str, np.ndarray], name: str = "synthetic") -> Trace:
    """A :class:`Trace` from in-memory columns (validated like a file)."""
    rows = {k: list(v) for k, v in cols.items() if k in _ALIASES}
    return _finish(repr(name), name, "csv", rows, 1.0, 2)


SAMPLE_TRACE = Path(__file__).resolve().parent.parent.parent / "tests" / "data" / "sample_trace.csv"


def write_sample_trace(path: str | Path = SAMPLE_TRACE) -> Path:
    """Write the tiny test trace ``tests/data/sample_trace.csv`` (deterministic).

    One day of the default scenario's pro and api profiles (synthetic model, seed 6),
    about 1,000 requests with ``tier`` and ``tenant`` columns.
    """
    cols = synthetic_trace("default", tiers=["pro", "api"], days=1.0, seed=6,
                           requests_per_step={"pro": 5.0, "api": 6.0}, n_tenants=12)
    return write_csv(cols, path)

