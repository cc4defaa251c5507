"""A tiny preference-conditioned run end to end: run.json and manifests, evaluation at any weights, resume, refusals."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.ppo.checkpoint import load_checkpoint, pointer
from agents.ppo.run_policy import PPOPolicy, load_run_policy
from agents.tradeoffs.preference import PreferenceError, parse_weights
from tests.ppo.conftest import ROOT, TINY_HP, _train

ARGS = ["--hyperparams", TINY_HP, "--no-final-eval", "--no-progress", "--val-seeds", "2", "--scenario", "default",
        "--timesteps", "8192", "--eval-every", "4096", "--checkpoint-every", "4096", "--seed", "5", "--preference",
        "--hp", "action_parameterisation=residual"]

_spec = importlib.util.spec_from_file_location("train_script", ROOT / "train.py")
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


@pytest.fixture(scope="module")
def pref_run(tmp_path_factory) -> Path:
    """The uninterrupted tiny run (residual parameterisation, the upcoming default)."""
    out = tmp_path_factory.mktemp("pref") / "runs"
    assert _train("--output", str(out), "--run-name", "p", *ARGS).returncode == 0
    return out / "p"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_records_preferences_and_acts_at_any_weights(pref_run: Path) -> None:
    run = json.loads((pref_run / "run.json").read_text())
    assert run["preference"]["inputs"] == 3 and run["preference"]["validation_weights"] == [1.0, 1.0, 1.0]
    scales = run["preference"]["objective_scales_usd"]  # balanced rewards: measured on the base rule
    assert len(scales) == 3 and all(x > 0 for x in scales)
    assert run["preference"]["selection_weights"] == [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0],
                                                      [1.0, 1.0, 1.0]]
    ckpt = load_checkpoint(pointer(pref_run, "final"), with_optimizer=False)
    assert ckpt.manifest["preference"] == run["preference"]
    assert ckpt.manifest["obs_names"] == run["obs_names"] and not any("preference" in n for n in run["obs_names"])
    assert ckpt.normalization["obs_mean"].shape == (len(run["obs_names"]) + 3,)
    policy = PPOPolicy(ckpt)
    x = np.random.default_rng(0).normal(size=(8, len(run["obs_names"]))).astype(np.float32)
    with torch.no_grad():
        out = {w: policy.policy._predict(torch.as_tensor(policy.normalize(np.concatenate(
            [x, np.tile(np.float32(w), (8, 1))], axis=1))), deterministic=True).numpy()
            for w in ((3.0, 0.0, 0.0), (0.0, 0.0, 3.0))}
    assert not np.allclose(*out.values())  # the weights are inputs the network reads
    at = load_run_policy(pref_run).at_weights(parse_weights("margin=1,latency=0.5,churn=2"))
    assert at.weights == pytest.approx((6 / 7, 3 / 7, 12 / 7)) and at.name.endswith("@m0.857,l0.429,c1.71")
    import envs
    from agents.rules import RuleContext

    core = envs.RationingCore("default", 4, version=1)
    obs = core.reset(np.arange(4, dtype=np.uint64))
    bound = load_run_policy(pref_run).for_scenario(RuleContext(core))
    given = np.concatenate([obs, np.tile(np.float32([3, 0, 0]), (4, 1))], axis=1)  # weights already appended
    np.testing.assert_array_equal(bound.at_weights((3.0, 0.0, 0.0)).predict(obs)[0], bound.predict(given)[0])


def test_selection_scores_every_selection_weighting(pref_run: Path) -> None:
    """Model selection of a balanced run: the score is the mean balanced return over the corners and the
    centre, each recorded; the best checkpoint is the one with the highest such score."""
    history = [json.loads(line) for line in (pref_run / "eval_history.jsonl").read_text().splitlines()]
    assert history
    for entry in history:
        sel = entry["selection"]
        assert list(sel) == ["m3,l0,c0", "m0,l3,c0", "m0,l0,c3", "m1,l1,c1"]
        assert entry["score"] == pytest.approx(np.mean(list(sel.values())))
        # the margin corner earns, the penalty corners pay: one step of each is about its scale
        assert sel["m3,l0,c0"] > 0 > sel["m0,l3,c0"] and sel["m0,l0,c3"] < 0
    best = load_checkpoint(pointer(pref_run, "best"), with_optimizer=False)
    assert best.manifest["score"] == pytest.approx(max(e["score"] for e in history))


def test_evaluate_at_weights_and_refusals(pref_run: Path, tmp_path: Path, one_line_error) -> None:
    from agents.evaluate.command import main as evaluate
    from agents.export.exporter import main as export

    out = tmp_path / "ev"
    assert evaluate(["--policy", f"{pref_run}@margin=3,latency=0,churn=0", "--policy", str(pref_run), "--scenario",
                     "default", "--seeds", "1", "--out", str(out), "--plots", "none", "--no-progress"]) == 0
    policies = {p["label"]: p for p in json.loads((out / "results.json").read_text())["evaluated"]["policies"]}
    assert policies["p@m3,l0,c0"]["preference_weights"] == [3.0, 0.0, 0.0] and "p" in policies
    assert "latency = '-1'" in one_line_error(evaluate, ["--policy", f"{pref_run}@latency=-1", "--out",
                                                         str(tmp_path / "e2")])
    assert "NAME one of margin, latency, churn" in one_line_error(evaluate, ["--policy", f"{pref_run}@speed=1"])
    assert "no preference weights" in one_line_error(evaluate, ["--policy", "aimd@margin=1"])
    assert "preference-conditioned" in one_line_error(export, [str(pref_run), "--out", str(tmp_path / "x")])


def test_resume_after_kill_gives_the_same_weights(pref_run: Path, tmp_path: Path) -> None:
    res = _train("--output", str(tmp_path), "--run-name", "k", *ARGS, env={"RATIONING_KILL_AT": "ppo:2"})
    assert res.returncode == -9
    res = _train("--resume", str(tmp_path / "k"), "--no-progress", "--no-final-eval")
    assert res.returncode == 0, res.stderr
    final = pointer(tmp_path / "k", "final") / "policy.safetensors"
    assert _sha(final) == _sha(pointer(pref_run, "final") / "policy.safetensors")


def test_a_preference_run_keeps_its_rule_twin(tmp_path: Path) -> None:
    """With ``twin_baseline`` a conditioned run trains on its weighted reward minus its twin's (same weights)."""
    assert _train("--output", str(tmp_path), "--run-name", "t", *ARGS, "--hp", "twin_baseline=true",
                  "--timesteps", "4096").returncode == 0
    run = json.loads((tmp_path / "t" / "run.json").read_text())
    assert run["hyperparams"]["twin_baseline"] is True and run["preference"]["inputs"] == 3


@pytest.mark.parametrize("extra, message", [
    (["--constraint", "free.churn_per_month<=0.05"], "--preference with --constraint"),
    (["--latency-weight", "2"], "--preference with --latency-weight"),
    (["--preference-alpha", "0"], "--preference-alpha = 0.0"),
])
def test_inconsistent_combinations_are_one_line(extra, message, tmp_path: Path, one_line_error) -> None:
    err = one_line_error(train_script.main, ["--output", str(tmp_path), "--run-name", "r", *ARGS, *extra])
    assert message in err and not (tmp_path / "r").exists()


def test_weights_spec() -> None:
    assert parse_weights("latency=2") == pytest.approx((0.75, 1.5, 0.75))
    for bad in ("margin=1,margin=2", "margin=nan", "margin=0,latency=0,churn=0", "margin"):
        with pytest.raises(PreferenceError):
            parse_weights(bad)


def test_front_beside_a_single_weighting_run_and_rules(pref_run: Path, tmp_path: Path, one_line_error) -> None:
    from agents.evaluate.runner import run_evaluation
    from agents.tradeoffs.front import main as front
    from agents.tradeoffs.front import simplex_grid, weighted_return

    single = tmp_path / "runs" / "lat2"
    args = [a for a in ARGS if a != "--preference"]
    assert _train("--output", str(single.parent), "--run-name", "lat2", *args, "--latency-weight", "2",
                  "--timesteps", "4096").returncode == 0
    out = tmp_path / "front"
    assert front(["--run", str(pref_run), "--weights-grid", "1", "--compare", str(single), "--seeds", "2", "--rules",
                  "static", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "front.json").read_text())
    kinds = [r["kind"] for r in data["rows"]]
    assert kinds == ["preference"] * 4 + ["single", "rule"]  # 3 corners + the run's weighting (0.75,1.5,0.75)
    assert data["rows"][3]["weights"] == "m0.75,l1.5,c0.75" and data["rows"][4]["weights"] == "m1,l2,c1"
    (pair,) = data["pairs"]
    assert pair["weights"] == "m1,l2,c1" and pair["verdict"] in ("matches", "below") and pair["run_timesteps"] == 4096
    assert (out / "front.png").stat().st_size > 10_000 and "| static | rule |" in (out / "front.md").read_text()
    assert simplex_grid(2)[:3] == [(3.0, 0.0, 0.0), (1.5, 1.5, 0.0), (1.5, 0.0, 1.5)]
    c = run_evaluation(["aimd"], ["default"], 1, progress=False, reference=False).cells[0]
    np.testing.assert_allclose(weighted_return(c.metrics, (1, 1, 1), 1e4), c.metrics["episode_return"], rtol=1e-6)
    err = one_line_error(front, ["--run", str(single), "--out", str(tmp_path / "f")])
    assert "not trained with --preference" in err
    assert "--weights-grid 0" in one_line_error(front, ["--run", str(pref_run), "--weights-grid", "0", "--out",
                                                        str(tmp_path / "g")])
    from agents.rules.tune import main as tune

    tuned = tmp_path / "margin.json"  # a rule tuned at another weighting is a point of its own
    assert tune(["--rule", "static", "--scenario", "default", "--days", "0.25", "--seeds", "1", "--check-seeds", "1",
                 "--samples", "2", "--generations", "1", "--popsize", "2", "--polish", "0", "--jobs", "1",
                 "--weights", "margin=1,latency=0,churn=0", "--out", str(tuned), "--no-progress"]) == 0
    with_rules = tmp_path / "front-rules"
    assert front(["--run", str(pref_run), "--weights-grid", "1", "--seeds", "1", "--rules", "static", "--tuned-rules",
                  str(tuned), "--out", str(with_rules), "--no-progress"]) == 0
    last = json.loads((with_rules / "front.json").read_text())["rows"][-1]
    assert last["kind"] == "weighted-rule" and last["policy"] == "static [m3,l0,c0]" and "dominated_by" in last
    assert "no such file" in one_line_error(front, ["--run", str(pref_run), "--tuned-rules", str(tmp_path / "no.json"),
                                                     "--out", str(tmp_path / "h")])
    final = tmp_path / "front-final"  # the final checkpoint acts instead of the one its model selection chose
    assert front(["--run", str(pref_run), "--checkpoint", "final", "--weights-grid", "1", "--seeds", "1", "--rules",
                  "static", "--out", str(final), "--no-progress"]) == 0
    rows = json.loads((final / "front.json").read_text())["rows"]
    assert [r["policy"].split("@")[0].startswith("final-") for r in rows[:3]] == [True] * 3
    assert "(final checkpoint)" in (final / "front.md").read_text()


def test_pick_searches_on_validation_seeds_and_confirms_on_evaluation_seeds(pref_run: Path, tmp_path: Path,
                                                                           one_line_error) -> None:
    from agents.tradeoffs.pick import main as pick

    out = tmp_path / "pick"
    assert pick(["--run", str(pref_run), "--dominate", "static", "--search-grid", "1", "--validation-seeds", "2",
                 "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "pick.json").read_text())
    points = data["validation_points"]
    assert data["searched"] == len(points) == 3 and data["pick"]["weights"] in [p["weights"] for p in points]
    assert data["requirements"] == [f"margin_usd>={data['rule_validation_point']['margin_usd']:g}",
                                    f"latency_attainment>={data['rule_validation_point']['latency_attainment']:g}",
                                    f"churned_users<={data['rule_validation_point']['churned_users']:g}"]
    confirmed = data["confirmed"]
    assert confirmed["rule"]["name"] == "static" and set(confirmed["axes"]) == {"margin_usd", "latency_attainment",
                                                                                 "churned_users"}
    # chosen on validation seeds, confirmed on evaluation seeds: the rule's numbers differ between them
    assert confirmed["rule"]["axes"]["margin_usd"]["rule_mean"] != data["rule_validation_point"]["margin_usd"]
    assert "Dominates on the means" in (out / "pick.md").read_text()
    req = tmp_path / "req"
    assert pick(["--run", str(pref_run), "--require", "latency_attainment>=0.5", "--maximise", "margin_usd",
                 "--search-grid", "1", "--validation-seeds", "1", "--seeds", "1", "--out", str(req),
                 "--no-progress"]) == 0
    best = max(json.loads((req / "pick.json").read_text())["validation_points"], key=lambda p: p["margin_usd"])
    assert json.loads((req / "pick.json").read_text())["pick"]["weights"] == best["weights"]
    for argv, message in ((["--require", "margin>=1"], "axis 'margin'"), (["--dominate", "nope"], "not a rule"),
                          ([], "nothing to meet"),
                          (["--dominate", "static", "--search-grid", "13"], "--search-grid 13"),
                          (["--dominate", "static", "--maximise", "margin_usd"], "--maximise with --dominate")):
        assert message in one_line_error(pick, ["--run", str(pref_run), *argv, "--out", str(tmp_path / "x")])
