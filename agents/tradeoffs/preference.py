"""Preference conditioning: weights over the reward's components drawn per episode and shown to the policy.

:class:`PreferenceRewards` wraps :class:`envs.sb3_vec_env.RationingVecEnv`. At the start of every
episode each row draws weights ``w`` over the objectives (:data:`OBJECTIVES`: margin, latency
penalty, churn penalty; SLA credits count with the margin, as in the scalar reward) from a
Dirichlet(alpha) scaled to sum to 3 (so ``(1, 1, 1)`` is the scenario's default weighting), appends
them to the observation (``preference/<objective>``) and is rewarded ``w . v / (w . s)`` with
``v`` the vector reward (:mod:`envs.vector_reward`) and ``s`` each objective's typical size per step
in dollars under the base rule (:func:`measure_objective_scales`, recorded in run.json as
``objective_scales_usd``). Dividing an episode's rewards by a positive constant of its own weights
changes no weighting's best policy, but it gives every weighting rewards of the same size: with
``w . v / scale_usd`` (runs made before ``objective_scales_usd``, which keep it) a latency-only episode
earned about 1/100 of a margin-only one (the latency penalty is ~1% of the margin on v1), so PPO's
shared advantage and return normalisation drowned the latency-heavy weightings. One policy trained
this way can then be run at any weights by fixing them (:class:`PreferencePolicy`).

The draws are counter-based (row ``k``'s ``e``-th episode uses ``default_rng([seed, k, e])``), so
they do not depend on the batch size and resume exactly (``state_arrays``).

Wiring: ``train.py --preference`` records :func:`preference_config` in run.json and the checkpoint
manifests (``preference``: objectives, Dirichlet alpha, the number of extra inputs; the manifest's
``obs_names`` stay the env's), :func:`wrap` puts the wrapper over the action parameterisation, and
model selection during training scores the mean balanced return at :data:`SELECTION_WEIGHTS`.
``agents.evaluate`` runs such a run at any weights (``PATH@margin=1,latency=0.5,churn=2``,
:func:`parse_weights`); weights are direction only: they are rescaled to sum to 3, the simplex the
policy was trained on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

OBJECTIVES = ("margin", "latency", "churn")
"""Weighted objectives; vector entries 0, 1, 2 (and 3, the v1 credits, with the margin's weight)."""


VALIDATION_WEIGHTS = (1.0, 1.0, 1.0)
"""The weighting a plain evaluation uses (the scenario's default reward), and the one validation (model
selection) used in runs made before :data:`SELECTION_WEIGHTS`."""
SELECTION_WEIGHTS = ((3.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 0.0, 3.0), (1.0, 1.0, 1.0))
"""The weightings a balanced preference run's model selection scores (the simplex's corners and its
centre; :func:`agents.tradeoffs.selection.preference_score`). Recorded in run.json as
``selection_weights``; runs made before it select at ``1,1,1`` alone and keep doing so when resumed."""
WEIGHT_SUM = 3.0
"""Training draws weights summing to this; weights given at evaluation are rescaled to it."""


class PreferenceError(ValueError):
    """A bad weights spec; the message is one line naming the field, the value and what is allowed."""


def preference_names() -> list[str]:
    return [f"preference/{o}" for o in OBJECTIVES]


def draw_weights(seed: int, rows: np.ndarray, episodes: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """(len(rows), 3) weights, Dirichlet(alpha) x 3, one per (row, episode): independent of the batch."""
    return np.stack([3.0 * np.random.default_rng([seed, int(k), int(e)]).dirichlet(np.full(len(OBJECTIVES), alpha))
                     for k, e in zip(rows, episodes)]).astype(np.float32)


def preference_reward(vector: np.ndarray, weights: np.ndarray, scale_usd: float,
                      objective_scales: list[float] | None = None) -> np.ndarray:
    """``w . v / (w . s)`` per row (``objective_scales`` s, dollars per step), or ``w . v / scale_usd``
    without them: margin and SLA credits share ``w[0]``, latency ``w[1]``, churn ``w[2]``."""
    v = np.asarray(vector, np.float64)
    w = np.asarray(weights, np.float64)
    out = w[:, 0] * v[:, 0] + w[:, 1] * v[:, 1] + w[:, 2] * v[:, 2]
    if v.shape[1] > 3:
        out = out + w[:, 0] * v[:, 3]
    if objective_scales is None:
        return out / scale_usd
    return out / np.maximum(w @ np.asarray(objective_scales, np.float64), 1e-12)


def balanced_returns(vector_sums: np.ndarray, weights, objective_scales: list[float]) -> np.ndarray:
    """Per-episode balanced return at fixed ``weights``: ``w . V / (w . s)`` of each episode's summed
    vector reward ``V`` (episodes, reward_dim), the sum of the per-step rewards :func:`preference_reward`
    gives at those weights (up to float rounding)."""
    v = np.asarray(vector_sums, np.float64)
    w = np.broadcast_to(np.asarray(weights, np.float64).reshape(1, len(OBJECTIVES)), (len(v), len(OBJECTIVES)))
    return preference_reward(v, w, 1.0, objective_scales)


def objective_sizes(vectors: np.ndarray) -> list[float]:
    """Each objective's mean absolute value per step, dollars, of vector rewards (..., reward_dim)
    (the SLA credits, entry 3, counted with the margin as in :func:`preference_reward`)."""
    v = np.asarray(vectors, np.float64).reshape(-1, np.shape(vectors)[-1])
    margin = v[:, 0] + v[:, 3] if v.shape[1] > 3 else v[:, 0]
    return [max(float(np.abs(x).mean()), 1e-6) for x in (margin, v[:, 1], v[:, 2])]


def measure_objective_scales(scenarios: list, version: int, overrides: dict | None, rule: str,
                             params: dict, rows: int = 16) -> list[float]:
    """:func:`objective_sizes` of ``rule`` (with ``params``) over one episode of ``rows`` tuning seeds of
    every scenario: the per-objective scales of a run's balanced preference rewards (deterministic)."""
    import envs
    from agents.common.seeds import train_seeds
    from agents.evaluate.metrics import rollout
    from agents.rules import RuleContext, make_rule, params_from_dict
    from envs.vector_reward import reward_info_keys, reward_vector

    seen = []
    for j, scenario in enumerate(scenarios):
        core = envs.RationingCore(scenario, rows, overrides=overrides, version=version)
        policy = make_rule(rule, RuleContext(core), params_from_dict(rule, params))
        ro = rollout(policy, core, train_seeds(rows, start=7000 + j * rows), keys=reward_info_keys(version))
        seen.append(reward_vector(ro.series, version))  # (steps, rows, reward_dim)
    return objective_sizes(np.concatenate(seen))


class PreferenceRewards(VecEnvWrapper):
    """Per-episode weights in the observation (appended) and the reward they weight.

    Over a rule twin (:class:`agents.ppo.twin.RuleTwinBaseline`, ``twin_baseline``) each row is rewarded
    its own weighted reward minus its twin's at the same weights: the twin's reward does not depend on
    the policy, so every weighting's best policy is unchanged, and the world's draws cancel."""

    def __init__(self, venv: VecEnv, seed: int, alpha: float = 1.0,
                 objective_scales: list[float] | None = None) -> None:
        low = np.concatenate([venv.observation_space.low, np.zeros(len(OBJECTIVES), np.float32)])
        high = np.concatenate([venv.observation_space.high, np.full(len(OBJECTIVES), 3.0, np.float32)])
        super().__init__(venv, observation_space=spaces.Box(low, high, dtype=np.float32))
        self.weight_seed, self.alpha = int(seed), float(alpha)
        self.objective_scales = None if objective_scales is None else [float(x) for x in objective_scales]
        self.episodes = np.zeros(self.num_envs, np.int64)
        self.weights = draw_weights(self.weight_seed, np.arange(self.num_envs), self.episodes, self.alpha)
        self._share_weights()

    def _share_weights(self) -> None:
        """Hand the rows' weights to a residual below (a rule family's base depends on them; the array is
        shared, so the draws below reach it in place)."""
        share = getattr(self.venv, "set_row_weights", None)  # SB3 wrappers forward attributes down
        if share is not None:
            share(self.weights)

    def _with(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self.weights], axis=1).astype(np.float32)

    def reset(self):
        return self._with(self.venv.reset())

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)

    def step_wait(self):
        obs, _, done, infos = self.venv.step_wait()
        base = self.venv
        while not hasattr(base, "last_reward_vector"):
            base = base.venv
        scale = base.core.params.reward_scale_usd
        reward = preference_reward(base.last_reward_vector, self.weights, scale, self.objective_scales)
        twin = getattr(self.venv, "twin", None)  # a rule twin below (agents.ppo.twin): its reward at the same weights
        if twin is not None:
            reward = reward - preference_reward(twin.last_reward_vector, self.weights, scale, self.objective_scales)
        for k in np.flatnonzero(done):  # the ended episode's last observation keeps its weights
            if "terminal_observation" in infos[k]:
                infos[k]["terminal_observation"] = np.concatenate([infos[k]["terminal_observation"], self.weights[k]])
        if done.any():
            rows = np.flatnonzero(done)
            self.episodes[rows] += 1
            self.weights[rows] = draw_weights(self.weight_seed, rows, self.episodes[rows], self.alpha)
        return self._with(obs), reward.astype(np.float32), done, infos

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"episodes": self.episodes.copy(), "weights": self.weights.copy()}

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        self.episodes, self.weights = state["episodes"].astype(np.int64), state["weights"].astype(np.float32)
        self._share_weights()


def preference_config(alpha: float, objective_scales: list[float] | None = None,
                      selection_weights=SELECTION_WEIGHTS) -> dict[str, Any]:
    """What run.json and every checkpoint manifest record of a preference-conditioned run
    (``objective_scales_usd``: :func:`measure_objective_scales`; absent in runs made before them; with
    them, ``selection_weights``: :data:`SELECTION_WEIGHTS`, or a rule family's
    :func:`agents.tradeoffs.family.selection_weights`)."""
    out: dict[str, Any] = {"objectives": list(OBJECTIVES), "alpha": float(alpha), "inputs": len(OBJECTIVES),
                           "validation_weights": list(VALIDATION_WEIGHTS)}
    if objective_scales is not None:
        out["objective_scales_usd"] = [float(x) for x in objective_scales]
        out["selection_weights"] = [[float(x) for x in w] for w in selection_weights]
    return out


def preference_inputs(meta: dict[str, Any] | None) -> int:
    """Extra observation inputs (the weights) of a run.json or manifest ``meta``: 0 without preferences."""
    pref = (meta or {}).get("preference")
    if not pref:
        return 0
    if not isinstance(pref, dict) or list(pref.get("objectives") or []) != list(OBJECTIVES) \
            or pref.get("inputs") != len(OBJECTIVES):
        raise PreferenceError(f"preference = {pref!r}: must record objectives {list(OBJECTIVES)} and "
                              f"inputs {len(OBJECTIVES)}")
    return len(OBJECTIVES)


def append_weights(obs: np.ndarray, weights) -> np.ndarray:
    """Raw observations (N, obs) or (obs,) with the weights appended (float32): one weighting (3,) for
    every row, or one per row (N, 3)."""
    obs = np.asarray(obs, np.float32)
    w = np.asarray(weights, np.float32)
    if obs.ndim == 1:
        return np.concatenate([obs, w.reshape(len(OBJECTIVES))])
    if w.ndim == 2:
        return np.concatenate([obs, w], axis=1)
    w = w.reshape(len(OBJECTIVES))
    return np.concatenate([obs, np.broadcast_to(w, (len(obs), len(w)))], axis=1)


def parse_weights(text: str) -> tuple[float, ...]:
    """``margin=1,latency=0.5,churn=2`` -> weights rescaled to sum to 3; an objective left out weighs 1.

    One-line :class:`PreferenceError` naming the field, the value and what is allowed.
    """
    allowed = ", ".join(OBJECTIVES)
    given: dict[str, float] = {}
    for item in str(text).split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in OBJECTIVES:
            raise PreferenceError(f"weights {text!r}: item {item.strip()!r} must be NAME=WEIGHT with NAME one of "
                                  f"{allowed}")
        if key in given:
            raise PreferenceError(f"weights {text!r}: {key} is given twice")
        try:
            w = float(value)
        except ValueError:
            w = math.nan
        if not (math.isfinite(w) and 0.0 <= w <= 1e6):
            raise PreferenceError(f"weights {text!r}: {key} = {value.strip()!r} must be a finite number in 0..1e6")
        given[key] = w
    raw = np.array([given.get(o, 1.0) for o in OBJECTIVES])
    if raw.sum() <= 0:
        raise PreferenceError(f"weights {text!r}: at least one weight must be > 0 (allowed: {allowed})")
    return tuple(float(v) for v in raw * (WEIGHT_SUM / raw.sum()))


def weights_label(weights) -> str:
    """``m1,l0.5,c2``-style text for labels and tables."""
    return ",".join(f"{o[0]}{w:.3g}" for o, w in zip(OBJECTIVES, weights))


def wrap(vec: VecEnv, run: dict[str, Any], seed: int) -> VecEnv:
    """The run's env with :class:`PreferenceRewards` (weights drawn from ``seed``) if the run is conditioned."""
    pref = run.get("preference")
    if not pref:
        return vec
    return PreferenceRewards(vec, seed=int(seed), alpha=float(pref.get("alpha", 1.0)),
                             objective_scales=pref.get("objective_scales_usd"))


class PreferencePolicy:
    """A preference-conditioned policy at fixed weights: appends them to every observation it is given."""

    def __init__(self, policy, weights) -> None:
        self.policy = policy
        self.weights = np.asarray(weights, np.float32).reshape(len(OBJECTIVES))

    def predict(self, obs, state=None, episode_start=None, deterministic: bool = True):
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        x = append_weights(obs.reshape(1, -1) if single else obs, self.weights)
        action, state = self.policy.predict(x, state=state, episode_start=episode_start, deterministic=deterministic)
        return (action[0] if single else action), state


__all__ = ["OBJECTIVES", "SELECTION_WEIGHTS", "VALIDATION_WEIGHTS", "WEIGHT_SUM", "PreferenceError",
           "PreferencePolicy", "PreferenceRewards", "append_weights", "balanced_returns", "draw_weights",
           "measure_objective_scales", "objective_sizes", "parse_weights", "preference_config",
           "preference_inputs", "preference_names", "preference_reward", "weights_label", "wrap"]
