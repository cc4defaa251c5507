"""Sweeps (agents.sweep): config validation without Ray; the smoke sweep end to end with Ray."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.rules import RULES
from agents.sweep.config import SweepConfigError, load_sweep

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "sweeps" / "smoke.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_shipped_sweep_files_validate() -> None:
    smoke = load_sweep(SMOKE)
    assert smoke.base.hyperparams == str(ROOT / "tests" / "data" / "ppo_tiny.yaml")
    assert smoke.search_space["churn_weight"].kind == "grid"
    front = load_sweep(ROOT / "sweeps" / "front.yaml", output="/tmp/x")
    assert front.output == "/tmp/x" and front.searcher == "optuna" and front.scheduler.type == "asha"


@pytest.mark.parametrize(("text", "expected"), [
    ("name: a\noutput: o\nbase: {timestep: 5}\n", "base.timestep: unknown field"),
    ("name: a\noutput: o\nbase: {timesteps: 0}\n", "base.timesteps: Input should be greater than or equal to 1"),
    ("name: a\noutput: o\nsearch_space: {gamma: {choice: [1]}}\n", "'gamma': not a train.py argument"),
    ("name: a\noutput: o\nsearch_space: {hp.gama: {choice: [1]}}\n", "'hp.gama': unknown hyperparameter"),
    ("name: a\noutput: o\nsearch_space: {seed: {choice: [1], grid: [2]}}\n", "give exactly one of"),
    ("name: a\noutput: o\nsearch_space: {churn_weight: {loguniform: [0, 1]}}\n", "bounds must be > 0"),
    ("name: a\noutput: o\nsearcher: optuna\nsearch_space: {seed: {grid: [0, 1]}}\n", "grid is not supported"),
    ("name: a\noutput: o\nscheduler: {type: hyperband}\n", "scheduler.type"),
    ("output: o\n", "name: Field required"),
    ("name: a\noutput: o\nbase: [\n", "not valid YAML"),
])
def test_config_errors_are_one_line_and_name_the_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        load_sweep(_write(tmp_path, text))
    msg = str(info.value)
    assert expected in msg and "\n" not in msg, msg


def test_cli_config_error_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    bad = _write(tmp_path, "name: a\noutput: o\nbase: {scenarios: [default]}\n")
    res = subprocess.run([sys.executable, "-m", "agents.sweep", "--config", str(bad)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "base.scenarios: unknown field" in res.stderr, res.stderr


def test_smoke_sweep_runs_locally_and_writes_the_front(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "smoke"
    env = {**os.environ, "PYTHONHASHSEED": "0", "RAY_DEDUP_LOGS": "0"}
    res = subprocess.run([sys.executable, "-m", "agents.sweep", "--config", str(SMOKE), "--output", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=180, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    trials = list(csv.DictReader((out / "trials.csv").open()))
    assert len(trials) == 2 and {t["status"] for t in trials} == {"finished"}
    assert sorted(float(t["churn_weight"]) for t in trials) == [0.5, 2.0]
    for t in trials:
        run = json.loads((out / "runs" / t["trial"] / "run.json").read_text())
        assert run["status"] == "finished" and run["run_name"] == t["trial"]
        assert run["reward_overrides"] == {"reward": {"churn_weight": float(t["churn_weight"])}}
        assert (out / "runs" / t["trial"] / "eval_history.jsonl").read_text().count("\n") == 2
    front = list(csv.DictReader((out / "front.csv").open()))
    assert sorted(r["kind"] for r in front) == ["baseline"] * len(RULES) + ["rl"] * 2
    assert any(r["pareto"] == "True" for r in front)
    assert (out / "front.png").stat().st_size > 10_000
    # run again on the same folder: resumes the finished sweep (no new trials) and rewrites the front
    res = subprocess.run([sys.executable, "-m", "agents.sweep", "--config", str(SMOKE), "--output", str(out),
                          "--no-front"], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "resuming sweep" in res.stdout
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(t["trial"] for t in trials)


def test_a_failed_trial_does_not_stop_the_sweep(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = _write(tmp_path, f"""
name: failing
output: {tmp_path / 'out'}
base: {{scenario: [default], timesteps: 4096, eval_every: 4096, checkpoint_every: 4096, val_seeds: 1,
        hyperparams: {ROOT / 'tests' / 'data' / 'ppo_tiny.yaml'}}}
search_space:
  hp.batch_size: {{grid: [4096, 3000]}}   # 3000 does not divide the rollout: that trial fails
max_concurrent: 2
""")
    res = subprocess.run([sys.executable, "-m", "agents.sweep", "--config", str(config), "--no-front"],
                         capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    trials = {t["hp.batch_size"]: t for t in csv.DictReader((tmp_path / "out" / "trials.csv").open())}
    assert trials["4096"]["status"] == "finished" and trials["3000"]["status"] == "error"
    assert "batch_size = 3000 does not divide" in trials["3000"]["error"]
    hp = (tmp_path / "out" / "hyperparams" / f"{trials['4096']['trial']}.yaml").read_text()
    assert "batch_size: 4096" in hp


def test_an_interrupted_sweep_resumes(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "out"
    config = _write(tmp_path, f"""
name: interrupted
output: {out}
base: {{scenario: [default], timesteps: 600000, eval_every: 300000, checkpoint_every: 100000, val_seeds: 1}}
""")
    cmd = [sys.executable, "-m", "agents.sweep", "--config", str(config), "--no-front"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("runs/*/latest.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "run the same command again to resume" in err
    (run_dir,) = list((out / "runs").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["status"] != "finished"
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "resuming sweep" in res.stdout
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["timesteps_done"] >= 600000 and run.get("resumed")
