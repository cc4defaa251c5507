"""Simulate episodes of a scenario under fixed quotas and print a per-tier summary.

    python -m envs.simulate --scenario outage --seed 0
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .core import RationingCore
from .scenario import ScenarioError, available_scenarios


def summarize(core: RationingCore, seed: int) -> dict[str, np.ndarray]:
    """Run one episode with quota multipliers held at 1; return per-tier totals."""
    core.reset(np.array([seed]))
    totals: dict[str, np.ndarray] = {}
    zero = np.zeros((1, core.n_tiers), np.float32)
    for _ in range(core.params.episode_steps):
        _, _, _, _, info = core.step(zero)
        for key in ("demand_tokens", "served_tokens", "throttled_tokens", "late_tokens", "churned_users",
                    "revenue_usd", "margin_usd", "cost_usd", "reward", "collapsed"):
            totals[key] = totals.get(key, 0.0) + np.asarray(info[key][0], np.float64)
    totals["users"] = np.asarray(core.users.users[0], np.float64)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="default", help=f"one of {available_scenarios()} or a YAML path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        core = RationingCore(args.scenario, 1)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tot = summarize(core, args.seed)
    minutes = core.scenario.time.step_minutes
    print(f"scenario {core.scenario.name}: {core.params.episode_steps} steps of {minutes:g} min,"
          f" static quotas, seed {args.seed}")
    print(f"{'tier':<11}{'demand Mtok':>14}{'served %':>10}{'throttled %':>13}{'late %':>8}{'churned':>10}"
          f"{'revenue $':>13}")
    for i, name in enumerate(core.tier_names):
        d = tot["demand_tokens"][i]
        print(f"{name:<11}{d / 1e6:>14,.0f}{100 * tot['served_tokens'][i] / d:>10.1f}"
              f"{100 * tot['throttled_tokens'][i] / d:>13.1f}"
              f"{100 * tot['late_tokens'][i] / max(tot['served_tokens'][i], 1):>8.1f}"
              f"{tot['churned_users'][i]:>10,.0f}{tot['revenue_usd'][i]:>13,.0f}")
    print(f"margin ${float(tot['margin_usd']):,.0f}  cost ${float(tot['cost_usd']):,.0f}  "
          f"return {float(tot['reward']):.1f}  collapsed steps {int(tot['collapsed'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
