"""The CMA-ES stage of the tuner, the normalised space and the bound check."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from agents.rules import RULES, RuleContext, flat_coordinates, params_from_dict
from agents.rules.search import bound_hits, decode, encode, from_unit, to_unit
from agents.rules.tune import TuneSettings, main, tune, tune_rule

SMALL = TuneSettings(scenarios=("peak-contention",), seeds=3, check_seeds=3, samples=8, optimizer="cma",
                     generations=3, popsize=8, sigma0=0.2, polish=0, randomize=True, episode_days=1)


def test_cma_tuning_beats_the_untuned_parameters_on_other_seeds() -> None:
    entry = tune_rule("fair-share", SMALL)
    assert entry["optimizer"] == "cma" and entry["settings"]["optimizer"] == "cma"
    stages = entry["search"]["stages"]
    assert stages["cma"]["generations"] == 3 and stages["cma"]["popsize"] == 8
    assert entry["search"]["tuned"] >= stages["after_cma"] >= stages["after_random"] >= entry["search"]["untuned"]
    assert entry["check"]["tuned"] > entry["check"]["untuned"] + 1.0, entry["check"]  # seeds the search never saw
    assert entry["selected"] == "tuned"
    assert entry["parameter_sets"] == 1 + 8 + 3 * 8 + 2  # defaults, samples, generations x popsize, check
    assert isinstance(entry["at_bound"], list)


def test_optimizer_is_selectable_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    coord = dataclasses.replace(SMALL, optimizer="coordinate", samples=2, passes=1, grid=2)
    tune(["aimd"], coord, out, progress=False, log=lambda *_: None)
    assert json.loads(out.read_text())["rules"]["aimd"]["optimizer"] == "coordinate"
    with pytest.raises(ValueError, match="optimizer"):
        tune_rule("aimd", dataclasses.replace(SMALL, optimizer="nope"))


def test_seed_from_rule_starts_from_its_base_rules_tuned_values(tmp_path: Path) -> None:
    """fair-share-tod is tuned after fair-share in one call and never scores below fair-share's tuned values."""
    out = tmp_path / "t.json"
    few = dataclasses.replace(SMALL, samples=2, generations=1, popsize=4)
    data = tune(["fair-share-tod", "fair-share"], few, out, progress=False, log=lambda *_: None)
    fs, tod = data["rules"]["fair-share"], data["rules"]["fair-share-tod"]
    assert tod["search"]["tuned"] >= fs["search"]["tuned"] - 1e-9
    assert tod["parameter_sets"] == 1 + 1 + 2 + 4 + 2  # defaults, fair-share's tuned set, samples, 1 gen., check


def test_normalised_space_round_trips() -> None:
    rule, tiers = RULES["fair-share"], RuleContext("default").tier_names
    coords = flat_coordinates(rule, tiers)
    p = params_from_dict(rule, {"headroom": 1.1, "demand_margin": 2.0, "weights": {"free": 0.7, "*": 3.0}})
    x = encode(p, coords, tiers)
    assert np.all((x >= 0) & (x <= 1))
    back = decode(x, rule.Params(), coords)
    np.testing.assert_allclose(encode(back, coords, tiers), x, atol=1e-12)
    assert back.headroom == pytest.approx(1.1) and back.weights["free"] == pytest.approx(0.7)
    assert back.weights["api"] == pytest.approx(3.0)
    log_dim = next(d for d in rule.space if d.name == "demand_margin")
    assert to_unit(log_dim, np.sqrt(log_dim.low * log_dim.high)) == pytest.approx(0.5)  # log scale: geometric middle
    int_dim = next(d for d in RULES["tier-priority"].space if d.name == "protect_ranks")
    assert from_unit(int_dim, 0.4) == 1.0 and from_unit(int_dim, 2.0) == int_dim.high  # rounded, clipped


def test_bound_check_lists_coordinates_at_a_bound(capsys, tmp_path: Path) -> None:
    rule, tiers = RULES["tier-priority"], RuleContext("default").tier_names
    space = {d.name: d for d in rule.space}
    p = params_from_dict(rule, {"wait_threshold_s": space["wait_threshold_s"].high, "protect_ranks": 1,
                                "release": 0.6, "latency_threshold": 1.0, "escalation": 2.0,
                                "cut": {"free": space["cut"].low, "*": 0.5}, "open": {"*": 1.0}})
    assert bound_hits(rule, p, tiers) == ["wait_threshold_s high", "cut[free] low"]
    out = tmp_path / "t.json"
    out.write_text(json.dumps({"format": "rationing-tuned-baselines", "rules": {
        "tier-priority": {"params": p.__dict__}, "aimd": {"params": {}}}}))
    assert main(["--bounds", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["tier-priority     wait_threshold_s high, cut[free] low", "aimd              -"]


def test_widened_ranges_cover_the_old_bound_hits() -> None:
    """Where the shipped (coordinate-search) tune stopped at a bound, the range now extends past it."""
    space = {(r, d.name): d for r in RULES for d in RULES[r].space}
    assert space["tier-priority", "cut"].high > 1.0 and space["tier-priority", "open"].low < 0.5
    assert space["latency-gradient", "tolerance"].low < 1.0
    assert space["time-of-use", "weekend"].low < 0.25 and space["time-of-use", "offpeak"].low < 0.25
    assert space["fair-share", "headroom"].high > 1.5
    assert space["fair-share", "demand_margin"].high > 4.0 and space["fair-share-tod", "demand_margin"].high > 4.0
