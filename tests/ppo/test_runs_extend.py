"""Runs a user can extend and trust: custom scenarios copied into the run, resume from any folder,
--resume --timesteps extends, --hp recorded, SB3 interop, exported temporaries refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agents.ppo.checkpoint import pointer
from tests.ppo.conftest import ROOT, TINY_HP, _train


def test_custom_scenario_run_is_self_contained_and_extends(tmp_path: Path) -> None:
    scen = tmp_path / "mine.yaml"
    scen.write_text("base: default\nname: my-world\n")
    out = tmp_path / "runs"
    res = _train("--scenario", str(scen), "--hyperparams", TINY_HP, "--timesteps", "4096", "--output", str(out),
                 "--hp", "learning_rate=2e-4", "--hp", "warm_start=none", "--no-final-eval", "--no-progress",
                 "--val-seeds", "1", "--eval-every", "4096", "--n-envs", "32")
    assert res.returncode == 0, res.stderr
    assert "minibatches" in res.stdout  # the rollout changed: the minibatch adapted, said in one line
    (run,) = out.iterdir()
    assert run.name.startswith("ppo-my-world-")
    meta = json.loads((run / "run.json").read_text())
    assert meta["scenarios"] == ["my-world"] and meta["hp_overrides"] == {"learning_rate": 2e-4, "warm_start": "none"}
    assert meta["hyperparams"]["batch_size"] == 32 * 64 // 1 and (run / "scenarios" / "my-world.yaml").is_file()
    scen.unlink()  # the run keeps its own copy
    moved = tmp_path / "elsewhere" / run.name
    shutil.move(str(run), moved)
    res = _train("--resume", str(moved), "--timesteps", "8192", "--no-final-eval", "--no-progress", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "extending run" in res.stdout
    assert json.loads((moved / "run.json").read_text())["timesteps_done"] == 8192
    assert pointer(moved, "final").name == "final-000000008192"
    history = [json.loads(x) for x in (moved / "eval_history.jsonl").read_text().splitlines()]
    assert [h["timesteps"] for h in history] == [4096, 8192] and "my-world" in history[0]["returns"]


def test_checkpoint_loads_as_sb3_model(tiny_run: Path) -> None:
    from stable_baselines3 import PPO

    from agents.ppo import to_sb3
    from agents.ppo.run_policy import load_run_policy

    model, venv = to_sb3(tiny_run, n_envs=2)
    assert isinstance(model, PPO) and not venv.training
    obs = venv.reset()
    raw = venv.get_original_obs()
    action, _ = model.predict(obs, deterministic=True)
    ours = load_run_policy(tiny_run)
    from agents.ppo.parameterisation import ActionLayout, target_to_env_action

    layout = ActionLayout.from_dict(json.loads((tiny_run / "run.json").read_text())["action_layout"])
    np.testing.assert_allclose(target_to_env_action(np.clip(action, -1, 1), raw, layout), ours.predict(raw)[0],
                               atol=1e-5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from agents.export.exporter import export_policy

    out = tmp_path_factory.mktemp("exp") / "pol"
    export_policy(ROOT / "checkpoints" / "ppo-v0", out, check=False)
    return out


def test_load_policy_refuses_temporaries_symlinks_and_devices(exported: Path, tmp_path: Path) -> None:
    from agents import load_policy
    from agents.export.exported import PolicyLoadError

    tmp = tmp_path / ".pol.tmp-99999999"  # a PID that does not run
    shutil.copytree(exported, tmp)
    with pytest.raises(PolicyLoadError, match="interrupted export"):
        load_policy(tmp, backend="numpy")
    link = tmp_path / "link"
    shutil.copytree(exported, link)
    (link / "weights.npz").unlink()
    (link / "weights.npz").symlink_to("/dev/zero")
    with pytest.raises(PolicyLoadError, match="not a regular file"):
        load_policy(link, backend="numpy")
    (link / "weights.npz").unlink()
    (link / "weights.npz").symlink_to(exported / "weights.npz")
    with pytest.raises(PolicyLoadError, match="not a regular file"):
        load_policy(link, backend="numpy")
    load_policy(exported, backend="numpy")


def test_nan_actions_are_refused_and_leave_the_env_usable() -> None:
    import envs

    core = envs.RationingCore("default", 2)
    core.reset(np.arange(2, dtype=np.uint64))
    bad = np.zeros((2, 6), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN at row 1, tier 'team'"):
        core.step(bad)
    obs, reward, *_ = core.step(np.full((2, 6), np.inf, np.float32))  # +-inf clips like out-of-range values
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
