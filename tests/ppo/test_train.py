"""train.py end to end: run folders, resume after SIGKILL, Ctrl-C, bad input, checkpoints."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.ppo.checkpoint import CheckpointError, check_compatible, load_checkpoint, pointer
from agents.ppo.run_policy import load_run_policy
from agents.rules import best_tuned_baseline, tuned_file_for
from tests.ppo.conftest import ROOT, TINY, _history, _train  # noqa: F401  (tiny_run: tests/ppo/conftest.py)


def test_run_folder_records_everything(tiny_run: Path) -> None:
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["status"] == "finished" and run["timesteps_done"] >= 8192
    assert run["seed"] == 3 and run["scenarios"] == ["default", "outage"]
    assert run["hyperparams"]["n_envs"] == 64 and run["hyperparams"]["batch_size"] == 4096
    assert run["warm_start"]["rule"] == best_tuned_baseline(tuned_file_for(1))
    assert run["warm_start"]["samples"] == 2 * 4 * 672
    assert {"python", "numpy", "torch", "stable_baselines3", "gymnasium"} <= set(run["versions"])
    assert "git_commit" in run and "train.py" in run["command"]
    assert run["git_dirty"] is None or isinstance(run["git_dirty"], list)  # files changed since the commit
    assert len(run["obs_names"]) == 58 and run["tier_names"][0] == "free"  # Rationing-v1 by default
    assert run["env_id"] == "Rationing-v1" and run["env_version"] == 1
    for kind in ("latest", "best", "final"):
        folder = pointer(tiny_run, kind)
        assert folder is not None and (folder / "manifest.json").is_file(), kind
    assert len(_history(tiny_run)) >= 2
    assert any((tiny_run / "tb").rglob("events.out.tfevents.*"))


def test_trained_policy_loads_and_acts(tiny_run: Path) -> None:
    policy = load_run_policy(tiny_run)
    obs = np.zeros((4, 58), np.float32)  # Rationing-v1
    action, state = policy.predict(obs)
    assert action.shape == (4, 6) and state is None
    assert np.all(np.abs(action) <= 1.0)


def test_same_seed_same_numbers(tiny_run: Path, tmp_path: Path) -> None:
    res = _train("--timesteps", "8192", "--eval-every", "4096", "--checkpoint-every", "4096", "--output",
                 str(tmp_path), "--run-name", "again", "--seed", "3", *TINY)
    assert res.returncode == 0, res.stderr
    assert [h["score"] for h in _history(tmp_path / "again")] == [h["score"] for h in _history(tiny_run)]


def test_resume_after_sigkill_continues_timesteps(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "train.py"), "--timesteps", "2000000", "--checkpoint-every", "4096",
           "--eval-every", "1000000", "--output", str(tmp_path), "--run-name", "killed", *TINY]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "killed"
    deadline = time.time() + 120
    while time.time() < deadline:
        folder = pointer(run, "latest") if (run / "latest.json").exists() else None
        if folder is not None and int(folder.name.split("-")[1]) >= 8192:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(pointer(run, "latest"))
    assert saved.timesteps >= 8192
    # shrink the remaining work so the resumed run finishes quickly
    meta = json.loads((run / "run.json").read_text())
    meta["hyperparams"]["timesteps"] = saved.timesteps + 8192
    (run / "run.json").write_text(json.dumps(meta))
    res = _train("--resume", str(run), "--no-progress", "--no-final-eval")
    assert res.returncode == 0, res.stderr
    assert f"resuming at {saved.timesteps:,}" in res.stdout
    final = load_checkpoint(pointer(run, "final"), with_optimizer=False)
    assert final.timesteps == saved.timesteps + 8192
    # normalisation statistics carried over: the running count only grew
    assert float(final.normalization["obs_count"]) > float(saved.normalization["obs_count"])
    assert json.loads((run / "run.json").read_text())["resumed"]


def test_ctrl_c_saves_before_exiting(tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "train.py"), "--timesteps", "5000000", "--checkpoint-every", "10000000",
           "--eval-every", "10000000", "--output", str(tmp_path), "--run-name", "interrupted", *TINY]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / "interrupted"
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "tb").exists():
        time.sleep(0.2)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "interrupted"
    assert load_checkpoint(pointer(run, "latest")).timesteps == meta["timesteps_done"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario 'nope': use one of"),
        (["--hp", "batch_size=1000"], "batch_size = 1000 does not divide the rollout"),
        (["--hyperparams", "/nonexistent.yaml"], "cannot read"),
        (["--resume", "/"], "is not a run folder"),
        (["--seed", "-1"], "--seed = -1: must be >= 0"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    res = _train(*args, "--output", str(tmp_path), "--no-final-eval")
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_resume_refuses_changed_environment(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["env_version"] = 99
    (copy / "run.json").write_text(json.dumps(meta))
    res = _train("--resume", str(copy), "--no-final-eval")
    assert res.returncode == 2 and "version 99" in res.stderr and "start a new run" in res.stderr


def test_checkpoint_loading_refuses_corrupt_and_mismatched(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "ckpt"
    shutil.copytree(pointer(tiny_run, "latest"), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    check_compatible(manifest, "Rationing-v1", 1, manifest["obs_names"], "ok")  # the tiny run trains v1
    renamed = list(manifest["obs_names"])
    renamed[7], renamed[8] = renamed[8], renamed[7]
    with pytest.raises(CheckpointError, match="observation layout differs .* at index 7"):
        check_compatible(manifest, "Rationing-v1", 1, renamed, "ckpt")
    with pytest.raises(CheckpointError, match="made for Rationing-v1 version 1, this is Rationing-v0 version 0"):
        check_compatible(manifest, "Rationing-v0", 0, manifest["obs_names"], "ckpt")
    data = bytearray((folder / "policy.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "policy.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its sha256 check"):
        load_checkpoint(folder)
    (folder / "policy.safetensors").write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="fails its sha256 check"):
        load_checkpoint(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable or corrupt"):
        load_checkpoint(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        load_checkpoint(folder)


@pytest.mark.parametrize(("name", "version"), [("ppo-v0", 0), ("ppo-v1", 1)])
def test_shipped_policy_loads_runs_and_reproduces_its_table(name: str, version: int) -> None:
    from agents.evaluate.command import records, run_evaluation

    shipped = ROOT / "checkpoints" / name
    policy = load_run_policy(shipped)
    assert policy.hyperparams["action_parameterisation"] == ("target" if version == 0 else "residual")
    assert policy.env_version == version
    ev = run_evaluation([str(shipped)], ["outage"], n_seeds=2, progress=False, reference=False, env_version=version)
    mine = {r["seed"]: r["episode_return"] for r in records(ev)}
    table = json.loads((shipped / "evaluation" / "results.json").read_text())
    table = table["records"] if isinstance(table, dict) else table  # {"evaluated", "records"} since the hardening
    shipped_rows = {r["seed"]: r["episode_return"] for r in table
                    if r["policy"] == name and r["scenario"] == "outage"}
    for seed, value in mine.items():
        # equal up to float32 summation order (torch thread count differs between processes)
        assert value == pytest.approx(shipped_rows[seed], rel=1e-6)
