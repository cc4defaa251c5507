"""Wall time until a training run's policy first beats the best tuned baseline.

    python benchmarks/time_to_beat.py checkpoints/<run>

Reads the run's ``eval_history.jsonl`` (validation score = mean episode return over
every shipped scenario on the validation seeds, with the training wall time of each
evaluation) and scores the best tuned baseline on exactly the same scenarios and
seeds, then prints the first evaluation that beats it (or says none did).
The wall time counts PPO training only (the warm start, recorded in run.json, is
printed separately).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import envs
from agents.common.seeds import VALIDATION_SEED_BASE
from agents.evaluate.metrics import rollout
from agents.evaluate.resolve import resolve_policy
from agents.rules import best_tuned_baseline, tuned_file_for


def rule_score(rule: str, scenarios: list[str], n_seeds: int, version: int = 0) -> dict[str, float]:
    seeds = np.arange(n_seeds, dtype=np.uint64) + np.uint64(VALIDATION_SEED_BASE)
    out = {}
    for scenario in scenarios:
        core = envs.RationingCore(scenario, n_seeds, version=version)
        policy = resolve_policy(rule, core, tuned_file_for(version))
        out[scenario] = float(rollout(policy, core, seeds, keys=()).returns.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    run = json.loads((args.run / "run.json").read_text())
    history = [json.loads(line) for line in (args.run / "eval_history.jsonl").read_text().splitlines()]
    scenarios = list(history[0]["returns"])
    n_seeds = int(run["config"].get("val_seeds", 3))
    version = int(run.get("env_version", 0))
    best = best_tuned_baseline(tuned_file_for(version))
    base = rule_score(best, scenarios, n_seeds, version)
    base_score = float(np.mean(list(base.values())))
    print(f"best tuned baseline {best!r}: validation score {base_score:.2f} "
          f"({', '.join(f'{k} {v:.1f}' for k, v in base.items())})")
    if "warm_start" in run:
        residual = run["hyperparams"].get("action_parameterisation") == "residual"
        how = "residual on" if residual else "behaviour cloning of"
        print(f"warm start ({how} {run['warm_start']['rule']!r}): {run['warm_start']['seconds']} s")
    for h in history:
        wins = sum(h["returns"][s] > base[s] for s in scenarios)
        print(f"  {h['timesteps']:>10,} steps  {h['wall_s']:>7.1f} s  score {h['score']:.2f}  "
              f"({h['score'] - base_score:+.2f}; ahead on {wins}/{len(scenarios)} scenarios)")
    first = next((h for h in history if h["score"] > base_score), None)
    if first is None:
        print("the policy never beat the best tuned baseline's validation score in this run")
    else:
        print(f"first beat the best tuned baseline at {first['timesteps']:,} steps, "
              f"{first['wall_s']:.1f} s of training")


if __name__ == "__main__":
    main()
