"""Trace records and file readers: :class:`Trace`, :class:`TraceError`, CSV / JSON lines / ServeGen.

Reads and validates a trace file (or ServeGen directory) into a :class:`Trace`;
:func:`load_trace` picks the reader. Formats and validation rules are described
in :mod:`envs.trace`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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



#: Column (or JSON key) names of each field, lower case with spaces as underscores. The published
#: layouts: Azure LLM inference 2023/2024 ``TIMESTAMP,ContextTokens,GeneratedTokens``; BurstGPT
#: ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`` (its log type,
#: ``Conversation log`` or ``API log``, is read as the tenant); Mooncake ``input_length``/``output_length``.
_ALIASES = {
    "timestamp": ("timestamp", "timestamp_s", "time", "arrival_time"),
    "input_tokens": ("input_tokens", "input_length", "prompt_tokens", "contexttokens", "context_tokens",
                     "request_tokens"),
    "output_tokens": ("output_tokens", "output_length", "completion_tokens", "generatedtokens", "generated_tokens",
                      "response_tokens"),
    "tier": ("tier",),
    "tenant": ("tenant", "tenant_id", "user", "user_id", "client", "log_type"),
    "model": ("model",),
}

#: ISO 8601 date and time: ``T`` or space between them, seconds optional, up to 9 fractional digits,
#: optional zone (``Z``, ``+hh``, ``+hhmm``, ``+hh:mm``).
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d{1,9}))?)?)?"
                  r" ?(Z|[+-]\d\d(?::?\d\d)?)?", re.IGNORECASE)
_ISO_FORM = "YYYY-MM-DD[ or T]hh:mm[:ss[.fffffffff]][Z or +hh:mm]"
_MINUTES: dict[str, float] = {}  # "YYYY-MM-DD?hh:mm" -> seconds since the epoch (cache: traces repeat minutes)


def iso_seconds(text: str) -> float | None:
    """Seconds since 1970-01-01 UTC of an ISO 8601 datetime (no zone: read as UTC), None if ``text`` is not one."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac, zone = m.groups()
    key = text[:16] if hh else text[:10]
    base = _MINUTES.get(key)
    if base is None:
        try:
            days = dt.date(int(y), int(mo), int(d)).toordinal() - 719163  # date(1970, 1, 1).toordinal()
        except ValueError:
            return None
        h, mi = int(hh or 0), int(mm or 0)
        if h > 23 or mi > 59:
            return None
        base = _MINUTES[key] = days * 86400.0 + h * 3600.0 + mi * 60.0
    t = base
    if ss:
        sec = int(ss)
        if sec > 60:  # 60: a leap second
            return None
        t += sec + (int(frac) / 10.0 ** len(frac) if frac else 0.0)
    if zone and zone != "Z" and zone != "z":
        zh, zm = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
        if zh > 23 or zm > 59:
            return None
        t -= (1 if zone[0] == "+" else -1) * (zh * 3600 + zm * 60)
    return t


MAX_TRACE_VALUE = 1e15
"""Largest timestamp or token count a trace row may hold (seconds since 1970 are ~2e9; 1e15 tokens is absurd)."""


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
    if abs(x) > MAX_TRACE_VALUE:
        raise TraceError(f"trace {src}: {where}: {name} = {value!r} is larger than {MAX_TRACE_VALUE:g}")
    return x


def _timestamp(value: Any, where: str, src: str, iso: bool | None) -> tuple[float, bool]:
    """``(seconds, True)`` for an ISO 8601 datetime, ``(number, False)`` for a number.

    ``iso`` is the kind of the file's first timestamp (None while reading it): a file uses one kind."""
    text = value.strip() if isinstance(value, str) else None
    t = iso_seconds(text) if text and iso is not False else None
    if t is not None:
        return t, True
    if not iso:
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = None
        if x is not None and math.isfinite(x):
            return x, False
    if iso is None:
        what = "is neither a number nor an ISO 8601 datetime"
    elif iso:
        what = "is not an ISO 8601 datetime, as the first row's timestamp is"
    else:
        what = "is not a (finite) number, as the first row's timestamp is"
    raise TraceError(f"trace {src}: {where}: timestamp = {value!r} {what} ({_ISO_FORM} or seconds)")


def _when(t: float, iso: bool) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z") if iso else f"{t:g}"


class _Stream:
    """Per-row checks while reading, so a bad row fails at once (not after reading a huge file)."""

    def __init__(self, src: str) -> None:
        self.src, self.last = src, -math.inf

    def row(self, where: str, ts: float, ins: float, outs: float, iso: bool = False) -> None:
        if not 0 <= ts <= MAX_TRACE_VALUE:
            what = "negative" if ts < 0 else f"more than {MAX_TRACE_VALUE:g} s"
            raise TraceError(f"trace {self.src}: {where}: timestamp {ts:g} is {what}")
        if ts < self.last:
            raise TraceError(f"trace {self.src}: {where}: timestamp {_when(ts, iso)} is before the previous "
                             f"row's {_when(self.last, iso)} (must be sorted)")
        for name, v in (("input_tokens", ins), ("output_tokens", outs)):
            if v < 0:
                raise TraceError(f"trace {self.src}: {where}: {name} = {v:g} is negative")
        self.last = ts


def _check_rows(src: str, ts: np.ndarray, ins: np.ndarray, outs: np.ndarray, line0: int, iso: bool = False) -> None:
    """Vectorised checks; ``line0`` is the file line of data row 1; ``iso``: report timestamps as datetimes."""
    if len(ts) == 0:
        raise TraceError(f"trace {src}: is empty (no requests)")
    neg = np.flatnonzero(ts < 0)
    if len(neg):
        i = int(neg[0])
        raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): timestamp {_when(ts[i], iso)} is negative")
    back = np.flatnonzero(np.diff(ts) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): timestamp {_when(ts[i], iso)} is before "
                         f"the previous row's {_when(ts[i - 1], iso)} (must be sorted)")
    for name, arr in (("input_tokens", ins), ("output_tokens", outs)):
        bad = np.flatnonzero(arr < 0)
        if len(bad):
            i = int(bad[0])
            raise TraceError(f"trace {src}: row {i + 1} (line {i + line0}): {name} = {arr[i]:g} is negative")


def _finish(src: str, name: str, kind: str, rows: dict[str, list], scale: float, line0: int,
            iso: bool | None = False) -> Trace:
    """``scale`` converts numeric timestamps to seconds; ISO 8601 datetimes (``iso``) are seconds already."""
    ts = np.asarray(rows["timestamp"], dtype=np.float64) * (1.0 if iso else scale)
    ins = np.asarray(rows["input_tokens"], dtype=np.float64)
    outs = np.asarray(rows["output_tokens"], dtype=np.float64)
    _check_rows(src, ts, ins, outs, line0, bool(iso))
    tier = np.asarray(rows["tier"], dtype=object) if rows.get("tier") else None
    tenant = np.asarray(rows["tenant"], dtype=object) if rows.get("tenant") else None
    return Trace(name, kind, ts, np.ones(len(ts)), ins, outs, tier, tenant)


def read_csv(path: Path, time_unit: str = "s") -> Trace:
    """Plain CSV with a header (see :mod:`envs.trace`)."""
    src = repr(path.name)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise TraceError(f"trace {src}: is empty (no header row)")
        cols = [h.strip().lower().replace(" ", "_") for h in header]
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
        iso: bool | None = None
        t_col = idx.pop("timestamp")
        stamps = rows["timestamp"]
        stream = _Stream(src)
        for r, rec in enumerate(reader, start=1):
            if not rec or not any(x.strip() for x in rec):
                continue
            where = f"row {r} (line {r + 1})"
            if len(rec) < width:
                raise TraceError(f"trace {src}: {where}: has {len(rec)} fields, header has {width}")
            t, iso = _timestamp(rec[t_col], where, src, iso)
            stamps.append(t)
            for k, i in idx.items():
                if k in ("tier", "tenant", "model"):
                    rows[k].append(rec[i].strip())
                else:
                    rows[k].append(_num(rec[i].strip(), k, where, src))
            stream.row(where, stamps[-1], rows["input_tokens"][-1], rows["output_tokens"][-1], bool(iso))
    return _finish(src, path.name, "csv", rows, 1e-3 if time_unit == "ms" else 1.0, 2, iso)


def read_jsonl(path: Path, time_unit: str = "ms") -> Trace:
    """JSON lines, one request per line (Mooncake layout; see :mod:`envs.trace`)."""
    src = repr(path.name)
    rows: dict[str, list] = {k: [] for k in _ALIASES}
    iso: bool | None = None
    stream = _Stream(src)
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
                elif k == "timestamp":
                    t, iso = _timestamp(obj[key], where, src, iso)
                    rows[k].append(t)
                else:
                    rows[k].append(_num(obj[key], k, where, src))
            stream.row(where, rows["timestamp"][-1], rows["input_tokens"][-1], rows["output_tokens"][-1], bool(iso))
    for k in ("tier", "tenant", "model"):
        if rows[k] and len(rows[k]) != len(rows["timestamp"]):
            raise TraceError(f"trace {src}: key {k!r} must be on every row or none")
    return _finish(src, path.name, "jsonl", rows, 1e-3 if time_unit == "ms" else 1.0, 1, iso)


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
    if not (path.is_file() or path.is_dir()):
        raise TraceError(f"trace {str(path)!r}: not a regular file or a directory")
    try:
        return _load(path, format, time_unit)
    except UnicodeDecodeError as exc:
        raise TraceError(f"trace {str(path)!r}: not UTF-8 text ({exc.reason} at byte {exc.start} of a block)") \
            from None
    except OSError as exc:
        raise TraceError(f"trace {str(path)!r}: cannot read ({exc.strerror})") from None


def _load(path: Path, format: str, time_unit: str) -> Trace:
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "csv":
        return read_csv(path, "s" if time_unit == "auto" else time_unit)
    if fmt == "jsonl":
        return read_jsonl(path, "ms" if time_unit == "auto" else time_unit)
    if fmt == "servegen":
        return read_servegen(path)
    raise TraceError(f"trace {str(path)!r}: format = {format!r}: must be auto, csv, jsonl or servegen")

