"""Exported policies: parity with the SB3 model, safe loading, refusals, import hygiene, CLI, example."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.export.exported import ObservationError, PolicyLoadError, is_exported, load_policy
from agents.export.exporter import export_policy
from agents.export.parity import PARITY_TOLERANCE
from agents.ppo.checkpoint import load_checkpoint, restore_normalization, save_checkpoint
from agents.ppo.run_policy import build_policy, load_run_policy, run_checkpoint
from envs.quota import apply_action

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["default", "outage", "agentic-surge", "launch-spike", "peak-contention"]
BACKENDS = ["numpy", "onnx"]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONHASHSEED": "0"})


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """The SB3 references run on batches of 4-16 rows: one thread is fastest (and robust on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    res = _run("train.py", "--timesteps", "8192", "--hyperparams", "tests/data/ppo_tiny.yaml", "--scenario", "default",
               "--no-final-eval", "--no-progress", "--seed", "5", "--output", str(out), "--run-name", "tiny",
               "--env-version", "0", timeout=240)  # the export mechanics below use v0's 45-entry layout
    assert res.returncode == 0, res.stderr
    return out / "tiny"


@pytest.fixture(scope="module")
def exported(run_dir: Path, tmp_path_factory) -> Path:
    """The tiny run exported through the command line."""
    out = tmp_path_factory.mktemp("exported") / "tiny"
    res = _run("-m", "agents.export", str(run_dir), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "parity vs SB3" in res.stdout
    return out


def _wild_checkpoint(run_dir: Path, folder: Path, parameterisation: str) -> Path:
    """A checkpoint with a relu actor and large weights, so actions span [-1, 1] and hit the clip.

    A briefly trained PPO actor barely moves from its initialisation (outputs ~0.02), which
    would hide mapping or normalisation errors; this one exercises the whole range.
    """
    import torch

    base = load_checkpoint(run_checkpoint(run_dir), with_optimizer=False)
    hp = {**base.manifest["hyperparams"], "activation": "relu", "net_arch": [32, 48, 16],
          "action_parameterisation": parameterisation}
    torch.manual_seed(11)
    policy = build_policy(hp, 45, 6)
    state = policy.state_dict()
    with torch.no_grad():
        for key in state:
            if key.startswith(("mlp_extractor.policy_net", "action_net")) and key.endswith("weight"):
                state[key].normal_(0.0, 1.5 / state[key].shape[1] ** 0.5)
        state["action_net.weight"] *= 0.3  # pre-clip outputs mostly within +-3, as a trained actor's means
        state["action_net.bias"].uniform_(-0.5, 0.5)
    meta = {k: v for k, v in base.manifest.items() if k not in ("format", "format_version", "files")}
    meta.update(hyperparams=hp, scenarios=["default", "outage"], run_name=f"wild-{parameterisation}")
    return save_checkpoint(folder / "checkpoints" / "best-000000000001", state, base.normalization, meta)


@pytest.fixture(scope="module")
def wild(run_dir: Path, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(checkpoint, exported folder) of a wild policy per action parameterisation."""
    out = {}
    for parameterisation in ("relative", "target"):
        root = tmp_path_factory.mktemp(f"wild-{parameterisation}")
        ckpt = _wild_checkpoint(run_dir, root, parameterisation)
        export_policy(ckpt, root / "exported")
        out[parameterisation] = (ckpt, root / "exported")
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "policy"
    shutil.copytree(src, dst)
    return dst


def _reseal(folder: Path, name: str) -> None:
    """Update policy.json's size and sha256 of ``name`` to match its current bytes (as an attacker could)."""
    meta = json.loads((folder / "policy.json").read_text())
    data = (folder / name).read_bytes()
    meta["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "policy.json").write_text(json.dumps(meta))


# ------------------------------------------------------------------------------ parity
def _sb3_reference(checkpoint_dir: Path):
    """The SB3 path itself: VecNormalize.normalize_obs then ActorCriticPolicy.predict(deterministic=True)."""
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.ppo.parameterisation import ActionLayout, target_to_env_action
    from envs.sb3_vec_env import RationingVecEnv

    ckpt = load_checkpoint(checkpoint_dir, with_optimizer=False)
    policy = build_policy(ckpt.manifest["hyperparams"], 45, 6)
    target = ckpt.manifest["hyperparams"].get("action_parameterisation", "relative") == "target"
    policy.load_state_dict(ckpt.policy_state)
    norm = ckpt.normalization
    vecnorm = VecNormalize(RationingVecEnv(1), training=False, norm_obs=bool(norm["norm_obs"]), norm_reward=False,
                           clip_obs=float(norm["clip_obs"]), epsilon=float(norm["epsilon"]))
    restore_normalization(vecnorm, norm)

    def act(obs: np.ndarray) -> np.ndarray:
        action = policy.predict(vecnorm.normalize_obs(obs), deterministic=True)[0]
        if target:  # the training code's own conversion (train.py's TargetQuotaActions)
            action = target_to_env_action(action, obs, ActionLayout.from_dict(ckpt.manifest["action_layout"]))
        return action

    return act


def _rollouts(reference, steps: int = 256, n_envs: int = 8):
    """>= 10,000 observations from real rollouts of every scenario (randomised on some), with the SB3
    action for each and the quota multipliers the environment sets after that action."""
    rng = np.random.default_rng(0)
    all_obs, all_act, all_quota = [], [], []
    for j, scenario in enumerate(SCENARIOS):
        core = envs.RationingCore(scenario, n_envs, randomize=j % 2 == 1)
        obs = core.reset(np.arange(n_envs, dtype=np.uint64) + 100 * j).copy()
        for _ in range(steps):
            act = reference(obs)
            quota = apply_action(core.params, core.quota_multiplier, act)
            action = act.copy()
            action[n_envs // 2:] = rng.uniform(-1, 1, (n_envs - n_envs // 2, 6))  # half the rows explore
            all_obs.append(obs)
            all_act.append(act)
            all_quota.append(quota)
            obs, *_, info = core.step(action)
            obs = obs.copy()
            np.testing.assert_array_equal(info["quota_multiplier"][: n_envs // 2], quota[: n_envs // 2])
    return np.concatenate(all_obs), np.concatenate(all_act), np.concatenate(all_quota)


@pytest.mark.parametrize("which", ["trained", "wild-relative", "wild-target"])
def test_parity_with_sb3_on_real_rollouts(which, run_dir, exported, wild) -> None:
    ckpt, folder = (run_checkpoint(run_dir), exported) if which == "trained" else wild[which.split("-")[1]]
    obs, ref_action, ref_quota = _rollouts(_sb3_reference(ckpt))
    assert len(obs) >= 10_000
    if which != "trained":  # the actions really cover the range, including the clipped region
        assert ref_action.min() == -1.0 and ref_action.max() == 1.0 and np.mean(np.abs(ref_action) < 0.9) > 0.1
    errors = {}
    for backend in BACKENDS:
        policy = load_policy(folder, backend=backend, obs_names=envs.RationingCore().obs_names)
        action, _ = policy.predict(obs)
        quota = policy.act(obs)
        assert action.dtype == np.float32 and action.shape == ref_action.shape
        errors[backend] = (float(np.abs(action - ref_action).max()), float(np.abs(quota - ref_quota).max()))
        assert errors[backend][0] <= 1e-5, errors
        assert errors[backend][1] <= 1e-5, errors
        # single observations give the same as the batch (float32 sums in another order: the export's own
        # tolerance, not bit equality); act with explicit multipliers too
        for k in (0, 777, len(obs) - 1):
            np.testing.assert_allclose(policy.predict(obs[k])[0], action[k], atol=PARITY_TOLERANCE)
            single_quota = policy.act(obs[k], current=np.exp(obs[k, 39:45]))
            np.testing.assert_allclose(single_quota, quota[k], rtol=PARITY_TOLERANCE)
    print(f"\n{which}: max |action - SB3| and |multiplier - env| over {len(obs)} observations: {errors}")


def test_episode_returns_equal_the_checkpoint(run_dir: Path, exported: Path) -> None:
    """What evaluation measures: full episodes driven by the exported policy score as the checkpoint does
    (loaded by agents.ppo.run_policy, and run exactly as SB3 runs it)."""
    from agents.export.exporter import SB3Reference

    policies = [("checkpoint", load_run_policy(run_dir)),
                ("sb3", SB3Reference(load_checkpoint(run_checkpoint(run_dir), with_optimizer=False))),
                *((b, load_policy(exported, backend=b)) for b in BACKENDS)]
    returns = {}
    for name, policy in policies:
        out = []
        for scenario in ("default", "outage"):
            core = envs.RationingCore(scenario, 4)
            obs = core.reset(np.arange(4, dtype=np.uint64) + 10_000)
            total = np.zeros(4)
            for _ in range(core.params.episode_steps):  # one full week
                obs, reward, *_ = core.step(policy.predict(obs)[0])
                total += reward
            out.append(total)
        returns[name] = np.concatenate(out)
    for backend in BACKENDS:
        for ref in ("checkpoint", "sb3"):
            np.testing.assert_allclose(returns[backend], returns[ref], rtol=1e-5, atol=1e-6)
    rel = {f"{b} vs {r}": float(np.max(np.abs(returns[b] - returns[r]) / np.abs(returns[r])))
           for b in BACKENDS for r in ("checkpoint", "sb3")}
    print(f"\nepisode returns, max relative difference: {rel}")


# ------------------------------------------------------------------------------ safety
class _Payload:
    """Unpickling this runs code: it creates the folder ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _malicious_files(tmp_path: Path, marker: Path) -> dict[str, bytes]:
    import torch

    raw = pickle.dumps(_Payload(marker))
    npz_path = tmp_path / "object.npz"
    np.savez(npz_path, **{"actor.0.weight": np.array([_Payload(marker)], dtype=object)})
    torch_path = tmp_path / "torch.pt"
    torch.save({"actor.0.weight": _Payload(marker)}, torch_path)
    assert zipfile.is_zipfile(torch_path)
    return {"pickle": raw, "npz-object-array": npz_path.read_bytes(), "torch-zip": torch_path.read_bytes()}


def test_payload_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """Control for the safety tests: the payload does create its marker when unpickled."""
    marker = tmp_path / "control-marker"
    for kind, data in _malicious_files(tmp_path, marker).items():
        if kind == "pickle":
            pickle.loads(data)  # noqa: S301 - deliberately, to prove the payload is live
        elif kind == "npz-object-array":
            (tmp_path / "o.npz").write_bytes(data)
            with np.load(tmp_path / "o.npz", allow_pickle=True) as z:
                z["actor.0.weight"]
        else:
            import torch

            torch.load(io.BytesIO(data), weights_only=False)  # the full unpickler, as an unsafe loader would
        assert marker.exists(), kind
        marker.rmdir()


@pytest.mark.parametrize("reseal", [False, True], ids=["checksum-stale", "checksum-updated"])
@pytest.mark.parametrize("target", ["weights.npz", "policy.onnx"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_malicious_pickle_is_never_unpickled(exported, tmp_path, reseal, target, backend) -> None:
    marker = tmp_path / "pwned"
    for kind, data in _malicious_files(tmp_path, marker).items():
        folder = tmp_path / f"policy-{kind}"
        shutil.copytree(exported, folder)
        (folder / target).write_bytes(data)
        if reseal:
            _reseal(folder, target)
        if reseal and target == "policy.onnx" and backend == "numpy":
            policy = load_policy(folder, backend="numpy")  # the numpy path never parses the ONNX file
            assert policy.predict(np.zeros(45, np.float32))[0].shape == (6,)
        else:
            with pytest.raises(PolicyLoadError) as err:
                load_policy(folder, backend=backend)
            msg = str(err.value)
            assert "\n" not in msg and target in msg, msg
            assert ("sha256" in msg or "bytes" in msg) if not reseal else ("not a valid" in msg or "ONNX" in msg), msg
        assert not marker.exists(), f"{kind}: loading ran code from the replaced {target}"


def test_loading_never_calls_pickle(exported: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    for backend in BACKENDS:
        assert load_policy(exported, backend=backend).act(np.zeros((3, 45), np.float32)).shape == (3, 6)


# ----------------------------------------------------------------------------- refusals
def _edit_meta(folder: Path, edit) -> None:
    meta = json.loads((folder / "policy.json").read_text())
    edit(meta)
    (folder / "policy.json").write_text(json.dumps(meta))


def test_bad_folders_are_refused_with_one_line(exported: Path, tmp_path: Path) -> None:
    def flip_byte(f: Path, name: str) -> None:
        data = bytearray((f / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (f / name).write_bytes(bytes(data))

    def truncate(f: Path, name: str) -> None:
        (f / name).write_bytes((f / name).read_bytes()[: -100])

    cases = {
        "wrong checksum weights": (lambda f: flip_byte(f, "weights.npz"), "weights.npz fails its sha256 check"),
        "wrong checksum onnx": (lambda f: flip_byte(f, "policy.onnx"), "policy.onnx fails its sha256 check"),
        "truncated weights": (lambda f: truncate(f, "weights.npz"), "weights.npz is truncated"),
        "truncated onnx": (lambda f: truncate(f, "policy.onnx"), "policy.onnx is truncated"),
        "truncated resealed weights": (lambda f: (truncate(f, "weights.npz"), _reseal(f, "weights.npz")),
                                       "weights.npz is not a valid numpy .npz"),
        "truncated resealed onnx": (lambda f: (truncate(f, "policy.onnx"), _reseal(f, "policy.onnx")),
                                    "policy.onnx is not a loadable ONNX model"),
        "truncated policy.json": (lambda f: (f / "policy.json").write_text((f / "policy.json").read_text()[:500]),
                                  "policy.json is unreadable or not valid JSON"),
        "unknown format_version": (lambda f: _edit_meta(f, lambda m: m.update(format_version=2)),
                                   "format_version 2"),
        "wrong format": (lambda f: _edit_meta(f, lambda m: m.update(format="something-else")),
                         "is not a 'rationing-policy' file"),
        "missing weights": (lambda f: (f / "weights.npz").unlink(), "weights.npz is missing"),
        "no policy.json": (lambda f: (f / "policy.json").unlink(), "no policy.json"),
        "edited normalisation": (lambda f: _edit_meta(f, lambda m: m["normalization"]["obs_mean"].__setitem__(3, 9.0)),
                                 "normalisation statistics differ"),
        "edited mapping": (lambda f: _edit_meta(f, lambda m: m["action"].update(quota_step_factor=3.0)),
                           "quota_log_step"),
        "missing field": (lambda f: _edit_meta(f, lambda m: m.pop("tier_names")), "no field 'tier_names'"),
    }
    for case, (damage, expected) in cases.items():
        folder = tmp_path / case.replace(" ", "-")
        shutil.copytree(exported, folder)
        damage(folder)
        # the numpy backend never parses policy.onnx: it needs only the (checksummed) bytes to be as declared
        for backend in ["onnx"] if case == "truncated resealed onnx" else BACKENDS:
            with pytest.raises(PolicyLoadError) as err:
                load_policy(folder, backend=backend)
            msg = str(err.value)
            assert expected in msg and "\n" not in msg and str(folder) in msg, (case, msg)
    with pytest.raises(PolicyLoadError, match="not a folder"):
        load_policy(tmp_path / "nowhere")


def test_observation_layout_is_compared_by_name(exported: Path) -> None:
    names = envs.RationingCore("outage").obs_names
    policy = load_policy(exported, obs_names=names)  # every shipped scenario has the same layout
    swapped = list(names)
    swapped[10], swapped[11] = swapped[11], swapped[10]  # same size, different meaning
    with pytest.raises(PolicyLoadError, match=r"at index 10: the policy expects 'demand/pro', the environment "
                                              r"has 'demand/max'"):
        load_policy(exported, obs_names=swapped)
    with pytest.raises(PolicyLoadError, match="index 45: the policy expects nothing"):
        policy.check_layout([*names, "extra"])
    with pytest.raises(PolicyLoadError, match="made for Rationing-v0 version 0"):
        load_policy(exported, env_id="Rationing-v0", env_version=1)
    with pytest.raises(ValueError, match=r"expected \(45,\) or \(N, 45\)"):
        policy.predict(np.zeros(44, np.float32))
    with pytest.raises(ValueError, match="deterministic"):
        policy.predict(np.zeros(45, np.float32), deterministic=False)


def test_policy_json_describes_everything(exported: Path, run_dir: Path) -> None:
    meta = json.loads((exported / "policy.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    assert is_exported(exported) and not is_exported(run_dir)
    assert (meta["format"], meta["format_version"]) == ("rationing-policy", 1)
    assert (meta["env_id"], meta["env_version"]) == (envs.ENV_ID, envs.ENV_VERSION)
    assert meta["observation"]["names"] == run["obs_names"] and meta["tier_names"] == run["tier_names"]
    entries = meta["observation"]["entries"]
    assert [e["name"] for e in entries] == run["obs_names"]
    assert all(e["meaning"] != "undocumented" and e["unit"] and e["low"] <= e["high"] for e in entries)
    assert meta["action"]["quota_step_factor"] == 2.0 and meta["action"]["quota_min"] == 0.05
    assert meta["action"]["quota_obs_indices"] == list(range(39, 45))
    assert len(meta["normalization"]["obs_mean"]) == 45 and meta["normalization"]["clip_obs"] == 10.0
    assert meta["action"]["parameterisation"] == run["hyperparams"].get("action_parameterisation", "relative")
    t = meta["training"]
    assert t["scenarios"] == ["default"] and t["seed"] == 5 and t["git_commit"] == run["git_commit"]
    for name in ("policy.onnx", "weights.npz"):
        assert meta["files"][name]["sha256"] == hashlib.sha256((exported / name).read_bytes()).hexdigest()
    check = meta["export"]["parity_check"]
    assert check["observations"] >= 1000 and check["max_abs_action_error_onnx"] <= 1e-5
    import onnx

    model = onnx.load(str(exported / "policy.onnx"))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["obs_names"]) == run["obs_names"] and props["format"] == "rationing-policy"


# ---------------------------------------------------------------------- import hygiene
@pytest.mark.parametrize("backend", BACKENDS)
def test_loader_imports_neither_sb3_nor_torch(exported: Path, backend: str) -> None:
    code = (
        "import sys, numpy as np\n"
        "import agents.export.exported as e\n"
        f"p = e.load_policy({str(exported)!r}, backend={backend!r})\n"
        "print(p.act(np.zeros(45, np.float32)).shape)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'stable_baselines3', 'gymnasium', "
        "'envs', 'safetensors', 'onnx'})\n"
        "print('heavy', heavy)\n"
    )
    res = _run("-c", code)
    assert res.returncode == 0, res.stderr
    assert "(6,)" in res.stdout and "heavy []" in res.stdout, res.stdout


# ----------------------------------------------------------------------- CLI and files
def test_cli_bad_input_is_one_line_exit_2(run_dir: Path, tmp_path: Path) -> None:
    res = _run("-m", "agents.export", str(tmp_path), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "neither a run folder" in res.stderr
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad, ignore=shutil.ignore_patterns("tb"))
    with open(run_checkpoint(bad) / "policy.safetensors", "ab") as f:
        f.write(b"junk")
    res = _run("-m", "agents.export", str(bad), "--out", str(tmp_path / "y"))
    assert res.returncode == 2 and "fails its sha256 check" in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "y").exists()


def test_export_is_atomic_and_does_not_overwrite(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import agents.export.exporter as export

    out = tmp_path / "out"
    first = export_policy(run_dir, out, kind="final")
    assert first["training"]["checkpoint"].startswith("final-")
    with pytest.raises(export.ExportError, match="already exists"):
        export_policy(run_dir, out)

    def broken(*args, **kwargs):
        raise export.ExportError("simulated failure")

    monkeypatch.setattr(export, "parity_check", broken)
    with pytest.raises(export.ExportError, match="simulated"):
        export_policy(run_dir, out, force=True)
    assert json.loads((out / "policy.json").read_text())["created"] == first["created"]  # old folder intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left behind
    monkeypatch.undo()
    export_policy(run_dir, out, kind="latest", force=True)
    assert json.loads((out / "policy.json").read_text())["training"]["checkpoint"].startswith("latest-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_example_and_benchmark_run(exported: Path) -> None:
    res = _run(str(ROOT / "examples" / "embed_policy.py"), str(exported), "--steps", "24")
    assert res.returncode == 0, res.stderr
    assert "quota multipliers" in res.stdout
    res = _run(str(ROOT / "benchmarks" / "policy_inference.py"), str(exported), "--seconds", "0.05")
    assert res.returncode == 0, res.stderr
    assert "decisions/s" in res.stdout and "onnx" in res.stdout and "numpy" in res.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_observations_are_refused_with_one_line(exported: Path, backend: str) -> None:
    policy = load_policy(exported, backend=backend)
    obs = np.zeros((3, policy.obs_size), np.float32)
    assert np.all(np.isfinite(policy.act(obs)))
    for bad, k, row in ((np.nan, 7, None), (np.inf, 12, 2), (-np.inf, 0, 1)):
        x = obs.copy()
        x[row if row is not None else 0, k] = bad
        x = x[0] if row is None else x
        for call in (policy.act, lambda o: policy.predict(o)[0]):
            with pytest.raises(ObservationError) as err:
                call(x)
            msg = str(err.value)
            assert isinstance(err.value, ValueError) and "\n" not in msg, msg
            where = f"obs[{k}]" if row is None else f"obs[{row}][{k}]"
            assert msg.startswith(f"{where} ({policy.obs_names[k]}) is {np.float32(bad)}"), msg


def test_onnx_backend_without_onnxruntime_says_what_to_install(exported: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(PolicyLoadError) as err:
        load_policy(exported, backend="onnx")
    msg = str(err.value)
    assert "pip install onnxruntime" in msg and "backend='numpy'" in msg and "\n" not in msg, msg
    assert load_policy(exported, backend="auto").backend == "numpy"


def test_example_given_a_run_folder_says_to_export_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's agents/, not an installed one
    for folder, expected in ((ROOT / "checkpoints" / "ppo-v0", "python -m agents.export"),
                             (tmp_path, "not an exported policy folder")):
        res = subprocess.run([sys.executable, str(ROOT / "examples" / "embed_policy.py"), str(folder)],
                             capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
        assert res.returncode == 1 and res.stdout == "", res
        assert res.stderr.count("\n") <= 1 and expected in res.stderr and str(folder) in res.stderr, res.stderr
    with pytest.raises(PolicyLoadError, match=r"a run or checkpoint, not an export: run `python -m agents.export "):
        load_policy(ROOT / "checkpoints" / "ppo-v0")


def test_weights_hold_the_checkpoint_statistics(run_dir: Path, exported: Path) -> None:
    """Normalisation statistics are the checkpoint's, in float64, as VecNormalize uses them."""
    norm = load_checkpoint(run_checkpoint(run_dir), with_optimizer=False).normalization
    with np.load(exported / "weights.npz", allow_pickle=False) as w:
        np.testing.assert_array_equal(w["obs_mean"], norm["obs_mean"])
        np.testing.assert_array_equal(w["obs_std"], np.sqrt(norm["obs_var"] + norm["epsilon"]))
        assert w["obs_clip"] == norm["clip_obs"] and w["actor.0.weight"].dtype == np.float32


def test_shipped_v1_residual_policy_is_refused_with_one_line_and_v0_exports_with_parity(tmp_path: Path) -> None:
    """The shipped v1 policy corrects a rule that reads the scenario: the format cannot carry it."""
    from agents.export.exporter import ExportError

    root = Path(__file__).resolve().parents[2] / "checkpoints"
    with pytest.raises(ExportError, match="corrects the rule 'fair-share-tod'") as err:
        export_policy(root / "ppo-v1", tmp_path / "v1")
    assert "\n" not in str(err.value) and not (tmp_path / "v1").exists()
    meta = export_policy(root / "ppo-v0", tmp_path / "v0")
    assert meta["env_id"] == "Rationing-v0" and meta["env_version"] == 0
    policy = load_policy(tmp_path / "v0", obs_names=envs.RationingCore("default", 1).obs_names,
                         env_id="Rationing-v0", env_version=0)
    core = envs.RationingCore("outage", 4)
    obs = core.reset(np.arange(4, dtype=np.uint64))
    reference = load_run_policy(root / "ppo-v0")
    for _ in range(48):
        action = policy.predict(obs)[0]
        np.testing.assert_allclose(action, reference.predict(obs)[0], atol=1e-5)
        obs = core.step(action)[0]
    with pytest.raises(PolicyLoadError, match="made for Rationing-v0 version 0"):
        load_policy(tmp_path / "v0", env_id="Rationing-v1", env_version=1)
