"""``python -m agents.oracle.causal``: how much room a *causal* policy finds beyond the best rule.

The hindsight bound (:mod:`agents.oracle.command`) knows each episode in advance; this measures
what a policy that sees only the observation can gain. The policy is the residual form of
:mod:`agents.ppo.residual` with a linear correction::

    c = tanh(W^T [clip((obs - mean) / std, -5, 5), 1])      (T corrections in [-1, 1])
    quota target = rule target x exp(c)

With ``--memory`` the features also hold what a recurrent policy could remember: per observation
entry its change since the last step and its deviation from an exponential moving average
(decay :data:`MEMORY_DECAY` per step, about a day), so the probe says whether history adds room
that the current observation lacks (partial observability: the issue's case for ``RecurrentPPO``).

W is fitted by the cross-entropy method with common random numbers: each generation draws
fresh tuning seeds (:data:`~agents.common.seeds.TRAIN_SEEDS`) of the training scenarios, and
every candidate runs on the same ones in one batched core per scenario. It is then measured once
on evaluation seeds of every scenario against the rule, with paired 95% CIs. It is a reference
for what the observation allows a simple learned correction to gain, fitted by a gradient-free
search, not the shipped policy: ``train.py`` trains PPO.

    python -m agents.oracle.causal --generations 25 --population 48 --seeds 20 [--memory]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

import envs
from agents.common.cli import OneLineParser
from agents.common.seeds import ALL_SCENARIOS, TRAIN_SCENARIOS, eval_seeds, train_seeds
from agents.evaluate.metrics import mean_ci, rollout
from agents.ppo.residual import ResidualSpec
from agents.rules import RuleContext, tuned_file_for

MEMORY_DECAY = 0.99
"""Per-step decay of the moving average in the memory features (15-minute steps: a time constant of
100 steps, about a day)."""


def raw_features(obs: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None, memory: bool,
                 episode_start: np.ndarray | None = None) -> tuple[np.ndarray, tuple | None]:
    """(N, D) or, with ``memory``, (N, 3D) ``[obs, obs - last obs, obs - moving average]``, and the state
    (last obs, moving average) to pass to the next step; rows in ``episode_start`` (or all rows when
    ``state`` is None) start with no history: both memory blocks 0."""
    x = np.asarray(obs, np.float64)
    if not memory:
        return x, None
    if state is None:
        prev, avg = x, x
    else:
        prev, avg = state
        if episode_start is not None and np.any(episode_start):
            start = np.asarray(episode_start, bool)[:, None]
            prev, avg = np.where(start, x, prev), np.where(start, x, avg)
    avg = MEMORY_DECAY * avg + (1.0 - MEMORY_DECAY) * x
    return np.concatenate([x, x - prev, x - avg], axis=1), (x, avg)


@dataclass(frozen=True)
class LinearResidual:
    """Feature normalisation and the (D, T) weights; ``weights`` (P, D, T) for P candidates; ``memory``:
    the features include the history blocks of :func:`raw_features` (D = 3 x obs size + 1, else obs size + 1)."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    memory: bool = False

    def features(self, obs: np.ndarray, state: tuple | None = None,
                 episode_start: np.ndarray | None = None) -> tuple[np.ndarray, tuple | None]:
        raw, state = raw_features(obs, state, self.memory, episode_start)
        x = np.clip((raw - self.mean) / self.std, -5.0, 5.0)
        return np.concatenate([x, np.ones((len(x), 1))], axis=1), state


class _Candidates:
    """P candidates x R rows each, behind the shared ``predict``: row ``p x R + r`` uses candidate p."""

    def __init__(self, model: LinearResidual, bound, rows_each: int) -> None:
        self.model, self.bound, self.rows_each = model, bound, rows_each

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        x, state = self.model.features(obs, state, episode_start)
        x = x.reshape(len(self.model.weights), self.rows_each, -1)
        c = np.tanh(np.einsum("prd,pdt->prt", x, self.model.weights)).reshape(len(obs), -1)
        return self.bound.env_action(c, obs), state


def returns(model: LinearResidual, spec: ResidualSpec, scenario: str, seeds: np.ndarray, version: int) -> np.ndarray:
    """(P, len(seeds)) episode returns of every candidate on the same seeds (common random numbers)."""
    p = len(model.weights)
    core = envs.RationingCore(scenario, p * len(seeds), version=version)
    bound = spec.bind(RuleContext(core))
    ro = rollout(_Candidates(model, bound, len(seeds)), core, np.tile(seeds, p), keys=())
    return ro.returns.reshape(p, len(seeds))


def normalisation(spec: ResidualSpec, version: int, rows: int = 64,
                  memory: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the features of the observations the rule visits on tuning seeds of the training
    scenarios."""
    seen = []
    for j, scenario in enumerate(TRAIN_SCENARIOS):
        core = envs.RationingCore(scenario, rows, version=version)
        bound = spec.bind(RuleContext(core))
        obs = core.reset(train_seeds(rows, start=9000 + j * rows))
        zero = np.zeros((rows, core.n_tiers))
        state = None
        for _ in range(core.params.episode_steps):
            raw, state = raw_features(obs, state, memory)
            seen.append(raw)
            obs, *_ = core.step(bound.env_action(zero, obs))
    seen_all = np.concatenate(seen)
    return seen_all.mean(axis=0), seen_all.std(axis=0) + 1e-3


def fit(spec: ResidualSpec, version: int, generations: int, population: int, seeds_per: int, sigma: float,
        seed: int = 0, log=print, memory: bool = False) -> LinearResidual:
    """CEM over W on fresh tuning seeds each generation; returns the final mean as one candidate."""
    mean, std = normalisation(spec, version, memory=memory)
    d, t = len(mean) + 1, envs.RationingCore(TRAIN_SCENARIOS[0], 1, version=version).n_tiers
    rng = np.random.default_rng(seed)
    m, s = np.zeros((d, t)), np.full((d, t), sigma)
    n_elite = max(2, population // 8)
    for g in range(generations):
        t0 = time.perf_counter()
        w = m + s * rng.standard_normal((population + 1, d, t))
        w[0], w[-1] = m, 0.0  # the current mean, and the rule itself (not a candidate) for the log
        seeds = train_seeds(seeds_per, start=(g * seeds_per) % 8000)
        score = sum(returns(LinearResidual(mean, std, w, memory), spec, sc, seeds, version).mean(axis=1)
                    for sc in TRAIN_SCENARIOS) / len(TRAIN_SCENARIOS)
        rule = score[-1]
        elite = w[np.argsort(-score[:-1])[:n_elite]]
        m, s = elite.mean(axis=0), 0.7 * s + 0.3 * elite.std(axis=0)
        log(f"generation {g + 1}/{generations}: over the rule on this generation's seeds: mean candidate "
            f"{score[0] - rule:+.2f}, best {score[:-1].max() - rule:+.2f} ({time.perf_counter() - t0:.1f} s)")
    return LinearResidual(mean, std, m[None], memory)


def measure(model: LinearResidual, spec: ResidualSpec, version: int, n_seeds: int) -> dict[str, dict[str, float]]:
    """Per scenario: the rule's and the linear residual's mean return on evaluation seeds, paired difference."""
    zero = LinearResidual(model.mean, model.std, np.zeros_like(model.weights), model.memory)
    out = {}
    for scenario in ALL_SCENARIOS:
        seeds = eval_seeds(n_seeds)
        rule = returns(zero, spec, scenario, seeds, version)[0]
        lin = returns(model, spec, scenario, seeds, version)[0]
        diff, half = mean_ci(lin - rule)
        out[scenario] = {"rule": float(rule.mean()), "linear_residual": float(lin.mean()),
                         "difference": float(diff), "ci95": float(half)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.oracle.causal", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=25)
    ap.add_argument("--population", type=int, default=48)
    ap.add_argument("--tuning-seeds", type=int, default=8, help="tuning seeds per scenario per generation")
    ap.add_argument("--sigma", type=float, default=0.005, help="initial CEM standard deviation of each weight")
    ap.add_argument("--seeds", type=int, default=20, help="evaluation seeds per scenario for the measurement")
    ap.add_argument("--env-version", type=int, default=1, choices=(0, 1))
    ap.add_argument("--memory", action="store_true",
                    help="also feed each observation entry's last change and deviation from a ~1-day moving average")
    a = ap.parse_args(argv)
    for name in ("generations", "population", "tuning_seeds", "seeds"):
        if getattr(a, name) < 1 or getattr(a, name) > 10_000:
            ap.error(f"--{name.replace('_', '-')} = {getattr(a, name)}: must be 1..10000")
    if not 0.0 < a.sigma <= 1.0:
        ap.error(f"--sigma = {a.sigma}: must be in (0, 1]")
    spec = ResidualSpec.from_tuned("best", tuned_file_for(a.env_version), 1.0)
    model = fit(spec, a.env_version, a.generations, a.population, a.tuning_seeds, a.sigma, memory=a.memory)
    what = "linear residual on observation and memory" if a.memory else "linear residual"
    print(f"| scenario | {spec.rule} | {what} | difference (paired 95% CI) |\n|---|---|---|---|")
    for scenario, r in measure(model, spec, a.env_version, a.seeds).items():
        print(f"| {scenario} | {r['rule']:.1f} | {r['linear_residual']:.1f} | "
              f"{r['difference']:+.2f} ± {r['ci95']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
