"""The residual parameterisation (rule x learned correction) and the rule-twin baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, _history, _train

import envs
from agents.common.policy import PolicyError
from agents.ppo.config import ConfigError, validate_hyperparams
from agents.ppo.residual import ResidualActions, ResidualSpec, env_action_converter
from agents.ppo.twin import RuleTwinBaseline
from agents.rules import RuleContext, make_rule, params_from_dict, tuned_file_for
from envs.sb3_vec_env import RationingVecEnv

SCENARIOS = ["default", "agentic-surge"]


def _spec(log_range: float = 1.0) -> ResidualSpec:
    return ResidualSpec.from_tuned("best", tuned_file_for(1), log_range)


def _vec(n: int = 16) -> RationingVecEnv:
    return RationingVecEnv(n, scenario=SCENARIOS, seed=11, randomize=True, stagger=True, version=1)


def test_zero_correction_is_the_rule_bit_for_bit() -> None:
    spec = _spec()
    vec, ref = ResidualActions(_vec(), spec), _vec()
    rules = [make_rule(spec.rule, RuleContext(c), params_from_dict(spec.rule, spec.params)) for c in ref.cores]
    obs, ref_obs = vec.reset(), ref.reset()
    zero = np.zeros((vec.num_envs, vec.action_space.shape[0]), np.float32)
    for _ in range(60):
        actions = np.concatenate([rule.predict(ref_obs[rows])[0] for rule, rows in zip(rules, ref._rows)])
        obs, reward, done, _ = vec.step(zero)
        ref_obs, ref_reward, _, _ = ref.step(actions)
        assert np.array_equal(obs, ref_obs) and np.array_equal(reward, ref_reward)


def test_correction_scales_the_rule_target() -> None:
    spec = _spec(log_range=0.5)
    core = envs.RationingCore("default", 4, version=1)
    bound = spec.bind(RuleContext(core))
    obs = core.reset(np.arange(4, dtype=np.uint64))
    for _ in range(20):  # from a state where the quotas sit at the rule's target
        obs, *_ = core.step(bound.env_action(np.zeros((4, 6)), obs))
    target = bound.rule_target(obs)
    core.step(bound.env_action(np.full((4, 6), 0.4), obs))
    expected = np.clip(target * np.exp(0.5 * 0.4), core.params.quota_min, core.params.quota_max)
    current = np.exp(obs[:, RuleContext(core).blocks["quota"]].astype(np.float64))
    step = core.params.log_quota_step
    expected = np.clip(expected, current * np.exp(-step), current * np.exp(step))  # one step's limit
    assert np.allclose(core.info["quota_multiplier"], expected, rtol=1e-5)


def test_twin_reward_is_zero_for_the_rule_and_not_for_a_correction() -> None:
    spec = _spec()
    inner = ResidualActions(_vec(), spec)
    vec = RuleTwinBaseline(inner, _vec(), inner.env_actions)
    vec.reset()
    zero = np.zeros((vec.num_envs, vec.action_space.shape[0]), np.float32)
    for _ in range(40):
        _, reward, _, _ = vec.step(zero)
        assert np.all(reward == 0.0)
    moved = []
    for _ in range(40):
        _, reward, _, _ = vec.step(zero + 0.8)
        moved.append(np.abs(reward).max())
    assert max(moved) > 0.0


def test_paired_rule_call_gives_the_separate_calls_actions() -> None:
    inner, twin = ResidualActions(_vec(), _spec()), _vec()
    inner.reset()
    twin_obs = twin.reset()
    rng = np.random.default_rng(3)
    for _ in range(30):
        corrections = rng.uniform(-1, 1, (inner.num_envs, inner.action_space.shape[0])).astype(np.float32)
        want_mine = inner.env_actions(corrections, inner._obs)
        want_twin = inner.env_actions(np.zeros_like(corrections), twin_obs)
        got_twin = inner.step_async_paired(corrections, twin_obs)
        np.testing.assert_array_equal(got_twin, want_twin)
        np.testing.assert_array_equal(inner.venv._actions, want_mine)
        inner.step_wait()
        twin_obs = twin.step(rng.uniform(-1, 1, (twin.num_envs, 6)).astype(np.float32))[0]


def test_residual_policy_needs_a_scenario() -> None:
    meta = {"hyperparams": {"action_parameterisation": "residual"}, "residual": _spec().to_dict()}
    with pytest.raises(PolicyError, match="bind it"):
        env_action_converter(meta)
    with pytest.raises(PolicyError, match="log_range"):
        ResidualSpec.from_dict({**_spec().to_dict(), "log_range": 0})


@pytest.mark.parametrize(("hp", "message"), [
    ({"action_parameterisation": "target", "twin_baseline": True}, "twin_baseline"),
    ({"action_parameterisation": "residual", "warm_start": "static"}, "warm-starts from its own rule"),
])
def test_inconsistent_hyperparameters_are_refused(hp: dict, message: str) -> None:
    base = {"n_envs": 8, "n_steps": 8, "batch_size": 64}
    with pytest.raises(ConfigError, match=message):
        validate_hyperparams({**base, **hp})


def test_a_fresh_residual_run_is_the_rule_and_evaluates_as_it(tmp_path: Path) -> None:
    """Warm start only: the actor's output is exactly 0, so validation equals the rule and actor_moved is 0."""
    from agents.evaluate.command import evaluate_and_report

    res = _train("--output", str(tmp_path), "--run-name", "res", "--timesteps", "4096", "--eval-every", "4096",
                 "--hp", "action_parameterisation=residual", "--hp", "twin_baseline=true", "--seed", "1", *TINY)
    assert res.returncode == 0, res.stderr
    run = json.loads((tmp_path / "res" / "run.json").read_text())
    assert run["residual"]["rule"] == json.loads(Path(tuned_file_for(1)).read_text())["best"]
    first = _history(tmp_path / "res")[0]
    assert first["actor_moved"] == 0.0
    ev = evaluate_and_report([str(tmp_path / "res"), run["residual"]["rule"]], scenarios=["outage"], n_seeds=2,
                             out=tmp_path / "eval", progress=False, plots="none", env_version=1)
    returns = {c.label: c.metrics["episode_return"] for c in ev.cells}
    assert np.array_equal(returns["res"], returns[run["residual"]["rule"]])  # a held-out scenario: its own rule


def test_twin_state_round_trips_for_a_bit_exact_resume() -> None:
    from agents.ppo.resume_state import _set_env_state, env_state

    def make():
        inner = ResidualActions(_vec(), _spec())
        return RuleTwinBaseline(inner, _vec(), inner.env_actions)

    vec = make()
    vec.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (80, vec.num_envs, vec.action_space.shape[0]))
    for a in actions[:30]:
        vec.step(a.astype(np.float32))
    state = env_state(vec)
    assert any(".twin." in k for k in state)
    later = [vec.step(a.astype(np.float32)) for a in actions[30:]]
    other = make()
    other.reset()
    _set_env_state(other, state, "test")
    for (obs, reward, done, _), a in zip(later, actions[30:]):
        obs2, reward2, done2, _ = other.step(a.astype(np.float32))
        assert np.array_equal(obs, obs2) and np.array_equal(reward, reward2) and np.array_equal(done, done2)


def test_the_warm_start_is_validated_before_the_actor_moves(tmp_path: Path) -> None:
    """The first validation comes when the critic warm-up ends (4,096 steps here), not at --eval-every."""
    res = _train("--output", str(tmp_path), "--run-name", "res", "--timesteps", "12288", "--eval-every", "8192",
                 "--hp", "action_parameterisation=residual", "--seed", "2", *TINY)
    assert res.returncode == 0, res.stderr
    history = _history(tmp_path / "res")
    assert [h["timesteps"] for h in history] == [4096, 12288]
    assert history[0]["actor_moved"] == 0.0 < history[1]["actor_moved"]


def test_residual_rule_from_another_tuned_file(tmp_path: Path) -> None:
    """``residual_tuned_file``: e.g. rules tuned under constraints; run.json records the rule and its parameters."""
    from agents.ppo.config import TrainArgs
    from agents.ppo.run_folder import new_run
    from agents.rules import tuned_params

    shipped = json.loads(Path(tuned_file_for(1)).read_text())
    params = tuned_params("fair-share", tuned_file_for(1))
    key = next(k for k, v in params.items() if isinstance(v, float))
    params[key] *= 1.01
    own = tmp_path / "tuned.json"
    rules = {**shipped["rules"], "fair-share": {"params": params}}
    own.write_text(json.dumps({**shipped, "best": "fair-share", "rules": rules}))
    args = TrainArgs(scenario=["default"], output=str(tmp_path), run_name="r", hyperparams=TINY[1],
                     hp=["action_parameterisation=residual", f"residual_tuned_file={own}"])
    _, run = new_run(args)
    assert run["residual"]["rule"] == "fair-share" and run["residual"]["params"] == params


def test_the_default_twin_is_switched_off_for_constrained_runs_and_kept_for_preference_runs(tmp_path: Path) -> None:
    """The shipped file sets twin_baseline: true; a constrained run turns it off and says so (the twin's reward
    is the plain scalar one); a preference run keeps it (its twin's reward is weighted like its row's)."""
    from agents.ppo.config import TrainArgs
    from agents.ppo.run_folder import new_run

    limit = {"constraint": ["enterprise.latency_attainment>=0.98"]}
    notes: list[str] = []
    _, run = new_run(TrainArgs(scenario=["default"], output=str(tmp_path), run_name="r", **limit), notes)
    assert run["hyperparams"]["twin_baseline"] is False
    assert any("twin_baseline off" in n for n in notes)
    with pytest.raises(ConfigError, match="drop --hp twin_baseline=true"):
        new_run(TrainArgs(scenario=["default"], output=str(tmp_path), run_name="r2", hp=["twin_baseline=true"],
                          **limit))
    notes = []
    _, run = new_run(TrainArgs(scenario=["default"], output=str(tmp_path), run_name="p", preference=True), notes)
    assert run["hyperparams"]["twin_baseline"] is True and not any("twin" in n for n in notes)
