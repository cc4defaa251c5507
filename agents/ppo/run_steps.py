"""Checkpoints of a training run: save (atomic, pointed to by ``latest``/``best``/``final``), restore, finish.

A ``latest`` checkpoint is a :class:`agents.ppo.resume_state.Snapshot` taken at a rollout
boundary, so resuming from it repeats exactly what the uninterrupted run does. Resuming first
removes what a kill can leave behind (``.<name>.tmp-PID`` files and folders of interrupted
atomic writes) and the evaluation-history lines written after that checkpoint (they are
computed again, identically).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from agents.common.files import remove_stale_temporaries, write_json_atomic
from agents.ppo.checkpoint import (
    check_compatible,
    load_checkpoint,
    normalization_arrays,
    pointer,
    restore_normalization,
    save_checkpoint,
    set_pointer,
)
from agents.ppo.resume_state import Snapshot, restore_state
from agents.ppo.run_folder import scenario_specs

KEEP_CHECKPOINTS = 2
HISTORY_FILE = "eval_history.jsonl"


def checkpoint_meta(run: dict[str, Any], timesteps: int, extra: dict[str, Any] | None = None,
                    run_dir: Path | None = None) -> dict[str, Any]:
    return {
        "timesteps": int(timesteps),
        "run_name": run["run_name"],
        "env_id": run["env_id"],
        "env_version": run["env_version"],
        "obs_names": run["obs_names"],
        "tier_names": run["tier_names"],
        "hyperparams": run["hyperparams"],
        "action_layout": run["action_layout"],
        **({"residual": run["residual"]} if run.get("residual") else {}),
        **({"preference": run["preference"]} if run.get("preference") else {}),
        "scenarios": scenario_specs(run_dir, run) if run_dir is not None else run["scenarios"],
        "scenario_names": run["scenarios"],
        "seed": run["seed"],
        "git_commit": run["git_commit"],
        **(extra or {}),
    }


def save_to(run_dir: Path, run: dict[str, Any], source, kind: str, extra: dict[str, Any] | None = None) -> Path:
    """Save a checkpoint of ``kind`` (latest/best/final) from a model or a :class:`Snapshot`; point at it."""
    if isinstance(source, Snapshot):
        t, policy, norm = source.timesteps, source.policy_state, source.normalization
        optimizer, state = source.optimizer_state, source.state
    else:
        t, policy, norm = int(source.num_timesteps), source.policy.state_dict(), normalization_arrays(source.get_env())
        optimizer, state = None, None
    if kind != "latest":
        optimizer, state = None, None
    folder = run_dir / "checkpoints" / f"{kind}-{t:012d}"
    save_checkpoint(folder, policy, norm, checkpoint_meta(run, t, extra, run_dir), optimizer_state=optimizer,
                    state=state)
    previous = pointer(run_dir, kind)
    set_pointer(run_dir, kind, folder, {"timesteps": t, **(extra or {})})
    if previous is not None and previous != folder:
        _prune(run_dir, kind, keep=KEEP_CHECKPOINTS if kind == "latest" else 1)
    return folder


def _prune(run_dir: Path, kind: str, keep: int) -> None:
    current = pointer(run_dir, kind)
    folders = sorted((run_dir / "checkpoints").glob(f"{kind}-*"))
    for folder in folders[:-keep]:
        if folder != current:
            shutil.rmtree(folder, ignore_errors=True)


def clean_up(run_dir: Path) -> None:
    """Remove the temporaries of interrupted atomic writes (of processes that no longer run)."""
    remove_stale_temporaries(run_dir)
    remove_stale_temporaries(run_dir / "checkpoints")


def truncate_history(run_dir: Path, upto: int) -> float | None:
    """Keep the evaluation-history lines at or before ``upto`` timesteps (and whole); returns their best score."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return None
    kept, best = [], None
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
            t, score = int(entry["timesteps"]), float(entry["score"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
        if t <= upto:
            kept.append(line)
            best = score if best is None or score > best else best
    text = "".join(f"{line}\n" for line in kept)
    if text != path.read_text(errors="replace"):
        tmp = path.with_name(f".{path.name}.tmp-resume")
        tmp.write_text(text)
        tmp.replace(path)
    return best


def restore(run_dir: Path, run: dict[str, Any], model) -> tuple[int, dict[str, Any]] | None:
    """Load the latest checkpoint into the model, its VecNormalize, RNGs and environment.

    Returns its timesteps and the callback counters saved with it, or None if the run has no checkpoint.
    """
    import envs

    folder = pointer(run_dir, "latest")
    if folder is None:
        return None
    ckpt = load_checkpoint(folder)
    where = f"checkpoint {str(folder)!r}"
    v = int(run.get("env_version", 0))
    check_compatible(ckpt.manifest, envs.ENV_IDS.get(v), v, run["obs_names"], where=where)
    try:
        model.policy.load_state_dict(ckpt.policy_state)
        if ckpt.optimizer_state is not None:
            model.policy.optimizer.load_state_dict(ckpt.optimizer_state)
    except (RuntimeError, ValueError, KeyError) as exc:
        from agents.ppo.checkpoint import CheckpointError

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{where}: weights do not fit this run's network ({first[:120]}); start a new "
                              "run or restore the run's hyperparameters") from None
    restore_normalization(model.get_env(), ckpt.normalization)
    counters = restore_state(model, ckpt.state, where)
    model.num_timesteps = ckpt.timesteps
    model._num_timesteps_at_start = ckpt.timesteps
    if "warm_start" in ckpt.manifest and "warm_start" not in run:
        run["warm_start"] = ckpt.manifest["warm_start"]
    return ckpt.timesteps, counters


def finish(run_dir: Path, run: dict[str, Any], model, snapshot: Snapshot) -> None:
    """Final checkpoints and status; safe to repeat (a kill in the middle is finished on resume)."""
    for kind, source in (("latest", snapshot), ("final", model)):
        folder = pointer(run_dir, kind)
        if folder is None or folder.name != f"{kind}-{snapshot.timesteps:012d}" or not folder.is_dir():
            save_to(run_dir, run, source, kind)
    if pointer(run_dir, "best") is None:
        save_to(run_dir, run, model, "best")
    run.update(status="finished", timesteps_done=int(snapshot.timesteps))
    write_json_atomic(run_dir / "run.json", run)
