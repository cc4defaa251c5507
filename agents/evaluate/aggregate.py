"""rliable-style aggregates over scenarios and seeds (Agarwal et al. 2021, "the statistical precipice").

* :func:`normalized`: per scenario, ``(return - static) / (best rule - static)`` with the
  scenario's mean returns of the static rule and of the best tuned rule: 0 = no rationing
  logic, 1 = the best rule.
* :func:`iqm`: the interquartile mean of all (scenario, seed) scores pooled: the mean of the
  middle 50% (rliable's ``aggregate_iqm``, ``scipy.stats.trim_mean(x, 0.25)``).
* :func:`probability_of_improvement`: ``P(X > Y)`` for a random seed of X against a random
  seed of Y on the same scenario (ties count half), averaged over scenarios (rliable's
  ``probability_of_improvement``: the Mann-Whitney U statistic over ``n_x n_y``).
* :func:`stratified_bootstrap_ci`: the 95% percentile interval of any of them when the seeds of
  each scenario are resampled with replacement, scenario by scenario (rliable's
  ``StratifiedBootstrap``).

Implemented here in numpy (vectorised over bootstrap replicates) because the ``rliable``
package does not import beside this project's pandas (its ``arch`` dependency fails with
pandas 3); ``tests/evaluate/test_aggregate.py`` checks these functions against direct
definitions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Scores = dict[str, np.ndarray]
"""Scenario -> (seeds,) scores."""


def normalized(returns: np.ndarray, low: float, high: float) -> np.ndarray:
    """``(returns - low) / (high - low)``; NaN if ``high == low``."""
    span = high - low
    return (np.asarray(returns, np.float64) - low) / span if span != 0 else np.full(np.shape(returns), np.nan)


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean after cutting 25% of the values off each end.

    As ``scipy.stats.trim_mean(x, 0.25)``: ``floor(0.25 n)`` values are cut from each end.
    """
    x = np.sort(np.asarray(x, np.float64), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """``P(X > Y)`` per scenario (ties count half), averaged over the scenarios of ``x``."""
    probs = []
    for task in x:
        a = np.asarray(x[task], np.float64)[:, None]
        b = np.asarray(y[task], np.float64)[None, :]
        probs.append(float(((a > b) + 0.5 * (a == b)).mean()))
    return float(np.mean(probs))


def stratified_bootstrap_ci(stat: Callable[[Scores], float], *samples: Scores, reps: int = 2000,
                            seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """The statistic and its percentile CI when each scenario's seeds are resampled (independently per sample)."""
    rng = np.random.default_rng(seed)
    point = stat(*samples)
    values = np.empty(reps)
    idx = [{t: rng.integers(0, len(s[t]), size=(reps, len(s[t]))) for t in s} for s in samples]
    for r in range(reps):
        values[r] = stat(*[{t: np.asarray(s[t])[ix[t][r]] for t in s} for s, ix in zip(samples, idx)])
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(point), float(lo), float(hi)


def pooled_iqm(scores: Scores) -> float:
    """IQM of every (scenario, seed) score pooled."""
    return float(iqm(np.concatenate([np.asarray(v, np.float64) for v in scores.values()])))
