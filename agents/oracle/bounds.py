"""The cache of hindsight bounds: one entry per (environment id, scenario, seed).

``agents/oracle/bounds.json`` ships the bounds of the evaluation seeds; ``python -m agents.oracle``
adds to it (or to ``--cache FILE``). Evaluation reads it to report, for every policy, the share of
the rule-to-oracle gap it closes: ``(policy - rule) / (oracle - rule)`` on the mean returns over
the same seeds, where *rule* is the rule the oracle adjusted (the best tuned one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.common.files import write_json_atomic

BOUNDS_FILE = Path(__file__).resolve().parent / "bounds.json"
FORMAT = "rationing-oracle-bounds"
FORMAT_VERSION = 1


class BoundsError(ValueError):
    """An unreadable bounds file; the message is one line."""


def key(env_id: str, scenario: str, seed: int) -> str:
    return f"{env_id}/{scenario}/{int(seed)}"


def read_bounds(path: str | Path = BOUNDS_FILE) -> dict[str, Any]:
    """``{key: entry}`` (empty if the file does not exist); one-line error if it is not a bounds file."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BoundsError(f"oracle bounds file {str(path)!r} is unreadable or not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        raise BoundsError(f"oracle bounds file {str(path)!r} is not a {FORMAT!r} file")
    return data["entries"]


def write_bounds(entries: dict[str, Any], path: str | Path = BOUNDS_FILE) -> None:
    """Merge ``entries`` into the file (atomically)."""
    path = Path(path)
    merged = {**read_bounds(path), **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "description": "Hindsight-optimised returns per (env id, scenario, seed) from python -m agents.oracle: "
                       "plans that know each seed's whole episode in advance. A reference, not a target.",
        "entries": dict(sorted(merged.items())),
    })


def lookup(env_id: str, scenario: str, seeds: list[int], path: str | Path = BOUNDS_FILE) -> list[dict] | None:
    """The entries of every seed, or None if any is missing."""
    entries = read_bounds(path)
    found = [entries.get(key(env_id, scenario, s)) for s in seeds]
    return None if any(e is None for e in found) else found
