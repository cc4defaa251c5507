"""``python -m agents.oracle``: hindsight bounds per evaluation seed, cached for the evaluation tables.

    python -m agents.oracle --scenario default --seeds 20            # one scenario
    python -m agents.oracle --seeds 20                                # every shipped scenario

For each evaluation seed the best tuned rule (``best`` in the tuned file, or ``--rule``) is
adjusted by a plan found by CEM with common random numbers (:mod:`agents.oracle.search`): a
residual on the rule's quotas and a direct quota schedule; the better is the seed's bound.
The bound KNOWS THE WHOLE EPISODE IN ADVANCE (demand, bursts, outages): it is a reference for
how much room the rule leaves, not a target a causal policy can reach. The bounds are merged
into ``agents/oracle/bounds.json`` (or ``--cache``) under (env id, scenario, seed) and
``python -m agents.evaluate`` reports the share of the rule-to-oracle gap each policy closes.
Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from agents.common.cli import OneLineParser
from agents.common.seeds import ALL_SCENARIOS, SeedError, eval_seeds
from agents.oracle.bounds import BOUNDS_FILE, BoundsError, key, read_bounds, write_bounds
from agents.oracle.search import SearchSettings, timed_search
from agents.rules import RULES, best_tuned_baseline, tuned_file_for


def run(scenarios: list[str], n_seeds: int, rule: str, settings: SearchSettings, cache: str, env_id: str,
        progress: bool = True) -> dict[str, dict]:
    """Search every scenario, write the cache, return ``{scenario: summary}``."""
    from tqdm import tqdm

    seeds = eval_seeds(n_seeds)
    summary = {}
    for scenario in scenarios:
        bar = tqdm(total=len(settings.modes) * settings.iterations, desc=f"oracle {scenario}", disable=not progress,
                   dynamic_ncols=True)

        def tick(mode: str, it: int, best: np.ndarray, bar=bar) -> None:
            bar.update(1)
            bar.set_postfix({"mode": mode, "best": f"{best.mean():.1f}"}, refresh=False)

        bounds, seconds = timed_search(scenario, seeds, rule, settings, on_iteration=tick)
        bar.close()
        entries = {key(env_id, scenario, b.seed): {
            "return": b.best_return, "rule": rule, "rule_return": b.rule_return, "mode": b.best_mode,
            "returns_by_mode": b.returns_by_mode, "settings": dataclasses.asdict(settings),
            "seconds_per_seed": round(seconds / len(seeds), 2)} for b in bounds}
        write_bounds(entries, cache)
        rule_mean = float(np.mean([b.rule_return for b in bounds]))
        oracle_mean = float(np.mean([b.best_return for b in bounds]))
        summary[scenario] = {"rule_mean": rule_mean, "oracle_mean": oracle_mean, "seconds": round(seconds, 1),
                             "modes": {m: float(np.mean([b.returns_by_mode[m] for b in bounds]))
                                       for m in settings.modes}}
        print(f"{scenario}: {rule} {rule_mean:.1f} -> oracle {oracle_mean:.1f} (+{oracle_mean - rule_mean:.1f}, "
              f"{100 * (oracle_mean - rule_mean) / abs(rule_mean):.1f}%) over {len(seeds)} seeds in {seconds:.0f} s; "
              + ", ".join(f"{m} {v:.1f}" for m, v in summary[scenario]["modes"].items()), flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m agents.oracle", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", metavar="NAME_OR_PATH",
                    help=f"scenario, repeatable (default: {', '.join(ALL_SCENARIOS)})")
    ap.add_argument("--seeds", type=int, default=20, help="evaluation seeds per scenario (default: 20)")
    ap.add_argument("--rule", default="best", help="the rule to adjust (default: best tuned)")
    ap.add_argument("--cache", default=str(BOUNDS_FILE), help="bounds file to merge into")
    d = SearchSettings()
    ap.add_argument("--iterations", type=int, default=d.iterations)
    ap.add_argument("--population", type=int, default=d.population)
    ap.add_argument("--block-hours", type=float, default=d.block_hours)
    ap.add_argument("--env-version", type=int, choices=(0, 1), default=1, help="Rationing-v1 (default) or v0")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    a = ap.parse_args(argv)
    for name in ("iterations", "population"):
        if getattr(a, name) < 2:
            ap.error(f"--{name} = {getattr(a, name)}: must be >= 2")
    if not 0 < a.block_hours <= 168:
        ap.error(f"--block-hours = {a.block_hours}: must be in (0, 168]")
    rule = best_tuned_baseline(tuned_file_for(a.env_version)) if a.rule == "best" else a.rule
    if rule not in RULES:
        ap.error(f"--rule = {a.rule!r}: use one of best, {', '.join(RULES)}")
    import envs

    settings = dataclasses.replace(d, iterations=a.iterations, population=a.population,
                                   elites=max(2, min(d.elites, a.population // 4)), block_hours=a.block_hours,
                                   env_version=a.env_version)
    try:
        read_bounds(a.cache)
        run(a.scenario or list(ALL_SCENARIOS), a.seeds, rule, settings, a.cache, envs.ENV_IDS[a.env_version],
            a.progress)
    except (SeedError, BoundsError, envs.ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
