"""Tune the rule baselines' parameters on the training scenarios and seeds.

    python -m agents.tune                          # every rule, the shipped settings
    python -m agents.tune --rule aimd --samples 64 --generations 8
    python -m agents.tune --optimizer coordinate   # the pre-CMA search (random + coordinate sweeps)
    python -m agents.tune --out /tmp/tuned.json --days 1
    python -m agents.tune --bounds                 # which tuned values sit at a bound of the rule's space

Objective: the mean episode return over the training scenarios
(``agents.common.seeds.TRAIN_SCENARIOS``) and ``--seeds`` training seeds each, with the
scenarios' domain randomisation on (``--randomize``, the distribution PPO trains
on). Per rule:

1. **random search**: the defaults (and, for a rule with ``seed_from``, e.g.
   ``fair-share-tod``, that rule's tuned values from ``--out``) and ``--samples``
   random parameter sets drawn from the rule's ``space`` (log-uniform where the range
   is a scale), all stepped as one batch in :class:`envs.RationingCore`
   (rows = sets x seeds);
2. ``--optimizer cma`` (default): **CMA-ES** (the ``cma`` package) started at the
   random-search best with step ``--sigma0``, for ``--generations`` generations of
   ``--popsize`` candidates, in the normalised space of :mod:`agents.rules.search`
   (each coordinate in [0, 1], log scale for scale dims, integers rounded). Each
   generation is ONE batch in the core (rows = candidates x seeds). Then ``--polish``
   fine coordinate sweeps (+-1, +-2 small steps per coordinate) around the result.
   ``--optimizer coordinate``: ``--passes`` coordinate sweeps instead, the first
   trying ``--grid`` values across each range, later ones ever finer steps.
3. **check** on ``--check-seeds`` *other* training seeds: the tuned parameters are
   kept only if they beat the defaults there (else the defaults are kept and the
   file says so). Untuned and tuned returns on both seed sets are recorded, with the
   optimiser, its budget (parameter sets, env steps, seconds) and ``at_bound``: the
   tuned coordinates within 1% of a bound of the space (a hint the range is short).

Why CMA-ES: coordinate search moves one coordinate at a time, so it cannot follow
ridges where parameters trade off (headroom against demand margin, a tier's weight
against the others'), and its budget grows with the number of coordinates times the
grid; it also needs a grid step that fits every dim. CMA-ES adapts a full covariance
to such ridges, and its population is one batch of the vectorised core, so a generation
costs about one step-through of the env whatever its size. Measured (fair-share, 8 search
seeds, equal budget ~550 sets / ~9 M env steps): check return 326.3 vs 310.0 for coordinate
search, and higher on all five scenarios over 20 evaluation seeds. Caveat: for the 82
coordinates of ``fair-share-tod`` the default ``--sigma0`` 0.15 moves every table entry at
once by ~0.45 in log; in that measurement no CMA-ES candidate beat its start and the polish
sweeps found the gain: give that rule a smaller ``--sigma0`` (e.g. 0.03) and more
``--generations``. The search seeds are fixed (common random
numbers), so the objective is deterministic and the best candidate ever seen is kept.

Candidates on the same seed see the same exogenous randomness (common random
numbers), so comparisons between them are sharp. Results go to ``--out``
(default ``agents/rules/tuned/baselines.json``, shipped in the repo); rules tuned
earlier and not named by ``--rule`` are kept. ``best`` names the rule with the
highest tuned check return.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.cli import OneLineParser
from agents.common.policy import PolicyError
from agents.common.provenance import git_commit, git_dirty
from agents.common.seeds import TRAIN_SCENARIOS, SeedError, train_seeds
from agents.rules import RULES, RuleContext, RuleError, flat_coordinates, params_from_dict, params_to_dict, with_value
from agents.rules.search import (
    Evaluator,
    bound_hits,
    cma_search,
    coordinate_search,
    grid,
    repair,
    sample,
    valid,
)
from agents.rules.tuned import TUNED_FILE, TUNED_FORMAT, read_tuned, tuned_file_for

FORMAT_VERSION = 2
CHECK_SEED_START = 5_000
"""Check seeds start here in the training range; search seeds start at 0."""


@dataclass(frozen=True)
class TuneSettings:
    scenarios: tuple[str, ...] = TRAIN_SCENARIOS
    seeds: int = 32
    check_seeds: int = 64
    samples: int = 128
    optimizer: str = "cma"
    generations: int = 16
    popsize: int = 24
    sigma0: float = 0.15
    polish: int = 1
    passes: int = 3
    grid: int = 6
    randomize: bool = True
    episode_days: float | None = None
    rng_seed: int = 0
    max_rows: int = 4096
    env_version: int = 1
    """Rationing-v1 (the current world) or 0; the tuned file is per version (agents.rules.tuned_file_for)."""
    constraints: tuple[str, ...] = ()
    """``--constraint``: maximise the return minus a steep penalty per unit of relative violation."""
    reward_weights: tuple[float, float, float] | None = None
    """``--weights``: margin, latency, churn reward weights (None: the scenarios'); ``front --tuned-rules``."""


class TuneError(ValueError):
    """Bad tuning arguments; the message is one line."""


OPTIMIZERS = ("cma", "coordinate")
__all__ = ["CHECK_SEED_START", "Evaluator", "OPTIMIZERS", "TuneSettings", "bound_hits", "main", "tune", "tune_rule"]


def tune_rule(name: str, settings: TuneSettings, progress: bool = False,
              starts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Tune one rule; returns its entry of the tuned file. ``starts``: parameter dicts tried with the defaults."""
    if settings.optimizer not in OPTIMIZERS:
        raise TuneError(f"optimizer {settings.optimizer!r}: must be one of {', '.join(OPTIMIZERS)}")
    rule = RULES[name]
    t0 = time.perf_counter()
    ev = Evaluator(rule, settings)
    tiers = ev.contexts[0].tier_names
    search = train_seeds(settings.seeds, 0)
    check = train_seeds(settings.check_seeds, CHECK_SEED_START)
    default = rule.Params()
    coords = flat_coordinates(rule, tiers)
    rng = np.random.default_rng([settings.rng_seed, zlib.crc32(name.encode())])
    cma = settings.optimizer == "cma"

    bar = None
    if progress:
        from tqdm import tqdm

        later = settings.generations * settings.popsize + 4 * settings.polish * len(coords) if cma else \
            sum(len(grid(d, settings.grid)) for d, _ in coords) + max(settings.passes - 1, 0) * 4 * len(coords)
        bar = tqdm(total=1 + len(starts) + (settings.samples + later if coords else 0), desc=f"tune {name}",
                   unit="set", dynamic_ncols=True, leave=False)

    def score(cands: list[Any], seeds: np.ndarray = search) -> np.ndarray:
        out = ev(cands, seeds).mean(axis=1)
        if bar is not None:
            bar.update(len(cands))
        return out

    untuned_search = float(score([default])[0])
    best, best_score = default, untuned_search
    run: dict[str, Any] = {"optimizer": settings.optimizer}
    if coords:
        # 1. random search (defaults scored above), plus the given starting points
        cands = [params_from_dict(rule, s) for s in starts]
        while len(cands) < len(starts) + settings.samples:
            p = default
            for d, t in coords:
                p = with_value(p, d, t, sample(rng, d))
            p = repair(rule, p)
            if valid(rule, p):
                cands.append(p)
        if cands:
            scores = score(cands)
            i = int(np.argmax(scores))
            if scores[i] > best_score:
                best, best_score = cands[i], float(scores[i])
        run["after_random"] = best_score
        if cma:  # 2. CMA-ES from the random-search best, then a fine coordinate polish
            best, best_score, run["cma"] = cma_search(rule, best, best_score, coords, tiers, score,
                                                       settings.generations, settings.popsize, settings.sigma0,
                                                       int(rng.integers(2 ** 31)))
            run["after_cma"] = best_score
            sweeps = range(2, 2 + settings.polish)
        else:    # 2. coordinate search: a global grid first, then ever finer steps around the current value
            sweeps = range(settings.passes)
        best, best_score = coordinate_search(rule, best, best_score, coords, tiers, score, sweeps, settings.grid)
    if bar is not None:
        bar.close()
    # 3. check on other training seeds
    both = ev([default, best], check)
    constrained = {c.name: {"untuned": ev.last_values[0, :, j].tolist(), "tuned": ev.last_values[1, :, j].tolist()}
                   for j, c in enumerate(ev.constraints)}
    keep_tuned = both[1].mean() >= both[0].mean()
    chosen = best if keep_tuned else default
    per = {sc: {"untuned": float(both[0, j]), "tuned": float(both[1, j])} for j, sc in enumerate(settings.scenarios)}
    return {
        "params": params_to_dict(chosen),
        "default_params": params_to_dict(default),
        "selected": "tuned" if keep_tuned else "default (tuning did not beat the defaults on the check seeds)",
        "optimizer": settings.optimizer,
        "search": {"untuned": untuned_search, "tuned": best_score, "seeds": [int(search[0]), int(search[-1]) + 1],
                   "stages": run},
        "check": {"untuned": float(both[0].mean()), "tuned": float(both[1].mean()), "per_scenario": per,
                  "seeds": [int(check[0]), int(check[-1]) + 1]},
        "improvement": float(both[1].mean() - both[0].mean()),
        **({"constraint_values": constrained} if constrained else {}),
        "at_bound": bound_hits(rule, best, tiers),
        "parameter_sets": ev.evaluations,
        "env_steps": ev.env_steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
    }


def _tune_job(args: tuple[str, TuneSettings, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    name, settings, starts = args
    return name, tune_rule(name, settings, starts=starts)


def _starts(name: str, entries: dict[str, Any]) -> list[dict[str, Any]]:
    """Starting points of a rule with ``seed_from``: that rule's tuned parameters, if the file has them."""
    src = getattr(RULES[name], "seed_from", None)
    return [dict(entries[src]["params"])] if src in entries else []


def tune(rules: Sequence[str], settings: TuneSettings, out: str | Path = TUNED_FILE, jobs: int = 1,
         progress: bool = True, log=print) -> dict[str, Any]:
    """Tune ``rules`` and merge them into the tuned file at ``out``; returns the file's content.

    A rule whose ``seed_from`` rule is tuned in the same call waits for it (a second wave).
    """
    out = Path(out)
    try:
        data = read_tuned(out)
    except PolicyError:
        data = {}
    entries: dict[str, Any] = dict(data.get("rules", {})) if data else {}
    results: dict[str, dict[str, Any]] = {}
    second = [r for r in rules if getattr(RULES[r], "seed_from", None) in rules]
    for wave in ([r for r in rules if r not in second], second):
        if jobs > 1 and len(wave) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
            order = sorted(wave, key=lambda r: -len(flat_coordinates(RULES[r], ["t"] * 6)))  # big spaces first
            with ctx.Pool(min(jobs, len(wave))) as pool:
                jobs_ = [(r, settings, _starts(r, entries)) for r in order]
                for name, entry in pool.imap_unordered(_tune_job, jobs_):
                    results[name] = entries[name] = entry
                    log(_summary_line(name, entry))
        else:
            for name in wave:
                results[name] = entries[name] = tune_rule(name, settings, progress=progress,
                                                          starts=_starts(name, entries))
                log(_summary_line(name, results[name]))
    for name in rules:  # keep RULES order in the file
        entries[name] = results[name]
    entries = {r: entries[r] for r in RULES if r in entries}
    best = max(entries, key=lambda r: entries[r]["check"]["tuned" if entries[r]["selected"] == "tuned"
                                                          else "untuned"])
    data = {
        "format": TUNED_FORMAT,
        "format_version": FORMAT_VERSION,
        "description": "Rule-baseline parameters tuned by `python -m agents.tune`; read by agents.rules.tuned. "
                       "Objective: mean episode return over the training scenarios and training seeds.",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", "agents.tune", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "best": best,
        **({"constraints": list(settings.constraints)} if settings.constraints else {}),
        **({"reward_weights": list(settings.reward_weights)} if settings.reward_weights else {}),
        "rules": entries,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, out)
    return data


def _summary_line(name: str, e: dict[str, Any]) -> str:
    c = e["check"]
    return (f"{name:<17} check return untuned {c['untuned']:9.2f} -> tuned {c['tuned']:9.2f} "
            f"({c['tuned'] - c['untuned']:+.2f}); {e.get('optimizer', 'coordinate')}, {e['parameter_sets']} sets, "
            f"{e['env_steps'] / 1e6:.2f} M env steps, {e['seconds']:.0f} s; kept {e['selected']}"
            + (f"; at a bound: {', '.join(e['at_bound'])}" if e.get("at_bound") else ""))


def _print_bounds(path: str) -> int:
    """Print, per rule of the tuned file, the tuned coordinates at a bound of its current ``space``."""
    try:
        data = read_tuned(path)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tiers = RuleContext(TRAIN_SCENARIOS[0]).tier_names
    for name, e in data.get("rules", {}).items():
        if name in RULES:
            hits = bound_hits(RULES[name], params_from_dict(name, e["params"]), tiers)
            print(f"{name:<17} {', '.join(hits) if hits else '-'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    d = TuneSettings()
    ap = OneLineParser(prog="python -m agents.tune", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rule", action="append", metavar="NAME", help=f"rule to tune, repeatable (default: all: "
                    f"{', '.join(RULES)})")
    ap.add_argument("--scenario", action="append", metavar="NAME_OR_PATH",
                    help=f"tuning scenario, repeatable (default: {', '.join(d.scenarios)})")
    ap.add_argument("--seeds", type=int, default=d.seeds, help="training seeds per scenario in the search")
    ap.add_argument("--check-seeds", type=int, default=d.check_seeds, help="other training seeds for the check")
    ap.add_argument("--samples", type=int, default=d.samples, help="random parameter sets per rule")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                    help="search after the random samples: CMA-ES (+ --polish sweeps) or --passes coordinate sweeps")
    ap.add_argument("--generations", type=int, default=d.generations, help="CMA-ES generations")
    ap.add_argument("--popsize", type=int, default=d.popsize, help="CMA-ES candidates per generation (one batch)")
    ap.add_argument("--sigma0", type=float, default=d.sigma0, help="CMA-ES initial step, in the [0, 1] box")
    ap.add_argument("--polish", type=int, default=d.polish, help="fine coordinate sweeps after CMA-ES")
    ap.add_argument("--passes", type=int, default=d.passes, help="coordinate-search sweeps (--optimizer coordinate)")
    ap.add_argument("--grid", type=int, default=d.grid, help="values tried per coordinate and sweep")
    ap.add_argument("--randomize", action=argparse.BooleanOptionalAction, default=d.randomize,
                    help="domain randomisation of the scenarios (as PPO training)")
    ap.add_argument("--days", type=float, default=None, help="episode length override in days (default: scenario's)")
    ap.add_argument("--rng-seed", type=int, default=d.rng_seed, help="seed of the random search")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="processes (one rule each)")
    ap.add_argument("--env-version", type=int, choices=(0, 1), default=d.env_version,
                    help="tune on Rationing-v1 (default) or Rationing-v0")
    ap.add_argument("--out", default=None,
                    help="tuned file to write, rules not tuned now are kept (default: the shipped file of the version)")
    ap.add_argument("--constraint", action="append", default=[], metavar="TIER.METRIC>=X",
                    help="tune under a constraint (agents/tradeoffs/constraints.py), repeatable: the objective is the "
                         "return minus 1000 per unit of relative violation; needs --out")
    ap.add_argument("--weights", default=None, metavar="margin=..,latency=..,churn=..",
                    help="tune on the return at these reward weights (a direction, rescaled to sum to 3; an "
                         "objective left out weighs 1); needs --out")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--bounds", action="store_true",
                    help="only list the tuned values of --out at a bound of their rule's space, then exit")
    a = ap.parse_args(argv)
    if a.bounds:
        return _print_bounds(a.out or str(tuned_file_for(a.env_version)))
    for name in ("seeds", "check_seeds", "grid", "jobs", "popsize", "samples"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} = {getattr(a, name)}: must be >= 1")
    if not 0.0 < a.sigma0 <= 1.0:
        ap.error(f"--sigma0 = {a.sigma0}: must be in (0, 1]")
    for name in ("passes", "generations", "polish"):
        if getattr(a, name) < 0:
            ap.error(f"--{name} = {getattr(a, name)}: must be >= 0")
    if a.days is not None and not (math.isfinite(a.days) and 0 < a.days <= 90):
        ap.error(f"--days = {a.days}: must be a number of days in (0, 90]")
    rules = a.rule or list(RULES)
    for r in rules:
        if r not in RULES:
            ap.error(f"unknown rule {r!r} (rules: {', '.join(RULES)})")
    from agents.common.files import FileRefused
    from agents.tradeoffs.constraints import ConstraintError, parse_constraints
    from agents.tradeoffs.preference import PreferenceError, parse_weights
    from envs import ScenarioError
    from envs.trace import TraceError

    try:
        weights = None if a.weights is None else parse_weights(a.weights)
    except PreferenceError as exc:
        ap.error(f"--weights: {exc}")
    if (a.constraint or weights) and a.out is None:
        ap.error(f"{'--constraint' if a.constraint else '--weights'} needs --out: the shipped tuned file holds the "
                 "rules tuned at the scenarios' weights without constraints")
    settings = TuneSettings(scenarios=tuple(a.scenario or d.scenarios), seeds=a.seeds, check_seeds=a.check_seeds,
                            samples=a.samples, optimizer=a.optimizer, generations=a.generations,
                            popsize=a.popsize, sigma0=a.sigma0, polish=a.polish, passes=a.passes, grid=a.grid,
                            randomize=a.randomize, episode_days=a.days, rng_seed=a.rng_seed, env_version=a.env_version,
                            constraints=tuple(a.constraint), reward_weights=weights)
    if a.out is None:
        a.out = str(tuned_file_for(a.env_version))
    try:
        for sc in settings.scenarios:
            RuleContext(sc, {"time": {"episode_days": a.days}} if a.days is not None else None, version=a.env_version)
        train_seeds(settings.seeds, 0)
        train_seeds(settings.check_seeds, CHECK_SEED_START)
        parse_constraints(list(settings.constraints), RuleContext(settings.scenarios[0]).tier_names)
        if Path(a.out).is_dir() or not Path(a.out).parent.is_dir():
            raise TuneError(f"--out {a.out!r}: must be a file path in an existing folder")
        t0 = time.perf_counter()
        data = tune(rules, settings, a.out, jobs=a.jobs, progress=a.progress)
    except (ScenarioError, SeedError, RuleError, TuneError, PolicyError, TraceError, FileRefused,
            ConstraintError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} in {time.perf_counter() - t0:.0f} s; best on the training scenarios: {data['best']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
