"""Load an exported rationing policy folder with numpy alone, or numpy and onnxruntime.

    from agents import load_policy        # or, with this file copied alone: from exported import load_policy
    policy = load_policy("exported/ppo-default", obs_names=my_env_obs_names)
    action, _ = policy.predict(obs)       # in [-1, 1], what the SB3 model's deterministic action is
    multipliers = policy.act(obs)         # the quota multipliers the environment would set next

The folder format is documented in ``docs/exported-policy.md``. Only the standard library and
numpy are imported (onnxruntime lazily); nothing is unpickled and nothing else of this repository
is needed, so the file can be copied alone. Every file must be a regular file (no symlink) whose
size is checked before it is read once; its sha256 is checked against ``policy.json`` before it
is parsed. Any problem raises :class:`PolicyLoadError`, one line naming the file; an observation
that cannot be acted on (wrong shape, NaN or inf) raises :class:`ObservationError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np

FORMAT, FORMAT_VERSION = "rationing-policy", 1
POLICY_JSON, ONNX_FILE, WEIGHTS_FILE, ONNX_INPUT = "policy.json", "policy.onnx", "weights.npz", "obs"
ONNX_OUTPUTS = ("action", "quota_factor", "quota_multiplier")
ACTIVATIONS, PARAMETERISATIONS = ("tanh", "relu"), ("relative", "target")
#: Normalisation runs in float64, as stable-baselines3's VecNormalize does, then casts to float32.
FLOAT64_ENTRIES = ("obs_mean", "obs_std", "obs_clip")
BACKENDS = ("auto", "numpy", "onnx")
MAX_POLICY_JSON_BYTES, MAX_FILE_BYTES = 64 << 20, 2 << 30
_TEMPORARY = re.compile(r"^\..+\.(?:tmp|old)-([0-9]+)$")


class PolicyLoadError(ValueError):
    """An exported policy folder that cannot be used; the message is one line."""


class ObservationError(ValueError):
    """An observation the policy refuses (wrong shape, NaN or inf); the message is one line naming the entry."""


def is_exported(path: str | Path) -> bool:
    """True if ``path`` looks like an exported policy folder (it holds ``policy.json``)."""
    return (Path(path) / POLICY_JSON).is_file()


def _fail(folder: Path, what: str) -> PolicyLoadError:
    return PolicyLoadError(f"exported policy {str(folder)!r}: {what}")


def _field(meta: dict[str, Any], dotted: str, kind: type | tuple[type, ...], folder: Path) -> Any:
    """``meta["a"]["b"]`` for ``"a.b"``, checked to be of ``kind``."""
    value: Any = meta
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise _fail(folder, f"{POLICY_JSON} has no field {dotted!r}")
        value = value[key]
    value = float(value) if kind is float and isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _fail(folder, f"{POLICY_JSON} field {dotted!r} is not a {name}")
    return value


def _read_regular(folder: Path, name: str, limit: int) -> bytes:
    """Bytes of ``folder/name``: a regular file (no symlink or device) of at most ``limit`` bytes, checked first."""
    st = os.lstat(path := folder / name)  # FileNotFoundError for the caller
    if not stat.S_ISREG(st.st_mode):
        raise _fail(folder, f"{name} is not a regular file (symbolic links and devices are refused)")
    if st.st_size > limit:
        raise _fail(folder, f"{name} is {st.st_size:,} bytes, more than the limit of {limit:,}")
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise _fail(folder, f"{name} grew past {limit:,} bytes while being read")
    return data


def _alive(pid: int) -> bool:  # an export writing this temporary folder now (its parity check loads it)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


def read_meta(folder: str | Path) -> dict[str, Any]:
    """Parse and check ``policy.json`` (format, version, file list); reads no other file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(folder, "not a folder")
    m = _TEMPORARY.match(folder.resolve().name)
    if m is not None and not _alive(int(m.group(1))):
        raise _fail(folder, "is the temporary folder of an interrupted export (it never passed the parity check); "
                            "export again")
    try:
        meta = json.loads(_read_regular(folder, POLICY_JSON, MAX_POLICY_JSON_BYTES))
    except FileNotFoundError:
        run = any((folder / f).is_file() for f in ("run.json", "manifest.json", "latest.json"))
        what = f"a run or checkpoint, not an export: run `python -m agents.export {folder} --out DIR`, use DIR"
        raise _fail(folder, f"no {POLICY_JSON}: {what if run else 'not an exported policy folder'}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(folder, f"{POLICY_JSON} is unreadable or not valid JSON (truncated or corrupt)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(folder, f"{POLICY_JSON} is not a {FORMAT!r} file (format = "
                            f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _fail(folder, f"{POLICY_JSON} has format_version {version!r}; this loader reads version "
                            f"{FORMAT_VERSION} only (use the matching release of agents/export/exported.py)")
    files = _field(meta, "files", dict, folder)
    for name in (ONNX_FILE, WEIGHTS_FILE):
        entry = files.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not isinstance(entry.get("bytes"), int):
            raise _fail(folder, f"{POLICY_JSON} 'files' has no sha256 and size for {name}")
    return meta


def _read_verified(folder: Path, meta: dict[str, Any], name: str) -> bytes:
    """The bytes of ``name`` after checking size and sha256 against ``policy.json``."""
    entry = meta["files"][name]
    if not 0 <= entry["bytes"] <= MAX_FILE_BYTES:
        raise _fail(folder, f"{POLICY_JSON} gives {name} a size of {entry['bytes']} bytes (limit {MAX_FILE_BYTES:,})")
    try:
        data = _read_regular(folder, name, entry["bytes"])
    except FileNotFoundError:
        raise _fail(folder, f"{name} is missing") from None
    except OSError as exc:
        raise _fail(folder, f"{name} cannot be read ({exc.strerror})") from None
    if len(data) != entry["bytes"]:
        what = "truncated" if len(data) < entry["bytes"] else "longer than exported"
        raise _fail(folder, f"{name} is {what}: {len(data)} bytes, {POLICY_JSON} says {entry['bytes']}")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise _fail(folder, f"{name} fails its sha256 check (corrupt or modified after export)")
    return data


def _load_npz(folder: Path, data: bytes) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` given as bytes, without pickle; every entry must be a numeric array."""
    out: dict[str, np.ndarray] = {}
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        if not hasattr(npz, "files"):  # a bare .npy array, not an archive
            raise ValueError("a single array, not an npz archive")
        with npz:
            for key in npz.files:
                value = npz[key]
                if not isinstance(value, np.ndarray):  # a zip member that is not a .npy array
                    raise ValueError(f"entry {key!r} is not an array")
                out[key] = value
    except Exception as exc:  # noqa: BLE001 - zip, format and pickle refusals all mean a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(folder, f"{WEIGHTS_FILE} is not a valid numpy .npz of plain arrays ({reason})") from None
    for key, value in out.items():
        want = np.float64 if key in FLOAT64_ENTRIES else np.float32
        if value.dtype != want:
            raise _fail(folder, f"{WEIGHTS_FILE} entry {key!r} has dtype {value.dtype}, expected {np.dtype(want)}")
        if not np.all(np.isfinite(value)):
            raise _fail(folder, f"{WEIGHTS_FILE} entry {key!r} holds non-finite values")
    return out


def _norm_arrays(meta: dict[str, Any], folder: Path, obs_size: int) -> tuple[np.ndarray, np.ndarray, np.float64]:
    """Float64 mean, std = sqrt(var + epsilon) and clip from ``policy.json`` (what the exporter put in the weights)."""
    if not _field(meta, "normalization.enabled", bool, folder):
        return np.zeros(obs_size), np.ones(obs_size), np.float64(np.inf)
    mean = np.asarray(_field(meta, "normalization.obs_mean", list, folder), dtype=np.float64)
    var = np.asarray(_field(meta, "normalization.obs_var", list, folder), dtype=np.float64)
    eps, clip = (_field(meta, f"normalization.{k}", float, folder) for k in ("epsilon", "clip_obs"))
    if mean.shape != (obs_size,) or var.shape != (obs_size,):
        raise _fail(folder, f"{POLICY_JSON} normalisation statistics do not have {obs_size} entries")
    if not (np.all(np.isfinite(mean)) and np.all(var >= 0) and eps > 0 and clip > 0):
        raise _fail(folder, f"{POLICY_JSON} normalisation statistics are not finite / positive")
    return mean, np.sqrt(var + eps), np.float64(clip)


class ExportedPolicy:
    """A deterministic exported actor behind the shared ``predict`` interface.

    ``predict(obs)`` takes raw observations ``(obs_size,)`` or ``(N, obs_size)`` (float32, laid out as
    :attr:`obs_names`) and returns ``(action, state)``, ``action`` in [-1, 1] of shape ``(T,)`` or ``(N, T)``
    (tiers in :attr:`tier_names` order); ``act(obs)``: the quota multipliers the environment sets next.
    """

    def __init__(self, folder: Path, meta: dict[str, Any], weights: dict[str, np.ndarray], session: Any = None,
                 name: str | None = None) -> None:
        self.path, self.meta = folder, meta
        self.name = name or folder.name
        self.backend = "numpy" if session is None else "onnx"
        self.obs_names: list[str] = list(_field(meta, "observation.names", list, folder))
        self.tier_names: list[str] = list(_field(meta, "tier_names", list, folder))
        self.env_id: str = _field(meta, "env_id", str, folder)
        self.env_version: int = _field(meta, "env_version", int, folder)
        self.obs_size, self.n_tiers = len(self.obs_names), len(self.tier_names)
        if not all(isinstance(n, str) for n in self.obs_names + self.tier_names):
            raise _fail(folder, f"{POLICY_JSON} observation or tier names are not all strings")
        self.quota_step_factor, self.quota_min, self.quota_max = (
            _field(meta, f"action.{k}", float, folder) for k in ("quota_step_factor", "quota_min", "quota_max"))
        self.parameterisation = _field(meta, "action.parameterisation", str, folder)
        if self.parameterisation not in PARAMETERISATIONS:
            raise _fail(folder, f"{POLICY_JSON} action.parameterisation {self.parameterisation!r} is not one of "
                                f"{', '.join(PARAMETERISATIONS)}")
        if not (self.quota_step_factor > 1.0 and 0.0 < self.quota_min <= self.quota_max):
            raise _fail(folder, f"{POLICY_JSON} action mapping needs quota_step_factor > 1 and "
                                "0 < quota_min <= quota_max")
        try:
            self.quota_obs_index = np.asarray([self.obs_names.index(f"quota/{t}") for t in self.tier_names], np.intp)
        except ValueError:
            raise _fail(folder, f"{POLICY_JSON} observation layout lacks a quota/<tier> entry per tier") from None
        declared = _field(meta, "action.quota_obs_indices", list, folder)
        if declared != self.quota_obs_index.tolist():
            raise _fail(folder, f"{POLICY_JSON} action.quota_obs_indices {declared} do not match the layout's "
                                f"quota/<tier> indices {self.quota_obs_index.tolist()}")
        self._check_weights(folder, weights)
        self._session = session
        self._log_step = np.float32(math.log(self.quota_step_factor))
        self._qmin, self._qmax = np.float32(self.quota_min), np.float32(self.quota_max)

    def _check_weights(self, folder: Path, w: dict[str, np.ndarray]) -> None:
        """Check ``weights.npz`` against the layout in ``policy.json`` and keep it for the numpy path."""
        layers = _field(self.meta, "network.layers", list, folder)
        expected = {"obs_mean", "obs_std", "obs_clip", "quota_log_step", "quota_min", "quota_max", "quota_log_min",
                    "quota_log_max"}
        self._layers: list[tuple[np.ndarray, np.ndarray, str | None]] = []
        fan_in = self.obs_size
        for k, layer in enumerate(layers):
            if not isinstance(layer, dict) or not all(isinstance(layer.get(f), str) for f in ("weight", "bias")):
                raise _fail(folder, f"{POLICY_JSON} network.layers[{k}] names no weight and bias arrays")
            act = layer.get("activation")
            last = k == len(layers) - 1
            if (act is not None or not last) and act not in ACTIVATIONS:
                raise _fail(folder, f"{POLICY_JSON} network.layers[{k}] has activation {act!r} "
                                    f"(supported: {', '.join(ACTIVATIONS)}; none on the output layer)")
            wk, bk = layer["weight"], layer["bias"]
            if wk not in w or bk not in w:
                raise _fail(folder, f"{WEIGHTS_FILE} lacks {wk if wk not in w else bk!r} named in {POLICY_JSON}")
            W, b = w[wk], w[bk]
            fan_out = self.n_tiers if last else (W.shape[0] if W.ndim == 2 else -1)
            if W.shape != (fan_out, fan_in) or b.shape != (fan_out,):
                raise _fail(folder, f"{WEIGHTS_FILE} {wk!r} / {bk!r} have shapes {W.shape} / {b.shape}, "
                                    f"expected ({fan_out}, {fan_in}) / ({fan_out},)")
            self._layers.append((np.ascontiguousarray(W.T), b, act))
            expected |= {wk, bk}
            fan_in = fan_out
        if not layers:
            raise _fail(folder, f"{POLICY_JSON} network.layers is empty")
        if set(w) != expected:
            extra, missing = sorted(set(w) - expected), sorted(expected - set(w))
            raise _fail(folder, f"{WEIGHTS_FILE} entries differ from {POLICY_JSON}: extra {extra}, missing {missing}")
        # Everything the numpy path computes with comes from the checksummed weights; policy.json must agree.
        mean, std, clip = _norm_arrays(self.meta, folder, self.obs_size)
        consts = {"obs_clip": clip, "quota_log_step": np.float32(math.log(self.quota_step_factor)),
                  "quota_min": np.float32(self.quota_min), "quota_max": np.float32(self.quota_max),
                  "quota_log_min": np.float32(math.log(self.quota_min)),
                  "quota_log_max": np.float32(math.log(self.quota_max))}
        if w["obs_mean"].shape != (self.obs_size,) or w["obs_std"].shape != (self.obs_size,):
            raise _fail(folder, f"{WEIGHTS_FILE} obs_mean / obs_std do not have {self.obs_size} entries")
        if not (np.array_equal(w["obs_mean"], mean) and np.array_equal(w["obs_std"], std)):
            raise _fail(folder, f"{WEIGHTS_FILE} normalisation statistics differ from those in {POLICY_JSON}")
        for key, value in consts.items():
            if w[key].shape != () or not (w[key] == value or (np.isinf(w[key]) and np.isinf(value))):
                raise _fail(folder, f"{WEIGHTS_FILE} {key} = {w[key]!r} differs from {POLICY_JSON} ({value!r})")
        self._mean, self._std, self._clip = w["obs_mean"], w["obs_std"], w["obs_clip"]
        self._log_min, self._log_max = w["quota_log_min"], w["quota_log_max"]

    def check_layout(self, obs_names: list[str] | tuple[str, ...] | None) -> None:
        """Refuse an environment whose observation names differ from the policy's (index by index; None: no check)."""
        if obs_names is None or list(obs_names) == self.obs_names:
            return
        obs_names = list(obs_names)
        i = next((k for k, (a, b) in enumerate(zip(self.obs_names, obs_names)) if a != b),
                 min(len(self.obs_names), len(obs_names)))
        mine, theirs = (repr(n[i]) if i < len(n) else "nothing" for n in (self.obs_names, obs_names))
        raise _fail(self.path, f"observation layout differs from the environment's at index {i}: the policy "
                               f"expects {mine}, the environment has {theirs} ({len(self.obs_names)} vs "
                               f"{len(obs_names)} entries)")

    def check_env(self, env_id: str | None = None, env_version: int | None = None) -> None:
        """Refuse another environment id or version than the one the policy was trained on."""
        if env_id not in (None, self.env_id) or env_version not in (None, self.env_version):
            raise _fail(self.path, f"made for {self.env_id} version {self.env_version}, not {env_id} v{env_version}")

    def _obs(self, obs: Any) -> tuple[np.ndarray, bool]:
        x = np.asarray(obs, dtype=np.float32)
        x, single = (x.reshape(1, -1), True) if x.ndim == 1 else (x, False)
        if x.ndim != 2 or x.shape[1] != self.obs_size:
            raise ObservationError(f"obs has shape {np.shape(obs)}; expected ({self.obs_size},) or "
                                   f"(N, {self.obs_size})")
        if not np.isfinite(x).all():
            r, i = np.argwhere(~np.isfinite(x))[0]
            raise ObservationError(f"obs{'' if single else f'[{r}]'}[{i}] ({self.obs_names[i]}) is {x[r, i]}: "
                                   "the policy acts on finite observations only")
        return np.ascontiguousarray(x), single

    def _actions(self, x: np.ndarray) -> np.ndarray:
        if self._session is not None:
            return self._session.run(["action"], {ONNX_INPUT: x})[0]
        z = x - self._mean  # float64, as VecNormalize.normalize_obs
        z /= self._std
        np.clip(z, -self._clip, self._clip, out=z)
        h = z.astype(np.float32)
        for W_T, b, act in self._layers:
            h = h @ W_T
            h += b
            if act == "tanh":
                np.tanh(h, out=h)
            elif act == "relu":
                np.maximum(h, 0.0, out=h)
        np.clip(h, -1.0, 1.0, out=h)
        if self.parameterisation == "target":  # h picks target multipliers: convert to relative env actions
            log_target = np.where(h < 0.0, -h * self._log_min, h * self._log_max)
            h = (log_target - x[:, self.quota_obs_index]) / self._log_step
            np.clip(h, -1.0, 1.0, out=h)
        return h

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        """Deterministic actions in [-1, 1]: ``(action, state)`` like stable-baselines3's ``predict``."""
        if not deterministic:
            raise ValueError("an exported policy holds the deterministic actor only: use deterministic=True")
        x, single = self._obs(obs)
        return (self._actions(x)[0] if single else self._actions(x)), state

    def quota_factor(self, action: Any) -> np.ndarray:
        """``quota_step_factor ** action``: the factor the environment multiplies each quota by (before clipping)."""
        return np.exp(self._log_step * np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0))

    def apply(self, current: Any, action: Any) -> np.ndarray:
        """New quota multipliers ``clip(current x quota_step_factor ** action, quota_min, quota_max)``."""
        return np.clip(self.quota_factor(action) * np.asarray(current, np.float32), self._qmin, self._qmax)

    def act(self, obs: Any, current: Any = None) -> np.ndarray:
        """The quota multipliers the environment sets next, ``(T,)``/``(N, T)``; ``current``: exp(obs[quota/*])."""
        x, single = self._obs(obs)
        if current is None and self._session is not None:
            m = self._session.run(["quota_multiplier"], {ONNX_INPUT: x})[0]
        else:
            cur = np.exp(x[:, self.quota_obs_index]) if current is None else \
                np.broadcast_to(np.asarray(current, np.float32), (x.shape[0], self.n_tiers))
            m = self.apply(cur, self._actions(x))
        return m[0] if single else m

    def __repr__(self) -> str:
        return f"ExportedPolicy({str(self.path)!r}, backend={self.backend!r}, {self.env_id} v{self.env_version})"


def _onnx_session(folder: Path, data: bytes, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise _fail(folder, "backend='onnx' needs onnxruntime: pip install onnxruntime (or backend='numpy')") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = int(threads), 1, 3
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise _fail(folder, f"{ONNX_FILE} is not a loadable ONNX model ({reason})") from None
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != [ONNX_INPUT] or tuple(outputs) != ONNX_OUTPUTS:
        raise _fail(folder, f"{ONNX_FILE} has inputs {inputs} and outputs {outputs}, expected "
                            f"[{ONNX_INPUT!r}] and {list(ONNX_OUTPUTS)}")
    return session


def load_policy(path: str | Path, backend: str = "auto", obs_names: list[str] | None = None, *,
                env_id: str | None = None, env_version: int | None = None, onnx_threads: int = 1,
                name: str | None = None) -> ExportedPolicy:
    """Load and verify an exported policy folder (written by ``python -m agents.export``).

    ``backend``: ``"numpy"``, ``"onnx"`` (onnxruntime) or ``"auto"`` (onnxruntime if installed); both give the
    same actions within float32 rounding. ``obs_names`` / ``env_id`` / ``env_version``: refuse another layout or
    environment. Raises :class:`PolicyLoadError`, one line naming the file and what is wrong (missing, not a
    regular file, too large, truncated, wrong checksum, unknown format version, not a plain-array ``.npz``,
    mismatched layout, the temporary folder of an interrupted export).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r}: one of {', '.join(BACKENDS)}")
    folder = Path(path)
    meta = read_meta(folder)
    onnx_bytes = _read_verified(folder, meta, ONNX_FILE)
    weights = _load_npz(folder, _read_verified(folder, meta, WEIGHTS_FILE))
    if backend == "auto":
        backend = "onnx" if importlib.util.find_spec("onnxruntime") is not None else "numpy"
    session = _onnx_session(folder, onnx_bytes, onnx_threads) if backend == "onnx" else None
    policy = ExportedPolicy(folder, meta, weights, session, name=name)
    policy.check_layout(obs_names)
    policy.check_env(env_id, env_version)
    return policy
