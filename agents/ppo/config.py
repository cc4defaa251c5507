"""Training configuration: the CLI dataclass and the PPO hyperparameter file.

Hyperparameters live in ``agents/ppo/hyperparams/ppo.yaml`` keyed by scenario with a
``default`` entry; :func:`load_hyperparams` validates them (unknown keys, wrong
types, out-of-range values, a minibatch that does not divide the rollout) and
raises :class:`ConfigError` with a one-line message naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HYPERPARAMS_FILE = Path(__file__).resolve().parent / "hyperparams" / "ppo.yaml"
DEFAULT_TRAIN_SCENARIOS = ["default", "peak-contention", "agentic-surge"]


class ConfigError(ValueError):
    """A bad argument, hyperparameter file or run folder; the message is one line."""


class PPOHyperparams(BaseModel):
    """PPO settings (stable-baselines3 names) plus environment and normalisation settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    n_envs: Annotated[int, Field(ge=1, le=65536)] = 256
    n_steps: Annotated[int, Field(ge=2, le=1_000_000)] = 64
    batch_size: Annotated[int, Field(ge=2, le=10**9)] = 4096
    n_epochs: Annotated[int, Field(ge=1, le=100)] = 4
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 3e-4
    lr_schedule: Literal["constant", "linear"] = "constant"
    action_parameterisation: Literal["target", "relative", "residual"] = "target"
    """``target``: the network picks target quotas (agents/ppo/parameterisation.py); ``relative``: raw env
    actions; ``residual``: the network corrects a tuned rule's targets (agents/ppo/residual.py)."""
    residual_rule: str = "best"
    """With ``residual``: the rule corrected (``best`` = the best tuned rule), with its tuned parameters."""
    residual_tuned_file: str | None = None
    """With ``residual``: the tuned-rules file the rule and its parameters come from (default: the shipped one
    of the env version); e.g. rules tuned under a run's constraints (``agents.tune --constraint --out``)."""
    residual_family: list[str] | None = None
    """With ``residual`` and ``--preference``: tuned files of the rule at several weightings (``agents.tune
    --weights ... --out FILE``, the simplex's corners among them); the base is their blend at each row's
    weights (agents/tradeoffs/family.py). Replaces ``residual_tuned_file``."""
    residual_log_range: Annotated[float, Field(gt=0.0, le=5.0)] = 1.0
    """With ``residual``: a correction of +-1 multiplies the rule's target by exp(+-residual_log_range)."""
    twin_baseline: bool = False
    """With ``residual``: train on reward minus a rule twin's reward in the same world (agents/ppo/twin.py)."""
    warm_start: str = "none"
    """Behaviour-clone this rule before PPO (``best`` = the best tuned baseline, a rule name, or ``none``)."""
    warm_start_envs: Annotated[int, Field(ge=1, le=4096)] = 64
    """Rule rollouts per training scenario for the warm start (two episodes each)."""
    warm_start_epochs: Annotated[int, Field(ge=1, le=1000)] = 30
    warm_start_critic_steps: Annotated[int, Field(ge=0, le=10**13)] = 0
    """After a warm start, train only the critic (actor frozen) for this many timesteps."""
    """``linear`` decays the learning rate to 0 over the run."""
    gamma: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    gae_lambda: Annotated[float, Field(ge=0.0, le=1.0)] = 0.95
    clip_range: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    ent_coef: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    vf_coef: Annotated[float, Field(ge=0.0, le=10.0)] = 0.5
    max_grad_norm: Annotated[float, Field(gt=0.0, le=1e6)] = 0.5
    log_std_init: Annotated[float, Field(ge=-5.0, le=2.0)] = -1.0
    use_sde: bool = False
    """generalised state-dependent exploration (SB3 gSDE): noise = latent features x a sampled matrix."""
    sde_sample_freq: Annotated[int, Field(ge=-1, le=10**6)] = -1
    """With ``use_sde``: resample the noise matrix every this many steps (-1: once per rollout)."""
    net_arch: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=1, max_length=8)] = [64, 64]
    activation: Literal["tanh", "relu"] = "tanh"
    norm_obs: bool = True
    norm_reward: bool = True
    clip_obs: Annotated[float, Field(gt=0.0, le=1e6)] = 10.0
    timesteps: Annotated[int, Field(ge=1, le=10**13)] = 4_000_000
    randomize: bool = True
    stagger: bool = True
    """Spread the batch's rows over the week at the start (see RationingVecEnv), not in lockstep."""

    def check_batch(self) -> None:
        rollout = self.n_envs * self.n_steps
        if rollout % self.batch_size != 0:
            raise ConfigError(
                f"batch_size = {self.batch_size} does not divide the rollout n_envs x n_steps = "
                f"{self.n_envs} x {self.n_steps} = {rollout}: pick a divisor of {rollout}"
            )


def parse_hp(items: list[str] | None) -> dict[str, Any]:
    """``--hp KEY=VALUE`` items as a mapping (VALUE read as YAML: ``0.001``, ``[128, 128]``, ``true``)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or key not in PPOHyperparams.model_fields:
            allowed = ", ".join(PPOHyperparams.model_fields)
            raise ConfigError(f"--hp {item!r}: must be KEY=VALUE with KEY one of {allowed}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--hp {item!r}: value {text!r} is not a YAML scalar or list") from None
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 as text
            try:
                value = float(value)
            except ValueError:
                pass
        out[key] = value
    return out


def _read_hyperparam_file(path: Path) -> dict[str, Any]:
    from agents.common.files import FileRefused, read_text_checked

    try:
        raw = yaml.safe_load(read_text_checked(path))
    except FileRefused as exc:
        raise ConfigError(f"hyperparameter file {str(path)!r}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"hyperparameter file {str(path)!r}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError:
        raise ConfigError(f"hyperparameter file {str(path)!r}: not valid YAML") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("default", {}), dict):
        raise ConfigError(f"hyperparameter file {str(path)!r}: must map scenario names to settings, with 'default'")
    return raw


def validate_hyperparams(merged: dict[str, Any], source: str = "run.json") -> PPOHyperparams:
    """Validated hyperparameters; :class:`ConfigError` naming the field, the value and what is allowed."""
    try:
        hp = PPOHyperparams.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(PPOHyperparams.model_fields)
            raise ConfigError(f"hyperparameters ({source}): unknown field {name!r} (allowed: {allowed})") from None
        value = merged.get(str(err["loc"][0]), None)
        msg = str(err["msg"])
        raise ConfigError(f"hyperparameter {name} = {value!r} ({source}): {msg[0].lower() + msg[1:]}") from None
    hp.check_batch()
    if hp.warm_start != "none" and hp.action_parameterisation == "relative":
        raise ConfigError(f"warm_start = {hp.warm_start!r} needs action_parameterisation: target or residual")
    if hp.twin_baseline and hp.action_parameterisation != "residual":
        raise ConfigError("twin_baseline = true needs action_parameterisation: residual (the twin follows its "
                          "rule); with another parameterisation set twin_baseline=false")
    if hp.residual_family is not None and hp.action_parameterisation != "residual":
        raise ConfigError("residual_family needs action_parameterisation: residual (the family is the base the "
                          "network corrects)")
    if hp.residual_family is not None and hp.residual_tuned_file is not None:
        raise ConfigError("residual_family with residual_tuned_file: the family's files hold the parameters; "
                          "give one or the other")
    if hp.action_parameterisation == "residual" and hp.warm_start not in ("none", "best", hp.residual_rule):
        raise ConfigError(f"warm_start = {hp.warm_start!r}: a residual run warm-starts from its own rule "
                          f"(residual_rule = {hp.residual_rule!r}); use warm_start: best or none")
    return hp


def load_hyperparams(path: str | Path, scenarios: list[str], overrides: dict[str, Any] | None = None,
                     hp: dict[str, Any] | None = None, notes: list[str] | None = None) -> PPOHyperparams:
    """The ``default`` entry, then the scenario's entry (by scenario *name*) if training on one, then
    ``overrides`` (``--timesteps``, ``--n-envs``), then ``hp`` (``--hp KEY=VALUE``).

    When the rollout size (``n_envs x n_steps``) differs from the file's and ``batch_size`` is not
    given, the minibatch is adapted so the number of minibatches per epoch stays as configured; the
    one-line note saying so is appended to ``notes``.
    """
    path = Path(path)
    raw = _read_hyperparam_file(path)
    merged: dict[str, Any] = dict(raw.get("default") or {})
    if len(scenarios) == 1 and isinstance(raw.get(scenarios[0]), dict):
        merged.update(raw[scenarios[0]])
    base = PPOHyperparams.model_fields
    configured = {k: merged.get(k, base[k].default) for k in ("n_envs", "n_steps", "batch_size")}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    merged.update(hp or {})
    rollout0 = configured["n_envs"] * configured["n_steps"]
    n_envs, n_steps = merged.get("n_envs", configured["n_envs"]), merged.get("n_steps", configured["n_steps"])
    if "batch_size" not in (hp or {}) and all(isinstance(v, int) and v > 0 for v in (n_envs, n_steps)) \
            and isinstance(configured["batch_size"], int) and configured["batch_size"] > 0 \
            and n_envs * n_steps != rollout0 and rollout0 % configured["batch_size"] == 0:
        minibatches = rollout0 // configured["batch_size"]
        rollout = n_envs * n_steps
        batch = max(2, rollout // minibatches)
        while batch > 2 and rollout % batch:
            batch -= 1
        merged["batch_size"] = batch
        if notes is not None:
            notes.append(f"rollout {n_envs} x {n_steps} = {rollout:,} steps: batch_size {configured['batch_size']:,}"
                         f" -> {batch:,} to keep {minibatches} minibatches per epoch ({rollout // batch} now)")
    return validate_hyperparams(merged, source=f"from {path.name!r} or the command line")


TRAIN_SEED_OFFSET = 1 << 40
"""Training env rows get seeds ``TRAIN_SEED_OFFSET + seed x 65536 + row``: never an evaluation seed."""
VALIDATION_SEED_BASE = 500_000
"""Seeds of the evaluation during training (model selection); distinct from the final evaluation seeds."""


def train_row_seed(seed: int) -> int:
    return TRAIN_SEED_OFFSET + int(seed) * 65536


def _opt(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - argparse's word
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainArgs:
    """Arguments of ``train.py``: each field is one option ``--field-name``."""

    scenario: list[str] = _opt(DEFAULT_TRAIN_SCENARIOS, "training scenario, repeatable: a shipped name or a YAML "
                               "path; the batch rows are split between them (default: %(default)s)")
    timesteps: int | None = _opt(None, "total environment steps (default: from the hyperparameter file)")
    seed: int = _opt(0, "training seed; same seed and config give the same numbers")
    n_envs: int | None = _opt(None, "environments stepped as one numpy batch (default: hyperparameter file)")
    hyperparams: str = _opt(str(HYPERPARAMS_FILE), "PPO hyperparameter YAML keyed by scenario with a default")
    margin_weight: float | None = _opt(None, "reward weight of gross margin (default: the scenario's)")
    latency_weight: float | None = _opt(None, "reward weight of latency-target misses (default: the scenario's)")
    churn_weight: float | None = _opt(None, "reward weight of churned lifetime value (default: the scenario's)")
    run_name: str | None = _opt(None, "run folder name (default: ppo-<date>-<time>-s<seed>)")
    env_version: int = _opt(1, "environment version: 1 (Rationing-v1, the current world) or 0 (Rationing-v0)")
    output: str = _opt("checkpoints", "folder that holds run folders")
    resume: str | None = _opt(None, "resume a run from its latest checkpoint: its folder or its name under --output")
    checkpoint_every: int = _opt(500_000, "timesteps between checkpoints (written atomically)")
    eval_every: int = _opt(500_000, "timesteps between evaluations on held-out seeds and scenarios (keeps the best)")
    eval_seeds: int = _opt(20, "seeds per scenario in the final evaluation table (claims need >= 20, paired CIs)")
    val_seeds: int = _opt(16, "validation seeds per scenario for the evaluations during training (model selection)")
    final_eval: bool = _opt(True, "evaluate against the tuned baselines at the end and print the table")
    threads: int = _opt(1, "torch threads (1 is the safe default when processes share cores)")
    progress: bool = _opt(True, "show progress bars (training and the final evaluation)")
    hp: list[str] = _opt([], "override a hyperparameter, KEY=VALUE (VALUE read as YAML), repeatable; recorded in "
                         "run.json")
    all_plots: bool = _opt(False, "final evaluation: also write every per-policy time-series plot (slow)")
    constraint: list[str] = _opt([], "constraint TIER.METRIC>=LIMIT or <=LIMIT, repeatable (e.g. "
                                 "enterprise.latency_attainment>=0.99, free.churn_per_month<=0.05): PPO-Lagrangian, "
                                 "agents/tradeoffs/constraints.py")
    preference: bool = _opt(False, "preference-conditioned training: per-episode Dirichlet weights over margin, "
                            "latency and churn in the observation, the reward they weight (one policy for every "
                            "weighting; agents/tradeoffs/preference.py)")
    preference_alpha: float = _opt(1.0, "with --preference: the Dirichlet concentration of the weights (1: uniform "
                                   "over the simplex)")
    lagrange_lr: float = _opt(0.05, "learning rate of the Lagrange multipliers (per rollout, per unit of relative "
                              "violation)")
