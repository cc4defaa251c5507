"""Provenance recorded in run folders, tuned files and exported policies: git commit, uncommitted changes, versions."""

from __future__ import annotations

import importlib
import platform
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    """The checked-out commit of this project, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=_REPO)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty() -> list[str] | None:
    """This project's tracked files with uncommitted changes (relative paths, sorted; ``[]`` when clean), or
    None outside a git checkout. A result made from a dirty tree is not reproduced by its commit alone."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                             text=True, timeout=5, cwd=_REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return sorted(line[3:].strip() for line in out.stdout.splitlines() if line.strip())


def versions(modules: tuple[str, ...] = ("numpy", "torch", "stable_baselines3", "gymnasium")) -> dict[str, str]:
    """Python's and each importable module's version (missing modules are left out)."""
    out = {"python": platform.python_version()}
    for name in modules:
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            continue
    return out
