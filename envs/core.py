"""The batched core: state of N environments as arrays and the one step function.

:class:`RationingCore` owns the state arrays and composes the model modules
(:mod:`~envs.capacity`, :mod:`~envs.demand`, :mod:`~envs.quota`,
:mod:`~envs.user_response`, :mod:`~envs.serving`, :mod:`~envs.economics`,
:mod:`~envs.reward`) in :meth:`RationingCore.step`. The single Gymnasium env, the
Gymnasium vector env and the stable-baselines3 ``VecEnv`` are thin views of it.

The env version is a constructor argument (``version=0`` or ``1``, compiled into
the params): v0's code path is unchanged; v1 adds SLA credits
(:mod:`~envs.contracts`), failed requests, batching interference
(:func:`~envs.serving.serve_v1`) and, with ``action.burst: policy``, a burst
action (:func:`~envs.capacity.burst_policy_step`), each a pure function composed
here under an ``if`` on the version.

Randomness is counter-based (:mod:`~envs.rng`): env row k with seed s follows the
same trajectory whatever N is, and a reset without a seed starts the next
episode of the same stream (episode index + 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import fused_step, observation
from .arrays import row_sum
from .capacity import BurstState, ProviderState, burst_policy_step, burst_step, capacity_tokens, provider_step
from .contracts import SLAState, broadcast_schedules, sla_step
from .demand import fresh_demand, retry_flows
from .economics import ledger
from .fused_layout import to_lanes_layout
from .fused_params import fusable, fuse
from .info_keys import (
    PROVIDER_INFO_KEYS,
    SCALAR_INFO_KEYS,
    TIER_INFO_KEYS,
    V1_SCALAR_INFO_KEYS,
    V1_TIER_INFO_KEYS,
    info_layout,
)
from .params import Params, compile_params
from .quota import admit, apply_action, nan_action_error
from .reward import reward
from .rng import CounterRNG, episode_keys
from .scenario import Scenario, _deep_merge, load_scenario
from .serving import CollapseState, collapse_step, latency_attainment, serve, serve_v1
from .trace import Replay, load_replay
from .user_response import UserState, split_throttled, user_step

F32 = np.float32



def _rand_scale(bounds: np.ndarray, u: np.ndarray) -> np.ndarray:
    return (bounds[0] + (bounds[1] - bounds[0]) * u).astype(F32)


class RationingCore:
    """N independent rationing environments stepped as arrays.

    Args:
        scenario: a shipped scenario name, a path to a scenario file, or a
            :class:`~envs.scenario.Scenario`.
        num_envs: batch size N.
        randomize: draw the scenario's ``randomization`` multipliers per episode
            (domain randomisation for training); off for evaluation.
        overrides: nested mapping merged over the scenario before validation.
        trace: a request trace to replay as fresh demand (overrides the
            scenario's ``demand.trace.path``; formats and mapping in :mod:`envs.trace`).
        version: 0 (``Rationing-v0``, the default here) or 1 (``Rationing-v1``).
    """

    def __init__(
        self,
        scenario: str | Path | Scenario = "default",
        num_envs: int = 1,
        randomize: bool = False,
        overrides: dict[str, Any] | None = None,
        trace: str | Path | None = None,
        version: int = 0,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs = {num_envs}: must be >= 1")
        if trace is not None:
            over = {"demand": {"trace": {"path": str(Path(trace).resolve())}}}
            overrides = over if not overrides else _deep_merge(overrides, over)
        self.scenario = load_scenario(scenario, overrides)
        self.params: Params = compile_params(self.scenario, version)
        self.version = version
        self.replay: Replay | None = load_replay(self.scenario, self.params)
        self.num_envs = n = int(num_envs)
        self.randomize = bool(randomize)
        p = self.params
        P, T = p.n_providers, p.n_tiers
        self.tier_names: list[str] = list(p.tier_names)
        self.provider_names: list[str] = list(p.provider_names)
        self.obs_names: list[str] = observation.names(p.provider_names, p.tier_names, version)
        self.obs_size = len(self.obs_names)
        self.n_tiers = T
        self.action_size = p.action_size
        v1 = version >= 1
        self.tier_info_keys = TIER_INFO_KEYS + (V1_TIER_INFO_KEYS if v1 else ())
        self.scalar_info_keys = SCALAR_INFO_KEYS + (V1_SCALAR_INFO_KEYS if v1 else ())

        self._rng = CounterRNG(n, 3 * P + 3 * T)
        self.trace_offset = np.full(n, 0 if self.replay is None else self.replay.offset_steps, np.int64)
        self._slices = [slice(i * k, (i + 1) * k) for i, k in enumerate([P, P, P])]
        self._slices += [slice(3 * P + i * T, 3 * P + (i + 1) * T) for i in range(3)]

        self.seeds = np.zeros(n, dtype=np.uint64)
        self.episodes = np.zeros(n, dtype=np.int64)
        self.keys = np.zeros(n, dtype=np.uint64)
        self.t = np.zeros(n, dtype=np.int64)
        self.scales = np.ones((4, n), dtype=F32)  # demand, capacity, reclaim, agentic
        self.providers = ProviderState(np.zeros((n, P), F32), np.zeros((n, P), F32))
        self.burst = BurstState(np.zeros(n, F32), np.zeros((n, p.burst_delay_steps), F32))
        self.collapse = CollapseState(np.zeros(n, np.int32), np.zeros(n, np.int32))
        self.users = UserState(np.tile(p.users0, (n, 1)), np.zeros((n, T), F32), np.zeros((n, T), F32))
        self.quota_multiplier = np.ones((n, T), F32)
        self.queue_tokens = np.zeros((n, T), F32)
        self.retry_pool_tokens = np.zeros((n, T), F32)
        self.burst_excess = np.zeros((n, T), F32)
        self.last_utilisation = np.zeros(n, F32)
        self.sla = SLAState(*(np.zeros((n, T), F32) for _ in range(3)))
        self._sla_schedules = broadcast_schedules(p.sla, n) if v1 else None
        self.obs = np.zeros((n, self.obs_size), F32)
        self.info: dict[str, np.ndarray] = {}
        # the compiled step (envs.fused_step) unless a trace replaces demand or rows are too long for it
        self.fused_params = fuse(p) if self.replay is None and fusable(p) else None
        self.fused_scratch: tuple[np.ndarray, ...] | None = None  # the compiled step's exp/log arguments
        info_keys = TIER_INFO_KEYS + SCALAR_INFO_KEYS + PROVIDER_INFO_KEYS + (
            V1_TIER_INFO_KEYS + V1_SCALAR_INFO_KEYS if v1 else ())
        cols = info_layout(T, P, version, self.tier_info_keys, PROVIDER_INFO_KEYS, self.scalar_info_keys)
        self._info_columns = [(k, cols[k]) for k in info_keys]
        self.info_width = len(self.tier_info_keys) * T + 2 * P + len(self.scalar_info_keys)
        if self.fused_params is not None:
            to_lanes_layout(self)  # the compiled step's layout (rows inner)

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the compiled step's cached state views (:func:`envs.fused_layout.lanes`):
        a copy's views would be copies, not views of the copy's state."""
        state = self.__dict__.copy()
        state.pop("_fused_lanes", None)
        return state

    # ------------------------------------------------------------------ reset
    def reset(self, seeds: np.ndarray | None = None, mask: np.ndarray | None = None,
              start_steps: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in the rows selected by ``mask`` (all rows if None).

        ``seeds`` (N,) gives those rows new seeds (episode index 0); without it
        each selected row starts the next episode of its own stream.
        ``start_steps`` (N,) starts those rows' episodes part-way through (at that
        step, fresh state, shorter first episode): training uses it once to spread
        a batch over the week instead of stepping every row in lockstep.
        Returns the observation array (N, obs_size), shared with the core.
        """
        p = self.params
        rows = slice(None) if mask is None else np.flatnonzero(np.asarray(mask, dtype=bool))  # index arrays: few rows
        if seeds is not None:
            seeds = np.asarray(seeds).astype(np.uint64)
            self.seeds[rows] = seeds[rows]
            self.episodes[rows] = 0
        else:
            self.episodes[rows] += 1
        self.keys[rows] = episode_keys(self.seeds[rows], self.episodes[rows])
        if self.fused_params is None:
            # Fresh copies: the numpy step hands state arrays out in its info, which are never mutated
            # (the compiled step updates state in place and hands out its own info buffer instead).
            self.providers = ProviderState(*(a.copy() for a in self.providers))
            self.burst = BurstState(*(a.copy() for a in self.burst))
            self.collapse = CollapseState(*(a.copy() for a in self.collapse))
            self.users = UserState(*(a.copy() for a in self.users))
            self.quota_multiplier = self.quota_multiplier.copy()
            self.queue_tokens = self.queue_tokens.copy()
            self.retry_pool_tokens = self.retry_pool_tokens.copy()
            self.burst_excess = self.burst_excess.copy()
            self.last_utilisation = self.last_utilisation.copy()
            self.sla = SLAState(*(a.copy() for a in self.sla))
        for a in self.sla:
            a[rows] = 0.0
        self.t[rows] = 0 if start_steps is None else np.asarray(start_steps, np.int64)[rows] % self.params.episode_steps
        rep = self.replay
        if self.randomize or (rep is not None and rep.randomize_offset):
            # the reset draws (step -2 of the episode) of the selected rows only: draws are per row
            keys = self.keys[rows]
            u = CounterRNG(len(keys), 5).uniform(keys, np.full(len(keys), -2, dtype=np.int64))
        if self.randomize:
            for j in range(4):  # four named multipliers, not a loop over envs or tiers
                self.scales[j, rows] = _rand_scale(p.randomization[j], u[:, j])
        else:
            self.scales[:, rows] = 1.0
        if rep is not None and rep.randomize_offset:
            self.trace_offset[rows] = np.minimum((u[:, 4] * rep.period).astype(np.int64), rep.period - 1)
        self.providers.outage_remaining_steps[rows] = 0.0
        self.providers.degraded_share[rows] = 0.0
        self.burst.gpus[rows] = 0.0
        self.burst.pipeline[rows] = 0.0
        self.collapse.overload_steps[rows] = 0
        self.collapse.collapse_remaining_steps[rows] = 0
        self.users.users[rows] = p.users0
        self.users.frustration[rows] = 0.0
        self.users.latency_excess[rows] = 0.0
        self.quota_multiplier[rows] = 1.0
        self.queue_tokens[rows] = 0.0
        self.retry_pool_tokens[rows] = 0.0
        self.burst_excess[rows] = 0.0
        self.last_utilisation[rows] = 0.0

        # Observation before the first step: expected demand, idle service.
        week_step = (p.start_week_step + self.t[rows]) % p.steps_per_week
        m = len(week_step)
        avail = p.contracted_gpus * self.scales[1, rows][:, None] * (1.0 - p.reclaim_table[week_step])
        demand = p.profile_table[week_step] * p.mean_demand_tokens_step * self.scales[0, rows][:, None]
        if rep is not None:
            traced = rep.table[(self.t[rows] + self.trace_offset[rows]) % rep.period] * self.scales[0, rows][:, None]
            demand = np.where(rep.covered, traced, demand)
        buf = np.zeros((m, self.obs_size), F32)
        if self.version >= 1:
            one = np.ones((m, p.n_tiers), F32)
            observation.build_v1(p, buf, np.zeros(m, F32), one, one)
        observation.build(
            p, buf, week_step, avail, np.zeros(m, F32), np.zeros(m, F32), np.zeros(m, F32), demand,
            np.zeros((m, p.n_tiers), F32), np.full((m, p.n_tiers), p.base_latency_s, F32),
            np.zeros((m, p.n_tiers), F32), self.users.users[rows], self.quota_multiplier[rows],
        )
        self.obs[rows] = buf
        return self.obs

    def info_from(self, buffer: np.ndarray) -> dict[str, np.ndarray]:
        """The info dict (views) of a compiled step's ``info_buffer`` (info_width, N): (N,) rows and
        (N, T) / (N, P) transposed blocks."""
        return {k: buffer[c].T for k, c in self._info_columns}

    # ------------------------------------------------------------------- step
    def step(self, actions: np.ndarray, info: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance every env one step with ``actions`` (N, action_size) in [-1, 1].

        ``info=False`` skips building the info dict on the compiled path (an empty
        dict is returned; :func:`envs.info_keys.buffer_row_info` reads one row of the step's
        ``info_buffer``).

        ``action_size`` is T, or T + 1 on v1 with ``action.burst: policy`` (the
        last entry orders or releases burst GPUs).

        Returns ``(obs, reward, terminated, truncated, info)`` with arrays of
        shape (N, obs_size), (N,), (N,), (N,) and the info dict of
        :data:`TIER_INFO_KEYS` (N, T), :data:`SCALAR_INFO_KEYS` (N,) and
        :data:`PROVIDER_INFO_KEYS` (N, P). No auto-reset here: rows past the
        time limit report ``truncated`` and must be reset by the caller.
        """
        p = self.params
        actions = np.asarray(actions, dtype=F32)
        if actions.shape != (self.num_envs, self.action_size):
            actions = actions.reshape(self.num_envs, self.action_size)
        if self.fused_params is not None:  # refuses a NaN action before any state changes
            reward_, self.info_buffer = fused_step.step(self, actions)
            self.info = self.info_from(self.info_buffer) if info else {}
            return self.obs, reward_, np.zeros(self.num_envs, dtype=bool), self.t >= p.episode_steps, self.info
        if np.isnan(actions).any():  # refused before any state changes: a NaN would poison the row until reset
            row, col = (int(i) for i in np.argwhere(np.isnan(actions))[0])
            raise nan_action_error(p, row, col)
        t = self.t
        week_step = (p.start_week_step + t) % p.steps_per_week
        u = self._rng.uniform(self.keys, t)
        s = self._slices
        demand_scale, capacity_scale, reclaim_scale, agentic_scale = self.scales
        v1 = self.version >= 1
        if p.burst_policy:
            burst_action = actions[:, -1]
            actions = actions[:, : p.n_tiers]
        quota = apply_action(p, self.quota_multiplier, actions)
        collapsed = self.collapse.collapse_remaining_steps > 0

        prov = provider_step(p, self.providers, t, week_step, u[:, s[0]], u[:, s[1]], u[:, s[2]],
                             capacity_scale, reclaim_scale)
        if p.burst_policy:
            burst = burst_policy_step(p, self.burst, t, burst_action)
        else:
            burst = burst_step(p, self.burst, t, self.last_utilisation)
        uncollapsed_cap = capacity_tokens(p, prov.available_gpus, burst.gpus)
        cap = uncollapsed_cap * np.where(collapsed, F32(p.collapse_capacity_share), F32(1.0))

        users = self.users.users
        dem = fresh_demand(p, users, t, week_step, self.burst_excess, u[:, s[3]], u[:, s[4]], u[:, s[5]],
                           demand_scale, agentic_scale)
        fresh = dem.fresh_tokens
        rep = self.replay
        if rep is not None:  # trace tiers: binned trace tokens x users/users0 x demand_scale
            traced = rep.table[(t + self.trace_offset) % rep.period]
            traced = traced * (users / p.users0)
            traced *= demand_scale[:, None]
            fresh = np.where(rep.covered, traced, fresh)
        retry = retry_flows(p, self.retry_pool_tokens)
        demand = fresh + retry.returning_tokens
        adm = admit(p, demand, users, quota)
        thr = split_throttled(p, adm.throttled_tokens)
        if v1:
            srv1 = serve_v1(p, self.queue_tokens, adm.admitted_tokens, cap, uncollapsed_cap, collapsed)
            srv = srv1.base
            failed = srv1.failed_tokens
            # share of the step's finished tokens that failed (None when nothing failed: the common case)
            failed_share = failed / np.maximum(srv.served_tokens + failed, 1.0) if failed.any() else None
        else:
            srv = serve(p, self.queue_tokens, adm.admitted_tokens, cap, uncollapsed_cap)
            failed_share = None
        coll = collapse_step(p, self.collapse, srv.pressure)
        usr = user_step(p, self.users, adm.throttled_user_share, srv.latency_s, failed_share)
        attainment = latency_attainment(p, srv.latency_s)
        late = srv.served_tokens * (1.0 - attainment)
        led = ledger(p, users, srv.served_tokens, prov.billed_gpus, burst.gpus)
        if v1:
            within = srv.served_tokens - late
            sla = sla_step(self._sla_schedules, self.sla, srv.served_tokens, failed, within, led.revenue_usd)
            credit_total = row_sum(sla.credit_usd)
            rew = reward(p, led.margin_usd, late, usr.churned_users, credit_total)
            self.sla = sla.state
        else:
            rew = reward(p, led.margin_usd, late, usr.churned_users)

        # commit state
        self.providers = prov.state
        self.burst = burst
        self.collapse = coll
        self.users = usr.state
        self.quota_multiplier = quota
        self.queue_tokens = srv.queue_tokens
        self.retry_pool_tokens = retry.pool_tokens + thr.deferred_tokens
        self.burst_excess = dem.burst_excess
        self.last_utilisation = srv.utilisation
        self.t = t + 1
        truncated = self.t >= p.episode_steps
        terminated = np.zeros(self.num_envs, dtype=bool)

        next_week_step = (p.start_week_step + self.t) % p.steps_per_week
        if v1:
            on_order = row_sum(burst.pipeline)
            observation.build_v1(p, self.obs, on_order, sla.availability, sla.latency_attainment)
        observation.build(
            p, self.obs, next_week_step, prov.available_gpus, burst.gpus, srv.utilisation,
            coll.collapse_remaining_steps > 0, demand, srv.queue_tokens, srv.latency_s,
            adm.throttled_user_share, usr.state.users, quota,
        )
        self.info = {
            "demand_tokens": demand,
            "fresh_demand_tokens": fresh,
            "retry_tokens": retry.returning_tokens,
            "admitted_tokens": adm.admitted_tokens,
            "throttled_tokens": adm.throttled_tokens,
            "deferred_tokens": thr.deferred_tokens,
            "lost_tokens": thr.lost_tokens,
            "served_tokens": srv.served_tokens,
            "queue_tokens": srv.queue_tokens,
            "timed_out_tokens": srv.timed_out_tokens,
            "latency_s": srv.latency_s,
            "latency_attainment": attainment,
            "late_tokens": late,
            "throttled_user_share": adm.throttled_user_share,
            "users": usr.state.users,
            "churned_users": usr.churned_users,
            "new_users": usr.new_users,
            "revenue_usd": led.revenue_usd,
            "quota_multiplier": quota,
            "agentic_share": dem.agentic_share,
            "agentic_tokens_per_request": dem.agentic_tokens_per_request,
            "capacity_tokens": cap,
            "utilisation": srv.utilisation,
            "pressure": srv.pressure,
            "collapsed": collapsed.astype(F32),
            "burst_gpus": burst.gpus,
            "cost_usd": led.cost_usd,
            "rent_usd": led.rent_usd,
            "burst_cost_usd": led.burst_cost_usd,
            "variable_cost_usd": led.variable_cost_usd,
            "revenue_total_usd": row_sum(led.revenue_usd),
            "margin_usd": led.margin_usd,
            "latency_penalty_usd": rew.latency_penalty_usd,
            "churn_penalty_usd": rew.churn_penalty_usd,
            "reward": rew.reward,
            "step": t.astype(F32),
            "hour_of_week": (week_step * p.dt_h).astype(F32),
            "provider_gpus": prov.available_gpus,
            "reclaimed_share": prov.reclaimed_share,
        }
        if v1:
            self.info.update({
                "failed_tokens": failed,
                "collapse_failed_tokens": srv1.collapse_failed_tokens,
                "sla_credit_usd": sla.credit_usd,
                "sla_availability": sla.availability,
                "sla_latency_attainment": sla.latency_attainment,
                "sla_credit_total_usd": credit_total,
                "burst_on_order_gpus": on_order,
                "batch_occupancy": srv1.occupancy,
            })
        return self.obs, rew.reward, terminated, truncated, self.info
