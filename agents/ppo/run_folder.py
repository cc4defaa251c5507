"""A training run's folder: ``run.json`` (config, seed, versions, commit, status), checkpoints and their pointers.

:func:`new_run` validates everything before it creates anything, and creates the folder
atomically (built as ``.<name>.tmp-PID`` beside it, then renamed): a kill leaves either no
run folder or one ``--resume`` accepts. Custom scenarios are copied into the run folder
(``scenarios/<name>.yaml``, resolved, with a trace's path and sha256), so a run resumes from
any working directory. :func:`resume_run` reopens a run and checks everything it will use
before it changes anything. :mod:`agents.ppo.run_steps` saves and restores checkpoints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from agents.common.files import fsync_dir, kill_point, remove_stale_temporaries, sha256, write_json_atomic
from agents.common.provenance import git_commit, git_dirty, versions
from agents.ppo.checkpoint import CheckpointError, check_compatible
from agents.ppo.config import ConfigError, TrainArgs, load_hyperparams, parse_hp, validate_hyperparams
from agents.ppo.parameterisation import ActionLayout
from agents.ppo.run_policy import RUN_FILE, RUN_FORMAT, read_run

RUN_FORMAT_VERSION = 1
KEEP_CHECKPOINTS = 2


def _reward_overrides(args: TrainArgs) -> dict[str, Any]:
    weights = {k: getattr(args, k) for k in ("margin_weight", "latency_weight", "churn_weight")}
    weights = {k: v for k, v in weights.items() if v is not None}
    return {"reward": weights} if weights else {}


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
#: Flags ``--resume`` accepts; every other one would change the run and is refused.
RESUME_FLAGS = {"resume", "timesteps", "output", "progress", "final_eval", "eval_seeds", "threads", "all_plots"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "scenario"


def resolve_scenarios(specs: list[str], overrides: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, Scenario or None for shipped) per ``--scenario``; raises ScenarioError (one line) for a bad one."""
    import envs

    out, seen = [], set()
    for spec in specs:
        sc = envs.load_scenario(spec, overrides)
        name = spec if spec in envs.available_scenarios() else _slug(sc.name)
        if name in seen:
            raise ConfigError(f"--scenario {spec!r}: a second scenario named {name!r} in the mix")
        seen.add(name)
        out.append((name, None if spec in envs.available_scenarios() else sc))
    return out


def scenario_specs(run_dir: Path, run: dict[str, Any]) -> list[str]:
    """What to load for each of a run's scenarios: a shipped name, or the copy in the run folder."""
    files = run.get("scenario_files") or {}
    return [str(Path(run_dir).resolve() / files[name]) if name in files else name for name in run["scenarios"]]


def _scenario_copy(sc) -> tuple[str, dict[str, Any] | None]:
    data = sc.model_dump(mode="json")
    trace = None
    tr = (data.get("demand") or {}).get("trace")
    if isinstance(tr, dict) and tr.get("path"):
        path = Path(tr["path"])
        trace = {"path": str(path), "sha256": sha256(path) if path.is_file() else None}
    return yaml.safe_dump(data, sort_keys=False), trace


def default_run_name(names: list[str], seed: int) -> str:
    mix = "+".join(names) if len(names) <= 2 else f"{names[0]}+{len(names) - 1}more"
    return f"ppo-{mix}-{dt.datetime.now():%Y%m%d-%H%M%S}-s{seed}"


def _residual(hp, version: int, core) -> dict[str, Any] | None:
    """A residual run's base rule with its tuned parameters (recorded in run.json: the run stands alone)."""
    if hp.action_parameterisation != "residual":
        return None
    from agents.common.policy import PolicyError
    from agents.ppo.residual import ResidualSpec
    from agents.rules import RuleContext, tuned_file_for

    try:
        if hp.residual_family is not None:
            spec = ResidualSpec.from_family(hp.residual_rule, hp.residual_family, hp.residual_log_range)
        else:
            spec = ResidualSpec.from_tuned(hp.residual_rule, hp.residual_tuned_file or tuned_file_for(version),
                                           hp.residual_log_range)
        spec.bind(RuleContext(core))
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None
    return spec.to_dict()


def _preference(args: TrainArgs, hp, version: int, specs: list, overrides, residual) -> dict[str, Any] | None:
    """A ``--preference`` run's record, with its objectives' scales measured on its base rule (the residual's,
    else the best tuned rule) over its scenarios."""
    if not args.preference:
        return None
    from agents.common.policy import PolicyError
    from agents.ppo.residual import ResidualSpec
    from agents.rules import tuned_file_for
    from agents.tradeoffs.preference import measure_objective_scales, preference_config

    try:
        base = residual or ResidualSpec.from_tuned("best", hp.residual_tuned_file or tuned_file_for(version),
                                                   1.0).to_dict()
    except PolicyError as exc:  # as _residual: one line
        raise ConfigError(str(exc)) from None
    scales = measure_objective_scales(specs, version, overrides, base["rule"], base["params"])
    if base.get("family"):  # judged between the family's weightings, where the base is a blend
        from agents.tradeoffs.family import selection_weights

        return preference_config(args.preference_alpha, scales,
                                 selection_weights([m["weights"] for m in base["family"]]))
    return preference_config(args.preference_alpha, scales)


def _check_preference(args: TrainArgs) -> None:
    """Refuse (one line) what a preference-conditioned run cannot combine with (the twin: in ``new_run``)."""
    if not args.preference:
        return
    if args.constraint:
        raise ConfigError("--preference with --constraint: the multipliers shape the scalar reward the weights "
                          "replace; train one or the other")
    given = [k for k in ("margin_weight", "latency_weight", "churn_weight") if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"--preference with --{given[0].replace('_', '-')}: the weights are drawn per episode "
                          "(evaluate at a weighting with PATH@margin=..,latency=..,churn=..)")


def new_run(args: TrainArgs, notes: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """Validate everything, then create the run folder and its run.json (atomically)."""
    import envs
    from agents.rules import RULES

    if args.env_version not in envs.ENV_IDS:
        raise ConfigError(f"--env-version = {args.env_version}: must be one of {sorted(envs.ENV_IDS)}")
    v = args.env_version
    overrides = _reward_overrides(args)
    resolved = resolve_scenarios(args.scenario, overrides)
    names = [n for n, _ in resolved]
    hp = load_hyperparams(args.hyperparams, names, {"timesteps": args.timesteps, "n_envs": args.n_envs},
                          parse_hp(args.hp), notes)
    if hp.warm_start not in ("none", "best", *RULES):
        raise ConfigError(f"hyperparameter warm_start = {hp.warm_start!r}: must be none, best or a rule "
                          f"({', '.join(RULES)})")
    if hp.n_envs < len(names):
        raise ConfigError(f"n_envs = {hp.n_envs}: must be >= the number of scenarios ({len(names)})")
    specs = [sc if sc is not None else n for n, sc in resolved]
    try:
        core = envs.RationingCore(specs[0], 1, overrides=overrides, version=v)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    layout = ActionLayout.from_params(core.params)
    from agents.tradeoffs.constraints import ConstraintError, parse_constraints

    try:
        constraints = parse_constraints(args.constraint, core.tier_names)
    except ConstraintError as exc:
        raise ConfigError(str(exc)) from None
    if constraints and hp.twin_baseline:  # a preference run weights its twin's reward like its own row's
        if parse_hp(args.hp).get("twin_baseline"):  # asked for explicitly: refuse
            raise ConfigError("--constraint with twin_baseline = true: the twin's reward is the plain scalar one, "
                              "not the shaped reward; drop --hp twin_baseline=true")
        hp = hp.model_copy(update={"twin_baseline": False})  # the file's default: switch it off and say so
        if notes is not None:
            notes.append("note: --constraint: twin_baseline off (the rule twin's reward is the plain scalar one)")
    _check_preference(args)
    if hp.residual_family is not None and not args.preference:
        raise ConfigError("residual_family needs --preference (the family's base depends on the weights, which "
                          "only a preference-conditioned run draws)")
    for n, s in zip(names[1:], specs[1:]):
        other = envs.RationingCore(s, 1, overrides=overrides, version=v)
        if ActionLayout.from_params(other.params) != layout or other.obs_names != core.obs_names:
            raise ConfigError(f"scenario {n!r}: its tiers, providers or action section differ from "
                              f"{names[0]!r}; a training mix needs one layout")
    residual = _residual(hp, v, core)
    preference = _preference(args, hp, v, specs, overrides, residual)
    name = args.run_name or default_run_name(names, args.seed)
    if not _NAME.match(name):
        raise ConfigError(f"--run-name {name!r}: must be a plain folder name (letters, digits, . _ + -; "
                          "no '/' or '..')")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {str(output)!r} is not a folder")
    run_dir = output / name
    if run_dir.exists() or run_dir.is_symlink():
        raise ConfigError(f"run folder {str(run_dir)!r} already exists: use --resume {run_dir} or another --run-name")
    run = {
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "run_name": name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "config": dataclasses.asdict(args),
        "hyperparams": hp.model_dump(),
        "hp_overrides": parse_hp(args.hp),
        "scenarios": names,
        "scenario_files": {},
        "scenario_sources": {},
        "reward_overrides": overrides,
        "seed": args.seed,
        "env_id": envs.ENV_IDS[v],
        "env_version": v,
        "obs_names": core.obs_names,
        "tier_names": core.tier_names,
        "action_layout": layout.to_dict(),
        **({"residual": residual} if residual else {}),
        "constraints": [c.to_dict() for c in constraints],
        "lagrange": {"lr": args.lagrange_lr, "normalise": True} if constraints else None,
        "preference": preference,
        "versions": versions(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "status": "created",
        "timesteps_done": 0,
    }
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--output {str(output)!r}: cannot create ({exc.strerror})") from None
    remove_stale_temporaries(output)
    tmp = output / f".{name}.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        for (n, sc), spec in zip(resolved, args.scenario):
            if sc is None:
                continue
            text, trace = _scenario_copy(sc)
            (tmp / "scenarios").mkdir(exist_ok=True)
            (tmp / "scenarios" / f"{n}.yaml").write_text(text)
            run["scenario_files"][n] = f"scenarios/{n}.yaml"
            run["scenario_sources"][n] = {"from": str(Path(spec).resolve()),
                                          "sha256": sha256(tmp / "scenarios" / f"{n}.yaml"), "trace": trace}
        write_json_atomic(tmp / RUN_FILE, run)
        kill_point("run_folder")
        os.rename(tmp, run_dir)
        fsync_dir(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir, run


def check_run(run: dict[str, Any], where: str) -> None:
    """Refuse a run.json whose fields this code cannot use (one line naming the field)."""
    def need(key: str, ok: bool, what: str) -> None:
        if not ok:
            raise ConfigError(f"{where}: run.json field {key} = {run.get(key)!r}: {what}")

    need("scenarios", isinstance(run.get("scenarios"), list) and bool(run["scenarios"])
         and all(isinstance(s, str) for s in run["scenarios"]), "must be a non-empty list of scenario names")
    need("scenario_files", isinstance(run.get("scenario_files", {}), dict), "must map names to files")
    need("seed", isinstance(run.get("seed"), int) and not isinstance(run["seed"], bool) and run["seed"] >= 0,
         "must be an integer >= 0")
    need("hyperparams", isinstance(run.get("hyperparams"), dict), "must be a mapping")
    need("config", isinstance(run.get("config"), dict), "must be a mapping")
    need("action_layout", isinstance(run.get("action_layout"), dict), "must be a mapping")
    need("run_name", isinstance(run.get("run_name"), str), "must be a string")
    need("reward_overrides", isinstance(run.get("reward_overrides") or {}, dict), "must be a mapping")
    validate_hyperparams(run["hyperparams"], source=f"{where}/run.json")
    from agents.tradeoffs.preference import PreferenceError, preference_inputs

    try:
        preference_inputs(run)
    except PreferenceError as exc:
        raise ConfigError(f"{where}: run.json field {exc}") from None
    try:
        ActionLayout.from_dict(run["action_layout"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}: run.json field action_layout is not a valid action layout") from None
    fields = {f.name for f in dataclasses.fields(TrainArgs)}
    unknown = sorted(set(run["config"]) - fields)
    if unknown:
        raise ConfigError(f"{where}: run.json config has unknown option {unknown[0]!r}")


def resume_run(args: TrainArgs, explicit: set[str] | None = None,
               notes: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """Find the run folder named by --resume and check it, changing nothing; returns the run to continue."""
    import envs

    refused = sorted((explicit or set()) - RESUME_FLAGS)
    if refused:
        flag = "--" + refused[0].replace("_", "-")
        raise ConfigError(f"--resume: {flag} would change the run (a resumed run keeps its settings; only "
                          "--timesteps N extends it to N total steps); start a new run instead")
    run_dir = Path(args.resume)
    if not (run_dir / RUN_FILE).exists() and (Path(args.output) / args.resume / RUN_FILE).exists():
        run_dir = Path(args.output) / args.resume
    where = f"--resume {args.resume}"
    try:
        run = read_run(run_dir)
    except CheckpointError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    check_run(run, where)
    specs = scenario_specs(run_dir, run)
    for name, spec in zip(run["scenarios"], specs):
        if name in (run.get("scenario_files") or {}) and not Path(spec).is_file():
            raise ConfigError(f"{where}: scenario copy {run['scenario_files'][name]!r} is missing from the run folder")
    v = run_env_version(run)
    core = envs.RationingCore(specs[0], 1, overrides=run.get("reward_overrides") or None, version=v)
    check_compatible(run, envs.ENV_IDS[v], v, core.obs_names, where=f"run {str(run_dir)!r}")
    for name in ("latest", "best", "final"):
        from agents.ppo.checkpoint import pointer

        pointer(run_dir, name)  # a corrupt or escaping pointer is refused now, before anything changes
    done = int(run.get("timesteps_done") or 0)
    if "timesteps" in (explicit or set()) and args.timesteps is not None:
        if args.timesteps < done:
            raise ConfigError(f"--timesteps {args.timesteps:,}: the run already has {done:,} timesteps "
                              "(--resume --timesteps N extends a run to N total steps)")
        if args.timesteps != run["hyperparams"]["timesteps"]:
            if notes is not None:
                notes.append(f"extending run {run['run_name']} from {run['hyperparams']['timesteps']:,} to "
                             f"{args.timesteps:,} total timesteps")
            run["hyperparams"] = {**run["hyperparams"], "timesteps": args.timesteps}
            run["extended"] = run.get("extended", []) + [args.timesteps]
    run["resumed"] = run.get("resumed", []) + [dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")]
    return run_dir, run


def run_env_version(run: dict[str, Any]) -> int:
    """The env version a run trains on (runs before Rationing-v1 record 0); one-line error if unknown."""
    import envs

    v = run.get("env_version", 0)
    if v not in envs.ENV_IDS:
        raise ConfigError(f"run {run.get('run_name')!r}: made for env version {v!r}, this code has versions "
                          f"{sorted(envs.ENV_IDS)}; start a new run (or use the matching release)")
    return int(v)
