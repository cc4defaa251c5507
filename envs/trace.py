"""Demand from request traces: readers, validation and replay tables.

The environment can take its fresh demand from a request trace instead of the
synthetic model of :mod:`envs.demand`. Name the trace in a scenario
(``demand.trace``, see :class:`envs.scenario.TraceConfig`) or pass
``trace=PATH`` to ``gymnasium.make("Rationing-v0", ...)``,
:class:`~envs.RationingEnv`, :class:`~envs.RationingVectorEnv` or
:class:`~envs.RationingCore` (it overrides the scenario's path and keeps the
rest of its ``demand.trace`` mapping).

Accepted formats (``format: auto`` picks one from the file name and first line)
---------------------------------------------------------------------------------

``csv``: plain CSV with a header row. Required columns ``timestamp`` (seconds),
``input_tokens`` and ``output_tokens`` (``input_length``/``output_length`` are
accepted too); optional ``tier``, ``tenant`` (or ``user``/``user_id``/
``tenant_id``) and ``model``. One row per request::

    timestamp,input_tokens,output_tokens,tier,tenant
    0.4,1020,130,pro,u17

``jsonl``: JSON lines, one object per request with ``timestamp``,
``input_length``/``input_tokens`` and ``output_length``/``output_tokens``,
optional ``tier``/``tenant``/``model``; other keys (``hash_ids``) are ignored.
This is the Mooncake layout: its ``timestamp`` is in milliseconds, so JSON
lines default to ``time_unit: ms`` and CSV to ``s`` (set ``time_unit`` to
override).

``servegen``: ServeGen per-client windowed rates, no header:
``window_start_s, rate_rps, cv, arrival_dist, param1, param2`` (one row per
window, usually 600 s; the last three describe the inter-arrival distribution
within the window and are only used by :mod:`envs.calibrate`). A directory of
``chunk-<client>-trace.csv`` files is read as one trace with one tenant per
file. These traces carry no token counts: tokens/request come from
``tokens_per_request`` or, when unset, the scenario's
``demand.chat_tokens_per_request``.

Time: timestamps are seconds (or ms) from the trace's origin, which is the UTC
midnight on or before the first timestamp (0 for traces that start at 0), so
epoch-stamped traces keep their hour of day. Trace time ``x`` plays at
episode time ``x * time_scale``; the trace's first day starts at the episode's
first step, skipped ahead by ``start_offset_h`` (episode hours). A trace shorter
than the episode is tiled (it repeats with period = its length, rounded up to
whole steps, or ``period_h`` episode hours when given); with ``randomize_offset`` every episode starts at a random
whole step of the trace.

Mapping requests to tiers (at most one of these):

- ``tier_column: true``: the trace's ``tier`` column names each request's tier;
- ``tenant_tiers: {tenant: tier}`` (with ``default_tier`` for unlisted tenants);
- ``shares: {tier: share}``: every request is split across tiers by shares;
- none: the ``tier`` column if the trace has one, else everything to ``api``.

Tiers that get no trace demand keep the synthetic model. A trace tier's demand
per step is its binned tokens (input + output) times ``scale``, times
``users / users_at_start`` of that env and tier (so churn and acquisition still
change demand) and the per-episode ``demand_scale`` randomisation multiplier.
With ``volume: scenario`` each trace tier is rescaled so its mean per step
equals the scenario's week-average demand for that tier (the trace gives the
shape, the scenario the volume). Retries, quotas, users and the rest of the
model are unchanged; scheduled ``demand.events`` do not apply to trace tiers.

Bad traces raise :class:`TraceError`, a :class:`ValueError` with a one-line
message naming the file, the row (1-based, data rows) and the reason, e.g.::

    trace 'bad.csv': row 3 (line 4): timestamp 1.0 is before the previous row's 2.0 (must be sorted)
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

F32 = np.float32
SERVEGEN_DISTS = ("", "Gamma", "Weibull", "Exponential", "Deterministic")


class TraceError(ValueError):
    """A trace that cannot be used; the message is one line."""


@dataclass
class Trace:
    """Records of a trace: requests (weight 1) or windows (weight = requests in the window).

    Arrays have one entry per record. ``duration_s`` is the time a record's
    requests spread over (0 for single requests, the window length for windowed
    rates). Token arrays are NaN when the trace has no token counts.
    """

    name: str
    kind: str
    timestamp_s: np.ndarray
    requests: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    tier: np.ndarray | None = None
    tenant: np.ndarray | None = None
    duration_s: float = 0.0
    cv: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_tokens(self) -> bool:
        return not bool(np.isnan(self.input_tokens).any()) if len(self.input_tokens) else False

    @property
    def origin_s(self) -> float:
        return math.floor(float(self.timestamp_s[0]) / 86400.0) * 86400.0

    @property
    def span_s(self) -> float:
        """Trace length from its origin to the end of its last record."""
        return float(self.timestamp_s[-1]) - self.origin_s + self.duration_s

    def tokens(self, tokens_per_request: float | None = None) -> np.ndarray:
        """Tokens of each record (input + output, or requests x tokens_per_request)."""
        if self.has_tokens:
            return (self.input_tokens + self.output_tokens) * self.requests
        if tokens_per_request is None:
            raise TraceError(f"trace {self.name!r}: has no token counts: give tokens_per_request")
        return self.requests * float(tokens_per_request)


# --------------------------------------------------------------------------- readers
_ALIASES = {
    "timestamp": ("timestamp", "timestamp_s", "time", "arrival_time"),
    "input_tokens": ("input_tokens", "input_length", "prompt_tokens"),
    "output_tokens": ("output_tokens", "output_length", "completion_tokens"),
    "tier": ("tier",),
    "tenant": ("tenant", "tenant_id", "user", "user_id", "client"),
    "model": ("model",),
}


def _pick(keys: list[str] | set[str], name: str) -> str | None:
    for alias in _ALIASES[name]:
        if alias in keys:
            return alias
    return None


def _num(value: Any, name: str, where: str, src: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TraceError(f"trace {src}: {where}: {name} = {value!r} is not a number") from None
    if not math.isfinite(x):
        raise TraceError(f"trace {src}: {where}: {name} = {value!r} is not a finite number")
    return x


def _check_rows(src: str, ts: np.ndarray, ins: np.ndarray, outs: np.ndarray, line0: int) -> None:
    """Vectorised checks; ``line0`` is the file line of data row 1."""
    if len(ts) == 0:
        raise TraceError(f"trace {src}: is empty (no requests)")
    neg = np.flatnonzero(ts < 0)
    if len(neg):
        i = int(neg[0])
        raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): timestamp {ts[i]:g} is negative")
    back = np.flatnonzero(np.diff(ts) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): timestamp {ts[i]:g} is before the "
                         f"previous row's {ts[i - 1]:g} (must be sorted)")
    for name, arr in (("input_tokens", ins), ("output_tokens", outs)):
        bad = np.flatnonzero(arr < 0)
        if len(bad):
            i = int(bad[0])
            raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): {name} = {arr[i]:g} is negative")


def _finish(src: str, name: str, kind: str, rows: dict[str, list], scale: float, line0: int) -> Trace:
    ts = np.asarray(rows["timestamp"], dtype=np.float64) * scale
    ins = np.asarray(rows["input_tokens"], dtype=np.float64)
    outs = np.asarray(rows["output_tokens"], dtype=np.float64)
    _check_rows(src, ts, ins, outs, line0)
    tier = np.asarray(rows["tier"], dtype=object) if rows.get("tier") else None
    tenant = np.asarray(rows["tenant"], dtype=object) if rows.get("tenant") else None
    return Trace(name, kind, ts, np.ones(len(ts)), ins, outs, tier, tenant)


def read_csv(path: Path, time_unit: str = "s") -> Trace:
    """Plain CSV with a header (see the module docstring)."""
    src = repr(path.name)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise TraceError(f"trace {src}: is empty (no header row)")
        cols = [h.strip().lower() for h in header]
        idx: dict[str, int] = {}
        for name in _ALIASES:
            col = _pick(cols, name)
            if col is not None:
                idx[name] = cols.index(col)
            elif name in ("timestamp", "input_tokens", "output_tokens"):
                raise TraceError(f"trace {src}: row 0 (line 1, header): missing column {name!r} "
                                 f"(header has {cols}; need timestamp,input_tokens,output_tokens)")
        rows: dict[str, list] = {k: [] for k in idx}
        width = len(cols)
        for r, rec in enumerate(reader, start=1):
            if not rec or not any(x.strip() for x in rec):
                continue
            where = f"row {r} (line {r + 1})"
            if len(rec) < width:
                raise TraceError(f"trace {src}: {where}: has {len(rec)} fields, header has {width}")
            for k, i in idx.items():
                if k in ("tier", "tenant", "model"):
                    rows[k].append(rec[i].strip())
                else:
                    rows[k].append(_num(rec[i].strip(), k, where, src))
    return _finish(src, path.name, "csv", rows, 1e-3 if time_unit == "ms" else 1.0, 2)


def read_jsonl(path: Path, time_unit: str = "ms") -> Trace:
    """JSON lines, one request per line (Mooncake layout; see the module docstring)."""
    src = repr(path.name)
    rows: dict[str, list] = {k: [] for k in _ALIASES}
    with open(path) as fh:
        r = 0
        for line in fh:
            if not line.strip():
                continue
            r += 1
            where = f"row {r} (line {r})"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise TraceError(f"trace {src}: {where}: is not valid JSON") from None
            if not isinstance(obj, dict):
                raise TraceError(f"trace {src}: {where}: must be a JSON object")
            for k in _ALIASES:
                key = _pick(set(obj), k)
                if key is None:
                    if k in ("timestamp", "input_tokens", "output_tokens"):
                        raise TraceError(f"trace {src}: {where}: missing key {k!r} (have {sorted(obj)})")
                    continue
                if k in ("tier", "tenant", "model"):
                    rows[k].append(str(obj[key]))
                else:
                    rows[k].append(_num(obj[key], k, where, src))
    for k in ("tier", "tenant", "model"):
        if rows[k] and len(rows[k]) != len(rows["timestamp"]):
            raise TraceError(f"trace {src}: key {k!r} must be on every row or none")
    return _finish(src, path.name, "jsonl", rows, 1e-3 if time_unit == "ms" else 1.0, 1)


def _read_servegen_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = repr(path.name)
    ts, rate, cv = [], [], []
    with open(path, newline="") as fh:
        for r, rec in enumerate(csv.reader(fh), start=1):
            if not rec:
                continue
            where = f"row {r} (line {r})"
            if len(rec) < 3:
                raise TraceError(f"trace {src}: {where}: needs window_start_s, rate_rps, cv, arrival_dist, "
                                 f"param1, param2")
            ts.append(_num(rec[0], "window_start_s", where, src))
            rate.append(_num(rec[1], "rate_rps", where, src))
            cv.append(_num(rec[2], "cv", where, src) if rec[2].strip() else 0.0)
    t, q = np.asarray(ts), np.asarray(rate)
    _check_rows(src, t, q, q, 1)
    return t, q, np.asarray(cv)


def read_servegen(path: Path) -> Trace:
    """ServeGen windowed rates: one client file or a directory of ``chunk-*-trace.csv``."""
    files = sorted(path.glob("*-trace.csv")) if path.is_dir() else [path]
    if not files:
        raise TraceError(f"trace {str(path)!r}: directory has no '*-trace.csv' files")
    ts, req, tenant, cvs = [], [], [], []
    window = None
    for f in files:
        t, rate, cv = _read_servegen_file(f)
        w = float(np.median(np.diff(t))) if len(t) > 1 else 600.0
        window = w if window is None else window
        if abs(w - window) > 1e-6:
            raise TraceError(f"trace {f.name!r}: window {w:g} s differs from {window:g} s of the other files")
        ts.append(t)
        req.append(rate * w)
        cvs.append(cv)
        tenant.append(np.full(len(t), f.name.removesuffix("-trace.csv").removeprefix("chunk-"), dtype=object))
    t = np.concatenate(ts)
    order = np.argsort(t, kind="stable")
    n = len(t)
    nan = np.full(n, np.nan)
    return Trace(path.name, "servegen", t[order], np.concatenate(req)[order], nan, nan.copy(), None,
                 np.concatenate(tenant)[order], float(window or 600.0), np.concatenate(cvs)[order],
                 {"files": len(files)})


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "servegen"
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    try:
        with open(path) as fh:
            first = fh.readline()
    except OSError as exc:
        raise TraceError(f"trace {str(path)!r}: cannot read ({exc.strerror})") from None
    if first.lstrip().startswith("{"):
        return "jsonl"
    parts = first.strip().split(",")
    if len(parts) >= 4 and parts[3].strip() in SERVEGEN_DISTS:
        try:
            float(parts[0])
            float(parts[1])
            return "servegen"
        except ValueError:
            pass
    return "csv"


def load_trace(path: str | Path, format: str = "auto", time_unit: str = "auto") -> Trace:
    """Read and validate a trace file (or ServeGen directory); raises :class:`TraceError`."""
    path = Path(path)
    if not path.exists():
        raise TraceError(f"trace {str(path)!r}: no such file or directory")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "csv":
        return read_csv(path, "s" if time_unit == "auto" else time_unit)
    if fmt == "jsonl":
        return read_jsonl(path, "ms" if time_unit == "auto" else time_unit)
    if fmt == "servegen":
        return read_servegen(path)
    raise TraceError(f"trace {str(path)!r}: format = {format!r}: must be auto, csv, jsonl or servegen")


# ---------------------------------------------------------------------------- binning
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


# ----------------------------------------------------------------------------- replay
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


# -------------------------------------------------------------------- sample traces
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
    from .params import demand_profile_table
    from .scenario import load_scenario

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


SAMPLE_TRACE = Path(__file__).resolve().parent.parent / "tests" / "data" / "sample_trace.csv"


def write_sample_trace(path: str | Path = SAMPLE_TRACE) -> Path:
    """Write the tiny test trace ``tests/data/sample_trace.csv`` (deterministic).

    One day of the default scenario's pro and api profiles (synthetic model, seed 6),
    about 1,000 requests with ``tier`` and ``tenant`` columns.
    """
    cols = synthetic_trace("default", tiers=["pro", "api"], days=1.0, seed=6,
                           requests_per_step={"pro": 5.0, "api": 6.0}, n_tenants=12)
    return write_csv(cols, path)


if __name__ == "__main__":  # python -m envs.trace: regenerate the test sample (see write_sample_trace)
    print(write_sample_trace())
