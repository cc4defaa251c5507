"""Everything a bit-exact resume needs, as plain arrays: RNG states, environment state, callback counters.

A training checkpoint of kind ``latest`` is taken at a rollout boundary (after PPO's update,
before the next rollout starts) and holds, besides the weights, optimizer and normalisation:

* ``rng.*``: torch's and numpy's global RNG states (action sampling, minibatch shuffles);
* ``env.*``: the batched environment's state (every array of each :class:`envs.RationingCore`,
  the wrappers' last observations, :class:`VecMonitor`'s episode counters);
* ``model.*``: SB3's last observation and episode starts, its update counter;
* ``cb.*``: the training callback's schedule (next checkpoint, next evaluation, best score).

Restoring them makes the resumed run take exactly the steps the uninterrupted run takes, so a run
killed at any moment and resumed ends with the same weights and the same numbers. The arrays are
stored in ``state.npz`` (no pickle) and checksummed with the rest of the checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.ppo.checkpoint import CheckpointError, normalization_arrays
from agents.ppo.parameterisation import ObsKeepingWrapper


@dataclass
class Snapshot:
    """A copy of a model's training state at one moment (cheap: small networks, small arrays)."""

    timesteps: int
    policy_state: dict[str, Any]
    optimizer_state: dict[str, Any]
    normalization: dict[str, np.ndarray]
    state: dict[str, np.ndarray]


def _layers(venv) -> list[Any]:
    out = []
    while venv is not None:
        out.append(venv)
        venv = getattr(venv, "venv", None)
    return out


def _core_arrays(core) -> dict[str, np.ndarray]:
    """Every array of a core's state, by attribute (named tuples of arrays flattened as ``attr.field``)."""
    out: dict[str, np.ndarray] = {}
    for key, value in vars(core).items():
        if isinstance(value, np.ndarray):
            out[key] = value
        elif isinstance(value, tuple) and hasattr(value, "_fields") and all(
                isinstance(v, np.ndarray) for v in value):
            out.update({f"{key}.{f}": v for f, v in zip(value._fields, value)})
    return out


def env_state(vecnorm) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for i, layer in enumerate(_layers(vecnorm)):
        name = type(layer).__name__
        if name == "VecMonitor":
            out[f"env.{i}.episode_returns"] = np.asarray(layer.episode_returns).copy()
            out[f"env.{i}.episode_lengths"] = np.asarray(layer.episode_lengths).copy()
            out[f"env.{i}.episode_count"] = np.asarray(layer.episode_count)
        elif isinstance(layer, ObsKeepingWrapper) and layer._obs is not None:
            out[f"env.{i}._obs"] = np.asarray(layer._obs).copy()
        elif name == "RuleTwinBaseline" and layer._obs is not None:
            out[f"env.{i}._obs"] = np.asarray(layer._obs).copy()
            out.update(_vec_env_state(layer.twin, f"env.{i}.twin"))
        elif callable(getattr(type(layer), "state_arrays", None)):  # a wrapper with a state (Lagrange multipliers)
            out.update({f"env.{i}.{k}": v for k, v in layer.state_arrays().items()})
        elif name == "RationingVecEnv":
            out.update(_vec_env_state(layer, f"env.{i}"))
    return out


def _vec_env_state(vec, prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}._obs": vec._obs.copy()}
    for j, core in enumerate(vec.cores):
        out.update({f"{prefix}.core{j}.{k}": v.copy() for k, v in _core_arrays(core).items()})
    return out


def _set_env_state(vecnorm, state: dict[str, np.ndarray], where: str) -> None:
    def get(key: str, like: np.ndarray) -> np.ndarray:
        if key not in state:
            raise CheckpointError(f"{where}: state.npz lacks {key!r} (made by another version of train.py)")
        value = state[key]
        if value.shape != np.shape(like) or value.dtype != np.asarray(like).dtype:
            raise CheckpointError(f"{where}: state.npz {key!r} has shape {value.shape} {value.dtype}, the "
                                  f"environment {np.shape(like)} {np.asarray(like).dtype}; start a new run")
        return value.copy()

    for i, layer in enumerate(_layers(vecnorm)):
        name = type(layer).__name__
        if name == "VecMonitor":
            layer.episode_returns = get(f"env.{i}.episode_returns", layer.episode_returns)
            layer.episode_lengths = get(f"env.{i}.episode_lengths", layer.episode_lengths)
            layer.episode_count = int(state.get(f"env.{i}.episode_count", 0))
        elif isinstance(layer, ObsKeepingWrapper) and f"env.{i}._obs" in state:
            layer._obs = state[f"env.{i}._obs"].copy()
        elif name == "RuleTwinBaseline":
            layer._obs = get(f"env.{i}._obs", np.zeros((layer.num_envs, layer.twin._obs.shape[1]), np.float32))
            _set_vec_env_state(layer.twin, f"env.{i}.twin", get)
        elif callable(getattr(type(layer), "load_state_arrays", None)):
            prefix = f"env.{i}."
            layer.load_state_arrays({k[len(prefix):]: get(k, v) for k, v in
                                     ((prefix + k2, v2) for k2, v2 in layer.state_arrays().items())})
        elif name == "RationingVecEnv":
            _set_vec_env_state(layer, f"env.{i}", get)


def _set_vec_env_state(vec, prefix: str, get) -> None:
    vec._obs = get(f"{prefix}._obs", vec._obs)
    vec._next_seeds = None  # already reset once: SB3 will not reset again
    for j, core in enumerate(vec.cores):
        for k, like in _core_arrays(core).items():
            value = get(f"{prefix}.core{j}.{k}", like)
            if "." in k:
                attr, fld = k.split(".", 1)
                setattr(core, attr, getattr(core, attr)._replace(**{fld: value}))
            else:
                setattr(core, k, value)


def take(model, counters: dict[str, float | int | None], with_env: bool = True) -> Snapshot:
    """Copy the model's full training state now (``with_env``: also the environment and SB3's last observation)."""
    import torch

    state: dict[str, np.ndarray] = {"rng.torch": torch.get_rng_state().numpy().copy()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 - SB3 shuffles with it
    state.update({"rng.numpy.keys": np.asarray(keys).copy(), "rng.numpy.pos": np.asarray(pos),
                  "rng.numpy.has_gauss": np.asarray(has_gauss), "rng.numpy.gauss": np.asarray(gauss)})
    state["model.n_updates"] = np.asarray(getattr(model, "_n_updates", 0))
    for key, value in counters.items():
        state[f"cb.{key}"] = np.asarray(np.nan if value is None else value, np.float64)
    if with_env and model._last_obs is not None:
        state["model._last_obs"] = np.asarray(model._last_obs).copy()
        state["model._last_episode_starts"] = np.asarray(model._last_episode_starts).copy()
        state.update(env_state(model.get_env()))
    return Snapshot(
        timesteps=int(model.num_timesteps),
        policy_state={k: v.detach().clone() for k, v in model.policy.state_dict().items()},
        optimizer_state=copy.deepcopy(model.policy.optimizer.state_dict()),
        normalization={k: v.copy() for k, v in normalization_arrays(model.get_env()).items()},
        state=state,
    )


def restore_state(model, state: dict[str, np.ndarray] | None, where: str) -> dict[str, float | None]:
    """Put RNG, environment and SB3 state back; returns the callback counters saved with them."""
    import torch

    if not state:
        return {}
    try:
        torch.set_rng_state(torch.from_numpy(np.asarray(state["rng.torch"], np.uint8).copy()))
        legacy = ("MT19937", state["rng.numpy.keys"].astype(np.uint32), int(state["rng.numpy.pos"]),
                  int(state["rng.numpy.has_gauss"]), float(state["rng.numpy.gauss"]))
        np.random.set_state(legacy)  # noqa: NPY002 - the global RNG SB3 shuffles minibatches with
    except (KeyError, ValueError, RuntimeError, TypeError):
        raise CheckpointError(f"{where}: state.npz holds no valid RNG state") from None
    model._n_updates = int(state.get("model.n_updates", 0))
    if "model._last_obs" in state:
        _set_env_state(model.get_env(), state, where)
        model._last_obs = state["model._last_obs"].copy()
        model._last_episode_starts = state["model._last_episode_starts"].copy()
    out: dict[str, float | None] = {}
    for key, value in state.items():
        if key.startswith("cb."):
            v = float(value)
            out[key[3:]] = None if np.isnan(v) else v
    return out
