"""Traces as published: ISO 8601 timestamps, the Azure LLM inference (2023, 2024) and BurstGPT layouts.

The samples are written here, in the published column layouts (docs/calibration.md, "Public
trace layouts"), with made-up numbers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.params import compile_params
from envs.scenario import TraceConfig, load_scenario
from envs.trace import TraceError, load_trace, replay_table
from envs.trace.readers import iso_seconds

DAY = {"time": {"episode_days": 1}}
UTC = dt.timezone.utc
T0 = dt.datetime(2023, 11, 16, 18, 15, 46, 680590, tzinfo=UTC)


def _params():
    return compile_params(load_scenario("default", DAY))


@pytest.mark.parametrize("text, when", [
    ("2023-11-16 18:15:46.6805900", T0),                                  # Azure 2023: 7 fractional digits
    ("2023-11-16T18:15:46.680590000", T0),                                # T, 9 digits
    ("2023-11-16T18:15:46.68059Z", T0),
    ("2023-11-16 18:15:46.680590+00:00", T0),                             # Azure 2024 style
    ("2023-11-16T20:15:46.68059+02:00", T0),
    ("2023-11-16T12:45:46.68059-0530", T0),
    ("2023-11-17T03:15:46.68059+09", T0),
    ("2023-11-16 18:15", dt.datetime(2023, 11, 16, 18, 15, tzinfo=UTC)),
    ("2023-11-16", dt.datetime(2023, 11, 16, tzinfo=UTC)),
])
def test_iso_8601_datetimes(text: str, when: dt.datetime) -> None:
    assert iso_seconds(text) == pytest.approx(when.timestamp(), abs=1e-6)


@pytest.mark.parametrize("text", ["2023-11-16 25:00:00", "2023-02-30 10:00:00", "2023-11-16 18:60:00",
                                  "2023-11-16T18:15:46.1234567890", "16/11/2023 18:15", "12.5", "2023-11-16 18:15+2"])
def test_not_iso_8601(text: str) -> None:
    assert iso_seconds(text) is None


def _azure(path: Path, stamps: list[str], header: str = "TIMESTAMP,ContextTokens,GeneratedTokens") -> Path:
    rng = np.random.default_rng(1)
    lines = [header] + [f"{s},{rng.integers(50, 4000)},{rng.integers(1, 600)}" for s in stamps]
    path.write_text("\n".join(lines) + "\n")
    return path


def _stamps(start: dt.datetime, seconds: np.ndarray, fmt: str) -> list[str]:
    return [(start + dt.timedelta(seconds=float(s))).strftime(fmt) for s in seconds]


def test_azure_2023_layout_as_published(tmp_path: Path) -> None:
    secs = np.sort(np.random.default_rng(0).uniform(0, 5 * 3600, 400))  # 18:15 to 23:15: within the day
    naive = T0.replace(tzinfo=None)
    path = _azure(tmp_path / "AzureLLMInferenceTrace_code.csv", _stamps(naive, secs, "%Y-%m-%d %H:%M:%S.%f0"))
    assert len(path.read_text().splitlines()[1].split(",")[0]) == len("2023-11-16 18:15:46.6805900")
    tr = load_trace(path)
    assert tr.kind == "csv" and len(tr.timestamp_s) == 400
    np.testing.assert_allclose(tr.timestamp_s - T0.timestamp(), secs, atol=1e-5)
    assert tr.origin_s == dt.datetime(2023, 11, 16, tzinfo=UTC).timestamp()  # UTC midnight: hour of day kept
    # everything goes to the api tier by default, binned at the trace's hour of day (18:15 onwards)
    p = _params()
    table = replay_table(tr, p, TraceConfig(path=str(path)))
    api = p.tier_names.index("api")
    tokens = tr.input_tokens + tr.output_tokens
    assert abs(table[:, api].sum() / tokens.sum() - 1) < 1e-5
    assert table[: 18 * 4 + 1, api].sum() == 0 and table[18 * 4 + 1, api] > 0
    # shares, through the environment
    env = gym.make("Rationing-v0", overrides={**DAY, "demand": {"trace": {"path": str(path),
                                                                          "shares": {"pro": 1, "api": 1}}}})
    env.reset(seed=0)
    fresh = sum(env.step(np.zeros(6, np.float32))[4]["fresh_demand_tokens"] for _ in range(96))
    assert fresh[p.tier_names.index("pro")] == pytest.approx(tokens.sum() / 2, rel=0.01)


def test_azure_2024_layout_with_time_zone(tmp_path: Path) -> None:
    secs = np.sort(np.random.default_rng(2).uniform(0, 2 * 86400, 300))
    start = dt.datetime(2024, 5, 10)
    utc = _azure(tmp_path / "AzureLLMInferenceTrace_conv_1week.csv",
                 [s + "+00:00" for s in _stamps(start, secs, "%Y-%m-%d %H:%M:%S.%f")])
    # the same instants written in another zone, with a T
    cest = _azure(tmp_path / "cest.csv",
                  [s + "+02:00" for s in _stamps(start + dt.timedelta(hours=2), secs, "%Y-%m-%dT%H:%M:%S.%f")])
    a, b = load_trace(utc), load_trace(cest)
    np.testing.assert_allclose(a.timestamp_s, b.timestamp_s, atol=1e-6)
    np.testing.assert_allclose(a.timestamp_s - start.replace(tzinfo=UTC).timestamp(), secs, atol=1e-5)
    core = envs.RationingCore("default", 1, overrides=DAY, trace=utc)
    assert core.replay is not None and core.replay.covered.sum() == 1
    assert core.replay.period == int(np.ceil(secs[-1] / 900))  # two days from midnight, the last request's step


def test_iso_timestamps_ignore_time_unit(tmp_path: Path) -> None:
    """Datetimes are absolute: ``time_unit: ms`` (the JSON lines default) scales numbers only."""
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": "2024-01-01T00:00:01Z", "input_length": 10, "output_length": 2}\n'
                    '{"timestamp": "2024-01-01T00:00:03.5Z", "input_length": 10, "output_length": 2}\n')
    tr = load_trace(path)
    np.testing.assert_allclose(tr.timestamp_s - tr.origin_s, [1.0, 3.5])


BURSTGPT_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"


def test_burstgpt_layout_and_tier_mappings(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows, secs = [], np.sort(rng.integers(0, 86400, 500))
    for s in secs:
        req, resp = int(rng.integers(1, 3000)), int(rng.integers(0, 800))
        kind = "Conversation log" if rng.random() < 0.7 else "API log"
        rows.append(f"{s},{'ChatGPT' if rng.random() < 0.8 else 'GPT-4'},{req},{resp},{req + resp},{kind}")
    path = tmp_path / "BurstGPT_1.csv"
    path.write_text(BURSTGPT_HEADER + "\n" + "\n".join(rows) + "\n")
    tr = load_trace(path)
    np.testing.assert_array_equal(tr.timestamp_s, secs)
    assert set(tr.tenant) == {"Conversation log", "API log"}
    tokens = tr.input_tokens + tr.output_tokens
    p = _params()
    cfg = TraceConfig(path=str(path), tenant_tiers={"Conversation log": "pro", "API log": "api"})
    table = replay_table(tr, p, cfg)
    for label, tier in cfg.tenant_tiers.items():
        want = tokens[tr.tenant == label].sum()
        assert abs(table[:, p.tier_names.index(tier)].sum() / want - 1) < 1e-5
    shares = replay_table(tr, p, TraceConfig(path=str(path), shares={"team": 1, "api": 1}))
    assert abs(shares[:, p.tier_names.index("team")].sum() / (tokens.sum() / 2) - 1) < 1e-5
    env = gym.make("Rationing-v0", trace=path, overrides=DAY)  # no mapping: all to api
    env.reset(seed=0)
    env.step(np.zeros(6, np.float32))


@pytest.mark.parametrize("stamps, where, reason", [
    (["2023-11-16 18:15:46.6805900", "2023-11-16 18:15:47.1", "2023-11-16 25:00:00.0"], "row 3 (line 4)",
     "timestamp = '2023-11-16 25:00:00.0' is not an ISO 8601 datetime, as the first row's timestamp is"),
    (["2023-11-16 18:15:46.6805900", "17.5"], "row 2 (line 3)", "timestamp = '17.5' is not an ISO 8601"),
    (["17.5", "2023-11-16 18:15:46"], "row 2 (line 3)", "is not a (finite) number, as the first row's"),
    (["16/11/2023 18:15"], "row 1 (line 2)", "is neither a number nor an ISO 8601 datetime"),
    (["2023-11-16 18:15:46.5", "2023-11-16 18:15:46.25"], "row 2 (line 3)",
     "timestamp 2023-11-16T18:15:46.250000Z is before the previous row's 2023-11-16T18:15:46.500000Z"),
])
def test_bad_timestamps_name_file_row_and_field(tmp_path: Path, stamps: list[str], where: str, reason: str) -> None:
    path = _azure(tmp_path / "azure.csv", stamps)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"trace 'azure.csv': {where}: ") and reason in msg, msg
