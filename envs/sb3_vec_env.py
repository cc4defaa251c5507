"""A native stable-baselines3 ``VecEnv`` over the batched core.

It keeps the contract of SB3's ``DummyVecEnv``: auto-reset in the same step;
for a row whose episode ended, ``infos[k]["terminal_observation"]`` holds its last
observation and ``infos[k]["TimeLimit.truncated"]`` is True when the end was a
time limit (so PPO bootstraps the value of the truncated state).

Per-env ``infos`` are kept small on the hot path (empty dicts except at episode
ends). The full batched info of the last step is available as
:attr:`RationingVecEnv.last_info` (arrays with a leading batch dimension), or per
env in ``infos`` when made with ``full_info=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .core import RationingCore
from .rationing_env import RationingEnv, _spaces, row_info
from .scenario import Scenario
from .vector_reward import check_reward_mode, reward_names, reward_space, reward_vector


class RationingVecEnv(VecEnv):
    """``num_envs`` rationing environments stepped as arrays, as an SB3 ``VecEnv``.

    With a list of scenarios the rows are split evenly between them (a training
    mix), one :class:`RationingCore` per scenario, in list order; the scenarios
    must share tiers and providers (so the spaces agree).

    Args:
        num_envs: batch size.
        scenario: shipped scenario name, path or :class:`Scenario`, or a list of them.
        seed: base seed; row k gets ``seed + k`` (also settable with :meth:`seed`).
        randomize: per-episode domain randomisation (see the scenario's ``randomization``).
        overrides: nested mapping merged over the scenario.
        full_info: also copy every info key into each env's ``infos`` dict (slower).
        stagger: start row k's first episode ``k / rows`` of the way through the
            week (its first episode is shorter), so that a training batch covers
            every time of week rather than all rows stepping in lockstep from
            Monday 00:00. Later episodes are whole. Off by default (evaluation).
        version: env version, 0 (``Rationing-v0``, the default here) or 1.
        reward: ``"scalar"`` or ``"vector"``: (N, reward_dim) float32 rewards in dollars
            (:mod:`envs.vector_reward`; for multi-objective learners, not SB3's PPO).
            Either way :attr:`last_reward_vector` holds the last step's vectors.
    """

    def __init__(
        self,
        num_envs: int,
        scenario: str | Path | Scenario = "default",
        seed: int = 0,
        randomize: bool = False,
        overrides: dict[str, Any] | None = None,
        full_info: bool = False,
        stagger: bool = False,
        version: int = 0,
        reward: str = "scalar",
    ) -> None:
        self.reward_mode = check_reward_mode(reward)
        self.reward_space = reward_space(version)
        self.reward_dim = int(self.reward_space.shape[0])
        self.reward_names = reward_names(version)
        scenarios = list(scenario) if isinstance(scenario, (list, tuple)) else [scenario]
        if not 1 <= len(scenarios) <= num_envs:
            raise ValueError(f"scenario: {len(scenarios)} scenarios need 1 <= count <= num_envs = {num_envs}")
        sizes = [num_envs // len(scenarios) + (i < num_envs % len(scenarios)) for i in range(len(scenarios))]
        self.cores = [RationingCore(s, k, randomize=randomize, overrides=overrides, version=version)
                      for s, k in zip(scenarios, sizes)]
        self.core = self.cores[0]
        for c in self.cores[1:]:
            if c.obs_names != self.core.obs_names:
                raise ValueError(
                    f"scenario {c.scenario.name!r}: tiers/providers differ from {self.core.scenario.name!r}; "
                    "a training mix needs the same observation layout"
                )
        bounds = np.cumsum([0] + sizes)
        self._rows = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.row_scenario = np.repeat(np.arange(len(scenarios)), sizes)
        """Index into ``cores`` (and the scenario list) of each row."""
        action_space, observation_space = _spaces(self.core)
        self.render_mode = None
        super().__init__(num_envs, observation_space, action_space)
        self._obs = np.zeros((num_envs, self.core.obs_size), np.float32)
        self._reward = np.zeros(num_envs, np.float32)
        self._terminated = np.zeros(num_envs, bool)
        self._truncated = np.zeros(num_envs, bool)
        self.full_info = full_info
        self.stagger = stagger
        self._actions: np.ndarray | None = None
        self._next_seeds = np.arange(num_envs, dtype=np.uint64) + np.uint64(seed)
        self._info: dict[str, np.ndarray] | None = {}
        self._info_parts: list[tuple] | None = None  # (core, info_buffer or None, info dict) per scenario

    @property
    def tier_names(self) -> list[str]:
        return self.core.tier_names

    @property
    def last_reward_vector(self) -> np.ndarray:
        """(N, reward_dim) float32 vector rewards of the last step (:mod:`envs.vector_reward`)."""
        return reward_vector(self.last_info, self.core.version)

    @property
    def obs_names(self) -> list[str]:
        return self.core.obs_names

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self._next_seeds = np.arange(self.num_envs, dtype=np.uint64) + np.uint64(seed)
        return [int(s) for s in self._next_seeds]

    def reset(self) -> VecEnvObs:
        seeds = self._next_seeds
        self._next_seeds = None
        for core, rows in zip(self.cores, self._rows):  # one core per scenario, not per env
            n = core.num_envs
            offsets = (np.arange(n) * core.params.episode_steps) // n if (self.stagger and seeds is not None) else None
            self._obs[rows] = core.reset(None if seeds is None else seeds[rows], start_steps=offsets)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        return self._step(row_infos=True)

    def step_wait_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`step_wait` without the per-row ``infos`` list (``obs, reward, done``): for callers that
        discard it, such as the rule twin (:mod:`agents.ppo.twin`); 1,024 empty dicts cost ~45 us a step."""
        return self._step(row_infos=False)[:3]

    def _step(self, row_infos: bool) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async() must be called before step_wait()"
        # info is built (and concatenated over scenarios) only when read (last_info): training reads none of it
        if len(self.cores) == 1:
            obs, reward, terminated, truncated, info = self.core.step(self._actions, info=False)
            parts = [(self.core, getattr(self.core, "info_buffer", None), info)]
        else:
            obs, reward, terminated, truncated = self._obs, self._reward, self._terminated, self._truncated
            parts = []
            actions = np.asarray(self._actions, np.float32)
            for core, rows in zip(self.cores, self._rows):
                obs[rows], reward[rows], terminated[rows], truncated[rows], info = core.step(actions[rows], info=False)
                parts.append((core, getattr(core, "info_buffer", None), info))
        self._info, self._info_parts = None, parts
        done = terminated | truncated
        if not row_infos:
            infos = []
        elif self.full_info:
            infos = [row_info(self.last_info, k) for k in range(self.num_envs)]
        else:
            infos = [{} for _ in range(self.num_envs)]
        if done.any():
            if row_infos:
                ended = np.flatnonzero(done)
                final_obs = obs[ended].copy()
                for j, k in enumerate(ended):  # loop over ended episodes only (rare)
                    infos[k]["terminal_observation"] = final_obs[j]
                    infos[k]["TimeLimit.truncated"] = bool(truncated[k] and not terminated[k])
            for core, rows in zip(self.cores, self._rows):
                ended_here = done[rows]
                if ended_here.any():
                    core.reset(mask=ended_here)
                    obs[rows][ended_here] = core.obs[ended_here]  # the other rows hold core.obs already
            if len(self.cores) == 1:
                obs = self.core.obs
        if self.reward_mode == "vector":
            reward = reward_vector(self.last_info, self.core.version)
        return obs.copy(), reward.copy(), done.copy(), infos

    @property
    def last_info(self) -> dict[str, np.ndarray]:
        """The last step's info arrays over all rows, (N, ...) each (built on first read)."""
        if self._info is None:
            # a compiled step returns an empty dict and keeps its info_buffer; the numpy step returns the dict
            parts = [info if info or buffer is None else core.info_from(buffer)
                     for core, buffer, info in self._info_parts or []]
            if len(parts) == 1:
                self._info = parts[0]
            else:
                self._info = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]} if parts else {}
            self._info_parts = None
        return self._info

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices

    @staticmethod
    def single_env_class() -> type[RationingEnv]:
        return RationingEnv
