"""Tune the rule baselines' parameters on the training scenarios and seeds.

    python -m agents.tune                          # every rule, the shipped settings (~6 min on 2 cores)
    python -m agents.tune --rule aimd --samples 64 --passes 1
    python -m agents.tune --out /tmp/tuned.json --days 1

Objective: the mean episode return over the training scenarios
(``agents.common.seeds.TRAIN_SCENARIOS``) and ``--seeds`` training seeds each, with the
scenarios' domain randomisation on (``--randomize``, the distribution PPO trains
on). Per rule:

1. **random search**: the defaults and ``--samples`` random parameter sets drawn
   from the rule's ``space`` (log-uniform where the range is a scale), all
   stepped as one batch in :class:`envs.RationingCore` (rows = sets x seeds);
2. **coordinate search**: ``--passes`` sweeps over every coordinate (each tier of
   a per-tier parameter is one coordinate) with the others fixed, keeping the
   best: the first sweep tries ``--grid`` values across the range, later sweeps
   +-1 and +-2 ever finer steps around the current value;
3. **check** on ``--check-seeds`` *other* training seeds: the tuned parameters are
   kept only if they beat the defaults there (else the defaults are kept and the
   file says so). Untuned and tuned returns on both seed sets are recorded.

Candidates on the same seed see the same exogenous randomness (common random
numbers), so comparisons between them are sharp. Results go to ``--out``
(default ``agents/rules/tuned/baselines.json``, shipped in the repo); rules tuned
earlier and not named by ``--rule`` are kept. ``best`` names the rule with the
highest tuned check return.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from agents.common.provenance import git_commit
from agents.common.seeds import TRAIN_SCENARIOS, SeedError, train_seeds
from agents.evaluate.metrics import rollout
from agents.rules import (
    RULES,
    Dim,
    Rule,
    RuleContext,
    RuleError,
    flat_coordinates,
    get_value,
    params_to_dict,
    with_value,
)
from agents.rules.tuned import TUNED_FILE, TUNED_FORMAT, read_tuned, tuned_file_for

FORMAT_VERSION = 1
CHECK_SEED_START = 5_000
"""Check seeds start here in the training range; search seeds start at 0."""


@dataclass(frozen=True)
class TuneSettings:
    scenarios: tuple[str, ...] = TRAIN_SCENARIOS
    seeds: int = 32
    check_seeds: int = 64
    samples: int = 384
    passes: int = 3
    grid: int = 6
    randomize: bool = True
    episode_days: float | None = None
    rng_seed: int = 0
    max_rows: int = 4096
    env_version: int = 1
    """Rationing-v1 (the current world) or 0; the tuned file is per version (agents.rules.tuned_file_for)."""


class TuneError(ValueError):
    """Bad tuning arguments; the message is one line."""


class Evaluator:
    """Mean episode return of many parameter sets of one rule, batched in the core.

    ``__call__(params_list, seeds) -> (K, n_scenarios)`` mean returns over seeds.
    """

    def __init__(self, rule: type[Rule], settings: TuneSettings) -> None:
        self.rule = rule
        self.s = settings
        self.overrides = {"time": {"episode_days": settings.episode_days}} if settings.episode_days else None
        self.contexts = [RuleContext(sc, self.overrides, version=settings.env_version) for sc in settings.scenarios]
        self._cores: dict[tuple[int, int], Any] = {}
        self.evaluations = 0
        self.env_steps = 0

    def _core(self, i: int, rows: int):
        from envs import RationingCore

        key = (i, rows)
        if key not in self._cores:
            self._cores[key] = RationingCore(self.s.scenarios[i], rows, randomize=self.s.randomize,
                                             overrides=self.overrides, version=self.s.env_version)
        return self._cores[key]

    def __call__(self, params_list: Sequence[Any], seeds: np.ndarray) -> np.ndarray:
        k, n_seeds = len(params_list), len(seeds)
        per_chunk = max(1, self.s.max_rows // n_seeds)
        out = np.zeros((k, len(self.s.scenarios)))
        for i, ctx in enumerate(self.contexts):
            for lo in range(0, k, per_chunk):
                chunk = list(params_list[lo: lo + per_chunk])
                rows = len(chunk) * n_seeds
                core = self._core(i, rows)
                policy = self.rule.batched(ctx, chunk, repeats=n_seeds)
                ro = rollout(policy, core, np.tile(seeds, len(chunk)), keys=())
                out[lo: lo + len(chunk), i] = ro.returns.reshape(len(chunk), n_seeds).mean(axis=1)
                self.env_steps += rows * core.params.episode_steps
        self.evaluations += k
        return out


def _sample(rng: np.random.Generator, dim: Dim) -> float:
    u = rng.random()
    v = float(np.exp(np.log(dim.low) + u * (np.log(dim.high) - np.log(dim.low)))) if dim.log else \
        dim.low + u * (dim.high - dim.low)
    return float(round(v)) if dim.integer else v


def _grid(dim: Dim, n: int) -> list[float]:
    if dim.integer:
        return [float(v) for v in range(int(dim.low), int(dim.high) + 1)] if dim.high - dim.low < n + 1 else \
            sorted({float(round(v)) for v in np.linspace(dim.low, dim.high, n)})
    if dim.log:
        return [float(v) for v in np.geomspace(dim.low, dim.high, n)]
    return [float(v) for v in np.linspace(dim.low, dim.high, n)]


def _local(dim: Dim, current: float, n: int, sweep: int) -> list[float]:
    """Values around ``current``: +-1 and +-2 steps of the global grid's spacing / 2**sweep, within the range."""
    if dim.integer:
        vals = [current + k for k in (-2, -1, 1, 2)]
    elif dim.log:
        f = (dim.high / dim.low) ** (1.0 / max(n - 1, 1) / 2 ** sweep)
        vals = [current * f ** k for k in (-2, -1, 1, 2)]
    else:
        step = (dim.high - dim.low) / max(n - 1, 1) / 2 ** sweep
        vals = [current + step * k for k in (-2, -1, 1, 2)]
    return [float(v) for v in vals if dim.low - 1e-12 <= v <= dim.high + 1e-12]


def _valid(rule: type[Rule], params: Any) -> bool:
    """Reject sets that make no sense (e.g. an empty peak window, g_min above g_max)."""
    d = params_to_dict(params)
    if rule.name == "time-of-use":  # the rule's premise: working hours are never looser than nights or weekends
        return d["peak_start_h"] < d["peak_end_h"] and all(
            d["peak"].get(t, d["peak"]["*"]) <= min(d[k].get(t, d[k]["*"]) for k in ("offpeak", "weekend"))
            for t in {*d["peak"], *d["offpeak"], *d["weekend"]})
    if rule.name == "aimd":
        return d["g_min"] <= d["g_max"]
    if rule.name in ("predictive", "fair-share", "latency-gradient"):
        hi = d.get("open_multiplier", d.get("max_multiplier"))
        return d["min_multiplier"] <= hi
    return True


def _repair(rule: type[Rule], params: Any) -> Any:
    """Make a random draw valid where that is cheap (sort the values the rule needs ordered)."""
    d = params_to_dict(params)
    if rule.name == "time-of-use":
        tiers = {*d["peak"], *d["offpeak"], *d["weekend"]}
        peak = {t: min(d[k].get(t, d[k]["*"]) for k in ("peak", "offpeak", "weekend")) for t in tiers}
        start, end = sorted((d["peak_start_h"], d["peak_end_h"]))
        return dataclasses.replace(params, peak=peak, peak_start_h=start, peak_end_h=max(end, start + 1))
    for lo, hi in (("g_min", "g_max"), ("min_multiplier", "open_multiplier"), ("min_multiplier", "max_multiplier")):
        if lo in d and hi in d and d[lo] > d[hi]:
            return dataclasses.replace(params, **{lo: d[hi], hi: d[lo]})
    return params


def tune_rule(name: str, settings: TuneSettings, progress: bool = False) -> dict[str, Any]:
    """Tune one rule; returns its entry of the tuned file."""
    rule = RULES[name]
    t0 = time.perf_counter()
    ev = Evaluator(rule, settings)
    tiers = ev.contexts[0].tier_names
    search = train_seeds(settings.seeds, 0)
    check = train_seeds(settings.check_seeds, CHECK_SEED_START)
    default = rule.Params()
    coords = flat_coordinates(rule, tiers)
    rng = np.random.default_rng([settings.rng_seed, zlib.crc32(name.encode())])

    bar = None
    if progress:
        from tqdm import tqdm

        total = 1 + (settings.samples if coords else 0) + sum(len(_grid(d, settings.grid)) for d, _ in coords) + \
            max(settings.passes - 1, 0) * 4 * len(coords)
        bar = tqdm(total=total, desc=f"tune {name}", unit="set", dynamic_ncols=True, leave=False)

    def score(cands: list[Any], seeds: np.ndarray = search) -> np.ndarray:
        out = ev(cands, seeds).mean(axis=1)
        if bar is not None:
            bar.update(len(cands))
        return out

    untuned_search = float(score([default])[0])
    best, best_score = default, untuned_search
    if coords:
        # 1. random search (defaults included above)
        cands = []
        while len(cands) < settings.samples:
            p = default
            for d, t in coords:
                p = with_value(p, d, t, _sample(rng, d))
            p = _repair(rule, p)
            if _valid(rule, p):
                cands.append(p)
        scores = score(cands)
        i = int(np.argmax(scores))
        if scores[i] > best_score:
            best, best_score = cands[i], float(scores[i])
        # 2. coordinate search: a global grid first, then ever finer steps around the current value
        for sweep in range(settings.passes):
            for d, t in coords:
                current = get_value(best, d, t, tiers)
                values = _grid(d, settings.grid) if sweep == 0 else _local(d, current, settings.grid, sweep)
                values = [v for v in values if not np.isclose(v, current)]
                trial = [p for p in (with_value(best, d, t, v) for v in values) if _valid(rule, p)]
                if not trial:
                    continue
                scores = score(trial)
                i = int(np.argmax(scores))
                if scores[i] > best_score + 1e-9:
                    best, best_score = trial[i], float(scores[i])
    if bar is not None:
        bar.close()
    # 3. check on other training seeds
    both = ev([default, best], check)
    keep_tuned = both[1].mean() >= both[0].mean()
    chosen = best if keep_tuned else default
    per = {sc: {"untuned": float(both[0, j]), "tuned": float(both[1, j])} for j, sc in enumerate(settings.scenarios)}
    return {
        "params": params_to_dict(chosen),
        "default_params": params_to_dict(default),
        "selected": "tuned" if keep_tuned else "default (tuning did not beat the defaults on the check seeds)",
        "search": {"untuned": untuned_search, "tuned": best_score, "seeds": [int(search[0]), int(search[-1]) + 1]},
        "check": {"untuned": float(both[0].mean()), "tuned": float(both[1].mean()), "per_scenario": per,
                  "seeds": [int(check[0]), int(check[-1]) + 1]},
        "improvement": float(both[1].mean() - both[0].mean()),
        "parameter_sets": ev.evaluations,
        "env_steps": ev.env_steps,
        "seconds": round(time.perf_counter() - t0, 1),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
    }


def _tune_job(args: tuple[str, TuneSettings]) -> tuple[str, dict[str, Any]]:
    name, settings = args
    return name, tune_rule(name, settings)


def tune(rules: Sequence[str], settings: TuneSettings, out: str | Path = TUNED_FILE, jobs: int = 1,
         progress: bool = True, log=print) -> dict[str, Any]:
    """Tune ``rules`` and merge them into the tuned file at ``out``; returns the file's content."""
    out = Path(out)
    try:
        data = read_tuned(out)
    except PolicyError:
        data = {}
    entries: dict[str, Any] = dict(data.get("rules", {})) if data else {}
    results: dict[str, dict[str, Any]] = {}
    if jobs > 1 and len(rules) > 1:
        import multiprocessing as mp

        ctx = mp.get_context("spawn" if sys.platform == "darwin" else "fork")
        order = sorted(rules, key=lambda r: -len(flat_coordinates(RULES[r], ["t"] * 6)))  # big spaces first
        with ctx.Pool(min(jobs, len(rules))) as pool:
            for name, entry in pool.imap_unordered(_tune_job, [(r, settings) for r in order]):
                results[name] = entry
                log(_summary_line(name, entry))
    else:
        for name in rules:
            results[name] = tune_rule(name, settings, progress=progress)
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
        "best": best,
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
            f"({c['tuned'] - c['untuned']:+.2f}); {e['parameter_sets']} sets, {e['seconds']:.0f} s; "
            f"kept {e['selected']}")


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
    ap.add_argument("--passes", type=int, default=d.passes, help="coordinate-search sweeps")
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
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args(argv)
    for name in ("seeds", "check_seeds", "grid", "jobs", "samples"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} = {getattr(a, name)}: must be >= 1")
    if a.passes < 0:
        ap.error(f"--passes = {a.passes}: must be >= 0")
    if a.days is not None and not (math.isfinite(a.days) and 0 < a.days <= 90):
        ap.error(f"--days = {a.days}: must be a number of days in (0, 90]")
    rules = a.rule or list(RULES)
    for r in rules:
        if r not in RULES:
            ap.error(f"unknown rule {r!r} (rules: {', '.join(RULES)})")
    from agents.common.files import FileRefused
    from envs import ScenarioError
    from envs.trace import TraceError

    settings = TuneSettings(scenarios=tuple(a.scenario or d.scenarios), seeds=a.seeds, check_seeds=a.check_seeds,
                            samples=a.samples, passes=a.passes, grid=a.grid, randomize=a.randomize,
                            episode_days=a.days, rng_seed=a.rng_seed, env_version=a.env_version)
    if a.out is None:
        a.out = str(tuned_file_for(a.env_version))
    try:
        for sc in settings.scenarios:
            RuleContext(sc, {"time": {"episode_days": a.days}} if a.days is not None else None, version=a.env_version)
        train_seeds(settings.seeds, 0)
        train_seeds(settings.check_seeds, CHECK_SEED_START)
        if Path(a.out).is_dir() or not Path(a.out).parent.is_dir():
            raise TuneError(f"--out {a.out!r}: must be a file path in an existing folder")
        t0 = time.perf_counter()
        data = tune(rules, settings, a.out, jobs=a.jobs, progress=a.progress)
    except (ScenarioError, SeedError, RuleError, TuneError, PolicyError, TraceError, FileRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} in {time.perf_counter() - t0:.0f} s; best on the training scenarios: {data['best']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
