"""train.py under a hostile user: bad input is one line + exit 2 + nothing changed; kills at every phase
resume to the same weights as an uninterrupted run; corrupt, swapped, symlinked and escaping run folders."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ppo.checkpoint import CheckpointError, load_checkpoint, pointer
from tests.ppo.conftest import ROOT, TINY_RUN, _history, _train

_spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else b"") for p in sorted(path.rglob("*"))}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------- kills at every phase
def test_sigkill_in_every_phase_resumes_to_the_same_weights(tiny_run: Path, tmp_path: Path) -> None:
    """Kill points: run folder creation, warm start, checkpoint write, PPO, final evaluation (RATIONING_KILL_AT)."""
    out = tmp_path / "runs"
    args = ["--output", str(out), "--run-name", "k", *TINY_RUN]
    res = _train(*args, env={"RATIONING_KILL_AT": "run_folder"})
    assert res.returncode == -9 and not (out / "k").exists()  # nothing but a temporary left
    res = _train(*args, env={"RATIONING_KILL_AT": "warm_start"})
    assert res.returncode == -9 and (out / "k" / "run.json").is_file()
    for phase in ("checkpoint_write:2", "ppo:2"):
        res = _train("--resume", str(out / "k"), "--no-progress", "--no-final-eval", env={"RATIONING_KILL_AT": phase})
        assert res.returncode == -9, res.stderr
    final = ["--resume", str(out / "k"), "--no-progress", "--final-eval", "--eval-seeds", "1"]
    res = _train(*final, env={"RATIONING_KILL_AT": "final_eval"})
    assert res.returncode == -9
    res = _train(*final)
    assert res.returncode == 0, res.stderr
    assert (out / "k" / "evaluation" / "results.md").is_file()
    run = out / "k"
    assert _history(run) == [{**h, "wall_s": h2["wall_s"]} for h, h2 in zip(_history(tiny_run), _history(run))]
    assert _sha(pointer(run, "final") / "policy.safetensors") == _sha(pointer(tiny_run, "final") / "policy.safetensors")
    leftovers = [p.name for p in [*out.iterdir(), *run.iterdir(), *(run / "checkpoints").iterdir()]
                 if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == [] or all(p.startswith(".k.tmp-") for p in leftovers)
    # TensorBoard after the resumes: each step of a curve once (purged steps from killed processes are dropped)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb" / "ppo"))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("eval/mean_return")]
    assert steps == [4096, 8192]
    assert "eval/return_default" in acc.Tags()["scalars"]


# ------------------------------------------------------------------------- bad input
def _bad_yaml(tmp_path: Path, text: bytes, name: str = "bad.yaml") -> str:
    path = tmp_path / name
    path.write_bytes(text)
    return str(path)


@pytest.mark.parametrize("case", ["output_file", "warm_start", "run_name", "weight_inf", "weight_nan", "users_inf",
                                  "users_huge", "scenario_utf8", "hp_utf8", "hp_unknown", "hp_bad_value",
                                  "hp_not_finite"])
def test_bad_input_is_one_line_and_creates_nothing(case: str, tmp_path: Path, one_line_error) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    base = ["--output", str(out), "--no-final-eval", "--no-progress"]
    argv = {
        "output_file": ["--output", _bad_yaml(tmp_path, b"x", "file.txt")],
        "warm_start": ["--hp", "warm_start=nope"],
        "run_name": ["--run-name", "../../x"],
        "weight_inf": ["--latency-weight", "inf"],
        "weight_nan": ["--churn-weight", "nan"],
        "users_inf": ["--scenario", _bad_yaml(tmp_path, b"base: default\ntiers:\n  - name: free\n    users: .inf\n")],
        "users_huge": ["--scenario", _bad_yaml(tmp_path, b"base: default\ntiers:\n  - name: free\n    users: 1e39\n")],
        "scenario_utf8": ["--scenario", _bad_yaml(tmp_path, b"base: default\nname: caf\xe9\n")],
        "hp_utf8": ["--hyperparams", _bad_yaml(tmp_path, b"default:\n  n_envs: 8 # \xff\n")],
        "hp_unknown": ["--hp", "nope=1"],
        "hp_bad_value": ["--hp", "n_steps=abc"],
        "hp_not_finite": ["--hp", "max_grad_norm=.inf"],
    }[case]
    before = _tree(tmp_path)
    one_line_error(train_script.main, base + argv if case != "output_file" else argv + base[2:])
    assert _tree(tmp_path) == before


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy, symlinks=True)
    return copy


def _edit_json(file: Path, **changes) -> None:
    data = json.loads(file.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    file.write_text(json.dumps(data))


@pytest.mark.parametrize("case", ["changed_seed", "changed_scenario", "corrupt_best", "no_scenarios", "bad_hp",
                                  "escaping_pointer", "absolute_pointer", "symlinked_pointer", "fewer_timesteps",
                                  "run_json_utf8", "manifest_outside", "symlinked_weights"])
def test_refused_resume_changes_nothing(case: str, run_copy: Path, tmp_path: Path, one_line_error) -> None:
    run = run_copy
    extra: list[str] = []
    if case == "changed_seed":
        extra = ["--seed", "5"]
    elif case == "changed_scenario":
        extra = ["--scenario", "outage"]
    elif case == "corrupt_best":
        (run / "best.json").write_text("{not json")
    elif case == "no_scenarios":
        _edit_json(run / "run.json", scenarios=None)
    elif case == "bad_hp":
        data = json.loads((run / "run.json").read_text())
        data["hyperparams"]["n_epochs"] = -3
        (run / "run.json").write_text(json.dumps(data))
    elif case == "escaping_pointer":
        _edit_json(run / "latest.json", path="../other_run/checkpoints/latest-000000008192")
    elif case == "absolute_pointer":
        _edit_json(run / "best.json", path=str(pointer(run, "best").resolve()))
    elif case == "symlinked_pointer":
        target = tmp_path / "elsewhere"
        shutil.copytree(pointer(run, "latest"), target)
        folder = pointer(run, "latest")
        shutil.rmtree(folder)
        folder.symlink_to(target)
    elif case == "fewer_timesteps":
        extra = ["--timesteps", "10"]
    elif case == "run_json_utf8":
        (run / "run.json").write_bytes(b'{"format": "rationing-run", "x": "\xff"}')
    elif case == "manifest_outside":
        _edit_json(pointer(run, "latest") / "manifest.json", files={"policy.safetensors": "0", "../../run.json": "0",
                                                                   "normalization.npz": "0"})
    elif case == "symlinked_weights":
        folder = pointer(run, "latest")
        (folder / "policy.safetensors").unlink()
        (folder / "policy.safetensors").symlink_to("/dev/zero")
    before = _tree(run)
    one_line_error(train_script.main, ["--resume", str(run), "--no-final-eval", "--no-progress", *extra])
    assert _tree(run) == before


def test_weights_of_another_network_size_are_refused(run_copy: Path, one_line_error) -> None:
    data = json.loads((run_copy / "run.json").read_text())
    data["hyperparams"]["net_arch"] = [32, 32]
    (run_copy / "run.json").write_text(json.dumps(data))
    err = one_line_error(train_script.main, ["--resume", str(run_copy), "--no-final-eval", "--no-progress"])
    assert "do not fit" in err


def test_checkpoint_files_are_confined_and_bounded(run_copy: Path) -> None:
    folder = pointer(run_copy, "latest")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["/etc/hostname"] = "0"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not a checkpoint file"):
        load_checkpoint(folder)
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(pointer(run_copy, "best") / "manifest.json")
    with pytest.raises(CheckpointError, match="symbolic link"):
        load_checkpoint(folder)


# --------------------------------------------------------------------------- command-line args
_FLAGS = ["--timesteps", "--seed", "--n-envs", "--checkpoint-every", "--eval-every", "--eval-seeds", "--val-seeds",
          "--threads", "--margin-weight", "--latency-weight", "--churn-weight", "--run-name", "--hp"]
_VALUES = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(repr),
                    st.sampled_from(["", "inf", "-inf", "nan", "1e400", "../x", "a=b", "n_envs=0", "x" * 300]),
                    st.text(max_size=10))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FLAGS), _VALUES), min_size=1, max_size=3))
def test_random_arguments_parse_or_give_one_line(pairs) -> None:
    import contextlib
    import io

    argv = [x for flag, value in pairs for x in (flag, value)]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            args, explicit = train_script.parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 2 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
            return
    for name in ("margin_weight", "latency_weight", "churn_weight"):
        value = getattr(args, name)
        assert value is None or 0 <= value <= 1e6
    assert args.seed >= 0 and set(explicit) <= {f.lstrip("-").replace("-", "_") for f in _FLAGS}


def test_hp_overrides_and_rollout_changes(tmp_path: Path) -> None:
    from agents.ppo.config import HYPERPARAMS_FILE, load_hyperparams, parse_hp

    notes: list[str] = []
    hp = load_hyperparams(HYPERPARAMS_FILE, ["default"], {"n_envs": 8}, parse_hp(["learning_rate=1e-4"]), notes)
    base = load_hyperparams(HYPERPARAMS_FILE, ["default"])
    assert hp.learning_rate == 1e-4
    assert hp.n_envs * hp.n_steps // hp.batch_size == base.n_envs * base.n_steps // base.batch_size
    assert len(notes) == 1 and "minibatches" in notes[0]
    assert os.environ.get("RATIONING_KILL_AT") is None
