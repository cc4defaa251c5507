"""Search machinery of :mod:`agents.rules.tune`: the batched evaluator, random / coordinate / CMA-ES search,
the normalised parameter space, and the check for tuned values sitting at a bound of a rule's ``space``.

Normalised space: every search coordinate (one per scalar dim, one per tier of a
per-tier dim) maps to [0, 1]: ``(log v - log low) / (log high - log low)`` for
scale dims (``Dim.log``), ``(v - low) / (high - low)`` otherwise; integers are
rounded when decoded. CMA-ES works in this box, so one step size fits every
coordinate whatever its unit, and a scale dim moves by factors, not by amounts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.evaluate.metrics import rollout

from .base import Dim, Rule
from .context import RuleContext
from .registry import get_value, params_to_dict, with_value

Coord = tuple[Dim, "str | None"]


class Evaluator:
    """Mean episode return of many parameter sets of one rule, batched in the core.

    ``__call__(params_list, seeds) -> (K, n_scenarios)`` mean returns over seeds. With constraints
    (``settings.constraints``, e.g. ``("enterprise.latency_attainment>=0.99",)``) each entry is the
    mean return minus ``VIOLATION_PENALTY`` x the summed relative violations of the constraints' mean
    values over the seeds (the penalised score of :mod:`agents.tradeoffs.selection`), and
    ``last_values`` holds those values, (K, n_scenarios, n_constraints).
    """

    def __init__(self, rule: type[Rule], settings: Any) -> None:
        self.rule = rule
        self.s = settings
        self.overrides = tune_overrides(settings)
        self.contexts = [RuleContext(sc, self.overrides, version=getattr(settings, 'env_version', 1))
                         for sc in settings.scenarios]
        self._cores: dict[tuple[int, int], Any] = {}
        self.evaluations = 0
        self.env_steps = 0
        self.constraints = []
        if getattr(settings, "constraints", ()):
            from agents.tradeoffs.constraints import parse_constraints

            self.constraints = parse_constraints(list(settings.constraints), self.contexts[0].tier_names)
        self.last_values = np.zeros((0, len(self.contexts), len(self.constraints)))

    def _penalised(self, ro, core, ctx, k: int, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
        """(K,) penalised mean returns and (K, C) mean constraint values of one chunk's rollout."""
        from agents.evaluate.metrics import episode_metrics
        from agents.tradeoffs.constraints import episode_values
        from agents.tradeoffs.selection import VIOLATION_PENALTY, relative_violation

        p = core.params
        metrics = episode_metrics(ro, p.dt_h)
        values = np.stack([np.nanmean(episode_values(c, metrics, ctx.tier_names, p.users0, p.episode_steps * p.dt_h)
                                      .reshape(k, n_seeds), axis=1) for c in self.constraints], axis=1)
        penalty = np.array([[relative_violation(c, v) for c, v in zip(self.constraints, row)] for row in values])
        return ro.returns.reshape(k, n_seeds).mean(axis=1) - VIOLATION_PENALTY * penalty.sum(axis=1), values

    def _core(self, i: int, rows: int):
        from envs import RationingCore

        key = (i, rows)
        if key not in self._cores:
            self._cores[key] = RationingCore(self.s.scenarios[i], rows, randomize=self.s.randomize,
                                             overrides=self.overrides, version=getattr(self.s, 'env_version', 1))
        return self._cores[key]

    def __call__(self, params_list: Sequence[Any], seeds: np.ndarray) -> np.ndarray:
        k, n_seeds = len(params_list), len(seeds)
        rows_max = min(self.s.max_rows, 512) if self.constraints else self.s.max_rows  # per-step series kept
        per_chunk = max(1, rows_max // n_seeds)
        out = np.zeros((k, len(self.s.scenarios)))
        self.last_values = np.zeros((k, len(self.s.scenarios), len(self.constraints)))
        for i, ctx in enumerate(self.contexts):
            for lo in range(0, k, per_chunk):
                chunk = list(params_list[lo: lo + per_chunk])
                rows = len(chunk) * n_seeds
                core = self._core(i, rows)
                policy = self.rule.batched(ctx, chunk, repeats=n_seeds)
                if self.constraints:
                    ro = rollout(policy, core, np.tile(seeds, len(chunk)))
                    out[lo: lo + len(chunk), i], self.last_values[lo: lo + len(chunk), i] = self._penalised(
                        ro, core, ctx, len(chunk), n_seeds)
                else:
                    ro = rollout(policy, core, np.tile(seeds, len(chunk)), keys=())
                    out[lo: lo + len(chunk), i] = ro.returns.reshape(len(chunk), n_seeds).mean(axis=1)
                self.env_steps += rows * core.params.episode_steps
        self.evaluations += k
        return out


# ------------------------------------------------------------------ normalised space
def tune_overrides(settings: Any) -> dict[str, Any] | None:
    """The scenario overrides a tuning evaluates under: its episode length and reward weights, if set."""
    from agents.tradeoffs.preference import OBJECTIVES

    out: dict[str, Any] = {}
    if settings.episode_days:
        out["time"] = {"episode_days": settings.episode_days}
    weights = getattr(settings, "reward_weights", None)
    if weights:
        out["reward"] = {f"{o}_weight": float(w) for o, w in zip(OBJECTIVES, weights)}
    return out or None


def to_unit(dim: Dim, v: float) -> float:
    """A value of ``dim`` in [0, 1] (log scale for scale dims); values outside the range leave [0, 1]."""
    if dim.log:
        return float((np.log(v) - np.log(dim.low)) / (np.log(dim.high) - np.log(dim.low)))
    return float((v - dim.low) / (dim.high - dim.low))


def from_unit(dim: Dim, u: float) -> float:
    """The value of ``dim`` at ``u`` (clipped to [0, 1]), integers rounded."""
    u = float(np.clip(u, 0.0, 1.0))
    v = float(np.exp(np.log(dim.low) + u * (np.log(dim.high) - np.log(dim.low)))) if dim.log else \
        dim.low + u * (dim.high - dim.low)
    return float(round(v)) if dim.integer else v


def encode(params: Any, coords: Sequence[Coord], tiers: Sequence[str]) -> np.ndarray:
    return np.array([to_unit(d, get_value(params, d, t, tiers)) for d, t in coords])


def decode(x: np.ndarray, base: Any, coords: Sequence[Coord]) -> Any:
    p = base
    for (d, t), u in zip(coords, x):
        p = with_value(p, d, t, from_unit(d, u))
    return p


def bound_hits(rule: type[Rule], params: Any, tiers: Sequence[str], tol: float = 0.01) -> list[str]:
    """Coordinates of ``params`` within ``tol`` (normalised) of a bound of ``rule.space``: ``"name[tier] low"``.

    Integer dims whose whole range is a handful of values (e.g. ``protect_ranks`` 0..3) are
    reported too; an end of such a range is often a natural limit, not a sign the range is short.
    """
    out = []
    for d in rule.space:
        for t in (tiers if d.per_tier else [None]):
            u = to_unit(d, get_value(params, d, t, tiers))
            side = "low" if u <= tol else "high" if u >= 1.0 - tol else None
            if side:
                out.append(f"{d.name}{f'[{t}]' if t else ''} {side}")
    return out


# --------------------------------------------------------------------- random and grid
def sample(rng: np.random.Generator, dim: Dim) -> float:
    return from_unit(dim, rng.random())


def grid(dim: Dim, n: int) -> list[float]:
    if dim.integer:
        return [float(v) for v in range(int(dim.low), int(dim.high) + 1)] if dim.high - dim.low < n + 1 else \
            sorted({float(round(v)) for v in np.linspace(dim.low, dim.high, n)})
    if dim.log:
        return [float(v) for v in np.geomspace(dim.low, dim.high, n)]
    return [float(v) for v in np.linspace(dim.low, dim.high, n)]


def local(dim: Dim, current: float, n: int, sweep: int) -> list[float]:
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


def valid(rule: type[Rule], params: Any) -> bool:
    """Reject sets that make no sense (e.g. an empty peak window, g_min above g_max)."""
    d = params_to_dict(params)
    if rule.name == "time-of-use":  # the rule's premise: working hours are never looser than nights or weekends
        return d["peak_start_h"] < d["peak_end_h"] and all(
            d["peak"].get(t, d["peak"]["*"]) <= min(d[k].get(t, d[k]["*"]) for k in ("offpeak", "weekend"))
            for t in {*d["peak"], *d["offpeak"], *d["weekend"]})
    if "g_min" in d and "g_max" in d:
        return d["g_min"] <= d["g_max"]
    hi = d.get("open_multiplier", d.get("max_multiplier"))
    return "min_multiplier" not in d or hi is None or d["min_multiplier"] <= hi


def repair(rule: type[Rule], params: Any) -> Any:
    """Make a draw valid where that is cheap (sort the values the rule needs ordered)."""
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


Score = Callable[[list[Any]], np.ndarray]


def coordinate_search(rule: type[Rule], best: Any, best_score: float, coords: Sequence[Coord],
                      tiers: Sequence[str], score: Score, sweeps: Sequence[int], n_grid: int) -> tuple[Any, float]:
    """Sweeps over every coordinate with the others fixed, keeping the best.

    Sweep 0 tries ``n_grid`` values across the range, sweep s > 0 +-1 and +-2 steps of the
    grid spacing / 2**s around the current value.
    """
    for sweep in sweeps:
        for d, t in coords:
            current = get_value(best, d, t, tiers)
            values = grid(d, n_grid) if sweep == 0 else local(d, current, n_grid, sweep)
            values = [v for v in values if not np.isclose(v, current)]
            trial = [p for p in (with_value(best, d, t, v) for v in values) if valid(rule, p)]
            if not trial:
                continue
            scores = score(trial)
            i = int(np.argmax(scores))
            if scores[i] > best_score + 1e-9:
                best, best_score = trial[i], float(scores[i])
    return best, best_score


def cma_search(rule: type[Rule], best: Any, best_score: float, coords: Sequence[Coord], tiers: Sequence[str],
               score: Score, generations: int, popsize: int, sigma0: float, seed: int) -> tuple[Any, float, dict]:
    """CMA-ES (package ``cma``) in the normalised box, started at ``best``; each generation is ONE batch.

    The objective is deterministic (fixed search seeds, common random numbers), so the best
    candidate ever scored is kept, not CMA's mean. Invalid candidates are repaired; those that
    stay invalid score the generation's worst minus 1. Returns (best, score, run info).
    """
    import cma

    x0 = np.clip(encode(best, coords, tiers), 0.0, 1.0)
    opts = {"bounds": [0.0, 1.0], "popsize": popsize, "seed": int(seed) + 1, "verbose": -9, "maxiter": generations,
            "tolfun": 1e-11, "tolx": 1e-8, "tolstagnation": 10 ** 9, "tolflatfitness": 10 ** 9}
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
    gens = 0
    while not es.stop() and gens < generations:
        xs = es.ask()
        cands = [repair(rule, decode(np.asarray(x), best, coords)) for x in xs]
        ok = [valid(rule, p) for p in cands]
        fit = np.full(len(cands), np.nan)
        if any(ok):
            fit[np.flatnonzero(ok)] = score([p for p, v in zip(cands, ok) if v])
        fit = np.where(np.isnan(fit), np.nanmin(fit) - 1.0 if any(ok) else -1e9, fit)
        es.tell(xs, list(-fit))  # cma minimises
        i = int(np.argmax(fit))
        if ok[i] and fit[i] > best_score + 1e-9:
            best, best_score = cands[i], float(fit[i])
        gens += 1
    return best, best_score, {"generations": gens, "popsize": int(es.popsize), "sigma0": sigma0,
                              "final_sigma": float(es.sigma), "stop": {k: str(v) for k, v in es.stop().items()}}
