"""Files written atomically and checked by checksum: the helpers checkpoints, run folders and exports share."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------- bounded, confined reads
MAX_JSON_BYTES = 16 << 20
"""Largest JSON/YAML file any command reads whole (manifests, pointers, run.json, scenarios, hyperparameters)."""
_TEMPORARY = re.compile(r"^\..+\.(tmp|old)-(\d+)$")


class FileRefused(ValueError):
    """A file that is not read: not regular, a symbolic link, too large or not UTF-8 text; one line."""


def read_bytes_checked(path: Path, limit: int = MAX_JSON_BYTES, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; sizes are checked before reading.

    ``follow_symlinks=False`` refuses a symbolic link (files inside run and export folders).
    Raises ``FileNotFoundError`` for a missing file and :class:`FileRefused` otherwise.
    """
    path = Path(path)
    st = os.stat(path) if follow_symlinks else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise FileRefused(f"{path.name} is a symbolic link (refused inside a run or export folder)")
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"{path.name} is not a regular file")
    if st.st_size > limit:
        raise FileRefused(f"{path.name} is {st.st_size:,} bytes, more than the limit of {limit:,}")
    flags = os.O_RDONLY | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{path.name} grew past the limit of {limit:,} bytes while being read")
    return data


def read_text_checked(path: Path, limit: int = MAX_JSON_BYTES, follow_symlinks: bool = True) -> str:
    """:func:`read_bytes_checked` decoded as UTF-8 (:class:`FileRefused` naming the byte offset if it is not)."""
    data = read_bytes_checked(path, limit, follow_symlinks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"{Path(path).name} is not UTF-8 text (byte {exc.start})") from None


def read_json_checked(path: Path, limit: int = MAX_JSON_BYTES, follow_symlinks: bool = True) -> Any:
    """Parsed JSON of a checked file; ``ValueError`` (:class:`FileRefused` or ``json.JSONDecodeError``) if bad."""
    return json.loads(read_text_checked(path, limit, follow_symlinks))


def inside(folder: Path, relative: Any, what: str) -> Path:
    """``folder / relative`` if ``relative`` is a plain relative path that stays in ``folder`` with no symlink.

    Refuses absolute paths, ``..``, and any symbolic link on the way (``FileRefused`` naming ``what``).
    """
    folder = Path(folder)
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise FileRefused(f"{what} = {relative!r}: not a path")
    rel = Path(relative)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or relative.startswith("~"):
        raise FileRefused(f"{what} = {relative!r}: must be a path inside {str(folder)!r} (no absolute path, no '..')")
    current = folder
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            raise FileRefused(f"{what} = {relative!r}: {part!r} is a symbolic link (refused)")
    root = folder.resolve()
    if root != current.resolve() and root not in current.resolve().parents:
        raise FileRefused(f"{what} = {relative!r}: resolves outside {str(folder)!r}")
    return current


def is_temporary(path: Path) -> bool:
    """True for the ``.<name>.tmp-PID`` / ``.<name>.old-PID`` entries of an interrupted atomic write."""
    return _TEMPORARY.match(Path(path).name) is not None


def remove_stale_temporaries(folder: Path, prefix: str = ".") -> list[Path]:
    """Delete ``.<name>.tmp-PID`` files and folders (names starting with ``prefix``) left in ``folder`` by
    processes that no longer run."""
    import shutil

    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMPORARY.match(entry.name)
        if m is None or not entry.name.startswith(prefix) or _alive(int(m.group(2))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid != 0
    return True


_KILL_COUNTS: dict[str, int] = {}


def kill_point(name: str) -> None:
    """Test hook: ``RATIONING_KILL_AT=<name>[:<n>]`` SIGKILLs this process the n-th time it passes ``name``.

    Points: ``run_folder`` (before a new run folder is renamed into place), ``warm_start`` (between
    collecting and cloning), ``checkpoint_write`` (checkpoint files written, not yet renamed), ``ppo``
    (end of a rollout), ``final_eval`` (the final evaluation starts). Used by the resume tests.
    """
    spec = os.environ.get("RATIONING_KILL_AT")
    if not spec:
        return
    phase, _, nth = spec.partition(":")
    if phase != name:
        return
    _KILL_COUNTS[name] = _KILL_COUNTS.get(name, 0) + 1
    if _KILL_COUNTS[name] >= int(nth or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
