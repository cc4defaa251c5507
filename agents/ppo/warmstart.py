"""Warm start PPO by behaviour cloning from a (tuned) rule baseline.

Before PPO starts, the rule is rolled out on the training scenarios (with the
training run's domain randomisation and training-range seeds). From those
rollouts:

* the observation normalisation statistics are set from the visited observations;
* the actor's mean is fitted (MSE) to the rule's decisions, expressed in the
  target-quota parameterisation (:mod:`agents.ppo.parameterisation`): the label is the
  quota multiplier the rule's action produced, so the cloned network reproduces the
  rule's environment actions exactly where it fits them;
* the return normalisation and the critic are fitted to the rule's discounted,
  normalised returns, so PPO's first advantages are meaningful and the clone is not
  wrecked by an untrained value function.

PPO then improves on the rule instead of rediscovering it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import envs
from agents.ppo.parameterisation import ActionLayout
from agents.rules import RuleContext, make_rule, tuned_file_for, tuned_params
from envs.rng import seed_to_uint


@dataclass(frozen=True)
class Demonstrations:
    obs: np.ndarray
    """(M, obs_size) raw observations."""
    target: np.ndarray
    """(M, T) rule decisions as target-parameterisation actions in [-1, 1]."""
    value: np.ndarray
    """(M,) discounted sum of normalised rewards from each observation on."""
    ret_var: float
    """Variance of the running discounted return (VecNormalize's reward scale)."""
    rule_return: float
    """Mean undiscounted episode return of the rule on these rollouts."""


class _FamilyBase:
    """A rule family's base (zero corrections) at fixed per-row weights, behind the rules' ``predict``."""

    def __init__(self, residual: dict, core, weights: np.ndarray | None) -> None:
        from agents.ppo.residual import ResidualSpec

        self.bound = ResidualSpec.from_dict(residual).bind(RuleContext(core))
        self.weights = weights
        self.zero = np.zeros((core.num_envs, core.n_tiers))

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return self.bound.env_action(self.zero, obs, self.weights), state


def _target_from_multiplier(multiplier: np.ndarray, layout: ActionLayout) -> np.ndarray:
    log_m = np.log(multiplier)
    t = np.where(log_m < 0.0, log_m / -np.log(layout.quota_min), log_m / np.log(layout.quota_max))
    return np.clip(t, -1.0, 1.0).astype(np.float32)


def collect(rule: str, scenarios: list[str], envs_per_scenario: int, seed: int, gamma: float, randomize: bool,
            overrides: dict | None, layout: ActionLayout, version: int = 0,
            preference: dict | None = None, residual: dict | None = None) -> Demonstrations:
    """Roll the rule for two episodes per env; keep the first episode's steps (the second gives the tail).

    ``preference`` (a ``--preference`` run's record): each rollout draws weights, which are appended to its
    observations, and its rewards are the weighted vector rewards (the critic learns the rule's value at
    every weighting; the actor, cloned at all of them, starts weight-blind). ``residual``: a residual run's
    record (run.json ``residual``): the rule acts with its parameters (default: the shipped tuned ones),
    and a rule family's base at each rollout's weights (:mod:`agents.tradeoffs.family`).
    """
    obs_all, tgt_all, rew_all = [], [], []
    episode_returns = []
    for j, scenario in enumerate(scenarios):
        core = envs.RationingCore(scenario, envs_per_scenario, randomize=randomize, overrides=overrides,
                                  version=version)
        base = seed_to_uint((1 << 41) + seed * 65536 + j * 4096)
        obs = core.reset(np.arange(envs_per_scenario, dtype=np.uint64) + np.uint64(base))
        steps = 2 * core.params.episode_steps
        weights = None
        if preference:
            from agents.tradeoffs.preference import draw_weights, preference_reward
            from envs.vector_reward import reward_vector

            rows = np.arange(envs_per_scenario) + j * envs_per_scenario
            weights = draw_weights(int(base), rows, np.zeros_like(rows), float(preference.get("alpha", 1.0)))
        if residual is not None and residual.get("family"):
            policy = _FamilyBase(residual, core, weights)
        else:
            policy = make_rule(rule, RuleContext(core), residual["params"] if residual is not None
                               else tuned_params(rule, tuned_file_for(version)))
        extra = 0 if weights is None else weights.shape[1]
        o_buf = np.empty((steps, envs_per_scenario, core.obs_size + extra), np.float32)
        t_buf = np.empty((steps, envs_per_scenario, core.action_size), np.float32)
        r_buf = np.empty((steps, envs_per_scenario), np.float64)
        state = None
        start = np.ones(envs_per_scenario, bool)
        for k in range(steps):
            action, state = policy.predict(obs, state, start)
            o_buf[k] = obs if weights is None else np.concatenate([obs, weights], axis=1)
            obs, reward, terminated, truncated, info = core.step(action)
            if weights is not None:
                reward = preference_reward(reward_vector(info, version), weights, core.params.reward_scale_usd,
                                           preference.get("objective_scales_usd"))
            t_buf[k, :, : core.n_tiers] = _target_from_multiplier(info["quota_multiplier"], layout)
            t_buf[k, :, core.n_tiers:] = np.asarray(action)[:, core.n_tiers:]  # the burst action, as is
            r_buf[k] = reward
            start = terminated | truncated
            if start.any():
                obs = core.reset(mask=start)
        half = core.params.episode_steps
        episode_returns.append(r_buf[:half].sum(axis=0).mean())
        obs_all.append(o_buf[:half])
        tgt_all.append(t_buf[:half])
        rew_all.append(r_buf)
    # VecNormalize's reward scale: the variance of the running discounted return
    running = [np.zeros(r.shape[1]) for r in rew_all]
    samples = []
    for r, acc in zip(rew_all, running):
        for k in range(r.shape[0]):
            acc = acc * gamma + r[k]
            samples.append(acc.copy())
    ret_var = float(np.var(np.concatenate(samples)))
    scale = np.sqrt(ret_var + 1e-8)
    values = []
    for r in rew_all:
        rn = np.clip(r / scale, -10.0, 10.0)
        v = np.zeros_like(rn)
        acc = np.zeros(rn.shape[1])
        for k in range(rn.shape[0] - 1, -1, -1):
            acc = rn[k] + gamma * acc
            v[k] = acc
        values.append(v[: r.shape[0] // 2])
    return Demonstrations(
        obs=np.concatenate([o.reshape(-1, o.shape[-1]) for o in obs_all]),
        target=np.concatenate([t.reshape(-1, t.shape[-1]) for t in tgt_all]),
        value=np.concatenate([v.reshape(-1) for v in values]).astype(np.float32),
        ret_var=ret_var,
        rule_return=float(np.mean(episode_returns)),
    )


def actor_parameters(policy) -> list:
    """The parameters that define the action distribution (frozen while the critic warms up)."""
    return [p for name, p in policy.named_parameters()
            if name == "log_std" or name.startswith(("action_net", "mlp_extractor.policy_net", "pi_features"))]


def set_actor_trainable(policy, trainable: bool) -> None:
    for p in actor_parameters(policy):
        p.requires_grad_(trainable)


def clone(model, demos: Demonstrations, epochs: int, batch_size: int = 4096, lr: float = 1e-3,
          seed: int = 0, actor: bool = True, twin: bool = False) -> dict[str, float]:
    """Fit the PPO model's observation normalisation, actor mean and critic to the demonstrations.

    ``actor=False`` (a residual run, :mod:`agents.ppo.residual`): the actor's output layer is set to
    zero, so its mean correction is exactly 0 (the policy *is* the rule), and only the critic is fitted.
    ``twin=True`` (rewards relative to a rule twin, :mod:`agents.ppo.twin`): the rule's relative return is
    0, so the critic is fitted to 0 and the return normalisation is left to learn from PPO's rollouts.
    """
    import torch

    vecnorm = model.get_env()
    mean = demos.obs.mean(axis=0).astype(np.float64)
    var = demos.obs.var(axis=0).astype(np.float64)
    vecnorm.obs_rms.mean, vecnorm.obs_rms.var, vecnorm.obs_rms.count = mean, var, float(len(demos.obs))
    if not twin:
        vecnorm.ret_rms.var = np.asarray(demos.ret_var, np.float64)
        vecnorm.ret_rms.count = float(len(demos.obs))
    x = torch.as_tensor(vecnorm.normalize_obs(demos.obs), dtype=torch.float32)
    y = torch.as_tensor(demos.target)
    v = torch.zeros(len(demos.value)) if twin else torch.as_tensor(demos.value)
    policy = model.policy
    policy.set_training_mode(True)
    if not actor:
        with torch.no_grad():
            policy.action_net.weight.zero_()
            policy.action_net.bias.zero_()
    frozen = {id(p) for p in actor_parameters(policy)} if not actor else set()
    params = [p for name, p in policy.named_parameters() if name != "log_std" and id(p) not in frozen]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    actor_loss = critic_loss = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i: i + batch_size]
            features = policy.extract_features(x[idx])
            latent_pi, latent_vf = policy.mlp_extractor(features)
            mean_action = policy.action_net(latent_pi)
            value = policy.value_net(latent_vf).squeeze(-1)
            a_loss = torch.mean((mean_action - y[idx]) ** 2)
            c_loss = torch.mean((value - v[idx]) ** 2)
            loss = (a_loss if actor else 0.0) + 0.5 * c_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            actor_loss, critic_loss = float(a_loss.detach()), float(c_loss.detach())
    policy.set_training_mode(False)
    return {"actor_mse": actor_loss if actor else 0.0, "critic_mse": critic_loss, "samples": int(n),
            "rule_return": demos.rule_return}
