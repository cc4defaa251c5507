"""The rule base class: parameters -> arrays, observation -> target multipliers -> action."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from envs import RationingCore, Scenario

from .context import ANY_TIER, RuleContext, RuleError


# ----------------------------------------------------------------------------- base rule
class Dim(NamedTuple):
    """One tunable dimension: ``name`` (a Params field), range, scale; per-tier dims tune each tier."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    per_tier: bool = False


@dataclass(frozen=True)
class NoParams:
    """The rule has no parameters."""


class Rule:
    """Base of the rule policies: parameters -> arrays, observation -> target multipliers -> action."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    space: ClassVar[tuple[Dim, ...]] = ()
    stateful: ClassVar[bool] = False

    def __init__(self, context: RuleContext | str | Path | Scenario | RationingCore = "default",
                 params: Any = None) -> None:
        self.ctx = context if isinstance(context, RuleContext) else RuleContext(context)
        self.params = self.Params() if params is None else params
        if not isinstance(self.params, self.Params):
            raise RuleError(f"{self.name}: parameters must be {self.Params.__name__}, got {type(self.params).__name__}")
        self.rows = 1
        self.k = self._arrays([self.params], 1)
        self._setup()

    @classmethod
    def batched(cls, context: RuleContext, params: Sequence[Any], repeats: int = 1) -> Rule:
        """One rule over ``len(params) x repeats`` rows: row ``i x repeats + j`` uses ``params[i]``."""
        rule = cls.__new__(cls)
        rule.ctx = context
        rule.params = params[0]
        rule.rows = len(params) * repeats
        rule.k = rule._arrays(list(params), repeats)
        rule._setup()
        return rule

    def _arrays(self, params: list[Any], repeats: int) -> dict[str, np.ndarray]:
        """Each field as a float64 array (B, T) if per-tier else (B, 1), B = 1 or the batch rows."""
        out: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self.Params):
            rows = [tier_values(self.ctx.tier_names, getattr(p, f.name), f"{self.name}.{f.name}")
                    if isinstance(getattr(p, f.name), dict) else np.array([float(getattr(p, f.name))])
                    for p in params]
            arr = np.stack(rows, axis=0)
            out[f.name] = np.repeat(arr, repeats, axis=0) if repeats > 1 else arr
        return out

    def _setup(self) -> None:
        """Derived arrays (e.g. the time-of-use table); called after the parameter arrays are built."""

    def _check_rows(self, n: int) -> None:
        if self.rows not in (1, n):
            raise RuleError(f"{self.name}: built for {self.rows} rows, got observations of {n}")

    def initial_state(self, obs: np.ndarray) -> Any:
        return None

    def reset_state(self, state: Any, fresh: Any, rows: np.ndarray) -> Any:
        state[rows] = fresh[rows]
        return state

    def target(self, obs: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """(N, T) target multipliers and the new state, for float64 observations (N, obs_size)."""
        raise NotImplementedError

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        """SB3's call: actions (N, T) float32 in [-1, 1] and the rule's state (None if it has none)."""
        x = np.asarray(obs, dtype=np.float64)
        single = x.ndim == 1
        x = x.reshape(1, -1) if single else x
        if x.shape[1] != self.ctx.obs_size:
            raise RuleError(
                f"{self.name}: observations have {x.shape[1]} entries, the scenario has {self.ctx.obs_size}")
        self._check_rows(x.shape[0])
        target, state = self.step_target(x, state, episode_start)
        action = self.ctx.action_to(x, target)
        return (action[0] if single else action), state

    def step_target(self, x: np.ndarray, state: Any, episode_start: Any = None) -> tuple[np.ndarray, Any]:
        """(N, T) target multipliers and the new state for float64 observations ``x`` (N, obs_size).

        Handles the rule's memory as :meth:`predict` does (fresh state where ``episode_start``).
        """
        if self.stateful:
            fresh = self.initial_state(x)
            if state is None:
                state = fresh
            else:
                state = np.array(state, dtype=np.float64, copy=True)
                if episode_start is not None:
                    starts = np.asarray(episode_start, dtype=bool).reshape(-1)
                    if starts.any():
                        state = self.reset_state(state, fresh, starts)
        else:
            state = None
        return self.target(x, state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


def tier_values(tier_names: Sequence[str], values: dict[str, float], what: str) -> np.ndarray:
    """(T,) float64 from a per-tier dict (``"*"`` for tiers not listed)."""
    out = []
    for t in tier_names:
        v = values.get(t, values.get(ANY_TIER))
        if v is None:
            raise RuleError(f"{what}: no value for tier {t!r} (give it or a '{ANY_TIER}' entry)")
        out.append(float(v))
    return np.asarray(out, dtype=np.float64)


