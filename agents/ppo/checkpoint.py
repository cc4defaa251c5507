"""Checkpoints of PPO runs: atomic, checksummed, loadable without unpickling weights.

A checkpoint is a folder::

    ckpt-000001048576/
        manifest.json        format, timesteps, env id/version, observation names, sha256 of each file
        policy.safetensors   the SB3 ActorCriticPolicy state dict (safetensors: no pickle)
        optimizer.pt         Adam state (torch.load(weights_only=True): tensors and plain containers only)
        normalization.npz    VecNormalize statistics (np.load(allow_pickle=False))

It is written into a temporary folder beside its final place, fsynced and renamed
(``os.replace``), then a pointer file (``latest.json`` / ``best.json``) is
replaced atomically. A run killed at any moment leaves either the previous or
the new checkpoint, never a half-written one. Loading verifies the manifest
and every checksum before reading any file and refuses with a one-line
:class:`CheckpointError`.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.files import (
    FileRefused,
    fsync_dir,
    inside,
    json_default,
    kill_point,
    read_bytes_checked,
    read_json_checked,
    sha256,
    write_json_atomic,
)
from agents.common.policy import layout_difference

FORMAT = "rationing-ppo-checkpoint"
FORMAT_VERSION = 1
POLICY_FILE = "policy.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
NORMALIZATION_FILE = "normalization.npz"
MANIFEST_FILE = "manifest.json"
STATE_FILE = "state.npz"
"""Everything else a bit-exact resume needs (RNG states, environment state, callback counters): plain arrays."""
KNOWN_FILES = (POLICY_FILE, OPTIMIZER_FILE, NORMALIZATION_FILE, STATE_FILE)
MAX_WEIGHTS_BYTES = 2 << 30
POINTERS = ("latest", "best", "final")
_POINTER_PATH = re.compile(r"^checkpoints/(latest|best|final)-[0-9]{12}$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line and says what to do."""


# ------------------------------------------------------------------ normalisation
def normalization_arrays(vecnorm) -> dict[str, np.ndarray]:
    """VecNormalize statistics as plain arrays."""
    return {
        "obs_mean": np.asarray(vecnorm.obs_rms.mean, np.float64),
        "obs_var": np.asarray(vecnorm.obs_rms.var, np.float64),
        "obs_count": np.asarray(vecnorm.obs_rms.count, np.float64),
        "ret_mean": np.asarray(vecnorm.ret_rms.mean, np.float64),
        "ret_var": np.asarray(vecnorm.ret_rms.var, np.float64),
        "ret_count": np.asarray(vecnorm.ret_rms.count, np.float64),
        "returns": np.asarray(vecnorm.returns, np.float64),
        "clip_obs": np.asarray(vecnorm.clip_obs, np.float64),
        "clip_reward": np.asarray(vecnorm.clip_reward, np.float64),
        "epsilon": np.asarray(vecnorm.epsilon, np.float64),
        "gamma": np.asarray(vecnorm.gamma, np.float64),
        "norm_obs": np.asarray(vecnorm.norm_obs, bool),
        "norm_reward": np.asarray(vecnorm.norm_reward, bool),
    }


def restore_normalization(vecnorm, arrays: dict[str, np.ndarray]) -> None:
    """Put saved statistics back into a VecNormalize wrapper."""
    vecnorm.obs_rms.mean = arrays["obs_mean"].copy()
    vecnorm.obs_rms.var = arrays["obs_var"].copy()
    vecnorm.obs_rms.count = float(arrays["obs_count"])
    vecnorm.ret_rms.mean = arrays["ret_mean"].copy()
    vecnorm.ret_rms.var = arrays["ret_var"].copy()
    vecnorm.ret_rms.count = float(arrays["ret_count"])
    if arrays["returns"].shape == vecnorm.returns.shape:
        vecnorm.returns = arrays["returns"].copy()


# ---------------------------------------------------------------------- saving
def save_checkpoint(
    folder: Path,
    policy_state: dict[str, Any],
    normalization: dict[str, np.ndarray],
    meta: dict[str, Any],
    optimizer_state: dict[str, Any] | None = None,
    state: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (``folder`` is replaced if it exists)."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy_state.items()}
    save_file(tensors, str(tmp / POLICY_FILE))
    with open(tmp / NORMALIZATION_FILE, "wb") as f:
        np.savez(f, **normalization)
    files = [POLICY_FILE, NORMALIZATION_FILE]
    if optimizer_state is not None:
        torch.save(optimizer_state, tmp / OPTIMIZER_FILE)
        files.append(OPTIMIZER_FILE)
    if state is not None:
        with open(tmp / STATE_FILE, "wb") as f:
            np.savez(f, **state)
        files.append(STATE_FILE)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **meta,
        "files": {name: sha256(tmp / name) for name in files},
    }
    with open(tmp / MANIFEST_FILE, "w") as f:
        json.dump(manifest, f, indent=2, default=json_default)
        f.write("\n")
    for name in [*files, MANIFEST_FILE]:
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    fsync_dir(tmp)
    kill_point("checkpoint_write")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():  # same name again (e.g. re-saved after a resume): move the old one aside first
        os.replace(folder, old)
    os.replace(tmp, folder)
    fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)
    return folder


# --------------------------------------------------------------------- loading
@dataclass(frozen=True)
class Checkpoint:
    path: Path
    manifest: dict[str, Any]
    policy_state: dict[str, Any]
    normalization: dict[str, np.ndarray]
    optimizer_state: dict[str, Any] | None
    state: dict[str, np.ndarray] | None = None

    @property
    def timesteps(self) -> int:
        return int(self.manifest["timesteps"])


def _checked_file(folder: Path, name: str) -> Path:
    """``folder/name`` for a file a checkpoint may hold: a known name, a regular file, no symlink."""
    if name not in KNOWN_FILES:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {MANIFEST_FILE} lists {name!r}, which is not a "
                              f"checkpoint file (allowed: {', '.join(KNOWN_FILES)})")
    file = folder / name
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {name} is missing") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"checkpoint {str(folder)!r}: {name} is not a regular file (symlinks are refused)")
    if st.st_size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {name} is {st.st_size:,} bytes, more than the "
                              f"limit of {MAX_WEIGHTS_BYTES:,}")
    return file


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and verify a checkpoint's manifest and checksums (reads no weights)."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {str(folder)!r}: not a folder")
    try:
        manifest = read_json_checked(path, follow_symlinks=False)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(folder)!r}: no {MANIFEST_FILE} (not a checkpoint folder)") from None
    except FileRefused as exc:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {exc}") from None
    except (OSError, ValueError):
        raise CheckpointError(f"checkpoint {str(folder)!r}: {MANIFEST_FILE} is unreadable or corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {MANIFEST_FILE} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: format_version {manifest.get('format_version')!r} is not supported "
            f"(this version reads {FORMAT_VERSION})"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or POLICY_FILE not in files or NORMALIZATION_FILE not in files:
        raise CheckpointError(f"checkpoint {str(folder)!r}: manifest lists no policy or normalisation file")
    if not isinstance(manifest.get("timesteps"), int) or manifest["timesteps"] < 0:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {MANIFEST_FILE} field timesteps = "
                              f"{manifest.get('timesteps')!r}: must be an integer >= 0")
    for name, digest in files.items():
        file = _checked_file(folder, name)
        if not isinstance(digest, str) or sha256(file) != digest:
            raise CheckpointError(
                f"checkpoint {str(folder)!r}: {name} fails its sha256 check (corrupt or modified); "
                "use another checkpoint of the run"
            )
    return manifest


def check_compatible(manifest: dict[str, Any], env_id: str, env_version: int, obs_names: list[str],
                     where: str) -> None:
    """Refuse a checkpoint made for another environment version or observation layout."""
    if manifest.get("env_id") != env_id or manifest.get("env_version") != env_version:
        raise CheckpointError(
            f"{where}: made for {manifest.get('env_id')} version {manifest.get('env_version')}, this is {env_id} "
            f"version {env_version}; start a new run (or use the matching release)"
        )
    diff = layout_difference(manifest.get("obs_names") or [], obs_names)
    if diff is not None:
        i, saved, current = diff
        raise CheckpointError(
            f"{where}: observation layout differs from the environment's at index {i} "
            f"({saved!r} vs {current!r}); start a new run"
        )


def load_checkpoint(folder: Path, with_optimizer: bool = True) -> Checkpoint:
    """Verify and load a checkpoint folder."""
    from safetensors import SafetensorError

    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        from safetensors.torch import load as load_bytes

        policy_state = load_bytes(read_bytes_checked(folder / POLICY_FILE, MAX_WEIGHTS_BYTES, follow_symlinks=False))
    except (SafetensorError, OSError, ValueError):
        raise CheckpointError(f"checkpoint {str(folder)!r}: {POLICY_FILE} is not a valid safetensors file") from None
    try:
        normalization = _load_npz(folder, NORMALIZATION_FILE)
    except (OSError, ValueError):
        raise CheckpointError(f"checkpoint {str(folder)!r}: {NORMALIZATION_FILE} is not a valid .npz file") from None
    optimizer_state = None
    if with_optimizer and OPTIMIZER_FILE in manifest["files"]:
        import torch

        try:
            raw = read_bytes_checked(folder / OPTIMIZER_FILE, MAX_WEIGHTS_BYTES, follow_symlinks=False)
            optimizer_state = torch.load(io.BytesIO(raw), weights_only=True)
        except Exception:  # noqa: BLE001 - any failure of the restricted unpickler means a bad file
            raise CheckpointError(f"checkpoint {str(folder)!r}: {OPTIMIZER_FILE} cannot be read safely") from None
    state = None
    if with_optimizer and STATE_FILE in manifest["files"]:
        try:
            state = _load_npz(folder, STATE_FILE)
        except (OSError, ValueError):
            raise CheckpointError(f"checkpoint {str(folder)!r}: {STATE_FILE} is not a valid .npz file") from None
    return Checkpoint(folder, manifest, policy_state, normalization, optimizer_state, state)


def _load_npz(folder: Path, name: str) -> dict[str, np.ndarray]:
    data = read_bytes_checked(folder / name, MAX_WEIGHTS_BYTES, follow_symlinks=False)
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


# ------------------------------------------------------------------ run folders
def pointer(run_dir: Path, name: str) -> Path | None:
    """The checkpoint folder a pointer file (``latest.json``, ``best.json``) names, if any.

    The path it holds must be ``checkpoints/<kind>-<12 digits>`` inside the run folder, with no
    symbolic link on the way: anything else (``../other_run/...``, an absolute path) is refused.
    """
    path = Path(run_dir) / f"{name}.json"
    if not path.exists() and not path.is_symlink():
        return None
    try:
        data = read_json_checked(path, follow_symlinks=False)
        rel = data["path"]
    except FileRefused as exc:
        raise CheckpointError(f"run {str(run_dir)!r}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"run {str(run_dir)!r}: {path.name} is corrupt") from None
    if not isinstance(rel, str) or not _POINTER_PATH.match(rel):
        raise CheckpointError(f"run {str(run_dir)!r}: {path.name} path = {rel!r}: must be "
                              "checkpoints/<latest|best|final>-<12 digits> inside the run folder")
    try:
        return inside(Path(run_dir), rel, f"{path.name} path")
    except FileRefused as exc:
        raise CheckpointError(f"run {str(run_dir)!r}: {exc}") from None


def pointer_info(run_dir: Path, name: str) -> dict[str, Any]:
    """The content of a pointer file (``{}`` if absent); checked like :func:`pointer`."""
    if pointer(run_dir, name) is None:
        return {}
    return read_json_checked(Path(run_dir) / f"{name}.json", follow_symlinks=False)


def set_pointer(run_dir: Path, name: str, folder: Path, extra: dict[str, Any] | None = None) -> None:
    write_json_atomic(Path(run_dir) / f"{name}.json",
                      {"path": Path(folder).relative_to(run_dir).as_posix(), **(extra or {})})
