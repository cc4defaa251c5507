"""The one policy interface every controller answers, and its shared error.

Every controller (a rule baseline, a PPO checkpoint, an exported policy) answers
stable-baselines3's call, batched over environments::

    action, state = policy.predict(obs, state=None, episode_start=None, deterministic=True)

``obs`` is ``(N, obs_size)`` (or ``(obs_size,)``), ``action`` float32 ``(N, T)`` in
[-1, 1] (or ``(T,)``). Policies with memory return it in ``state``; callers pass it
back with ``episode_start`` (N,) marking rows that start a new episode.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """What evaluation needs of a controller: stable-baselines3's batched ``predict``."""

    def predict(self, obs: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]: ...


class PolicyError(ValueError):
    """A policy spec that cannot be resolved; the message is one line and lists what is available."""


def layout_difference(have: list[str], want: list[str]) -> tuple[int, str, str] | None:
    """First index where two observation layouts differ, with both names ('missing' past an end); None if equal."""
    have, want = list(have), list(want)
    if have == want:
        return None
    i = next((k for k, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
    return i, have[i] if i < len(have) else "missing", want[i] if i < len(want) else "missing"
