"""The tiny training run the PPO tests share (one per session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_HP = str(Path(__file__).resolve().parents[1] / "data" / "ppo_tiny.yaml")
TINY = ["--hyperparams", TINY_HP, "--no-final-eval", "--no-progress", "--val-seeds", "2",
        "--scenario", "default", "--scenario", "outage"]
TINY_RUN = ["--timesteps", "8192", "--eval-every", "4096", "--checkpoint-every", "4096", "--seed", "3", *TINY]


def _train(*args: str, timeout: float = 240, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "eval_history.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    res = _train("--output", str(out), "--run-name", "tiny", *TINY_RUN)
    assert res.returncode == 0, res.stderr
    return out / "tiny"
