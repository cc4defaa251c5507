"""Hindsight plans by the cross-entropy method, with common random numbers, in one batched core.

The environment's random numbers are counter-based (:mod:`envs.rng`): a row reset with seed
``s`` sees the same draws whatever its actions. So for each evaluation seed the search gives
``population`` rows that seed, each row a different plan (:class:`~agents.oracle.plan.PlannedRule`),
and every plan is scored on exactly the episode it would face: the score difference between
two plans is the effect of the plans alone. All seeds of a scenario share one
:class:`envs.RationingCore` of ``len(seeds) x population`` rows.

CEM, per seed: a Gaussian over the plan (mean, per-coordinate standard deviation), sample,
keep the ``elites`` best, refit (smoothed), ``iterations`` times; the current mean is always
one of the candidates and the best plan ever seen is kept. CEM rather than CMA-ES (``cma``):
with hundreds of dimensions and per-seed searches in one batch, the diagonal Gaussian is
vectorised over seeds in a few numpy lines, where ``cma`` would run one optimiser object per seed.

The result uses foreknowledge of each seed's whole episode (demand, outages, bursts): it is
an upper reference for causal policies, not a target a policy can be expected to reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import envs
from agents.evaluate.metrics import rollout
from agents.oracle.plan import MODES, PlannedRule
from agents.rules import RuleContext, make_rule, tuned_file_for, tuned_params


@dataclass(frozen=True)
class SearchSettings:
    """CEM settings; the defaults are what the shipped bounds used."""

    block_hours: float = 4.0
    """Length of one plan block (hours): the plan has one value per tier per block."""
    population: int = 48
    elites: int = 8
    iterations: int = 30
    init_std: float = 0.4
    """Initial standard deviation of every coordinate (log multiplier)."""
    min_std: float = 0.02
    smoothing: float = 0.7
    """Weight of the new elite statistics in the refit."""
    modes: tuple[str, ...] = MODES
    rng_seed: int = 0
    env_version: int = 1
    """The environment version (``Rationing-v1`` by default); the rule's tuned parameters follow it."""


@dataclass
class SeedBound:
    seed: int
    rule_return: float
    best_return: float
    best_mode: str
    returns_by_mode: dict[str, float] = field(default_factory=dict)


def _tuned_rule(rule_name: str, core: envs.RationingCore):
    """The rule with its shipped tuned parameters for the core's env version."""
    return make_rule(rule_name, RuleContext(core), tuned_params(rule_name, tuned_file_for(core.version)))


def _rule_multipliers(rule_name: str, core: envs.RationingCore, seeds: np.ndarray, block_steps: int,
                      n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """The rule's returns (S,) and mean log quota multiplier per block (S, B, T), where the schedule search starts."""
    rule = _tuned_rule(rule_name, core)
    ro = rollout(rule, core, seeds, keys=("quota_multiplier",))
    logm = np.log(np.maximum(ro.series["quota_multiplier"], 1e-9))  # (steps, S, T)
    steps = logm.shape[0]
    blocks = np.minimum(np.arange(steps) // block_steps, n_blocks - 1)
    sums = np.zeros((n_blocks, *logm.shape[1:]))
    np.add.at(sums, blocks, logm)
    counts = np.bincount(blocks, minlength=n_blocks)[:, None, None]
    return ro.returns, np.transpose(sums / np.maximum(counts, 1), (1, 0, 2))


def search(scenario: str, seeds: np.ndarray, rule_name: str, settings: SearchSettings = SearchSettings(),
           overrides: dict | None = None, on_iteration: Callable[[str, int, np.ndarray], None] | None = None,
           core_factory: Callable[..., envs.RationingCore] | None = None) -> list[SeedBound]:
    """The best plan's return per seed (and the rule's), for every plan mode in ``settings.modes``."""
    make = core_factory or (lambda scen, n: envs.RationingCore(scen, n, overrides=overrides,
                                                               version=settings.env_version))
    seeds = np.asarray(seeds, dtype=np.uint64)
    S, P = len(seeds), settings.population
    probe = make(scenario, S)
    steps = probe.params.episode_steps
    block_steps = max(1, int(round(settings.block_hours / probe.params.dt_h)))
    n_blocks = -(-steps // block_steps)
    T = probe.params.n_tiers
    rule_returns, rule_logm = _rule_multipliers(rule_name, probe, seeds, block_steps, n_blocks)
    core = make(scenario, S * P)
    rule = _tuned_rule(rule_name, core)
    row_seeds = np.repeat(seeds, P)
    rng = np.random.default_rng(settings.rng_seed)
    out = [SeedBound(int(s), float(r), float(r), "rule") for s, r in zip(seeds, rule_returns)]
    for mode in settings.modes:
        mean = np.zeros((S, n_blocks, T)) if mode == "residual" else rule_logm.copy()
        std = np.full((S, n_blocks, T), settings.init_std)
        best = np.full(S, -np.inf)
        for it in range(settings.iterations):
            noise = rng.standard_normal((S, P, n_blocks, T))
            noise[:, 0] = 0.0  # candidate 0 of every seed is the current mean
            plans = mean[:, None] + std[:, None] * noise
            policy = PlannedRule(rule, plans.reshape(S * P, n_blocks, T), block_steps, mode)
            returns = rollout(policy, core, row_seeds, keys=()).returns.reshape(S, P)
            best = np.maximum(best, returns.max(axis=1))
            elite_idx = np.argsort(-returns, axis=1)[:, : settings.elites]
            elites = np.take_along_axis(plans, elite_idx[:, :, None, None], axis=1)
            a = settings.smoothing
            mean = (1 - a) * mean + a * elites.mean(axis=1)
            std = np.maximum((1 - a) * std + a * elites.std(axis=1), settings.min_std)
            if on_iteration is not None:
                on_iteration(mode, it, best)
        for j, b in enumerate(out):
            b.returns_by_mode[mode] = float(best[j])
            if best[j] > b.best_return:
                b.best_return, b.best_mode = float(best[j]), mode
    return out


def timed_search(*args, **kwargs) -> tuple[list[SeedBound], float]:
    t0 = time.perf_counter()
    res = search(*args, **kwargs)
    return res, time.perf_counter() - t0
