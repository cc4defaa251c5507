"""The rliable-style aggregates against their definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.evaluate.aggregate import (
    iqm,
    normalized,
    pooled_iqm,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, -100])) == pytest.approx(3.5)  # cuts 2 each end
    assert iqm(np.arange(10.0)) == pytest.approx(np.mean(np.arange(2, 8)))  # floor(2.5) = 2 cut each end
    x = np.random.default_rng(0).normal(size=(3, 41))
    manual = [np.sort(r)[10:31].mean() for r in x]
    np.testing.assert_allclose(iqm(x, axis=1), manual)


def test_probability_of_improvement_counts_pairs_and_ties() -> None:
    x = {"a": np.array([1.0, 3.0]), "b": np.array([5.0])}
    y = {"a": np.array([2.0, 3.0]), "b": np.array([4.0, 6.0])}
    # a: pairs (1>2 no, 1>3 no, 3>2 yes, 3=3 half) = 1.5/4; b: (5>4 yes, 5>6 no) = 1/2
    assert probability_of_improvement(x, y) == pytest.approx((1.5 / 4 + 0.5) / 2)
    assert probability_of_improvement(x, x) == pytest.approx(0.5)


def test_stratified_bootstrap_resamples_within_each_scenario() -> None:
    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(0, 1, 30), "b": rng.normal(10, 1, 30)}
    point, lo, hi = stratified_bootstrap_ci(pooled_iqm, scores, reps=500)
    assert lo < point < hi
    # strata are kept: every replicate has 30 low and 30 high scores, so the pooled IQM stays near 5
    assert 3.5 < lo and hi < 6.5
    # a constant sample has a zero-width interval
    assert stratified_bootstrap_ci(pooled_iqm, {"a": np.ones(5)}, reps=50)[1:] == (1.0, 1.0)


def test_bootstrap_of_the_mean_matches_its_analytic_spread() -> None:
    x = np.random.default_rng(2).normal(0, 1, 400)
    point, lo, hi = stratified_bootstrap_ci(lambda s: float(np.mean(s["a"])), {"a": x}, reps=2000)
    assert (hi - lo) / 2 == pytest.approx(1.96 * x.std() / np.sqrt(len(x)), rel=0.15)


def test_normalized_maps_static_to_0_and_best_to_1() -> None:
    np.testing.assert_allclose(normalized(np.array([-50.0, 100.0, 150.0]), -50.0, 100.0), [0.0, 1.0, 4 / 3])
    assert np.isnan(normalized(np.array([1.0]), 2.0, 2.0)).all()


def test_probability_of_improvement_by_enumeration() -> None:
    rng = np.random.default_rng(3)
    x = {t: rng.normal(size=5) for t in "ab"}
    y = {t: rng.normal(size=4) for t in "ab"}
    per_task = [np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in itertools.product(x[t], y[t])])
                for t in "ab"]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
