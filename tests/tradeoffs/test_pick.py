"""The weighting pick's rule (agents.tradeoffs.pick.choose), requirement grammar and the front figure's key."""

from __future__ import annotations

import pytest

from agents.tradeoffs.front import FrontError
from agents.tradeoffs.pick import Requirement, choose, dominance, parse_requirement

POINTS = [  # margin, attainment, churned users at three weightings
    {"weights": (3.0, 0.0, 0.0), "margin_usd": 10.0, "latency_attainment": 0.90, "churned_users": 50.0},
    {"weights": (1.5, 1.5, 0.0), "margin_usd": 9.0, "latency_attainment": 0.95, "churned_users": 45.0},
    {"weights": (0.0, 3.0, 0.0), "margin_usd": 6.0, "latency_attainment": 0.99, "churned_users": 44.0},
]


def test_requirements_parse_and_refuse_in_one_line() -> None:
    assert parse_requirement(" latency_attainment >= 0.95 ") == Requirement("latency_attainment", ">=", 0.95)
    assert parse_requirement("churned_users<=4e4").label == "churned_users<=40000"
    for bad, message in (("margin>1", "write AXIS>=X"), ("margin>=1", "axis 'margin'"), ("churned_users<=1.2.3",
                                                                                          "not a number")):
        with pytest.raises(FrontError, match=message):
            parse_requirement(bad)


def test_the_pick_maximises_among_feasible_or_keeps_the_most_robust_dominance() -> None:
    need = [Requirement("latency_attainment", ">=", 0.94)]
    assert choose(POINTS, need, "margin_usd") == {"weights": (1.5, 1.5, 0.0), "feasible": 2, "met": True,
                                                  "score": 9.0}
    assert choose(POINTS, need, "churned_users")["weights"] == (0.0, 3.0, 0.0)
    rule = {"margin_usd": 5.0, "latency_attainment": 0.91, "churned_users": 49.0}
    pick = choose(POINTS, dominance(rule), None)  # smallest slack over the spreads: 0.44 (second) vs 0.25 (third)
    assert pick["weights"] == (1.5, 1.5, 0.0) and pick["feasible"] == 2 and pick["met"]
    hard = choose(POINTS, dominance({"margin_usd": 9.5, "latency_attainment": 0.97, "churned_users": 60.0}), None)
    assert not hard["met"] and hard["feasible"] == 0 and hard["score"] < 0  # the smallest shortfall instead


def test_the_front_figure_numbers_its_conditioned_points_and_weighted_rules() -> None:
    from agents.tradeoffs.front_plot import group_labels, numbered

    rows = [{"policy": "p@a", "kind": "preference", "weights": "m3,l0,c0"},
            {"policy": "static", "kind": "rule", "weights": ""},
            {"policy": "static [m1,l1,c1]", "kind": "weighted-rule", "weights": "m1,l1,c1"},
            {"policy": "p@b", "kind": "preference", "weights": "m0,l3,c0"}]
    out, key = numbered(rows)
    assert [r.get("_id") for r in out] == ["1", None, "T1", "2"] and "_id" not in rows[0]
    assert key == ["1 m3,l0,c0", "T1 static [m1,l1,c1]", "2 m0,l3,c0"]
    labels = group_labels([(0.0, 0.0, out[1]), (0.0, 0.0, out[0]), (0.001, 0.0, out[2]), (1.0, 1.0, out[3])], (1, 1))
    assert [t for _, _, t in labels] == ["1, T1, static", "2"]
