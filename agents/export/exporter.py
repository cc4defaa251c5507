"""Export a trained policy as a self-describing folder that loads without stable-baselines3.

    python -m agents.export checkpoints/<run> --out exported/<name>            # best checkpoint
    python -m agents.export checkpoints/<run> --out DIR --checkpoint final     # or latest
    python -m agents.export checkpoints/<run>/checkpoints/best-000004000000 --out DIR

The folder (format ``rationing-policy`` version 1, read by :mod:`agents.export.exported`)::

    policy.onnx    the deterministic actor as one ONNX graph (opset 17), input ``obs`` (N, obs_size)
                   float32 raw observations; outputs ``action`` (N, T) in [-1, 1] (the environment
                   action the checkpoint's policy returns: the SB3 model's deterministic action,
                   converted by the run's action parameterisation, relative or target),
                   ``quota_factor`` = quota_step_factor ** action and ``quota_multiplier`` =
                   clip(exp(obs[quota/<tier>]) x quota_factor, quota_min, quota_max), the quota
                   multipliers the environment sets next
    weights.npz    the same numbers as plain arrays (no pickle): float64 obs_mean, obs_std, obs_clip
                   (normalisation runs in float64, as in VecNormalize); float32 weight (out, in) and
                   bias of each layer, quota_log_step, quota_min, quota_max, quota_log_min, quota_log_max
    policy.json    environment id/version, observation layout (name, meaning, unit, bounds of every
                   index), action meaning, bounds, parameterisation and mapping, tier names,
                   normalisation statistics, network layout, training scenarios, seed, git commit,
                   timesteps, versions, the size and sha256 of both files, and the export's parity check

The graph is assembled with ``onnx.helper`` from the checkpoint's arrays (no tracing:
torch 2.13's default exporter needs onnxscript and the TorchScript one is deprecated).
Before the folder is published, both loaders (numpy and onnxruntime) are checked
against the checkpoint run the way training ran it (:class:`SB3Reference`:
VecNormalize's float64 normalisation, SB3's deterministic ``predict``, the action
parameterisation) on observations from short rollouts of the training scenarios; a
difference above 1e-5 aborts the export. The folder is written beside ``--out`` and
renamed into place, so it is either complete or absent.
Bad input prints ``error: ...`` (one line) on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.cli import OneLineParser
from agents.common.files import fsync_dir, remove_stale_temporaries, sha256
from agents.common.provenance import versions
from agents.export.describe import KINDS, ExportError, _scenario_params, describe_observation, resolve_source
from agents.export.exported import (
    FORMAT,
    FORMAT_VERSION,
    ONNX_FILE,
    ONNX_INPUT,
    POLICY_JSON,
    WEIGHTS_FILE,
    PolicyLoadError,
)
from agents.export.onnx_graph import OPSET, actor_layers, build_onnx
from agents.export.parity import SB3Reference, parity_check, rollout_observations
from agents.ppo.checkpoint import CheckpointError, load_checkpoint

_EXPORT_MODULES = ("numpy", "onnx", "onnxruntime", "torch", "stable_baselines3")


# ------------------------------------------------------------------------- write
def export_policy(source: str | Path, out: str | Path, kind: str | None = None, force: bool = False,
                  check: bool = True) -> dict[str, Any]:
    """Export a run (its ``kind`` checkpoint, default best/final/latest) or a checkpoint folder to ``out``.

    Returns the written ``policy.json`` content.
    """
    out = Path(out)
    folder, run = resolve_source(source, kind)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or force)):
        raise ExportError(f"--out {str(out)!r} already exists (use --force to replace it)")
    if out.exists() and any(out.iterdir()) and not (out / POLICY_JSON).is_file():
        raise ExportError(f"--out {str(out)!r} is a non-empty folder that is not an exported policy; not replacing it")
    ckpt = load_checkpoint(folder, with_optimizer=False)
    m = ckpt.manifest
    obs_names, tier_names = list(m["obs_names"]), list(m["tier_names"])
    scenarios = list(m.get("scenarios") or (run or {}).get("scenarios") or [])
    if not scenarios:
        raise ExportError(f"checkpoint {str(folder)!r} records no training scenario (needed for the action mapping)")
    overrides = (run or {}).get("reward_overrides") or None
    parameterisation = m["hyperparams"].get("action_parameterisation", "relative")  # as PPOPolicy reads it
    if m.get("preference"):
        raise ExportError(f"checkpoint {str(folder)!r} is preference-conditioned (its weights are inputs after the "
                          f"observation); format version {FORMAT_VERSION} exports fixed-weight policies only: evaluate "
                          "its run folder (PATH@margin=..,latency=..,churn=..)")
    if parameterisation == "residual":
        raise ExportError(f"checkpoint {str(folder)!r} corrects the rule {(m.get('residual') or {}).get('rule')!r}, "
                          f"which reads the scenario's facts; format version {FORMAT_VERSION} exports network-only "
                          "policies: evaluate its run folder")
    if parameterisation not in ("relative", "target"):
        raise ExportError(f"checkpoint {str(folder)!r}: unknown action_parameterisation {parameterisation!r}")
    if parameterisation == "target" and not isinstance(m.get("action_layout"), dict):
        raise ExportError(f"checkpoint {str(folder)!r}: target parameterisation without an action_layout")
    version = int(m.get("env_version", 0))
    if int((m.get("action_layout") or {}).get("n_extra", 0)):
        raise ExportError(f"checkpoint {str(folder)!r} acts on burst capacity too (action.burst: policy); "
                          f"format version {FORMAT_VERSION} exports quota policies only: evaluate its run folder")
    params = _scenario_params(scenarios, overrides, obs_names, m.get("action_layout"), version)[0]
    reference = SB3Reference(ckpt)  # also checks the weights against the architecture

    norm = ckpt.normalization
    norm_on = bool(norm["norm_obs"])
    T, D = len(tier_names), len(obs_names)
    quota_idx = [obs_names.index(f"quota/{t}") for t in tier_names]
    quota_step_factor = float(params.scenario.action.quota_step_factor)
    w: dict[str, np.ndarray] = {
        "obs_mean": reference.obs_mean if norm_on else np.zeros(D),
        "obs_std": reference.obs_std if norm_on else np.ones(D),
        "obs_clip": np.float64(reference.clip_obs) if norm_on else np.float64(np.inf),
        "quota_log_step": np.float32(math.log(quota_step_factor)),
        "quota_min": np.float32(params.quota_min),
        "quota_max": np.float32(params.quota_max),
        "quota_log_min": np.float32(math.log(params.quota_min)),
        "quota_log_max": np.float32(math.log(params.quota_max)),
    }
    layers = []
    for name, W, b, act in actor_layers(ckpt.policy_state, m["hyperparams"]):
        w[f"{name}.weight"], w[f"{name}.bias"] = W, b
        layers.append({"weight": f"{name}.weight", "bias": f"{name}.bias", "in": int(W.shape[1]),
                       "out": int(W.shape[0]), "activation": act})

    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": f"{m.get('run_name')}/{folder.name}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "env_id": m["env_id"],
        "env_version": m["env_version"],
        "tier_names": tier_names,
        "observation": {
            "size": D, "dtype": "float32", "names": obs_names,
            "note": "raw environment observation (before normalisation); the environment clips each entry to "
                    "[low, high]",
            "entries": describe_observation(obs_names, params.obs_low, params.obs_high),
        },
        "action": {
            "size": T, "dtype": "float32", "low": -1.0, "high": 1.0, "names": tier_names,
            "meaning": "entry i is tier i's log-quota change in units of log(quota_step_factor): the environment "
                       "sets new_multiplier_i = clip(current_multiplier_i * quota_step_factor ** action_i, "
                       "quota_min, quota_max); 0 keeps the quota",
            "quota_step_factor": quota_step_factor, "quota_min": params.quota_min, "quota_max": params.quota_max,
            "current_multiplier": "exp(obs[quota_obs_indices]) (observation entries quota/<tier> hold "
                                  "log(multiplier))",
            "quota_obs_indices": quota_idx,
            "float32": "the environment computes the mapping in float32 as exp(float32(log(quota_step_factor)) * "
                       "action) * current, then clips",
            "parameterisation": parameterisation,
            "parameterisation_meaning": {
                "relative": "the network output t = clip(mlp(obs), -1, 1) is the action",
                "target": "the network output t = clip(mlp(obs), -1, 1) picks a target multiplier: log target = "
                          "t * (-log quota_min) if t < 0 else t * log quota_max (float32 constants quota_log_min, "
                          "quota_log_max in weights.npz; t = 0 is nominal); action = clip((log target - "
                          "obs[quota_obs_indices]) / log quota_step_factor, -1, 1) (agents/ppo/parameterisation.py)",
            }[parameterisation],
        },
        "normalization": ({
            "enabled": True,
            "formula": "float32(clip((float64(obs) - obs_mean) / sqrt(obs_var + epsilon), -clip_obs, clip_obs)), "
                       "in float64 as stable-baselines3's VecNormalize (weights.npz: obs_mean, obs_std = "
                       "sqrt(obs_var + epsilon), obs_clip, float64)",
            "obs_mean": np.asarray(norm["obs_mean"], np.float64).tolist(),
            "obs_var": np.asarray(norm["obs_var"], np.float64).tolist(),
            "epsilon": float(norm["epsilon"]), "clip_obs": float(norm["clip_obs"]),
            "count": float(norm["obs_count"]),
        } if norm_on else {"enabled": False, "formula": "none: the network takes raw observations"}),
        "network": {
            "kind": "stable-baselines3 ActorCriticPolicy actor, deterministic (distribution mean), no squashing",
            "formula": "h = normalised obs; per layer h = activation(h @ weight.T + bias); t = clip(h, -1, 1); "
                       "action from t by action.parameterisation",
            "layers": layers,
        },
        "onnx": {
            "file": ONNX_FILE, "opset": OPSET, "input": {ONNX_INPUT: ["batch", D]},
            "outputs": {"action": ["batch", T], "quota_factor": ["batch", T], "quota_multiplier": ["batch", T]},
            "outputs_meaning": {
                "action": "deterministic action in [-1, 1] (what stable-baselines3 predict returns)",
                "quota_factor": "quota_step_factor ** action",
                "quota_multiplier": "clip(exp(obs[quota_obs_indices]) * quota_factor, quota_min, quota_max): the "
                                    "quota multipliers the environment sets",
            },
        },
        "training": {
            "run_name": m.get("run_name"),
            "checkpoint": folder.name,
            "checkpoint_files_sha256": m.get("files"),
            "timesteps": m.get("timesteps"),
            "scenarios": scenarios,
            "scenario_action": {"quota_step_factor": quota_step_factor, "quota_min": params.quota_min,
                                "quota_max": params.quota_max},
            "reward_overrides": overrides or {},
            "seed": m.get("seed"),
            "git_commit": m.get("git_commit"),
            "hyperparams": m.get("hyperparams"),
            "versions": (run or {}).get("versions"),
            "best_score": {k: m.get(k) for k in ("score", "returns") if k in m} or None,
        },
        "export": {"tool": "python -m agents.export", "versions": versions(_EXPORT_MODULES)},
        "files": {},
    }
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "env_id": str(m["env_id"]),
                "env_version": str(m["env_version"]), "obs_names": json.dumps(obs_names),
                "tier_names": json.dumps(tier_names)}
    onnx_bytes = build_onnx(w, layers, norm_on, quota_idx, D, T, metadata, target=parameterisation == "target")

    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(out.parent, prefix=f".{out.name}."):  # left by a killed export
        print(f"removed {stale.name}, left by an interrupted export", file=sys.stderr)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        (tmp / ONNX_FILE).write_bytes(onnx_bytes)
        with open(tmp / WEIGHTS_FILE, "wb") as f:
            np.savez(f, **w)
        meta["files"] = {name: {"sha256": sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                         for name in (ONNX_FILE, WEIGHTS_FILE)}
        _write_json(tmp / POLICY_JSON, meta)
        if check:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # batches of 16: extra threads only cost time (badly on a busy machine)
            try:
                obs = rollout_observations(reference, scenarios, overrides, version=version)
                meta["export"]["parity_check"] = parity_check(tmp, reference, obs)
            finally:
                torch.set_num_threads(threads)
            _write_json(tmp / POLICY_JSON, meta)
        for name in (ONNX_FILE, WEIGHTS_FILE, POLICY_JSON):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(tmp)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m agents.export", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="a run folder (checkpoints/<run>) or a "
                        "checkpoint folder (checkpoints/<run>/checkpoints/<kind>-<timesteps>)")
    parser.add_argument("--out", required=True, help="the folder to write (created; see --force)")
    parser.add_argument("--checkpoint", choices=KINDS, default=None,
                        help="which checkpoint of a run (default: best, else final, else latest)")
    parser.add_argument("--force", action="store_true", help="replace an existing exported folder at --out")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the parity check against the stable-baselines3 policy")
    args = parser.parse_args(argv)
    from envs import ScenarioError
    from envs.trace import TraceError

    try:
        meta = export_policy(args.source, args.out, args.checkpoint, force=args.force, check=args.check)
    except (ExportError, CheckpointError, PolicyLoadError, ScenarioError, TraceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check = meta["export"].get("parity_check")
    line = f"exported {meta['name']} ({meta['training']['timesteps']} timesteps) -> {args.out}"
    if check:
        line += (f" | parity vs SB3 on {check['observations']} rollout observations: max |action error| "
                 f"numpy {check['max_abs_action_error_numpy']:.2g}, onnx {check['max_abs_action_error_onnx']:.2g}")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
