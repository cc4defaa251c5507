"""Export a trained policy as a self-describing folder that loads without stable-baselines3.

    python -m agents.export checkpoints/<run> --out exported/<name>            # best checkpoint
    python -m agents.export checkpoints/<run> --out DIR --checkpoint final     # or latest
    python -m agents.export checkpoints/<run>/checkpoints/best-000004000000 --out DIR

The folder (format ``rationing-policy`` version 1, read by :mod:`agents.exported`)::

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
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import CheckpointError, _fsync_dir, load_checkpoint, pointer, sha256
from .cli import OneLineParser
from .exported import (
    FORMAT,
    FORMAT_VERSION,
    ONNX_FILE,
    ONNX_INPUT,
    ONNX_OUTPUTS,
    POLICY_JSON,
    WEIGHTS_FILE,
    PolicyLoadError,
    load_policy,
)
from .ppo_policy import RUN_FILE, read_run, run_checkpoint
from .provenance import versions

_EXPORT_MODULES = ("numpy", "onnx", "onnxruntime", "torch", "stable_baselines3")

OPSET = 17
IR_VERSION = 8  # loadable by onnxruntime >= 1.10
PARITY_TOLERANCE = 1e-5
KINDS = ("best", "final", "latest")


class ExportError(ValueError):
    """A policy that cannot be exported; the message is one line."""


# ------------------------------------------------------------------ observation docs
#: meaning and unit of each observation entry, by name (or name prefix before "/").
OBS_DOC: dict[str, tuple[str, str]] = {
    "hour_sin": ("time of day: sin(2 pi hour / 24)", "1"),
    "hour_cos": ("time of day: cos(2 pi hour / 24)", "1"),
    "week_sin": ("time of week: sin(2 pi hour_of_week / 168), hour_of_week 0 = Monday 00:00", "1"),
    "week_cos": ("time of week: cos(2 pi hour_of_week / 168), hour_of_week 0 = Monday 00:00", "1"),
    "capacity": ("GPUs available from provider {x} / GPUs contracted from it", "ratio"),
    "burst_capacity": ("burst GPUs / total contracted GPUs", "ratio"),
    "utilisation": ("tokens served / capacity tokens, last step", "ratio"),
    "collapsed": ("1 while the service is collapsed, else 0", "flag"),
    "demand": ("demand tokens of tier {x} this step / its week-average demand tokens per step", "ratio"),
    "queue": ("queued tokens of tier {x} / nominal capacity tokens per step", "ratio"),
    "latency_over_target": ("log(mean latency of tier {x} / its latency target)", "log ratio"),
    "throttled_share": ("share of tier {x}'s users hitting their quota", "share 0..1"),
    "users": ("users of tier {x} / users at episode start", "ratio"),
    "quota": ("log(quota multiplier of tier {x}); multiplier 1 = the scenario's nominal "
              "quota_tokens_per_user_hour", "log multiplier"),
}


def describe_observation(names: list[str], low: np.ndarray, high: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(names):
        head, _, tail = name.partition("/")
        meaning, unit = OBS_DOC.get(name) or OBS_DOC.get(head) or ("undocumented", "?")
        out.append({"index": i, "name": name, "meaning": meaning.replace("{x}", repr(tail)), "unit": unit,
                    "low": float(low[i]), "high": float(high[i])})
    return out


# ------------------------------------------------------------------------ source
def resolve_source(source: str | Path, kind: str | None) -> tuple[Path, dict[str, Any] | None]:
    """The checkpoint folder to export and its run's ``run.json`` (None if not found)."""
    src = Path(source)
    if (src / RUN_FILE).is_file():
        run = read_run(src)
        if kind is None:
            return run_checkpoint(src), run
        folder = pointer(src, kind)
        if folder is None:
            raise ExportError(f"run {str(src)!r} has no {kind} checkpoint ({kind}.json is missing)")
        return folder, run
    if (src / "manifest.json").is_file():
        if kind is not None:
            raise ExportError(f"--checkpoint {kind} applies to a run folder; {str(src)!r} is a checkpoint folder")
        run_dir = src.resolve().parent.parent
        run = read_run(run_dir) if (run_dir / RUN_FILE).is_file() else None
        return src, run
    if not src.exists():
        raise ExportError(f"{str(src)!r} does not exist")
    raise ExportError(f"{str(src)!r} is neither a run folder (run.json) nor a checkpoint folder (manifest.json)")


def _scenario_params(scenarios: list[str], overrides: dict[str, Any] | None, obs_names: list[str],
                     layout: dict[str, Any] | None):
    """Compiled params of each training scenario; all must share the layout and the action mapping
    (and match the checkpoint's ``action_layout`` if it records one)."""
    import envs
    from envs.observation import names as obs_layout
    from envs.observation import tier_block
    from envs.params import compile_params

    out = []
    for s in scenarios:
        try:
            params = compile_params(envs.load_scenario(s, overrides or None))
        except envs.ScenarioError as exc:
            raise ExportError(f"cannot load training scenario {s!r} to read its action mapping: {exc}") from None
        if obs_layout(params.provider_names, params.tier_names) != obs_names:
            raise ExportError(f"training scenario {s!r} has another observation layout than the checkpoint's")
        out.append(params)
    first = out[0]
    for s, p in zip(scenarios, out):
        if (p.log_quota_step, p.quota_min, p.quota_max) != (first.log_quota_step, first.quota_min, first.quota_max):
            raise ExportError(f"training scenarios {scenarios[0]!r} and {s!r} map actions differently "
                              "(quota_step_factor / quota_min / quota_max); export a single-scenario run")
        if layout is not None:
            mine = (tier_block(p, "quota").start, p.n_tiers, p.quota_min, p.quota_max)
            theirs = (layout.get("quota_obs_start"), layout.get("n_tiers"), layout.get("quota_min"),
                      layout.get("quota_max"))
            step = layout.get("quota_step_factor")
            if mine != theirs or not isinstance(step, (int, float)) or \
                    not math.isclose(math.log(step), p.log_quota_step, rel_tol=1e-12):
                raise ExportError(f"training scenario {s!r} now maps actions differently from the checkpoint's "
                                  f"action_layout {layout}; the scenario changed since training")
    return out


def actor_layers(state: dict[str, Any], hyperparams: dict[str, Any]) -> list[tuple[str, np.ndarray, np.ndarray,
                                                                                    str | None]]:
    """(name, weight, bias, activation) of each actor layer from an SB3 ActorCriticPolicy state dict."""
    allowed = re.compile(r"^(mlp_extractor\.(policy|value)_net\.\d+\.(weight|bias)|action_net\.(weight|bias)|"
                         r"value_net\.(weight|bias)|log_std)$")
    unknown = sorted(k for k in state if not allowed.match(k))
    if unknown:
        raise ExportError(f"unsupported policy architecture: unexpected parameters {unknown[:3]} "
                          "(only the MLP policy with a flatten feature extractor can be exported)")
    activation = hyperparams.get("activation")
    if activation not in ("tanh", "relu"):
        raise ExportError(f"unsupported activation {activation!r} (tanh or relu)")
    idx = sorted({int(k.split(".")[2]) for k in state if k.startswith("mlp_extractor.policy_net.")})
    arch = hyperparams.get("net_arch")
    pi_arch = arch.get("pi") if isinstance(arch, dict) else arch
    if pi_arch is not None and len(pi_arch) != len(idx):
        raise ExportError(f"policy weights have {len(idx)} hidden layers, hyperparams net_arch says {pi_arch}")

    def arr(key: str) -> np.ndarray:
        return state[key].detach().cpu().numpy().astype(np.float32)

    layers = [(f"actor.{n}", arr(f"mlp_extractor.policy_net.{i}.weight"), arr(f"mlp_extractor.policy_net.{i}.bias"),
               activation) for n, i in enumerate(idx)]
    layers.append(("action", arr("action_net.weight"), arr("action_net.bias"), None))
    return layers


# -------------------------------------------------------------------------- ONNX
def build_onnx(w: dict[str, np.ndarray], layers: list[dict[str, Any]], norm: bool, quota_idx: list[int],
               obs_size: int, n_tiers: int, metadata: dict[str, str], target: bool = False) -> bytes:
    """The actor graph: obs -> normalise -> MLP -> clip [-> target conversion] -> quota mapping, serialised."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = np.float32
    consts = {
        "neg_obs_clip": -w["obs_clip"], "obs_clip": w["obs_clip"], "obs_mean": w["obs_mean"], "obs_std": w["obs_std"],
        "action_low": f32(-1.0), "action_high": f32(1.0), "quota_log_step": w["quota_log_step"],
        "quota_min": w["quota_min"], "quota_max": w["quota_max"], "quota_log_min": w["quota_log_min"],
        "quota_log_max": w["quota_log_max"], "zero": f32(0.0), "quota_obs_indices": np.asarray(quota_idx, np.int64),
    }
    for layer in layers:
        consts[layer["weight"]], consts[layer["bias"]] = w[layer["weight"]], w[layer["bias"]]
    inits = [numpy_helper.from_array(np.asarray(v), name=k) for k, v in consts.items()]
    node = helper.make_node
    nodes = []
    h = ONNX_INPUT
    if norm:  # VecNormalize, in float64: clip((obs - mean) / sqrt(var + eps), -clip, clip), then float32
        nodes += [node("Cast", [h], ["obs_float64"], to=TensorProto.DOUBLE),
                  node("Sub", ["obs_float64", "obs_mean"], ["obs_centred"]),
                  node("Div", ["obs_centred", "obs_std"], ["obs_scaled"]),
                  node("Clip", ["obs_scaled", "neg_obs_clip", "obs_clip"], ["obs_normalised64"]),
                  node("Cast", ["obs_normalised64"], ["obs_normalised"], to=TensorProto.FLOAT)]
        h = "obs_normalised"
    for k, layer in enumerate(layers):
        z = f"layer{k}_linear"
        nodes.append(node("Gemm", [h, layer["weight"], layer["bias"]], [z], transB=1))
        h = z
        if layer["activation"] is not None:
            nodes.append(node({"tanh": "Tanh", "relu": "Relu"}[layer["activation"]], [z], [f"layer{k}_out"]))
            h = f"layer{k}_out"
    nodes += [node("Clip", [h, "action_low", "action_high"], ["network_action" if target else "action"]),
              node("Gather", [ONNX_INPUT, "quota_obs_indices"], ["log_quota_now"], axis=1)]
    if target:  # agents/parameterisation.py: target multiplier -> relative env action
        nodes += [
            node("Neg", ["network_action"], ["neg_t"]),
            node("Mul", ["neg_t", "quota_log_min"], ["log_target_low"]),
            node("Mul", ["network_action", "quota_log_max"], ["log_target_high"]),
            node("Less", ["network_action", "zero"], ["t_negative"]),
            node("Where", ["t_negative", "log_target_low", "log_target_high"], ["log_target"]),
            node("Sub", ["log_target", "log_quota_now"], ["log_change"]),
            node("Div", ["log_change", "quota_log_step"], ["steps_to_target"]),
            node("Clip", ["steps_to_target", "action_low", "action_high"], ["action"]),
        ]
    nodes += [
        node("Mul", ["action", "quota_log_step"], ["log_quota_factor"]),
        node("Exp", ["log_quota_factor"], ["quota_factor"]),
        node("Exp", ["log_quota_now"], ["quota_now"]),
        node("Mul", ["quota_factor", "quota_now"], ["quota_unclipped"]),
        node("Clip", ["quota_unclipped", "quota_min", "quota_max"], ["quota_multiplier"]),
    ]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n_tiers]) for name in ONNX_OUTPUTS]
    graph = helper.make_graph(
        nodes, "rationing_policy",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", obs_size])], outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="agents.export",
                              doc_string="Deterministic rationing policy; policy.json beside it describes "
                                         "inputs and outputs.")
    model.ir_version = IR_VERSION
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


# ---------------------------------------------------------------------- parity
def rollout_observations(policy, scenarios: list[str], overrides: dict[str, Any] | None, n_envs: int = 16,
                         steps: int = 64, seed: int = 7_000_000) -> np.ndarray:
    """Observations of short rollouts of each scenario, half the rows driven by ``policy``, half random."""
    import envs

    rng = np.random.default_rng(seed)
    out = []
    for j, s in enumerate(scenarios):
        core = envs.RationingCore(s, n_envs, overrides=overrides or None)
        obs = core.reset(np.arange(n_envs, dtype=np.uint64) + seed + 1000 * j).copy()
        for _ in range(steps):
            out.append(obs.copy())
            action, _ = policy.predict(obs)
            action[n_envs // 2:] = rng.uniform(-1, 1, (n_envs - n_envs // 2, core.n_tiers))
            obs = core.step(action)[0].copy()
    return np.concatenate(out)


class SB3Reference:
    """A checkpoint's policy exactly as training ran it: VecNormalize's normalisation (float64), the SB3
    ``ActorCriticPolicy.predict(deterministic=True)`` (clipped to the action space), then the run's action
    parameterisation (``agents.parameterisation.target_to_env_action`` for ``target``)."""

    def __init__(self, ckpt) -> None:
        from .ppo_policy import build_policy

        m = ckpt.manifest
        self.policy = build_policy(m["hyperparams"], len(m["obs_names"]), len(m["tier_names"]))
        try:
            self.policy.load_state_dict(ckpt.policy_state, strict=True)
        except RuntimeError:
            raise CheckpointError(f"checkpoint {str(ckpt.path)!r}: weights do not match the architecture in its "
                                  "manifest") from None
        norm = ckpt.normalization
        self.norm_obs, self.clip_obs = bool(norm["norm_obs"]), float(norm["clip_obs"])
        self.obs_mean = np.asarray(norm["obs_mean"], np.float64)
        self.obs_std = np.sqrt(np.asarray(norm["obs_var"], np.float64) + float(norm["epsilon"]))
        self.layout = None
        if m["hyperparams"].get("action_parameterisation", "relative") == "target":
            from .parameterisation import ActionLayout

            self.layout = ActionLayout.from_dict(m["action_layout"])

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``VecNormalize.normalize_obs``: float32 obs - float64 mean, / float64 std, clip."""
        if not self.norm_obs:
            return obs
        return np.clip((obs - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        x = obs.reshape(1, -1) if single else obs
        action = self.policy.predict(self.normalize(x), deterministic=True)[0]
        if self.layout is not None:
            from .parameterisation import target_to_env_action

            action = target_to_env_action(action, x, self.layout)
        return (action[0] if single else action), state


def parity_check(folder: Path, reference: SB3Reference, obs: np.ndarray) -> dict[str, Any]:
    """Max |action difference| of both exported backends against ``reference`` (the SB3 policy)."""
    ref, _ = reference.predict(obs)
    result: dict[str, Any] = {"observations": int(len(obs)), "reference": "stable-baselines3: VecNormalize "
                              "normalisation, ActorCriticPolicy.predict(deterministic=True), action parameterisation",
                              "tolerance": PARITY_TOLERANCE}
    for backend in ("numpy", "onnx"):
        policy = load_policy(folder, backend=backend)
        err = float(np.max(np.abs(policy.predict(obs)[0] - ref)))
        result[f"max_abs_action_error_{backend}"] = err
        if not err <= PARITY_TOLERANCE:
            raise ExportError(f"exported {backend} policy differs from the checkpoint by {err:.3g} > "
                              f"{PARITY_TOLERANCE} on rollout observations; export aborted")
    return result


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
    if parameterisation not in ("relative", "target"):
        raise ExportError(f"checkpoint {str(folder)!r}: unknown action_parameterisation {parameterisation!r}")
    if parameterisation == "target" and not isinstance(m.get("action_layout"), dict):
        raise ExportError(f"checkpoint {str(folder)!r}: target parameterisation without an action_layout")
    params = _scenario_params(scenarios, overrides, obs_names, m.get("action_layout"))[0]
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
                          "obs[quota_obs_indices]) / log quota_step_factor, -1, 1) (agents/parameterisation.py)",
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
                obs = rollout_observations(reference, scenarios, overrides)
                meta["export"]["parity_check"] = parity_check(tmp, reference, obs)
            finally:
                torch.set_num_threads(threads)
            _write_json(tmp / POLICY_JSON, meta)
        for name in (ONNX_FILE, WEIGHTS_FILE, POLICY_JSON):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        _fsync_dir(out.parent)
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
    try:
        meta = export_policy(args.source, args.out, args.checkpoint, force=args.force, check=args.check)
    except (ExportError, CheckpointError, PolicyLoadError) as exc:
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
