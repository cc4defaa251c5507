"""The evaluation script: output files and their metrics, determinism, seeds, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.common.seeds import (
    EVAL_SEED_BASE,
    HELD_OUT_SCENARIOS,
    TRAIN_SCENARIOS,
    TRAIN_SEEDS,
    eval_seeds,
    seed_ranges,
)
from agents.evaluate import resolve as policy_mod
from agents.evaluate.command import main, run_evaluation
from agents.evaluate.metrics import mean_ci, mixture_quantile
from agents.rules import RULES, StaticRule, best_tuned_baseline

ROOT = Path(__file__).resolve().parents[2]
TIERS = ["free", "pro", "max", "team", "enterprise", "api"]


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    code = main(["--policy", "static", "--policy", "aimd", "--scenario", "outage", "--scenario", "default",
                 "--seeds", "3", "--days", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    return out


def test_output_files_exist_and_hold_the_metrics(eval_dir: Path, capsys) -> None:
    for name in ("results.md", "results.json", "summary.json", "summary.csv", "headline.png",
                 "margin_vs_attainment.png", "timeseries_outage_aimd.png", "timeseries_default_static.png"):
        assert (eval_dir / name).is_file() and (eval_dir / name).stat().st_size > 500, name
    records = json.loads((eval_dir / "results.json").read_text())["records"]
    assert len(records) == 2 * 2 * 3
    assert {(r["policy"], r["scenario"]) for r in records} == {
        (p, s) for p in ("static", "aimd") for s in ("outage", "default")}
    assert sorted({r["seed"] for r in records}) == [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]
    for r in records:
        for key in ("episode_return", "margin_usd", "revenue_usd", "cost_usd", "collapse_hours"):
            assert isinstance(r[key], float) and np.isfinite(r[key]), key
        assert r["margin_usd"] == pytest.approx(r["revenue_usd"] - r["cost_usd"], rel=1e-5)
        assert r["steps"] == 96 and r["hours"] == 24.0
        for key in ("latency_attainment", "p95_latency_s", "churned_users", "throttled_share"):
            assert list(r[key]) == TIERS, key
        assert all(0.0 <= v <= 1.0 for v in r["latency_attainment"].values())
        assert all(0.0 <= v <= 1.0 for v in r["throttled_share"].values())
        assert all(v > 0 for v in r["churned_users"].values())
        assert all(v >= 0.8 for v in r["p95_latency_s"].values())  # at least the base latency
    md = (eval_dir / "results.md").read_text()
    for text in ("| scenario | policy | return |", "margin $k", "attainment %", "p95 latency per tier",
                 "Churned users per tier", "Throttled share per tier", "Best tuned baseline"):
        assert text in md, text
    summary = json.loads((eval_dir / "summary.json").read_text())
    row = next(r for r in summary["rows"] if r["policy"] == "aimd" and r["scenario"] == "outage")
    assert row["n_seeds"] == 3 and row["metrics"]["episode_return"]["ci95"] > 0
    assert summary["best_baseline"]["outage"] in ("static", "aimd")
    best = summary["best_baseline"]["outage"]
    ref = next(r for r in summary["rows"] if r["policy"] == best and r["scenario"] == "outage")
    assert ref["ratio_to_best_baseline"] == pytest.approx(1.0) and ref["return_gap_to_best_baseline"] == 0.0
    header = (eval_dir / "summary.csv").read_text().splitlines()[0]
    assert "episode_return_mean" in header and "latency_attainment.enterprise_ci95" in header


def test_results_match_a_direct_simulation(eval_dir: Path) -> None:
    """results.json numbers are the environment's own totals for that seed."""
    records = json.loads((eval_dir / "results.json").read_text())["records"]
    rec = next(r for r in records if r["policy"] == "static" and r["scenario"] == "outage"
               and r["seed"] == EVAL_SEED_BASE + 1)
    core = envs.RationingCore("outage", 1, overrides={"time": {"episode_days": 1}}, version=1)  # the default
    core.reset(np.array([EVAL_SEED_BASE + 1], dtype=np.uint64))
    ret, margin, served, within, churned = 0.0, 0.0, np.zeros(6), np.zeros(6), np.zeros(6)
    credit = np.zeros(6)
    for _ in range(core.params.episode_steps):
        _, r, _, _, info = core.step(np.zeros((1, 6), np.float32))
        ret += float(r[0])
        margin += float(info["margin_usd"][0])
        served += info["served_tokens"][0]
        within += info["served_tokens"][0] * info["latency_attainment"][0]
        churned += info["churned_users"][0]
        credit += info["sla_credit_usd"][0]
    assert rec["episode_return"] == pytest.approx(ret, rel=1e-9)
    assert rec["margin_usd"] == pytest.approx(margin, rel=1e-6)
    assert rec["sla_credit_usd_all"] == pytest.approx(credit.sum(), rel=1e-5)
    for i, t in enumerate(TIERS):
        assert rec["sla_credit_usd"][t] == pytest.approx(credit[i], rel=1e-5, abs=1e-6)
    for i, t in enumerate(TIERS):
        assert rec["latency_attainment"][t] == pytest.approx(within[i] / served[i], rel=1e-5)
        assert rec["churned_users"][t] == pytest.approx(churned[i], rel=1e-5)


def test_evaluation_is_deterministic(eval_dir: Path, tmp_path: Path) -> None:
    code = main(["--policy", "static", "--policy", "aimd", "--scenario", "outage", "--scenario", "default",
                 "--seeds", "3", "--days", "1", "--out", str(tmp_path), "--no-progress", "--no-plots"])
    assert code == 0
    assert json.loads((tmp_path / "results.json").read_text())["records"] == \
        json.loads((eval_dir / "results.json").read_text())["records"]
    assert (tmp_path / "summary.csv").read_bytes() == (eval_dir / "summary.csv").read_bytes()
    # a larger batch of seeds gives the same numbers for the seeds both runs share
    ev = run_evaluation(["aimd"], ["outage"], 5, progress=False, overrides={"time": {"episode_days": 1}})
    first = json.loads((eval_dir / "results.json").read_text())["records"]
    want = [r["episode_return"] for r in first if r["policy"] == "aimd" and r["scenario"] == "outage"]
    np.testing.assert_allclose(ev.cells[0].metrics["episode_return"][:3], want, rtol=1e-12)


def test_eval_seeds_never_overlap_training_seeds() -> None:
    seeds = eval_seeds(1000)
    assert seeds[0] == EVAL_SEED_BASE and len(set(seeds.tolist())) == 1000
    assert not set(seeds.tolist()) & set(TRAIN_SEEDS)
    spans = sorted(seed_ranges().values())
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    from agents.ppo.config import TRAIN_SEED_OFFSET, VALIDATION_SEED_BASE

    assert seed_ranges()["ppo_train"][0] == TRAIN_SEED_OFFSET
    assert seed_ranges()["validation"][0] == VALIDATION_SEED_BASE
    assert not set(TRAIN_SCENARIOS) & set(HELD_OUT_SCENARIOS)
    assert set(TRAIN_SCENARIOS) | set(HELD_OUT_SCENARIOS) == set(envs.available_scenarios())


def test_reference_baseline_is_added_and_ratios_computed(tmp_path: Path) -> None:
    ev = run_evaluation(["static:untuned"], ["default"], 2, progress=False, overrides={"time": {"episode_days": 0.5}})
    best = best_tuned_baseline()
    assert best in RULES
    assert ev.labels == ["static:untuned", best]
    assert ev.best["default"] == best
    row = next(r for r in ev.summary if r["policy"] == "static:untuned")
    ret = row["metrics"]["episode_return"]["mean"]
    ref = next(r for r in ev.summary if r["policy"] == best)["metrics"]["episode_return"]["mean"]
    assert row["ratio_to_best_baseline"] == pytest.approx(ret / ref)


def test_registered_loader_makes_a_folder_a_policy(tmp_path: Path) -> None:
    folder = tmp_path / "exported-zero"
    folder.mkdir()
    (folder / "zero.marker").write_text("{}")  # not a marker of the shipped loaders (their order is not fixed)

    class Zero:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            obs = np.asarray(obs)
            return np.zeros((*obs.shape[:-1], 6), np.float32), state

    policy_mod.register_loader("test-exported", lambda p: (p / "zero.marker").is_file(), lambda p: Zero(),
                               "test exported folder (zero.marker)")
    try:
        ev = run_evaluation([str(folder), "static"], ["default"], 2, progress=False,
                            overrides={"time": {"episode_days": 0.5}})
    finally:
        policy_mod.unregister_loader("test-exported")
    zero = ev.cells[0].metrics["episode_return"]
    static = ev.cells[1].metrics["episode_return"]
    assert ev.labels[0] == "exported-zero"
    np.testing.assert_allclose(zero, static)  # action 0 keeps the nominal quotas: the static rule exactly


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.evaluate", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--policy", "bogus"], "unknown policy 'bogus'"),
        (["--policy", "static", "--scenario", "nowhere"], "nowhere"),
        (["--policy", "static", "--seeds", "0"], "--seeds 0"),
        (["--policy", "tests"], "is not a checkpoint or exported policy"),
    ],
)
def test_bad_input_gives_one_line_errors(args: list[str], expect: str, tmp_path: Path) -> None:
    res = _cli(*args, "--out", str(tmp_path), "--no-progress")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    if "policy" in expect or "checkpoint" in expect:
        assert "time-of-use" in lines[0]  # lists what is available


def test_broken_run_folder_is_one_line_error(tmp_path: Path) -> None:
    run = tmp_path / "ppo-run"
    run.mkdir()
    (run / "run.json").write_text("{}")  # a run.json that is not a rationing run
    res = _cli("--policy", str(run), "--out", str(tmp_path / "out"), "--no-progress")
    assert res.returncode == 2 and "is not a run folder" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_layout_mismatch_is_refused(tmp_path: Path) -> None:
    """A trained policy whose observation names differ from the scenario's is refused by name."""
    import shutil

    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "ppo-v0"
    copy = tmp_path / "ppo-v0"
    shutil.copytree(shipped, copy)
    best = json.loads((copy / "best.json").read_text())["path"]
    manifest_path = copy / best / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["obs_names"][10] = "demand/gold"
    manifest_path.write_text(json.dumps(manifest))  # the checksums cover the weights, not the manifest
    res = _cli("--env-version", "0", "--policy", str(copy), "--scenario", "default", "--out", str(tmp_path / "out"),
               "--no-progress")
    assert res.returncode == 2 and "at index 10 ('demand/gold' vs 'demand/pro')" in res.stderr, res.stderr


def test_mixture_quantile_and_ci() -> None:
    mean = np.array([[2.0], [2.0]])
    q = mixture_quantile(mean, np.ones_like(mean), 0.95)
    assert q[0] == pytest.approx(-2.0 * np.log(0.05), rel=1e-9)
    # two components: the cdf at the answer is 0.95
    mean = np.array([1.0, 10.0])[:, None]
    w = np.array([3.0, 1.0])[:, None]
    x = mixture_quantile(mean, w, 0.95)[0]
    cdf = (w[:, 0] * (1 - np.exp(-x / mean[:, 0]))).sum() / w.sum()
    assert cdf == pytest.approx(0.95, abs=1e-9)
    m, h = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == pytest.approx(2.0) and h == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-4)
    assert StaticRule.name == "static"


# last: resolving a path imports the registered loaders (test_registered_loader_... relies on their order)
def test_v0_policy_is_refused_on_v1_and_evaluates_on_v0(tmp_path: Path, capsys) -> None:
    code = main(["--policy", str(ROOT / "checkpoints" / "ppo-v0"), "--scenario", "default", "--seeds", "1",
                 "--days", "0.25", "--out", str(tmp_path / "v1"), "--no-progress", "--no-plots"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "trained on Rationing-v0 (env version 0)" in err and "--env-version 0" in err
    code = main(["--env-version", "0", "--policy", str(ROOT / "checkpoints" / "ppo-v0"), "--scenario", "default",
                 "--seeds", "1", "--days", "0.25", "--out", str(tmp_path / "v0"), "--no-progress", "--no-plots"])
    assert code == 0
    assert json.loads((tmp_path / "v0" / "summary.json").read_text())["env_version"] == 0
