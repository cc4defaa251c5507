"""Fixed-rule baselines: the rules operators use today, as batched numpy policies.

Every rule answers stable-baselines3's call,
``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``,
for observations of shape ``(N, obs_size)`` or ``(obs_size,)``, and returns float32
actions in [-1, 1] of shape ``(N, T)`` (or ``(T,)``). A rule reads only

* the observation: time of day/week from the sin/cos entries, the current quota
  multiplier from ``quota/<tier>`` (= log multiplier), latency, queue, demand,
  users and capacity entries; and
* the scenario's static parameters given at construction (:class:`RuleContext`):
  tier names, latency targets, priority weights, contracted GPUs, the quota and
  action mapping, the demand profile.

Each rule computes a *target* quota multiplier per tier and converts it to the
action with :func:`envs.quota.action_for_multiplier` (one step can at most halve
or double a quota with the default ``quota_step_factor`` 2). Rules with memory
(``aimd``, ``latency-gradient``) keep it in ``state``, as SB3 recurrent policies
do: pass the returned state back, with ``episode_start`` marking new episodes.

Parameters are a frozen dataclass per rule (``Rule.Params``); per-tier values are
dicts keyed by tier name, with ``"*"`` as the value for tiers not listed. The
defaults are an operator's first guess; ``agents/tuned/baselines.json`` (written
by ``python -m agents.tune``) holds the tuned ones. ``Rule.space`` lists the
tunable dimensions and their ranges.

| name               | rule                                                                   |
|--------------------|------------------------------------------------------------------------|
| ``static``         | nominal quotas (multiplier 1), never adjusted                           |
| ``time-of-use``    | 24x7 multiplier table per tier: tight in weekday working hours         |
| ``tier-priority``  | shed the lowest tiers first when predicted wait / latency pass thresholds |
| ``aimd``           | global multiplier: x decrease on a latency breach, + increase while healthy |
| ``predictive``     | admit what the current capacity serves within each tier's latency target |
| ``fair-share``     | weighted max-min fair share of capacity per tier, unused share lent out |
| ``latency-gradient`` | per-tier limit scaled by long-run / short-run latency (Gradient2)    |

Batched parameters: :meth:`Rule.batched` builds one rule whose N rows each have
their own parameter set (used by the tuner to evaluate many candidates in one
:class:`envs.RationingCore`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from envs import RationingCore, Scenario
from envs.observation import TIER_BLOCKS, tier_block
from envs.quota import action_for_multiplier

ANY_TIER = "*"
"""Key of a per-tier parameter dict that applies to tiers not listed."""


class RuleError(ValueError):
    """Bad rule parameters; the message is one line."""


def per_tier(default: float, **values: float) -> Any:
    """A dataclass field holding a per-tier dict: ``values`` by tier name, ``default`` for the rest."""
    return field(default_factory=lambda: {**values, ANY_TIER: float(default)})


# ------------------------------------------------------------------------------- context
class RuleContext:
    """The scenario's static facts a rule may use, and readers of the observation.

    Built from a scenario name, path, :class:`~envs.Scenario` or an existing
    :class:`~envs.RationingCore`. All readers take observations ``(N, obs_size)``
    and return float64 arrays ``(N,)`` or ``(N, T)``.
    """

    def __init__(self, source: str | Path | Scenario | RationingCore = "default",
                 overrides: dict[str, Any] | None = None) -> None:
        core = source if isinstance(source, RationingCore) else RationingCore(source, 1, overrides=overrides)
        p = core.params
        self.params = p
        self.scenario_name: str = core.scenario.name
        self.tier_names: list[str] = list(p.tier_names)
        self.n_tiers = T = p.n_tiers
        self.obs_size = core.obs_size
        self.obs_names: list[str] = list(core.obs_names)
        P = p.n_providers
        self.blocks = {b: tier_block(p, b) for b in TIER_BLOCKS}
        self.capacity_slice = slice(4, 4 + P)
        self.burst_index, self.utilisation_index, self.collapsed_index = 4 + P, 5 + P, 6 + P
        self.contracted_gpus = p.contracted_gpus.astype(np.float64)
        self.latency_target_s = p.latency_target_s.astype(np.float64)
        self.priority_weight = p.priority_weight.astype(np.float64)
        # dense rank of priority weight: 0 = lowest priority; equal weights share a rank
        levels = np.unique(self.priority_weight)
        self.priority_rank = np.searchsorted(levels, self.priority_weight).astype(np.float64)
        self.n_ranks = len(levels)
        self.order_desc = np.argsort(-self.priority_weight, kind="stable")  # highest priority first
        self.inverse_order = np.argsort(self.order_desc)
        self.users0 = p.users0.astype(np.float64)
        self.quota_tokens_per_user_step = p.quota_tokens_per_user_step.astype(np.float64)
        self.mean_demand_tokens_step = p.mean_demand_tokens_step.astype(np.float64)
        self.profile = p.profile_table.astype(np.float64)  # (steps_per_week, T)
        assert self.profile.shape == (p.steps_per_week, T)

    # time -----------------------------------------------------------------------
    def week_step(self, obs: np.ndarray) -> np.ndarray:
        """(N,) step of the week (0 = Monday 00:00) the next action applies to."""
        p = self.params
        ang = np.mod(np.arctan2(obs[:, 2], obs[:, 3]), 2.0 * np.pi)
        return np.rint(ang * (p.steps_per_week / (2.0 * np.pi))).astype(np.int64) % p.steps_per_week

    def clock(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hour of day 0..23, day of week 0 = Monday .. 6 = Sunday), int arrays (N,)."""
        hours = self.week_step(obs) * self.params.dt_h
        return (np.floor(hours + 1e-6).astype(np.int64) % 24), (np.floor(hours / 24.0 + 1e-6).astype(np.int64) % 7)

    # observation readers ----------------------------------------------------------
    def block(self, obs: np.ndarray, name: str) -> np.ndarray:
        return obs[:, self.blocks[name]].astype(np.float64)

    def multipliers(self, obs: np.ndarray) -> np.ndarray:
        """(N, T) current quota multipliers."""
        return np.exp(self.block(obs, "quota"))

    def latency_ratio(self, obs: np.ndarray) -> np.ndarray:
        """(N, T) last step's mean latency / target."""
        return np.exp(self.block(obs, "latency_over_target"))

    def latency_s(self, obs: np.ndarray) -> np.ndarray:
        return self.latency_ratio(obs) * self.latency_target_s

    def capacity_tokens(self, obs: np.ndarray) -> np.ndarray:
        """(N,) tokens the fleet serves per step at the GPUs last seen (burst and collapse included)."""
        p = self.params
        gpus = obs[:, self.capacity_slice].astype(np.float64) @ self.contracted_gpus
        gpus = gpus + obs[:, self.burst_index] * self.contracted_gpus.sum()
        collapsed = obs[:, self.collapsed_index] > 0.5
        return gpus * p.tokens_per_gpu_step * np.where(collapsed, p.collapse_capacity_share, 1.0)

    def queue_tokens(self, obs: np.ndarray) -> np.ndarray:
        return self.block(obs, "queue") * self.params.nominal_capacity_tokens_step

    def demand_tokens(self, obs: np.ndarray) -> np.ndarray:
        """(N, T) last step's demand (fresh + retried), tokens."""
        return self.block(obs, "demand") * self.mean_demand_tokens_step

    def demand_forecast(self, obs: np.ndarray) -> np.ndarray:
        """(N, T) next step's demand: last step's, times the weekly profile's change (persistence x profile)."""
        ws = self.week_step(obs)
        prev = (ws - 1) % self.params.steps_per_week
        ratio = self.profile[ws] / np.maximum(self.profile[prev], 1e-9)
        return self.demand_tokens(obs) * ratio

    def users(self, obs: np.ndarray) -> np.ndarray:
        return np.maximum(self.block(obs, "users") * self.users0, 1.0)

    # quota model --------------------------------------------------------------------
    def multiplier_for_admitted(self, demand: np.ndarray, users: np.ndarray, admitted: np.ndarray) -> np.ndarray:
        """(N, T) quota multiplier that admits ``admitted`` of ``demand`` tokens (inverse of envs.quota.admit).

        With Lomax usage (tail ``alpha``), admitted = demand (1 - z^-(alpha-1)),
        z = 1 + q users quota_per_user / ((alpha - 1) demand); solved for q.
        Admitting everything needs an infinite quota: the result is then +inf.
        """
        alpha = self.params.usage_alpha
        d = np.maximum(demand, 1e-3)
        frac = np.clip(admitted / d, 0.0, 1.0)
        with np.errstate(divide="ignore"):
            z = np.power(np.maximum(1.0 - frac, 0.0), -1.0 / (alpha - 1.0))
        return (z - 1.0) * (alpha - 1.0) * d / (users * self.quota_tokens_per_user_step)

    def admitted_at(self, demand: np.ndarray, users: np.ndarray, multiplier: np.ndarray) -> np.ndarray:
        """(N, T) tokens a quota ``multiplier`` admits of ``demand`` (envs.quota.admit in float64)."""
        alpha = self.params.usage_alpha
        d = np.maximum(demand, 1e-3)
        z = 1.0 + multiplier * users * self.quota_tokens_per_user_step / ((alpha - 1.0) * d)
        return demand * (1.0 - z ** (1.0 - alpha))

    def action_to(self, obs: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(N, T) float32 action moving the current multipliers toward ``target`` (clipped to the quota range)."""
        p = self.params
        target = np.clip(target, p.quota_min, p.quota_max)
        return action_for_multiplier(p, self.multipliers(obs), target)


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
        target, state = self.target(x, state)
        action = self.ctx.action_to(x, target)
        return (action[0] if single else action), state

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


# ---------------------------------------------------------------------------------- rules
class StaticRule(Rule):
    """``static``: nominal quotas (multiplier 1 on every tier), never adjusted.

    What an operator runs with no rationing logic at all: the per-user token
    buckets of the scenario (``quota_tokens_per_user_hour``). No parameters.
    """

    name = "static"

    def target(self, obs, state):
        return np.ones((obs.shape[0], self.ctx.n_tiers)), state


@dataclass(frozen=True)
class TimeOfUseParams:
    """Weekday working hours ``[peak_start_h, peak_end_h)`` use ``peak``; other weekday hours
    ``offpeak``; Saturday and Sunday ``weekend`` (multipliers per tier, scenario clock)."""

    peak_start_h: int = 9
    peak_end_h: int = 18
    peak: dict[str, float] = per_tier(0.8, free=0.5, pro=0.7, enterprise=1.0)
    offpeak: dict[str, float] = per_tier(1.5)
    weekend: dict[str, float] = per_tier(2.0)


class TimeOfUseRule(Rule):
    """``time-of-use``: a 24x7 multiplier table per tier, the strategy in the project's brief.

    Rule: tighter quotas in weekday working hours, looser at night and on weekends.
    The table ``self.table[b, day, hour, tier]`` (day 0 = Monday, hours of the
    scenario clock) is built from :class:`TimeOfUseParams`: weekday hours in
    ``[peak_start_h, peak_end_h)`` get ``peak``, the other weekday hours
    ``offpeak``, weekends ``weekend``. Each step the quota moves toward the
    table's entry for the hour the action applies to.
    """

    name = "time-of-use"
    Params = TimeOfUseParams
    space = (
        Dim("peak_start_h", 5, 12, integer=True),
        Dim("peak_end_h", 14, 24, integer=True),
        Dim("peak", 0.1, 4.0, log=True, per_tier=True),
        Dim("offpeak", 0.25, 4.0, log=True, per_tier=True),
        Dim("weekend", 0.25, 4.0, log=True, per_tier=True),
    )

    def _setup(self) -> None:
        k = self.k
        hour = np.arange(24.0)[None, None, :, None]                       # (1, 1, 24, 1)
        weekday = (np.arange(7) < 5)[None, :, None, None]                 # (1, 7, 1, 1)
        start = k["peak_start_h"].reshape(-1, 1, 1, 1)                     # (B, 1, 1, 1)
        end = k["peak_end_h"].reshape(-1, 1, 1, 1)
        in_peak = weekday & (hour >= start) & (hour < end)                # (B, 7, 24, 1)
        peak, off, wkend = (k[n][:, None, None, :] for n in ("peak", "offpeak", "weekend"))  # (B, 1, 1, T)
        self.table = np.where(in_peak, peak, np.where(weekday, off, wkend))  # (B, 7, 24, T)

    def target(self, obs, state):
        hour, day = self.ctx.clock(obs)
        if self.table.shape[0] == 1:
            return self.table[0, day, hour], state
        return self.table[np.arange(obs.shape[0]), day, hour], state


@dataclass(frozen=True)
class TierPriorityParams:
    """Thresholds of the shedding signal and the per-tier cut / open multipliers."""

    wait_threshold_s: float = 60.0
    """Predicted queue wait (queued tokens / current capacity x step seconds) that starts shedding."""
    latency_threshold: float = 1.0
    """Worst tier's latency / target that starts shedding."""
    escalation: float = 2.0
    """Tier of priority rank r (0 = lowest) is cut when the signal passes escalation ** r."""
    release: float = 0.5
    """Hysteresis: a tier already cut is reopened only when the signal falls below release x its threshold."""
    protect_ranks: int = 1
    """The top ``protect_ranks`` priority levels are never cut."""
    cut: dict[str, float] = per_tier(0.5, free=0.25)
    open: dict[str, float] = per_tier(1.0)


class TierPriorityRule(Rule):
    """``tier-priority``: protect the high tiers; shed the lowest tiers first under pressure.

    Signal ``s = max(predicted wait / wait_threshold_s, max_i latency_i / target_i / latency_threshold)``
    where predicted wait = queued tokens / current capacity tokens per step x step
    seconds. Tiers are ranked by priority weight (0 = lowest; equal weights share a
    rank). A tier of rank r is cut to its ``cut`` multiplier while ``s >=
    escalation ** r`` (``release x`` that once it is cut: hysteresis read from its
    current quota), otherwise it runs at its ``open`` multiplier. The top
    ``protect_ranks`` ranks are never cut.
    """

    name = "tier-priority"
    Params = TierPriorityParams
    space = (
        Dim("wait_threshold_s", 1.0, 900.0, log=True),
        Dim("latency_threshold", 0.5, 8.0, log=True),
        Dim("escalation", 1.05, 8.0, log=True),
        Dim("release", 0.2, 1.0),
        Dim("protect_ranks", 0, 3, integer=True),
        Dim("cut", 0.05, 1.0, log=True, per_tier=True),
        Dim("open", 0.5, 4.0, log=True, per_tier=True),
    )

    def target(self, obs, state):
        c, k = self.ctx, self.k
        wait = c.params.dt_s * c.queue_tokens(obs).sum(axis=1) / np.maximum(c.capacity_tokens(obs), 1.0)
        lat = c.latency_ratio(obs).max(axis=1)
        s = np.maximum(wait[:, None] / k["wait_threshold_s"], lat[:, None] / k["latency_threshold"])  # (N, 1)
        cut, open_ = k["cut"], k["open"]
        already_cut = c.multipliers(obs) <= np.sqrt(cut * open_) * (1.0 + 1e-6)
        threshold = k["escalation"] ** c.priority_rank * np.where(already_cut, k["release"], 1.0)
        protected = c.priority_rank >= c.n_ranks - k["protect_ranks"]
        shed = (s >= threshold) & ~protected
        return np.where(shed, cut, open_), state


@dataclass(frozen=True)
class AIMDParams:
    """Additive-increase / multiplicative-decrease of a global multiplier, split by tier weights."""

    g0: float = 1.0
    """Global multiplier at the start of an episode."""
    increase: float = 0.05
    """Added to the global multiplier each healthy step."""
    decrease: float = 0.7
    """Factor applied to the global multiplier on a breach."""
    breach_ratio: float = 1.0
    """A breach: some tier's latency / target above this."""
    g_min: float = 0.1
    g_max: float = 2.0
    weights: dict[str, float] = per_tier(1.0)
    """Tier multiplier = global multiplier x weight."""


class AIMDRule(Rule):
    """``aimd``: cut a global quota multiplier on a latency breach, raise it additively while healthy.

    As in adaptive concurrency limiters (TCP-style AIMD): each step, if any tier's
    last latency exceeds ``breach_ratio x`` its target, ``g <- max(g x decrease,
    g_min)``, else ``g <- min(g + increase, g_max)``. Tier i's quota multiplier is
    ``g x weights[i]``. ``g`` is the rule's state, shape (N,), starting at ``g0``.
    """

    name = "aimd"
    Params = AIMDParams
    stateful = True
    space = (
        Dim("g0", 0.1, 4.0, log=True),
        Dim("increase", 0.001, 0.5, log=True),
        Dim("decrease", 0.3, 0.95),
        Dim("breach_ratio", 0.5, 8.0, log=True),
        Dim("g_min", 0.05, 1.0, log=True),
        Dim("g_max", 0.5, 4.0, log=True),
        Dim("weights", 0.1, 4.0, log=True, per_tier=True),
    )

    def initial_state(self, obs):
        return np.broadcast_to(self.k["g0"][:, 0], (obs.shape[0],)).astype(np.float64)

    def target(self, obs, state):
        k = self.k
        breach = self.ctx.latency_ratio(obs).max(axis=1) > k["breach_ratio"][:, 0]
        g = np.where(breach, np.maximum(state * k["decrease"][:, 0], k["g_min"][:, 0]),
                     np.minimum(state + k["increase"][:, 0], k["g_max"][:, 0]))
        return g[:, None] * k["weights"], g


def _capacity_limits(ctx: RuleContext, budget: np.ndarray, latency_factor: np.ndarray) -> np.ndarray:
    """(N, T) load of tiers with priority >= i that keeps tier i's mean latency within latency_factor x target.

    Latency = base / (1 - u_i) (envs.serving), u_i = utilisation by tiers of
    priority >= i, so u_i <= 1 - base / (latency_factor x target_i).
    """
    share = 1.0 - ctx.params.base_latency_s / (latency_factor * ctx.latency_target_s)
    return budget[:, None] * np.clip(share, 0.02, 1.0)


@dataclass(frozen=True)
class PredictiveAdmissionParams:
    """Capacity headroom, latency budget and forecast margin of predictive admission."""

    headroom: float = 0.95
    """Share of the current capacity the rule plans to use."""
    latency_factor: float = 1.0
    """Plan for each tier's mean latency to stay within latency_factor x its target."""
    demand_margin: float = 1.0
    """Forecast demand (persistence x weekly profile) is multiplied by this."""
    open_multiplier: float = 2.0
    """Quota of a tier whose whole forecast demand fits."""
    min_multiplier: float = 0.05
    """Lowest quota the rule sets."""


class PredictiveRule(Rule):
    """``predictive``: admit only what the current capacity can serve within each tier's latency target.

    From the observation only: current capacity C (GPUs last seen x tokens/GPU,
    burst and collapse included), queued tokens Q, forecast demand D (last step's
    demand x the weekly profile's change to the next step, x ``demand_margin``).
    Tiers are filled in priority order (highest first): the load of tiers with
    priority >= i, queue included, may use at most ``headroom x C x (1 - base
    latency / (latency_factor x target_i))`` (mean latency within target under
    the env's contention model; limits are made non-decreasing down the order).
    A tier asks for what its ``open_multiplier`` quota would admit of D_i (the
    rest would be throttled anyway), so unused room passes down the order. Each
    tier's admitted budget A_i is turned into the quota multiplier that admits A_i
    of D_i under the Lomax usage model (:meth:`RuleContext.multiplier_for_admitted`),
    capped at ``open_multiplier`` and floored at ``min_multiplier``.
    """

    name = "predictive"
    Params = PredictiveAdmissionParams
    space = (
        Dim("headroom", 0.5, 1.5),
        Dim("latency_factor", 0.25, 8.0, log=True),
        Dim("demand_margin", 0.7, 4.0, log=True),
        Dim("open_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
    )

    def target(self, obs, state):
        c, k = self.ctx, self.k
        demand = c.demand_forecast(obs) * k["demand_margin"]
        users = c.users(obs)
        wanted = c.admitted_at(demand, users, k["open_multiplier"])  # the most a tier takes at its open quota
        queue = c.queue_tokens(obs)
        limit = _capacity_limits(c, c.capacity_tokens(obs), k["latency_factor"]) * k["headroom"]
        o = c.order_desc
        d, q, lim = wanted[:, o], queue[:, o], limit[:, o]
        lim = np.maximum.accumulate(lim, axis=1)        # non-decreasing down the priority order
        s = np.cumsum(d + q, axis=1)                     # cumulative load if everything were admitted
        # cum_j = min(cum_{j-1} + q_j + d_j, lim_j)  =>  cum_j = s_j + min(0, min_{k<=j} (lim_k - s_k))
        cum = s + np.minimum(np.minimum.accumulate(lim - s, axis=1), 0.0)
        prev = np.concatenate([np.zeros((cum.shape[0], 1)), cum[:, :-1]], axis=1)
        admitted = np.maximum(cum - prev - q, 0.0)[:, c.inverse_order]
        target = c.multiplier_for_admitted(demand, users, admitted)
        return np.clip(target, k["min_multiplier"], k["open_multiplier"]), state


def weighted_max_min(demand: np.ndarray, weights: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Weighted max-min fair split of ``capacity`` (N,) over ``demand`` (N, T), weights (N or 1, T).

    Tier i gets ``min(demand_i, w_i x lambda)``, lambda set so the total is
    ``min(capacity, sum demand)``: a share a tier does not need is lent to the
    others by weight. Same closed form as :func:`envs.serving.weighted_fair_share`,
    with per-row weights.
    """
    n, t = demand.shape
    w = np.broadcast_to(weights, (n, t))
    ratio = demand / w
    order = np.argsort(ratio, axis=1, kind="stable")
    r = np.take_along_axis(ratio, order, axis=1)
    ws = np.take_along_axis(w, order, axis=1)
    cum_w = np.cumsum(ws, axis=1)
    cum_d = np.cumsum(r * ws, axis=1)
    w_total = cum_w[:, -1:]
    needed = cum_d + r * (w_total - cum_w)     # capacity used if lambda = the k-th ratio
    full = (needed <= capacity[:, None]).sum(axis=1)
    pad = np.zeros((n, 1))
    d_done = np.take_along_axis(np.concatenate([pad, cum_d], axis=1), full[:, None], axis=1)[:, 0]
    w_done = np.take_along_axis(np.concatenate([pad, cum_w], axis=1), full[:, None], axis=1)[:, 0]
    lam = np.maximum(capacity - d_done, 0.0) / np.maximum(w_total[:, 0] - w_done, 1e-12)
    return np.minimum(demand, w * lam[:, None])


@dataclass(frozen=True)
class FairShareParams:
    """Capacity budget, forecast margin and tier weights of weighted fair share."""

    headroom: float = 0.95
    """Share of the current capacity (minus the queue) handed out."""
    demand_margin: float = 1.0
    open_multiplier: float = 2.0
    min_multiplier: float = 0.05
    weights: dict[str, float] = per_tier(1.0, free=1.0, pro=3.0, max=5.0, team=5.0, enterprise=10.0, api=4.0)


class FairShareRule(Rule):
    """``fair-share``: capacity partitioned per tier by weight, unused share lent out.

    Budget B = ``headroom x`` current capacity minus queued tokens. Each tier's
    admitted budget is its weighted max-min fair share of B over the forecast
    demand (persistence x weekly profile x ``demand_margin``), counting only what
    the ``open_multiplier`` quota would admit: tier i gets ``min(D_i, w_i x lambda)``.
    The budget becomes a quota multiplier through the
    Lomax usage model, capped at ``open_multiplier``, floored at ``min_multiplier``.
    """

    name = "fair-share"
    Params = FairShareParams
    space = (
        Dim("headroom", 0.5, 1.5),
        Dim("demand_margin", 0.7, 4.0, log=True),
        Dim("open_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
        Dim("weights", 0.5, 20.0, log=True, per_tier=True),
    )

    def target(self, obs, state):
        c, k = self.ctx, self.k
        demand = c.demand_forecast(obs) * k["demand_margin"]
        users = c.users(obs)
        wanted = c.admitted_at(demand, users, k["open_multiplier"])  # the most a tier takes at its open quota
        budget = np.maximum(k["headroom"][:, 0] * c.capacity_tokens(obs) - c.queue_tokens(obs).sum(axis=1), 0.0)
        admitted = weighted_max_min(wanted, k["weights"], budget)
        target = c.multiplier_for_admitted(demand, users, admitted)
        return np.clip(target, k["min_multiplier"], k["open_multiplier"]), state


@dataclass(frozen=True)
class LatencyGradientParams:
    """Gradient2-style limit per tier."""

    tolerance: float = 1.5
    """Short-run latency may exceed the long-run reference by this factor before the limit shrinks."""
    smoothing: float = 0.05
    """Per-step weight of the newest latency in the long-run average."""
    min_gradient: float = 0.5
    """Largest cut in one step (limit x min_gradient)."""
    increase: float = 0.05
    """Added to the multiplier each step (probing for room)."""
    max_multiplier: float = 2.0
    min_multiplier: float = 0.05


class LatencyGradientRule(Rule):
    """``latency-gradient``: scale each tier's limit by long-run / short-run latency.

    The Gradient2 concurrency limiter applied per tier: ``gradient_i =
    clip(tolerance x ref_i / latency_i, min_gradient, 1)`` with ``ref_i = min(long-run
    average latency_i, target_i)``; the multiplier becomes ``m_i x gradient_i +
    increase``, clipped to ``[min_multiplier, max_multiplier]``. The long-run
    average (state, (N, T), starting at the targets) follows the observed latency
    with weight ``smoothing`` per step.
    """

    name = "latency-gradient"
    Params = LatencyGradientParams
    stateful = True
    space = (
        Dim("tolerance", 1.0, 4.0, log=True),
        Dim("smoothing", 0.005, 0.5, log=True),
        Dim("min_gradient", 0.5, 0.95),
        Dim("increase", 0.005, 0.5, log=True),
        Dim("max_multiplier", 0.5, 4.0, log=True),
        Dim("min_multiplier", 0.05, 1.0, log=True),
    )

    def initial_state(self, obs):
        return np.tile(self.ctx.latency_target_s, (obs.shape[0], 1))

    def target(self, obs, state):
        c, k = self.ctx, self.k
        short = c.latency_s(obs)
        ref = np.minimum(state, c.latency_target_s)
        gradient = np.clip(k["tolerance"] * ref / np.maximum(short, 1e-6), k["min_gradient"], 1.0)
        target = np.clip(c.multipliers(obs) * gradient + k["increase"], k["min_multiplier"], k["max_multiplier"])
        new_state = state + k["smoothing"] * (short - state)
        return target, new_state


RULES: dict[str, type[Rule]] = {
    r.name: r for r in (StaticRule, TimeOfUseRule, TierPriorityRule, AIMDRule, PredictiveRule, FairShareRule,
                        LatencyGradientRule)
}
"""Every rule by name, in the order tables list them."""


# ------------------------------------------------------------------------ params <-> data
def params_to_dict(params: Any) -> dict[str, Any]:
    """JSON-ready dict of a Params dataclass (per-tier dicts copied)."""
    return {f.name: (dict(v) if isinstance(v := getattr(params, f.name), dict) else v)
            for f in dataclasses.fields(params)}


def params_from_dict(rule: str | type[Rule], data: dict[str, Any] | None) -> Any:
    """Build a rule's Params from a (possibly partial) dict; unknown keys and wrong types are one-line errors."""
    cls = RULES[rule] if isinstance(rule, str) else rule
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RuleError(f"{cls.name}: unknown parameter {unknown[0]!r} (parameters: {', '.join(fields) or 'none'})")
    defaults = cls.Params()
    values: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if isinstance(default, dict):
            if not isinstance(value, dict) or not all(isinstance(v, (int, float)) for v in value.values()):
                raise RuleError(f"{cls.name}.{name}: must map tier names to numbers, got {value!r}")
            values[name] = {str(t): float(v) for t, v in value.items()}
        elif isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or float(value) != int(value):
                raise RuleError(f"{cls.name}.{name}: must be an integer, got {value!r}")
            values[name] = int(value)
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RuleError(f"{cls.name}.{name}: must be a number, got {value!r}")
            values[name] = float(value)
    return dataclasses.replace(defaults, **values)


def flat_coordinates(rule: type[Rule], tier_names: Sequence[str]) -> list[tuple[Dim, str | None]]:
    """The search coordinates of a rule: one per scalar dim, one per tier of per-tier dims."""
    return [(d, t) for d in rule.space for t in (tier_names if d.per_tier else [None])]


def with_value(params: Any, dim: Dim, tier: str | None, value: float) -> Any:
    """``params`` with one coordinate set (integers rounded)."""
    v: Any = int(round(value)) if dim.integer else float(value)
    if tier is None:
        return dataclasses.replace(params, **{dim.name: v})
    return dataclasses.replace(params, **{dim.name: {**getattr(params, dim.name), tier: v}})


def get_value(params: Any, dim: Dim, tier: str | None, tier_names: Sequence[str]) -> float:
    v = getattr(params, dim.name)
    if tier is None:
        return float(v)
    return float(tier_values(tier_names, v, dim.name)[list(tier_names).index(tier)])


def make_rule(name: str, context: RuleContext, params: Any = None) -> Rule:
    """A rule by name; ``params`` a Params instance, a dict, or None for the defaults."""
    cls = RULES[name]
    if isinstance(params, dict) or params is None:
        params = params_from_dict(cls, params)
    return cls(context, params)

