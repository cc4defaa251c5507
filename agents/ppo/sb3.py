"""stable-baselines3 interop: a run's checkpoint as an SB3 ``PPO`` model with its ``VecNormalize``.

    from agents.ppo import to_sb3
    model, venv = to_sb3("checkpoints/ppo-v0")          # best checkpoint; or a checkpoint folder
    obs = venv.reset()
    action, _ = model.predict(obs, deterministic=True)   # obs already normalised by venv
    obs, reward, done, info = venv.step(action)

``venv`` is the environment training used (``RationingVecEnv`` on the run's scenarios, the
target-quota wrapper when the run uses it, ``VecMonitor``, ``VecNormalize`` with the checkpoint's
statistics, frozen: ``training=False``). ``save_sb3_zip(run, out_dir)`` writes ``model.zip`` and
``vecnormalize.pkl`` for rl_zoo3-style tools. Those two files are **pickles**: load them only from
hands you trust. The run's own formats (safetensors, ``.npz`` without pickle, JSON) and exported
policy folders are the ones safe to load from strangers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.ppo.checkpoint import load_checkpoint, restore_normalization
from agents.ppo.config import PPOHyperparams, train_row_seed
from agents.ppo.parameterisation import ActionLayout, TargetQuotaActions
from agents.ppo.run_policy import RUN_FILE, read_run, run_checkpoint


def make_env(specs: list[str], run: dict[str, Any], hp: PPOHyperparams, n_envs: int | None = None,
             twin: bool = True):
    """The training environment of a run: batched env, target-quota or residual wrapper, the rule twin
    (``twin_baseline``; ``twin=False`` leaves it out: plain rewards), the preference weights (a
    ``--preference`` run: appended to the observation, the reward they weight), VecMonitor, VecNormalize."""
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from envs.sb3_vec_env import RationingVecEnv

    def batched():
        return RationingVecEnv(n_envs or hp.n_envs, scenario=specs, seed=train_row_seed(run["seed"]),
                               randomize=hp.randomize, overrides=run.get("reward_overrides") or None,
                               stagger=hp.stagger, version=int(run.get("env_version", 0)))

    vec = batched()
    if run.get("constraints"):  # PPO-Lagrangian (agents/tradeoffs/lagrangian.py)
        from agents.tradeoffs.lagrangian import wrap

        vec = wrap(vec, run, hp.n_steps)
    if hp.action_parameterisation == "target":
        vec = TargetQuotaActions(vec, ActionLayout.from_dict(run["action_layout"]))
    elif hp.action_parameterisation == "residual":
        from agents.ppo.residual import ResidualActions, ResidualSpec

        vec = ResidualActions(vec, ResidualSpec.from_dict(run["residual"]))
        if hp.twin_baseline and twin:
            from agents.ppo.twin import RuleTwinBaseline

            vec = RuleTwinBaseline(vec, batched(), vec.env_actions)
    if run.get("preference"):  # per-episode weights in the observation (agents/tradeoffs/preference.py)
        from agents.tradeoffs.preference import wrap as with_preferences

        vec = with_preferences(vec, run, seed=train_row_seed(run["seed"]) + 7)
    return VecNormalize(VecMonitor(vec), norm_obs=hp.norm_obs, norm_reward=hp.norm_reward, clip_obs=hp.clip_obs,
                        gamma=hp.gamma)


def make_model(env, hp: PPOHyperparams, seed: int):
    import torch.nn as nn
    from stable_baselines3 import PPO

    return PPO(
        "MlpPolicy", env, n_steps=hp.n_steps, batch_size=hp.batch_size, n_epochs=hp.n_epochs,
        learning_rate=(lambda progress: hp.learning_rate * progress) if hp.lr_schedule == "linear"
        else hp.learning_rate, gamma=hp.gamma, gae_lambda=hp.gae_lambda, clip_range=hp.clip_range,
        ent_coef=hp.ent_coef, vf_coef=hp.vf_coef, max_grad_norm=hp.max_grad_norm,
        use_sde=hp.use_sde, sde_sample_freq=hp.sde_sample_freq,
        policy_kwargs={"net_arch": list(hp.net_arch), "log_std_init": hp.log_std_init,
                       "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[hp.activation]},
        seed=seed, device="cpu", verbose=0,
    )


def to_sb3(path: str | Path, n_envs: int = 1, which: tuple[str, ...] = ("best", "final", "latest")):
    """``(PPO, VecNormalize)`` of a run folder's checkpoint (first of ``which``) or of a checkpoint folder."""
    from agents.ppo.run_folder import scenario_specs

    p = Path(path)
    if (p / RUN_FILE).is_file():
        run, folder = read_run(p), run_checkpoint(p, which)
        specs = scenario_specs(p, run)
    else:
        folder, run = p, None
    ckpt = load_checkpoint(folder, with_optimizer=False)
    m = ckpt.manifest
    run = run or {"seed": m.get("seed", 0), "action_layout": m.get("action_layout"), "reward_overrides": None,
                  "residual": m.get("residual"), "preference": m.get("preference")}
    specs = specs if (p / RUN_FILE).is_file() else list(m.get("scenarios") or ["default"])
    n = max(n_envs, len(specs))
    hp = PPOHyperparams.model_validate({**m["hyperparams"], "n_envs": n, "batch_size": n * m["hyperparams"]["n_steps"]})
    venv = make_env(specs, run, hp, twin=False)
    model = make_model(venv, hp, int(run.get("seed") or 0))
    model.policy.load_state_dict(ckpt.policy_state)
    restore_normalization(venv, ckpt.normalization)
    venv.training, venv.norm_reward = False, False
    model.num_timesteps = ckpt.timesteps
    return model, venv


def save_sb3_zip(path: str | Path, out: str | Path) -> Path:
    """Write ``model.zip`` and ``vecnormalize.pkl`` (SB3's own formats: pickles, trusted hands only)."""
    model, venv = to_sb3(path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.zip")
    venv.save(str(out / "vecnormalize.pkl"))
    return out
