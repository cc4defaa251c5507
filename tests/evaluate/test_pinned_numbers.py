"""Every rule and the shipped policy give the numbers they gave before the code moved (Rationing-v0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.evaluate import resolve_policy, rollout
from agents.rules import RULES, RuleContext, make_rule

ROOT = Path(__file__).resolve().parents[2]
PINS = json.loads((ROOT / "tests" / "data" / "pinned_v0_returns.json").read_text())
SEEDS = np.asarray(PINS["seeds"], dtype=np.uint64)


@pytest.mark.parametrize("scenario", list(PINS["returns"]["static"]))
def test_rules_and_shipped_policy_keep_their_returns(scenario: str) -> None:
    core = envs.RationingCore(scenario, len(SEEDS))
    assert core.params.env_version == 0 if hasattr(core.params, "env_version") else True
    for name, by_scenario in PINS["returns"].items():
        if name in RULES:
            policy = make_rule(name, RuleContext(core), PINS["rule_params"][name])
        else:
            policy = resolve_policy(str(ROOT / "checkpoints" / name), core)
        got = rollout(policy, core, SEEDS, keys=()).returns
        np.testing.assert_allclose(got, by_scenario[scenario], rtol=1e-6, atol=1e-6, err_msg=f"{name} on {scenario}")
