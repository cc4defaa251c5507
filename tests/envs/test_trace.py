"""Trace replay: readers, validation, binning, tiling, time scaling, env wiring."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.params import compile_params
from envs.scenario import TraceConfig, load_scenario
from envs.trace import (
    SAMPLE_TRACE,
    TraceError,
    build_replay,
    load_trace,
    replay_table,
    synthetic_trace,
    trace_from_columns,
    write_csv,
)

DAY = {"time": {"episode_days": 1}}


def _params(days: float = 1.0):
    return compile_params(load_scenario("default", {"time": {"episode_days": days}}))


def test_sample_trace_is_the_generated_one(tmp_path: Path) -> None:
    from envs.trace import write_sample_trace

    fresh = write_sample_trace(tmp_path / "s.csv")
    assert fresh.read_text() == SAMPLE_TRACE.read_text()
    assert SAMPLE_TRACE.stat().st_size < 100_000


def test_replay_reproduces_total_tokens_per_tier() -> None:
    tr = load_trace(SAMPLE_TRACE)
    p = _params()
    table = replay_table(tr, p, TraceConfig(path=str(SAMPLE_TRACE)))
    tokens = tr.input_tokens + tr.output_tokens
    for name in ("pro", "api"):
        want = tokens[tr.tier == name].sum()
        got = table[:, p.tier_names.index(name)].sum()
        assert abs(got / want - 1) < 1e-4
    # through the environment (users drift a little over a day): within 1 %
    core = envs.RationingCore("default", 2, overrides=DAY, trace=SAMPLE_TRACE)
    core.reset(np.arange(2))
    total = np.zeros((2, core.n_tiers))
    for _ in range(p.episode_steps):
        total += core.step(np.zeros((2, core.n_tiers), np.float32))[4]["fresh_demand_tokens"]
    for name in ("pro", "api"):
        j = core.tier_names.index(name)
        want = tokens[tr.tier == name].sum()
        assert np.all(np.abs(total[:, j] / want - 1) < 0.01)
    # tiers the trace does not map keep the synthetic model
    assert total[:, core.tier_names.index("free")].min() > 1e9


def test_tenant_and_share_mappings() -> None:
    tr = load_trace(SAMPLE_TRACE)
    p = _params()
    tokens = (tr.input_tokens + tr.output_tokens).sum()
    shares = replay_table(tr, p, TraceConfig(path="x", shares={"team": 1, "api": 3}))
    assert abs(shares[:, p.tier_names.index("api")].sum() / (0.75 * tokens) - 1) < 1e-4
    cfg = TraceConfig(path="x", tenant_tiers={"t0": "enterprise"}, default_tier="api")
    ten = replay_table(tr, p, cfg)
    want = (tr.input_tokens + tr.output_tokens)[tr.tenant == "t0"].sum()
    assert abs(ten[:, p.tier_names.index("enterprise")].sum() / want - 1) < 1e-4
    with pytest.raises(TraceError, match="tenant 't1' maps to no tier"):
        build_replay(tr, p, TraceConfig(path="x", tenant_tiers={"t0": "enterprise"}))


def _hourly(col: np.ndarray, sph: int = 4) -> np.ndarray:
    return col.reshape(-1, sph).sum(axis=1)


def test_tiling_and_time_scaling_keep_the_hourly_profile() -> None:
    cols = synthetic_trace("default", tiers=["api"], days=1, seed=3, requests_per_step=40.0)
    tr = trace_from_columns(cols)
    one = replay_table(tr, _params(1), TraceConfig(path="x"))[:, -1]
    three = replay_table(tr, _params(3), TraceConfig(path="x"))[:, -1]
    base = _hourly(one)
    for d in range(3):
        np.testing.assert_allclose(_hourly(three[d * 96:(d + 1) * 96]), base, rtol=1e-5)
    # the same day recorded at double speed (12 h), played with time_scale 2
    fast = dict(cols, timestamp=cols["timestamp"] / 2)
    scaled = replay_table(trace_from_columns(fast), _params(1), TraceConfig(path="x", time_scale=2))[:, -1]
    np.testing.assert_allclose(_hourly(scaled), base, rtol=1e-3, atol=1e-3 * base.max())
    # a start offset rotates the day
    off = replay_table(tr, _params(1), TraceConfig(path="x", start_offset_h=6))[:, -1]
    np.testing.assert_allclose(_hourly(off), np.roll(base, -6), rtol=1e-5)


def test_windowed_rates_spread_over_steps(tmp_path: Path) -> None:
    rows = [f"{600 * k},{1.0 + (k % 6)},1.5,Gamma,0.4,2.5" for k in range(144)]
    rows[5] = "3000,0,0,,0,0"
    path = tmp_path / "chunk-7-trace.csv"
    path.write_text("\n".join(rows) + "\n")
    tr = load_trace(path)
    assert tr.kind == "servegen" and tr.duration_s == 600
    table = replay_table(tr, _params(), TraceConfig(path="x", tokens_per_request=100))
    want = sum(float(r.split(",")[1]) * 600 * 100 for r in rows)
    assert abs(table[:, -1].sum() / want - 1) < 1e-6
    assert table.shape == (96, 6) and (table[:, :5] == 0).all()


def test_mooncake_layout_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1]}\n'
                    '{"timestamp": 3000, "input_length": 100, "output_length": 10, "hash_ids": [2]}\n')
    tr = load_trace(path)
    np.testing.assert_allclose(tr.timestamp_s, [0.0, 3.0])
    assert tr.input_tokens.sum() == 6858


@pytest.mark.parametrize("text, where, reason", [
    ("timestamp,input_tokens\n0,5\n", "row 0 (line 1, header)", "missing column 'output_tokens'"),
    ("timestamp,input_tokens,output_tokens\n0,5,1\n2,5,1\n1,5,1\n", "row 3 (line 4)", "must be sorted"),
    ("timestamp,input_tokens,output_tokens\n0,5,1\n-1,5,1\n", "row 2 (line 3)", "is negative"),
    ("timestamp,input_tokens,output_tokens\n0,5,1\n1,five,1\n", "row 2 (line 3)",
     "input_tokens = 'five' is not a number"),
    ("", "", "is empty"),
    ("timestamp,input_tokens,output_tokens\n", "", "is empty"),
    ("timestamp,input_tokens,output_tokens\n0,5,-1\n", "row 1 (line 2)", "output_tokens = -1 is negative"),
])
def test_bad_traces_are_refused_with_row_and_reason(tmp_path: Path, text: str, where: str, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and "'bad.csv'" in msg and where in msg and reason in msg


def test_bad_jsonl_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 1, "output_length": 1}\n{"timestamp": 1, "input_length": 1}\n')
    with pytest.raises(TraceError, match=r"row 2 \(line 2\): missing key 'output_tokens'"):
        load_trace(path)
    with pytest.raises(envs.ScenarioError, match="demand.trace.shares: 'gold' must be one of"):
        envs.RationingCore("default", overrides={"demand": {"trace": {"path": "x.csv", "shares": {"gold": 1}}}})
    with pytest.raises(TraceError, match="no such file"):
        envs.RationingCore("default", trace=path.with_name("missing.csv"))


def test_scenario_names_a_trace_relative_to_its_file(tmp_path: Path) -> None:
    write_csv(synthetic_trace("default", tiers=["api"], days=0.5, seed=1, requests_per_step=5.0), tmp_path / "a.csv")
    (tmp_path / "sc.yaml").write_text(
        "base: default\nname: traced\ntime: {episode_days: 1}\n"
        "demand:\n  trace: {path: a.csv, randomize_offset: true}\n")
    core = envs.RationingCore(tmp_path / "sc.yaml", 4)
    assert core.replay is not None and core.replay.period == 48
    core.reset(np.arange(4))
    assert len(set(core.trace_offset.tolist())) > 1  # random start per episode
    again = envs.RationingCore(tmp_path / "sc.yaml", 4)
    again.reset(np.arange(4))
    np.testing.assert_array_equal(core.trace_offset, again.trace_offset)
    # trace=PATH overrides the scenario's path, keeps the rest of its mapping
    over = envs.RationingCore(tmp_path / "sc.yaml", 1, trace=SAMPLE_TRACE)
    assert over.replay.source == "sample_trace.csv" and over.replay.randomize_offset


def test_gymnasium_make_with_trace_passes_check_env() -> None:
    env = gym.make("Rationing-v0", trace=str(SAMPLE_TRACE), overrides=DAY)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    vec = gym.make_vec("Rationing-v0", num_envs=2, vectorization_mode="vector_entry_point", trace=str(SAMPLE_TRACE))
    vec.reset(seed=0)
    out = vec.step(np.zeros((2, 6), np.float32))
    assert out[4]["fresh_demand_tokens"].shape == (2, 6)


# ------------------------------------------------------------------------ calibration
def test_fit_recovers_known_parameters_from_a_synthetic_trace() -> None:
    from envs.calibrate import fit_trace
    from envs.params import demand_profile_table

    sc = load_scenario("default", {"demand": {"timezones": [{"offset_h": 0, "share": 1}], "noise_cv": 0.1}})
    cols = synthetic_trace(sc, tiers=["pro"], days=14, seed=11, requests_per_step=60.0, token_mu=7.0,
                           token_sigma=0.8, n_tenants=3000, tenant_alpha=3.0)
    fit = fit_trace(trace_from_columns(cols))
    model = demand_profile_table(sc)[: 5 * 96, 1].reshape(5, 24, 4).sum(axis=2).mean(axis=0)
    assert np.abs(np.asarray(fit["hourly"]) - model / model.max()).max() < 0.05
    assert fit["start_weekday"] == 0
    assert abs(fit["weekend_factor"] - 0.25) < 0.02
    assert abs(fit["peak_trough"] / (model.max() / model.min()) - 1) < 0.15
    assert abs(fit["noise_cv"] - 0.1) < 0.04
    assert abs(fit["lognormal_mu"] - 7.0) < 0.03 and abs(fit["lognormal_sigma"] - 0.8) < 0.03
    assert abs(fit["usage_tail_alpha"] - 3.0) < 0.6  # Lomax tail of tenant weights, via Gini


def test_calibrate_cli_writes_a_loadable_fragment_and_plot(tmp_path: Path) -> None:
    from envs.calibrate import run as main

    fit = main([str(SAMPLE_TRACE), "--out", str(tmp_path / "frag.yaml"), "--plot", str(tmp_path / "fit.png"),
                "--source", "tests/data/sample_trace.csv"])
    sc = load_scenario(tmp_path / "frag.yaml")
    assert sc.name == "frag" and "tests/data/sample_trace.csv" in sc.sources[0]
    assert sc.demand.profiles["api"].hourly == pytest.approx([round(v, 3) for v in fit["hourly"]])
    assert (tmp_path / "fit.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", ["servegen-api", "mooncake-chat"])
def test_shipped_fitted_fragments_load_and_name_their_source(name: str) -> None:
    path = Path(envs.__file__).parent / "scenarios" / "fitted" / f"{name}.yaml"
    sc = load_scenario(path)
    assert any(("ServeGen" in s) or ("Mooncake" in s) for s in sc.sources)
    if name == "servegen-api":  # the fitted API shape sits in docs/calibration.md's ServeGen ranges
        from envs.params import demand_profile_table

        api = demand_profile_table(sc)[:, sc.tier_names.index("api")].reshape(-1, 4).sum(axis=1)
        wd = api[: 5 * 24].reshape(5, 24).mean(axis=0)
        assert 1.3 <= wd.max() / wd.min() <= 2.2
        assert 0.73 <= api[5 * 24:].mean() / api[: 5 * 24].mean() <= 0.89
