"""Gymnasium views of the batched core: ``RationingEnv`` and ``RationingVectorEnv``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .core import PROVIDER_INFO_KEYS, RationingCore
from .info_keys import buffer_row_info
from .render import Dashboard
from .scenario import Scenario
from .vector_reward import check_reward_mode, reward_names, reward_space, reward_vector

ENV_ID = "Rationing-v0"
ENV_VERSION = 0
ENV_IDS = {0: "Rationing-v0", 1: "Rationing-v1"}
"""Registered id of each env version (``RationingEnv(version=...)``); v1 is the current world."""
LATEST_VERSION = 1


def _spaces(core: RationingCore) -> tuple[spaces.Box, spaces.Box]:
    action = spaces.Box(-1.0, 1.0, shape=(core.action_size,), dtype=np.float32)
    obs = spaces.Box(core.params.obs_low, core.params.obs_high, dtype=np.float32)
    return action, obs


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**62))


class RationingEnv(gym.Env[np.ndarray, np.ndarray]):
    """Rationing of contested LLM-serving capacity across subscription tiers.

    An LLM provider rents GPUs from two (or more) cloud providers who reclaim part
    of them at their own peaks and sometimes go down. Demand arrives per tier
    (free, pro, max, team, enterprise, api by default) with daily and weekly
    cycles, a chat/agentic mix and bursts. Every step (15 minutes by default) the
    agent adjusts each tier's quota; over-quota demand is throttled (part of it
    retries later), admitted work queues and is served by weighted fair sharing,
    and users churn from throttling and latency. The model is documented module
    by module: :mod:`envs.capacity`, :mod:`envs.demand`, :mod:`envs.quota`,
    :mod:`envs.user_response`, :mod:`envs.serving`, :mod:`envs.economics`,
    :mod:`envs.reward`.

    ## Action Space

    ``Box(-1, 1, (T,), float32)``, one entry per tier in ``tier_names`` order.
    Entry ``a_i`` multiplies tier i's quota multiplier by
    ``quota_step_factor ** a_i`` (default 2: one step can halve or double it),
    then clips it to ``[quota_min, quota_max]`` (default [0.05, 4]). Multiplier 1
    is the scenario's nominal ``quota_tokens_per_user_hour``. Zero keeps quotas.
    Values outside [-1, 1] (and +-inf) are clipped; a NaN entry is refused with a
    ``ValueError`` naming the row and tier, before any state changes (the env stays usable).

    | index | action                        | bounds  |
    |-------|-------------------------------|---------|
    | i     | log-quota change of tier i, in units of log(quota_step_factor) | [-1, 1] |

    ## Observation Space

    ``Box(low, high, (7 + P + 6 T,), float32)`` with finite per-index bounds
    (``envs.observation.bounds``): 45 entries with 2 providers and 6 tiers, every
    entry of order 1. ``env.unwrapped.obs_names`` names each index.

    | index       | name                        | meaning                                      |
    |-------------|-----------------------------|----------------------------------------------|
    | 0, 1        | hour_sin, hour_cos          | time of day (sin/cos)                        |
    | 2, 3        | week_sin, week_cos          | time of week (sin/cos), 0 = Monday 00:00     |
    | 4..3+P      | capacity/<provider>         | available GPUs / contracted GPUs             |
    | 4+P         | burst_capacity              | burst GPUs / total contracted GPUs           |
    | 5+P         | utilisation                 | tokens served / capacity tokens (last step)  |
    | 6+P         | collapsed                   | 1 while the service is collapsed             |
    | 7+P + 0T..  | demand/<tier>               | demand / week-average demand per step        |
    | 7+P + 1T..  | queue/<tier>                | queued tokens / nominal capacity per step    |
    | 7+P + 2T..  | latency_over_target/<tier>  | log(latency / target)                        |
    | 7+P + 3T..  | throttled_share/<tier>      | share of users at their quota, 0..1          |
    | 7+P + 4T..  | users/<tier>                | users / users at episode start               |
    | 7+P + 5T..  | quota/<tier>                | log(quota multiplier)                        |

    ## Rewards

    ``(margin_usd - latency_penalty_usd - churn_penalty_usd) / scale_usd`` with
    weights from the scenario's ``reward`` section (see :mod:`envs.reward`):
    gross margin (revenue minus rent, burst and variable cost), late tokens times
    each tier's ``late_penalty_usd_per_mtok``, churned users times each tier's
    ``lifetime_value_usd``. Every term is reported in ``info`` in dollars.
    ``reward="vector"`` returns the terms instead, a float32 vector in dollars, higher is
    better (MO-Gymnasium's API: ``reward_space``, ``reward_dim``; :mod:`envs.vector_reward`).

    ## Starting State

    Users at the scenario's starting counts, quota multipliers 1, empty queues,
    all providers up, Monday 00:00 (``time.start_weekday``). With
    ``randomize=True`` the scenario's ``randomization`` multipliers (demand,
    capacity, reclaim, agentic share) are drawn per episode.

    ## Episode End

    The task is continuing: never ``terminated``. ``truncated`` after
    ``episode_days x steps per day`` steps (672 by default: a week of 15 minutes).

    ## Info

    Per step, numpy arrays of shape ``(T,)`` in ``tier_names`` order:
    ``demand_tokens`` (fresh + retried), ``fresh_demand_tokens``, ``retry_tokens``,
    ``admitted_tokens``, ``throttled_tokens`` (= deferred + lost),
    ``deferred_tokens`` (will retry), ``lost_tokens``, ``served_tokens``,
    ``queue_tokens``, ``timed_out_tokens``, ``latency_s`` (mean latency),
    ``latency_attainment`` (share within target), ``late_tokens``,
    ``throttled_user_share``, ``users``, ``churned_users``, ``new_users``,
    ``revenue_usd``, ``quota_multiplier``, ``agentic_share``,
    ``agentic_tokens_per_request``; shape ``(P,)``: ``provider_gpus``,
    ``reclaimed_share``; floats: ``capacity_tokens``, ``utilisation``,
    ``pressure``, ``collapsed`` (1.0 while collapsed), ``burst_gpus``,
    ``cost_usd``, ``rent_usd``, ``burst_cost_usd``, ``variable_cost_usd``,
    ``revenue_total_usd``, ``margin_usd``, ``latency_penalty_usd``,
    ``churn_penalty_usd``, ``reward``, ``step``, ``hour_of_week``.
    Token identities: ``demand = admitted + deferred + lost`` and
    ``queue_before + admitted = served + timed_out + queue_after``.

    ## Arguments

    ``gymnasium.make("Rationing-v0", scenario="outage", randomize=False, overrides=None)``:
    ``scenario`` is a shipped name (``envs.available_scenarios()``) or a path to a
    YAML file; ``overrides`` a nested mapping merged over it; ``trace`` a request
    trace (CSV, JSON lines or ServeGen rates) whose requests replace the synthetic
    fresh demand of the tiers it maps to (:mod:`envs.trace`).
    ``render_mode="rgb_array"`` draws a dashboard of the episode so far, ``"ansi"`` a
    text table of the last step (:mod:`envs.render`).
    ``gymnasium.make_vec("Rationing-v0", num_envs=N)`` gives the native numpy
    :class:`RationingVectorEnv` (same-step auto-reset).

    ## Version History

    Rationing-v1 (``gymnasium.make("Rationing-v1", ...)`` or ``version=1``) adds:
    SLA credits charged in the reward (:mod:`envs.contracts`; info
    ``sla_credit_usd``, ``sla_availability``, ``sla_latency_attainment`` per tier,
    ``sla_credit_total_usd``); failed requests (``failed_tokens`` = timed out +
    ``collapse_failed_tokens``) that lower availability and frustrate users at
    least as much as throttling; batching interference (every tier's latency
    grows with total admitted load, ``batch_occupancy``; :mod:`envs.serving`);
    with ``action.burst: policy`` one more action entry (index T) ordering
    (``a > 0``: ``a x burst.step_gpus``) or releasing (``a < 0``) burst GPUs, and
    ``burst_on_order_gpus``. The v1 observation appends ``burst_on_order`` and the
    running SLA attainments per tier (``8 + P + 8 T`` entries, 58 by default;
    :mod:`envs.observation`); v0's indices keep their place. Token identity on v1:
    ``queue_before + admitted = served + failed + queue_after``.

    ## Version History

    | version | change                                                                   |
    |---------|--------------------------------------------------------------------------|
    | v0      | initial version                                                          |
    | v1      | SLA contracts with credits; failed requests that cost (availability,     |
    |         | churn); batching interference on every tier; burst capacity as an        |
    |         | optional action (``action.burst: policy``); observation + burst GPUs on  |
    |         | order and running SLA attainments                                        |
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 30, "env_version": ENV_VERSION}

    def __init__(
        self,
        scenario: str | Path | Scenario = "default",
        randomize: bool = False,
        overrides: dict[str, Any] | None = None,
        render_mode: str | None = None,
        trace: str | Path | None = None,
        version: int = ENV_VERSION,
        reward: str = "scalar",
    ) -> None:
        self.reward_mode = check_reward_mode(reward)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode = {render_mode!r}: one of {self.metadata['render_modes']} or None")
        self.core = RationingCore(scenario, 1, randomize=randomize, overrides=overrides, trace=trace, version=version)
        self.metadata = {**self.metadata, "env_version": version}
        self.action_space, self.observation_space = _spaces(self.core)
        _set_reward_space(self, version)
        self.render_mode = render_mode
        # the episode so far, kept only when rendering (envs.render)
        self._dashboard = Dashboard(self.core.params, f"{ENV_ID}  {self.core.scenario.name}") if render_mode else None
        self._started = False

    @property
    def tier_names(self) -> list[str]:
        """Tier names in index order (action, per-tier observation and info)."""
        return self.core.tier_names

    @property
    def obs_names(self) -> list[str]:
        """Name of every observation index."""
        return self.core.obs_names

    @property
    def scenario(self) -> Scenario:
        return self.core.scenario

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            obs = self.core.reset(np.array([seed], dtype=np.uint64))
        elif not self._started:
            obs = self.core.reset(np.array([_draw_seed(self.np_random)], dtype=np.uint64))
        else:
            obs = self.core.reset()
        self._started = True
        if self._dashboard is not None:
            self._dashboard.reset()
        return obs[0].copy(), {}

    def step(self, action):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        act = np.asarray(action, dtype=np.float32).reshape(1, -1)
        fused = self.core.fused_params is not None
        obs, reward, terminated, truncated, info = self.core.step(act, info=not fused)
        info = buffer_row_info(self.core, 0) if fused else row_info(info, 0)
        r = reward_vector(info, self.core.version) if self.reward_mode == "vector" else float(reward[0])
        if self._dashboard is not None:
            self._dashboard.record(info)
        return obs[0].copy(), r, bool(terminated[0]), bool(truncated[0]), info

    def render(self):
        """``rgb_array``: a dashboard of the episode so far, uint8 (540, 960, 3); ``ansi``: a text table
        of the last step. See :mod:`envs.render`."""
        if self._dashboard is None:
            gym.logger.warn("render() without a render_mode: make the env with render_mode='rgb_array' or 'ansi'")
            return None
        return self._dashboard.ansi() if self.render_mode == "ansi" else self._dashboard.rgb_array()


def _set_reward_space(env: Any, version: int) -> None:
    """``reward="vector"`` (:mod:`envs.vector_reward`): MO-Gymnasium's ``reward_space`` and ``reward_dim``."""
    if env.reward_mode == "vector":
        env.reward_space = reward_space(version)
        env.reward_dim = int(env.reward_space.shape[0])
        env.reward_names = reward_names(version)


def row_info(info: dict[str, np.ndarray], k: int) -> dict[str, Any]:
    """The info of batch row ``k`` as the single env reports it.

    Array entries are views of arrays the core allocated for that step alone (it
    never writes into them again), so no copy is needed.
    """
    # (N,) arrays are scalar keys (a float per row), (N, T) and (N, P) ones arrays (v1 adds keys of both kinds)
    return {key: (float(v[k]) if v.ndim == 1 else v[k]) for key, v in info.items()}


class RationingVectorEnv(VectorEnv):
    """Native numpy vector env: N rationing envs in one :class:`RationingCore`.

    Auto-reset is same-step by default (``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``):
    a row whose episode ends returns the first observation of its next episode, with the
    last one in ``infos["final_obs"]`` (and its info in ``infos["final_info"]``), masked by
    ``infos["_final_obs"]``. ``autoreset_mode=AutoresetMode.NEXT_STEP`` (or ``"NextStep"``)
    returns the last observation instead and starts the next episode on the following
    step (reward 0, action ignored, that row's ``_key`` info masks False): Gymnasium's
    observation wrappers (``NormalizeObservation``) accept only this mode.

    ``infos`` holds every core info key as an array with a leading batch dimension and,
    as Gymnasium's vector envs do, a boolean mask ``infos["_" + key]`` of the rows it is
    valid for. ``max_episode_steps`` truncates episodes earlier than the scenario's
    length (as ``TimeLimit`` does for the single env). Seeds: ``reset(seed=s)`` gives
    row k seed ``s + k``; a list gives each row its own seed.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP, "env_version": ENV_VERSION}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | Scenario = "default",
        randomize: bool = False,
        overrides: dict[str, Any] | None = None,
        render_mode: str | None = None,
        trace: str | Path | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        version: int = ENV_VERSION,
        reward: str = "scalar",
    ) -> None:
        self.reward_mode = check_reward_mode(reward)
        if render_mode is not None:
            raise ValueError(f"render_mode = {render_mode!r}: the vector env does not render (use RationingEnv)")
        modes = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)
        if autoreset_mode not in modes + tuple(m.value for m in modes):
            raise ValueError(f"autoreset_mode = {autoreset_mode!r}: one of {', '.join(m.value for m in modes)}")
        if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or int(max_episode_steps) < 1):
            raise ValueError(f"max_episode_steps = {max_episode_steps!r}: must be a positive int or None")
        self.core = RationingCore(scenario, num_envs, randomize=randomize, overrides=overrides, trace=trace,
                                  version=version)
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode, "env_version": version}
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        every = np.ones(num_envs, dtype=bool)
        every.flags.writeable = False
        keys = self.core.tier_info_keys + PROVIDER_INFO_KEYS + self.core.scalar_info_keys
        self._masks = {f"_{k}": every for k in keys}  # every row, every step
        self._pending = np.zeros(num_envs, dtype=bool)  # NEXT_STEP: rows that start a new episode next step
        self.single_action_space, self.single_observation_space = _spaces(self.core)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        _set_reward_space(self, version)
        self.render_mode = None
        self._started = False

    @property
    def tier_names(self) -> list[str]:
        return self.core.tier_names

    @property
    def obs_names(self) -> list[str]:
        return self.core.obs_names

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if seed is None or isinstance(seed, int) else int(np.asarray(seed).ravel()[0]))
        if seed is None and not self._started:
            seed = _draw_seed(self.np_random)
        if seed is None:
            obs = self.core.reset()
        else:
            seeds = np.asarray(seed if isinstance(seed, (list, tuple, np.ndarray)) else
                               [int(seed) + k for k in range(self.num_envs)], dtype=np.uint64)
            if seeds.shape != (self.num_envs,):
                raise ValueError(f"seed: a list of {self.num_envs} seeds or one int, got {len(seeds)}")
            obs = self.core.reset(seeds)
        self._started = True
        self._pending = np.zeros(self.num_envs, dtype=bool)
        return obs.copy(), {}

    def step(self, actions):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        core, pending = self.core, self._pending
        if pending.any():  # NEXT_STEP: these rows start again; the core steps every row, so reset them twice
            core.reset(mask=pending)
        obs, reward, terminated, truncated, info = core.step(np.asarray(actions, dtype=np.float32))
        if self.reward_mode == "vector":
            reward = reward_vector(info, core.version)
        if self.max_episode_steps is not None:
            truncated = truncated | (core.t >= self.max_episode_steps)
        # The core allocates every info array afresh each step and never writes to it again: no copies.
        infos: dict[str, Any] = dict(info)
        infos.update(self._masks)
        if pending.any():  # undo their step: the same episode again from its start, its first observation
            core.episodes[pending] -= 1
            core.reset(mask=pending)
            valid = ~pending
            zero = pending[:, None] if reward.ndim == 2 else pending
            reward, terminated, truncated = np.where(zero, 0.0, reward).astype(reward.dtype), \
                terminated & valid, truncated & valid
            infos.update(dict.fromkeys(self._masks, valid))
        done = terminated | truncated
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            self._pending = done
        elif done.any():
            infos["final_obs"] = obs.copy()
            infos["_final_obs"] = done.copy()
            infos["final_info"] = {k: v.copy() for k, v in info.items()} | dict.fromkeys(self._masks, done.copy())
            infos["_final_info"] = done.copy()
            core.reset(mask=done)
        return core.obs.copy(), reward.copy(), terminated.copy(), truncated.copy(), infos
