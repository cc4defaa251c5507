"""The tuned rule parameters shipped in ``agents/rules/tuned/`` (written by ``python -m agents.tune``).

One file per env version, since the rules are tuned on the world they act in:
``baselines.json`` for Rationing-v1 (the current world), ``baselines-v0.json``
for Rationing-v0 (kept so that v0 evaluations reproduce their numbers);
:func:`tuned_file_for` picks it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.common.files import FileRefused, read_text_checked
from agents.common.policy import PolicyError

from .registry import RULES

TUNED_FILE = Path(__file__).resolve().parent / "tuned" / "baselines.json"
"""Tuned parameters for Rationing-v1."""
TUNED_FILE_V0 = TUNED_FILE.with_name("baselines-v0.json")
"""Tuned parameters for Rationing-v0."""


def tuned_file_for(env_version: int) -> Path:
    """The shipped tuned-baselines file of an env version."""
    return TUNED_FILE_V0 if int(env_version) == 0 else TUNED_FILE
TUNED_FORMAT = "rationing-tuned-baselines"


def read_tuned(path: str | Path = TUNED_FILE) -> dict[str, Any]:
    """The tuned-baselines file (``{}`` if it does not exist); one-line error if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(read_text_checked(path))
    except FileNotFoundError:
        raise PolicyError(f"tuned baselines file {str(path)!r} does not exist (--tuned-file; the shipped one is "
                          f"{TUNED_FILE})") from None
    except FileRefused as exc:
        raise PolicyError(f"tuned baselines file {str(path)!r}: {exc}") from None
    except (OSError, ValueError):
        raise PolicyError(f"tuned baselines file {str(path)!r} is unreadable or not JSON") from None
    if not isinstance(data, dict) or data.get("format") != TUNED_FORMAT or not isinstance(data.get("rules"), dict):
        raise PolicyError(f"tuned baselines file {str(path)!r} is not a {TUNED_FORMAT!r} file")
    return data


def tuned_params(rule: str, path: str | Path = TUNED_FILE) -> dict[str, Any] | None:
    """The tuned parameter dict of ``rule``, or None if the file has none."""
    entry = read_tuned(path).get("rules", {}).get(rule)
    return None if entry is None else dict(entry.get("params", {}))


def best_tuned_baseline(path: str | Path = TUNED_FILE) -> str | None:
    """The rule the tuning run found best on the training scenarios (None without a tuned file)."""
    best = read_tuned(path).get("best")
    return best if best in RULES else None
