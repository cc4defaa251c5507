"""A tiny constrained run end to end: the multipliers over time in lagrange.jsonl, TensorBoard and run.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY_HP = str(ROOT / "tests" / "data" / "ppo_tiny.yaml")


def test_constrained_run_records_multipliers(tmp_path) -> None:
    args = [sys.executable, str(ROOT / "train.py"), "--output", str(tmp_path), "--run-name", "c",
            "--hyperparams", TINY_HP, "--no-final-eval", "--no-progress", "--val-seeds", "2", "--scenario", "default",
            "--timesteps", "8192", "--eval-every", "8192", "--checkpoint-every", "8192", "--lagrange-lr", "0.5",
            "--constraint", "enterprise.latency_attainment>=0.9999", "--constraint", "all.throttled_share<=0.99"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "c"
    meta = json.loads((run / "run.json").read_text())
    assert [c["metric"] for c in meta["constraints"]] == ["latency_attainment", "throttled_share"]
    log = [json.loads(line) for line in (run / "lagrange.jsonl").read_text().splitlines()]
    assert [e["timesteps"] for e in log] == [4096, 8192]  # one entry per rollout of 64 envs x 64 steps
    hard, easy = "enterprise.latency_attainment>=0.9999", "all.throttled_share<=0.99"
    assert 0 < log[0]["multipliers"][hard] < log[1]["multipliers"][hard]  # violated: rises
    assert log[1]["multipliers"][easy] == 0.0  # met: stays at 0
    assert log[1]["values"][hard] < 0.9999
    history = [json.loads(line) for line in (run / "eval_history.jsonl").read_text().splitlines()]
    assert history[-1]["feasible"] is False and hard in history[-1]["constraint_values"]["default"]
    assert history[-1]["score"] < history[-1]["return_mean"]  # infeasible: penalised for model selection
    events = b"".join(p.read_bytes() for p in (run / "tb").rglob("events.*"))
    assert b"lagrange/lambda_enterprise.latency_attainment_ge_0.9999" in events
    # a resumed run keeps its constraints: --constraint on --resume is refused
    res = subprocess.run([sys.executable, str(ROOT / "train.py"), "--resume", str(run), "--constraint",
                          "free.churn_per_month<=0.1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
