"""Model selection of a constrained run (the validation return, minus a steep penalty for violations)
and of a balanced preference-conditioned run (the mean balanced return over several weightings).

A constrained run keeps as ``best`` the checkpoint with the highest *constrained score*: its mean
validation return when every constraint is met on the validation seeds (mean over seeds, per
scenario), and that return minus ``VIOLATION_PENALTY`` x the summed relative violations
(``|value - limit| / limit`` on the bad quantity) otherwise, so a feasible checkpoint beats an
infeasible one of similar return.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.tradeoffs.constraints import Constraint, episode_values

VIOLATION_PENALTY = 1000.0
"""Score units (episode return) per unit of relative violation (1% over a limit costs 10)."""


def relative_violation(c: Constraint, value: float) -> float:
    """How far ``value`` (the metric) is past the limit, relative to the limit on the bad quantity; 0 if met."""
    bad = 1.0 - value if c.metric == "latency_attainment" else value
    return max(0.0, c.sense * (bad / c.bad_limit - 1.0))


def constrained_score(policy_for, run: dict[str, Any], scenarios: dict[str, str], n_seeds: int,
                      mean_return: float) -> tuple[float, dict[str, Any]]:
    """``(score, entry fields)``: the constraint values per scenario on the validation seeds, and the score.

    ``policy_for(core)``: the policy on that scenario's core (``agents.ppo.callback.deterministic``).
    """
    import envs
    from agents.common.seeds import validation_seeds
    from agents.evaluate.metrics import episode_metrics, rollout

    constraints = [Constraint.from_dict(d) for d in run["constraints"]]
    values: dict[str, dict[str, float]] = {}
    penalty = 0.0
    for name, spec in scenarios.items():
        core = envs.RationingCore(spec, n_seeds, overrides=run.get("reward_overrides") or None,
                                  version=int(run.get("env_version", 0)))
        p = core.params
        seeds = validation_seeds(n_seeds)
        metrics = episode_metrics(rollout(policy_for(core), core, seeds), p.dt_h)
        values[name] = {}
        for c in constraints:
            v = float(np.nanmean(episode_values(c, metrics, core.tier_names, p.users0, p.episode_steps * p.dt_h)))
            values[name][c.name] = v
            penalty += relative_violation(c, v)
    score = mean_return - VIOLATION_PENALTY * penalty
    return score, {"return_mean": mean_return, "constraint_values": values, "feasible": penalty == 0.0}


def preference_score(policy_at, run: dict[str, Any], scenarios: dict[str, str],
                     n_seeds: int) -> tuple[float, dict[str, Any]]:
    """``(score, entry fields)`` of a preference-conditioned run: the mean, over the run's
    ``selection_weights`` (:data:`agents.tradeoffs.preference.SELECTION_WEIGHTS`) and its scenarios, of
    the mean balanced episode return on the validation seeds (:func:`~agents.tradeoffs.preference.balanced_returns`:
    each weighting's return in units of the base rule's per-step size of what it weighs, so every
    weighting counts alike; at ``1,1,1`` alone a selection favours the checkpoint that moved least).

    ``policy_at(weights)(core)``: the policy acting at ``weights`` (N, 3), one weighting per row, on that
    scenario's core. Every weighting runs in one batch over the same validation seeds (one rollout, not one
    per weighting: a family's rules and the network act once per step for all of them). The entry
    fields: ``selection`` (weights label -> mean balanced return, averaged over scenarios).
    """
    import envs
    from agents.common.seeds import validation_seeds
    from agents.evaluate.metrics import rollout
    from agents.tradeoffs.preference import balanced_returns, weights_label
    from envs.vector_reward import reward_info_keys, reward_vector

    pref = run["preference"]
    version = int(run.get("env_version", 0))
    weightings = [tuple(w) for w in pref["selection_weights"]]
    k = len(weightings)
    seeds = np.tile(validation_seeds(n_seeds), k)  # one batch: every weighting on the same validation seeds
    row_weights = np.repeat(np.asarray(weightings, np.float64), n_seeds, axis=0)
    values: dict[str, list[float]] = {weights_label(w): [] for w in weightings}
    for spec in scenarios.values():
        core = envs.RationingCore(spec, k * n_seeds, overrides=run.get("reward_overrides") or None, version=version)
        ro = rollout(policy_at(row_weights)(core), core, seeds, keys=reward_info_keys(version))
        sums = reward_vector(ro.series, version).astype(np.float64).sum(axis=0)  # (k x seeds, reward_dim)
        for i, w in enumerate(weightings):
            part = sums[i * n_seeds:(i + 1) * n_seeds]
            values[weights_label(w)].append(float(balanced_returns(part, w, pref["objective_scales_usd"]).mean()))
    per_weights = {label: float(np.mean(v)) for label, v in values.items()}
    return float(np.mean(list(per_weights.values()))), {"selection": per_weights}


__all__ = ["VIOLATION_PENALTY", "constrained_score", "preference_score", "relative_violation"]
