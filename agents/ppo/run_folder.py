"""A training run's folder: ``run.json`` (config, seed, versions, commit, status), checkpoints and their pointers.

:func:`new_run` validates everything before it creates anything; :func:`resume_run`
reopens a run and checks it still matches this code; :func:`save_to` writes an
atomic checkpoint and points ``latest.json`` / ``best.json`` / ``final.json`` at it;
:func:`restore` loads the latest one into a model and its normalisation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import sys
from pathlib import Path
from typing import Any

from agents.common.files import write_json_atomic
from agents.common.provenance import git_commit, versions
from agents.ppo.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    normalization_arrays,
    pointer,
    restore_normalization,
    save_checkpoint,
    set_pointer,
)
from agents.ppo.config import ConfigError, TrainArgs, load_hyperparams
from agents.ppo.parameterisation import ActionLayout
from agents.ppo.run_policy import RUN_FILE, RUN_FORMAT, read_run

RUN_FORMAT_VERSION = 1
KEEP_CHECKPOINTS = 2


def _reward_overrides(args: TrainArgs) -> dict[str, Any]:
    weights = {k: getattr(args, k) for k in ("margin_weight", "latency_weight", "churn_weight")}
    weights = {k: v for k, v in weights.items() if v is not None}
    return {"reward": weights} if weights else {}


def new_run(args: TrainArgs) -> tuple[Path, dict[str, Any]]:
    """Validate everything, then create the run folder and its run.json."""
    import envs

    if args.env_version not in envs.ENV_IDS:
        raise ConfigError(f"env_version = {args.env_version}: must be one of {sorted(envs.ENV_IDS)}")
    v = args.env_version
    for s in args.scenario:
        envs.load_scenario(s, _reward_overrides(args))  # raises ScenarioError with a one-line message
    hp = load_hyperparams(args.hyperparams, args.scenario, {"timesteps": args.timesteps, "n_envs": args.n_envs})
    if hp.n_envs < len(args.scenario):
        raise ConfigError(f"n_envs = {hp.n_envs}: must be >= the number of scenarios ({len(args.scenario)})")
    try:
        core = envs.RationingCore(args.scenario[0], 1, overrides=_reward_overrides(args), version=v)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    layout = ActionLayout.from_params(core.params)
    for s in args.scenario[1:]:
        other_core = envs.RationingCore(s, 1, version=v)
        other = ActionLayout.from_params(other_core.params)
        if other != layout or other_core.obs_names != core.obs_names:
            raise ConfigError(f"scenario {s!r}: its tiers, providers or action section differ from "
                              f"{args.scenario[0]!r}; a training mix needs one layout")
    name = args.run_name or f"ppo-{dt.datetime.now():%Y%m%d-%H%M%S}-s{args.seed}"
    run_dir = Path(args.output) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {str(run_dir)!r} already exists: use --resume {run_dir} or another --run-name")
    run_dir.mkdir(parents=True, exist_ok=True)
    run = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "run_name": name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "config": dataclasses.asdict(args),
        "hyperparams": hp.model_dump(),
        "scenarios": list(args.scenario),
        "reward_overrides": _reward_overrides(args),
        "seed": args.seed,
        "env_id": envs.ENV_IDS[v],
        "env_version": v,
        "obs_names": core.obs_names,
        "tier_names": core.tier_names,
        "action_layout": layout.to_dict(),
        "versions": versions(),
        "git_commit": git_commit(),
        "status": "created",
        "timesteps_done": 0,
    }
    write_json_atomic(run_dir / RUN_FILE, run)
    return run_dir, run


def resume_run(args: TrainArgs) -> tuple[Path, dict[str, Any]]:
    """Find the run folder named by --resume and check it still matches this code."""
    import envs

    run_dir = Path(args.resume)
    if not (run_dir / RUN_FILE).exists() and (Path(args.output) / args.resume / RUN_FILE).exists():
        run_dir = Path(args.output) / args.resume
    try:
        run = read_run(run_dir)
    except CheckpointError as exc:
        raise ConfigError(f"--resume {args.resume}: {exc}") from None
    v = run_env_version(run)
    core = envs.RationingCore(run["scenarios"][0], 1, overrides=run.get("reward_overrides") or None, version=v)
    check_compatible(run, envs.ENV_IDS[v], v, core.obs_names, where=f"run {str(run_dir)!r}")
    run["resumed"] = run.get("resumed", []) + [dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")]
    write_json_atomic(run_dir / RUN_FILE, run)
    return run_dir, run


def run_env_version(run: dict[str, Any]) -> int:
    """The env version a run trains on (runs before Rationing-v1 record 0); one-line error if unknown."""
    import envs

    v = run.get("env_version", 0)
    if v not in envs.ENV_IDS:
        raise ConfigError(f"run {run.get('run_name')!r}: made for env version {v!r}, this code has versions "
                          f"{sorted(envs.ENV_IDS)}; start a new run (or use the matching release)")
    return int(v)


def checkpoint_meta(run: dict[str, Any], timesteps: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "timesteps": int(timesteps),
        "run_name": run["run_name"],
        "env_id": run["env_id"],
        "env_version": run["env_version"],
        "obs_names": run["obs_names"],
        "tier_names": run["tier_names"],
        "hyperparams": run["hyperparams"],
        "action_layout": run["action_layout"],
        "scenarios": run["scenarios"],
        "seed": run["seed"],
        "git_commit": run["git_commit"],
        **(extra or {}),
    }


def save_to(run_dir: Path, run: dict[str, Any], model, kind: str, extra: dict[str, Any] | None = None) -> Path:
    """Save a checkpoint of ``kind`` (latest/best/final) and point ``<kind>.json`` at it."""
    t = int(model.num_timesteps)
    folder = run_dir / "checkpoints" / f"{kind}-{t:012d}"
    save_checkpoint(folder, model.policy.state_dict(), normalization_arrays(model.get_env()),
                    checkpoint_meta(run, t, extra),
                    optimizer_state=model.policy.optimizer.state_dict() if kind == "latest" else None)
    previous = pointer(run_dir, kind)
    set_pointer(run_dir, kind, folder, {"timesteps": t, **(extra or {})})
    if previous is not None and previous != folder and previous.exists():
        _prune(run_dir, kind, keep=KEEP_CHECKPOINTS if kind == "latest" else 1)
    return folder


def _prune(run_dir: Path, kind: str, keep: int) -> None:
    import shutil

    current = pointer(run_dir, kind)
    folders = sorted((run_dir / "checkpoints").glob(f"{kind}-*"))
    for folder in folders[:-keep]:
        if folder != current:
            shutil.rmtree(folder, ignore_errors=True)


def restore(run_dir: Path, run: dict[str, Any], model) -> int:
    """Load the latest checkpoint into the model and its VecNormalize; returns its timesteps."""
    import envs

    folder = pointer(run_dir, "latest")
    if folder is None:
        return 0
    ckpt = load_checkpoint(folder)
    v = run_env_version(run)
    check_compatible(ckpt.manifest, envs.ENV_IDS[v], v, run["obs_names"], where=f"checkpoint {folder}")
    model.policy.load_state_dict(ckpt.policy_state)
    if ckpt.optimizer_state is not None:
        model.policy.optimizer.load_state_dict(ckpt.optimizer_state)
    restore_normalization(model.get_env(), ckpt.normalization)
    model.num_timesteps = ckpt.timesteps
    model._num_timesteps_at_start = ckpt.timesteps
    return ckpt.timesteps
