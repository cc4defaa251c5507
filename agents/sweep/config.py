"""The sweep file of :mod:`agents.sweep`: schema and validation (no Ray needed).

A sweep file is YAML::

    name: front                       # Tune experiment name
    output: runs/sweeps/front         # sweep folder: runs/<trial>, tune/, hyperparams/, front.csv, front.png
    base:                             # train.py arguments shared by every trial (TrainArgs fields)
      scenario: [default, peak-contention]
      timesteps: 1000000
      hyperparams: agents/ppo/hyperparams/ppo.yaml
    search_space:                     # per key one of choice / grid / uniform / loguniform
      seed: {grid: [0, 1]}
      churn_weight: {loguniform: [0.1, 10.0]}
      hp.learning_rate: {choice: [1.0e-4, 3.0e-4]}   # hp.<name>: PPO hyperparameter
    num_samples: 4                    # samples of the space (grid keys multiply it)
    searcher: random                  # or optuna
    scheduler: {type: asha, grace_period: 200000, reduction_factor: 2}   # or none
    metric: score                     # validation score of eval_history.jsonl, maximised
    resources_per_trial: {cpu: 1}
    max_concurrent: 2
    front: {seeds: 3}                 # evaluation of each trial's best checkpoint and the baselines

:func:`load_sweep` raises :class:`SweepConfigError` with a one-line message naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.ppo.config import PPOHyperparams


class SweepConfigError(ValueError):
    """A bad sweep file; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PositiveInt = Annotated[int, Field(ge=1)]


class BaseArgs(_Strict):
    """The train.py arguments a sweep sets for every trial (run name, output and resume are the sweep's)."""

    scenario: list[str] = Field(default_factory=lambda: ["default", "peak-contention", "agentic-surge"], min_length=1)
    timesteps: PositiveInt | None = None
    seed: Annotated[int, Field(ge=0)] = 0
    n_envs: PositiveInt | None = None
    hyperparams: str | None = None
    margin_weight: float | None = None
    latency_weight: float | None = None
    churn_weight: float | None = None
    checkpoint_every: PositiveInt = 500_000
    eval_every: PositiveInt = 500_000
    eval_seeds: PositiveInt = 5
    val_seeds: PositiveInt = 8
    threads: PositiveInt = 1


TRIAL_KEYS = tuple(k for k in BaseArgs.model_fields if k not in ("hyperparams", "threads"))
"""search_space keys that are train.py arguments; ``hp.<name>`` keys are PPO hyperparameters."""


class Domain(_Strict):
    """Exactly one of the four ways to draw a value."""

    choice: list[Any] | None = Field(default=None, min_length=1)
    grid: list[Any] | None = Field(default=None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Domain:
        given = [k for k in ("choice", "grid", "uniform", "loguniform") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of choice, grid, uniform, loguniform")
        for k in ("uniform", "loguniform"):
            bounds = getattr(self, k)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"{k}: [lo, hi] needs lo < hi")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform: bounds must be > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("choice", "grid", "uniform", "loguniform") if getattr(self, k) is not None)


class Scheduler(_Strict):
    type: Literal["none", "asha"] = "none"
    grace_period: PositiveInt | None = None
    """ASHA: timesteps a trial runs before it can be stopped (default: base eval_every)."""
    reduction_factor: Annotated[float, Field(gt=1.0)] = 2.0
    brackets: PositiveInt = 1


class Resources(_Strict):
    cpu: Annotated[float, Field(gt=0.0)] = 1.0


class Front(_Strict):
    seeds: PositiveInt = 3
    """Evaluation seeds per scenario for each trial's best checkpoint and the tuned baselines."""
    scenarios: list[str] | None = None
    """Default: the base training scenarios."""


class SweepConfig(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    output: str
    base: BaseArgs = Field(default_factory=BaseArgs)
    search_space: dict[str, Domain] = Field(default_factory=dict)
    num_samples: PositiveInt = 1
    searcher: Literal["random", "optuna"] = "random"
    scheduler: Scheduler = Field(default_factory=Scheduler)
    metric: Literal["score"] = "score"
    mode: Literal["max"] = "max"
    resources_per_trial: Resources = Field(default_factory=Resources)
    max_concurrent: PositiveInt | None = None
    front: Front = Field(default_factory=Front)

    @model_validator(mode="after")
    def _keys(self) -> SweepConfig:
        for key, dom in self.search_space.items():
            if key.startswith("hp."):
                if key[3:] not in PPOHyperparams.model_fields:
                    raise ValueError(f"search_space key {key!r}: unknown hyperparameter "
                                     f"(allowed: hp.{', hp.'.join(PPOHyperparams.model_fields)})")
            elif key not in TRIAL_KEYS:
                raise ValueError(f"search_space key {key!r}: not a train.py argument "
                                 f"(allowed: {', '.join(TRIAL_KEYS)} or hp.<hyperparameter>)")
            if self.searcher == "optuna" and dom.kind == "grid":
                raise ValueError(f"search_space key {key!r}: grid is not supported by the optuna searcher "
                                 "(use choice)")
        return self


def _resolve(path: str, config_dir: Path) -> str:
    """A relative path: against the working folder if it exists there, else against the sweep file's folder."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p.resolve())
    q = config_dir / p
    return str(q.resolve()) if q.exists() else path


def load_sweep(path: str | Path, output: str | None = None) -> SweepConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SweepConfigError(f"sweep file {str(path)!r}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SweepConfigError(f"sweep file {str(path)!r}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise SweepConfigError(f"sweep file {str(path)!r}: must be a mapping with name, output, base, search_space")
    if output is not None:
        raw["output"] = output
    try:
        cfg = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        raise SweepConfigError(f"sweep file {path.name!r}: {loc or 'top level'}: {msg}".replace("\n", " ")) from None
    config_dir = path.resolve().parent
    cfg.output = str(Path(cfg.output).expanduser().resolve())
    if cfg.base.hyperparams is not None:
        cfg.base.hyperparams = _resolve(cfg.base.hyperparams, config_dir)
    cfg.base.scenario = [_resolve(s, config_dir) if s.endswith((".yaml", ".yml")) else s for s in cfg.base.scenario]
    return cfg
