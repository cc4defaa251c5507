"""The tuned rule parameters shipped in ``agents/rules/tuned/baselines.json`` (written by ``python -m agents.tune``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.common.files import FileRefused, read_text_checked
from agents.common.policy import PolicyError

from .registry import RULES

TUNED_FILE = Path(__file__).resolve().parent / "tuned" / "baselines.json"
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
