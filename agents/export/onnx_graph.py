"""The ONNX graph of an exported policy, assembled with ``onnx.helper`` from a checkpoint's arrays (no tracing).

One graph: float64 normalisation, the actor MLP, the action parameterisation and the quota mapping.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from agents.export.describe import ExportError
from agents.export.exported import (
    ONNX_INPUT,
    ONNX_OUTPUTS,
)

OPSET = 17
IR_VERSION = 8  # loadable by onnxruntime >= 1.10


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
    if target:  # agents/ppo/parameterisation.py: target multiplier -> relative env action
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


