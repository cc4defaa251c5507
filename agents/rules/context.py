"""The scenario facts a rule may use (:class:`RuleContext`), per-tier parameter fields, :class:`RuleError`."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from envs import RationingCore, Scenario
from envs.arrays import power
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
                 overrides: dict[str, Any] | None = None, version: int = 0) -> None:
        core = source if isinstance(source, RationingCore) else RationingCore(source, 1, overrides=overrides,
                                                                               version=version)
        p = core.params
        self.params = p
        self.env_version: int = p.env_version
        self.action_size: int = p.action_size
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

    def clock(self, obs: np.ndarray, week_step: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(hour of day 0..23, day of week 0 = Monday .. 6 = Sunday), int arrays (N,).

        ``week_step``: :meth:`week_step` of ``obs`` if the caller has it already."""
        hours = (self.week_step(obs) if week_step is None else week_step) * self.params.dt_h
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

    def demand_forecast(self, obs: np.ndarray, week_step: np.ndarray | None = None) -> np.ndarray:
        """(N, T) next step's demand: last step's, times the weekly profile's change (persistence x profile)."""
        ws = self.week_step(obs) if week_step is None else week_step
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
        z = power(np.maximum(1.0 - frac, 0.0), -1.0 / (alpha - 1.0))  # 1 - frac = 0: +inf
        return (z - 1.0) * (alpha - 1.0) * d / (users * self.quota_tokens_per_user_step)

    def admitted_at(self, demand: np.ndarray, users: np.ndarray, multiplier: np.ndarray) -> np.ndarray:
        """(N, T) tokens a quota ``multiplier`` admits of ``demand`` (envs.quota.admit in float64)."""
        alpha = self.params.usage_alpha
        d = np.maximum(demand, 1e-3)
        z = 1.0 + multiplier * users * self.quota_tokens_per_user_step / ((alpha - 1.0) * d)
        return demand * (1.0 - power(z, 1.0 - alpha))

    def action_to(self, obs: np.ndarray, target: np.ndarray) -> np.ndarray:
        """(N, A) float32 action moving the current multipliers toward ``target`` (clipped to the quota range).

        With a burst action (v1, ``action.burst: policy``) the fixed burst rule's
        decision is appended (:meth:`burst_action`).
        """
        p = self.params
        target = np.clip(target, p.quota_min, p.quota_max)
        action = action_for_multiplier(p, self.multipliers(obs), target)
        if p.burst_policy:
            action = np.concatenate([action, self.burst_action(obs)[:, None]], axis=1)
        return action

    def burst_action(self, obs: np.ndarray) -> np.ndarray:
        """(N,) float32: the scenario's fixed burst rule as an action (+1 order, -1 release, 0 hold)."""
        p = self.params
        util = obs[:, self.utilisation_index]
        return np.where(util > p.burst_buy_above, 1.0, np.where(util < p.burst_release_below, -1.0, 0.0)).astype(
            np.float32)


