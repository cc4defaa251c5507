"""A rule family as a preference run's residual base: the blend, its exactness at the family's weightings,
a tiny run end to end, and the refusals."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import envs
from agents.common.policy import PolicyError
from agents.ppo.residual import ResidualSpec
from agents.ppo.run_policy import load_run_policy
from agents.rules import RuleContext, make_rule, params_from_dict
from agents.rules.tuned import TUNED_FILE
from agents.tradeoffs.family import Blend, read_family
from tests.ppo.conftest import ROOT, TINY_HP, _train

RULE = "fair-share-tod"
ARGS = ["--hyperparams", TINY_HP, "--no-final-eval", "--no-progress", "--val-seeds", "2", "--scenario", "default",
        "--timesteps", "4096", "--eval-every", "4096", "--checkpoint-every", "4096", "--seed", "5", "--preference",
        "--hp", "action_parameterisation=residual", "--hp", "twin_baseline=true"]

_spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


def _write_family(folder: Path, weightings=((3, 0, 0), (0, 3, 0), (0, 0, 3), (1, 1, 1))) -> list[str]:
    """Tuned files of the shipped fair-share-tod, its headroom changed per weighting (as agents.tune writes)."""
    shipped = json.loads(TUNED_FILE.read_text())
    files = []
    for k, w in enumerate(weightings):
        data = copy.deepcopy(shipped)
        data["rules"] = {RULE: data["rules"][RULE]}
        data["best"], data["reward_weights"] = RULE, [float(x) for x in w]
        data["rules"][RULE]["params"]["headroom"] = 0.5 + 0.1 * k
        path = folder / f"w{k}.json"
        path.write_text(json.dumps(data))
        files.append(str(path))
    return files


def test_the_blend_is_piecewise_linear_and_exact_at_the_family() -> None:
    blend = Blend([(3, 0, 0), (0, 3, 0), (0, 0, 3), (1, 1, 1)])
    c = blend.coefficients(np.array([[3, 0, 0], [1, 1, 1], [1.5, 1.5, 0], [2, 1, 0], [0.5, 0.5, 0.5]]))
    np.testing.assert_array_equal(c[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(c[1], [0, 0, 0, 1])  # and 0.5, 0.5, 0.5 is the same direction
    np.testing.assert_array_equal(c[4], c[1])
    np.testing.assert_allclose(c[2], [0.5, 0.5, 0, 0], atol=1e-12)  # on the corners' edge: the two corners
    np.testing.assert_allclose(c.sum(axis=1), 1.0)
    assert (c >= 0).all()
    np.testing.assert_allclose(c @ blend.nodes, [[3, 0, 0], [1, 1, 1], [1.5, 1.5, 0], [2, 1, 0], [1, 1, 1]],
                               atol=1e-12)  # the coefficients rebuild the weighting


def test_the_base_is_each_members_rule_at_its_weighting_and_their_blend_between(tmp_path: Path) -> None:
    files = _write_family(tmp_path)
    spec = ResidualSpec.from_family("best", files, 1.0)
    assert spec.rule == RULE and spec.params["headroom"] == pytest.approx(0.8)  # the member at 1,1,1
    core = envs.RationingCore("default", 6, version=1)
    obs = core.reset(np.arange(6, dtype=np.uint64))
    for _ in range(40):
        obs = core.step(np.zeros((6, core.action_size), np.float32))[0]
    ctx = RuleContext(core)
    bound = spec.bind(ctx)
    own = [make_rule(RULE, ctx, params_from_dict(RULE, m["params"])).step_target(obs.astype(np.float64), None)[0]
           for m in spec.family]
    weights = np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3], [1, 1, 1], [1.5, 1.5, 0], [1.5, 1.5, 0]], float)
    target = bound.rule_target(obs, weights)
    for k in range(4):
        np.testing.assert_array_equal(target[k], own[k][k])  # bit for bit at the family's weightings
    np.testing.assert_allclose(target[4], np.sqrt(own[0][4] * own[1][4]), rtol=1e-12)
    assert not np.allclose(own[0], own[1])  # the members differ, so the test can tell them apart
    np.testing.assert_array_equal(bound.rule_target(obs), bound.rule_target(obs, np.ones((6, 3))))
    zero = np.zeros((6, core.n_tiers))
    np.testing.assert_array_equal(bound.env_action(zero, obs, weights)[:4],
                                  np.stack([ctx.action_to(obs[k:k + 1].astype(np.float64), own[k][k:k + 1])[0]
                                            for k in range(4)]))


def test_a_family_run_trains_records_its_family_and_acts_at_any_weights(tmp_path: Path) -> None:
    files = _write_family(tmp_path)
    out = tmp_path / "runs"
    res = _train("--output", str(out), "--run-name", "f", *ARGS, "--hp", f"residual_family=[{', '.join(files)}]")
    assert res.returncode == 0, res.stderr
    run = json.loads((out / "f" / "run.json").read_text())
    assert [m["weights"] for m in run["residual"]["family"]] == [[3, 0, 0], [0, 3, 0], [0, 0, 3], [1, 1, 1]]
    assert run["residual"]["params"]["headroom"] == pytest.approx(0.8)
    chosen = np.array(run["preference"]["selection_weights"])  # judged between the family's weightings
    nodes = np.array([m["weights"] for m in run["residual"]["family"]], float)
    assert len(chosen) >= 3 and np.allclose(chosen.sum(axis=1), 3.0)
    assert not any(np.allclose(c, n) for c in chosen for n in nodes)
    core = envs.RationingCore("default", 3, version=1)
    obs = core.reset(np.arange(3, dtype=np.uint64))
    policy = load_run_policy(out / "f")
    acts = {w: policy.at_weights(w).for_scenario(RuleContext(core)).predict(obs)[0]
            for w in ((3.0, 0.0, 0.0), (0.0, 3.0, 0.0))}
    assert acts[(3.0, 0.0, 0.0)].shape == (3, core.action_size)
    assert not np.allclose(acts[(3.0, 0.0, 0.0)], acts[(0.0, 3.0, 0.0)])  # the base follows the weights


def test_bad_families_are_one_line(tmp_path: Path, one_line_error) -> None:
    files = _write_family(tmp_path)
    no_corner = _write_family(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path,
                              ((3, 0, 0), (0, 3, 0), (1, 1, 1)))
    with pytest.raises(PolicyError, match="corner"):
        read_family("best", no_corner)
    unweighted = tmp_path / "plain.json"
    data = json.loads(Path(files[0]).read_text())
    del data["reward_weights"]
    unweighted.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match="reward_weights"):
        read_family("best", [files[0], files[1], str(unweighted)])
    with pytest.raises(PolicyError, match="twice"):
        read_family("best", [files[0], files[0], files[1], files[2]])
    fam = f"residual_family=[{', '.join(files)}]"
    base = [a for a in ARGS if a != "--preference"]
    for extra, message in ((["--hp", fam], "residual_family needs --preference"),
                           (["--preference", "--hp", fam, "--hp", f"residual_tuned_file={files[0]}"],
                            "residual_family with residual_tuned_file"),
                           (["--preference", "--hp", f"residual_family=[{files[0]}]"], "at least 3")):
        err = one_line_error(train_script.main, ["--output", str(tmp_path / "r"), "--run-name", "r", *base, *extra])
        assert message in err and not (tmp_path / "r" / "r").exists()
