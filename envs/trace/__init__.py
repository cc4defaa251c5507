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

``csv``: plain CSV with a header row. Required columns ``timestamp`` (seconds or
an ISO 8601 datetime), ``input_tokens`` and ``output_tokens`` (``input_length``/
``output_length`` are accepted too); optional ``tier``, ``tenant`` (or ``user``/
``user_id``/``tenant_id``) and ``model``. Header names are matched ignoring case,
with spaces read as underscores. One row per request::

    timestamp,input_tokens,output_tokens,tier,tenant
    0.4,1020,130,pro,u17

The published layouts are read as they are (``docs/calibration.md``, "Public trace layouts"):

- Azure LLM inference traces, 2023 and 2024 (code, conversation):
  ``TIMESTAMP,ContextTokens,GeneratedTokens`` with datetimes such as
  ``2023-11-16 18:15:46.6805900`` (``ContextTokens`` are input, ``GeneratedTokens`` output tokens);
- BurstGPT: ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``
  (seconds from the trace start; ``Log Type``, ``Conversation log`` or ``API log``, is read as
  the tenant, so ``tenant_tiers: {"Conversation log": pro, "API log": api}`` maps them to tiers);
- Mooncake: JSON lines, below.

Timestamps are numbers (seconds, or ms with ``time_unit: ms``) or ISO 8601 datetimes,
the same kind on every row: ``YYYY-MM-DD``, then ``T`` or a space and ``hh:mm[:ss]``
with up to 9 fractional digits, then an optional zone (``Z``, ``+hh``, ``+hhmm``,
``+hh:mm``). Datetimes with a zone are converted to UTC, those without one are read
as UTC (their hour of day is kept); ``time_unit`` does not apply to them.

``jsonl``: JSON lines, one object per request with ``timestamp`` (number or datetime string),
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
    trace 'azure.csv': row 7 (line 8): timestamp = '2023-11-16 25:00:00' is not an ISO 8601 datetime, ...

Layout of this package: :mod:`~envs.trace.readers` (records, readers,
validation), :mod:`~envs.trace.replay` (binning, tier mapping, replay tables),
:mod:`~envs.trace.samples` (synthetic traces, the test sample). Everything is
re-exported here; ``python -m envs.trace`` regenerates the test sample.
"""

# The ``_name as _name`` imports keep private helpers importable from ``envs.trace``
# as they were before the split into submodules.
from .readers import _ALIASES as _ALIASES
from .readers import (
    SERVEGEN_DISTS,
    Trace,
    TraceError,
    detect_format,
    iso_seconds,
    load_trace,
    read_csv,
    read_jsonl,
    read_servegen,
)
from .readers import _check_rows as _check_rows
from .readers import _finish as _finish
from .readers import _num as _num
from .readers import _pick as _pick
from .readers import _read_servegen_file as _read_servegen_file
from .replay import F32, Replay, bin_trace, build_replay, load_replay, replay_table
from .replay import _tier_weights as _tier_weights
from .samples import SAMPLE_TRACE, synthetic_trace, trace_from_columns, write_csv, write_sample_trace

__all__ = [
    "F32",
    "SAMPLE_TRACE",
    "SERVEGEN_DISTS",
    "Replay",
    "Trace",
    "TraceError",
    "bin_trace",
    "build_replay",
    "detect_format",
    "iso_seconds",
    "load_replay",
    "load_trace",
    "read_csv",
    "read_jsonl",
    "read_servegen",
    "replay_table",
    "synthetic_trace",
    "trace_from_columns",
    "write_csv",
    "write_sample_trace",
]
