"""Running every policy on every scenario over evaluation seeds, as batches in :class:`envs.RationingCore`."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from agents.common.policy import PolicyError
from agents.common.seeds import ALL_SCENARIOS, eval_seeds
from agents.evaluate.metrics import episode_metrics, rollout
from agents.evaluate.resolve import PolicySpec, parse_policy, resolve_policy
from agents.evaluate.results import Cell, EvaluateError, Evaluation, summarize
from agents.rules import RULES, RuleContext, best_tuned_baseline, tuned_file_for

CHUNK_ROWS = 256
"""Seeds stepped together at most (bounds the memory of the per-step records)."""
SERIES_KEYS = ("capacity_tokens", "demand_tokens", "served_tokens", "quota_multiplier", "latency_s", "collapsed",
               "throttled_tokens")


# ------------------------------------------------------------------------------- running
def expand_specs(specs: list[str]) -> list[str]:
    out: list[str] = []
    for s in specs:
        out += list(RULES) if s == "baselines" else [s]
    return list(dict.fromkeys(out))


def _labels(specs: list[PolicySpec]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in specs:
        n = seen.get(s.label, 0) + 1
        seen[s.label] = n
        out.append(s.label if n == 1 else f"{s.label}#{n}")
    return out


def run_evaluation(policies: list[str], scenarios: list[str] | None = None, n_seeds: int = 5,
                   progress: bool = True, tuned_file: str | Path | None = None, reference: bool = True,
                   overrides: dict[str, Any] | None = None, env_version: int = 1,
                   seeds: np.ndarray | None = None) -> Evaluation:
    """Run every policy on every scenario over ``n_seeds`` evaluation seeds of env ``env_version``.

    ``tuned_file`` None: the shipped tuned baselines of that version (:func:`agents.rules.tuned_file_for`).
    ``seeds``: other seeds instead (e.g. validation seeds, for choices made before the evaluation).
    """
    from envs import RationingCore

    if tuned_file is None:
        tuned_file = tuned_file_for(env_version)

    scenarios = list(dict.fromkeys(scenarios or ALL_SCENARIOS))
    seeds = eval_seeds(n_seeds) if seeds is None else np.asarray(seeds, np.uint64)
    n_seeds = len(seeds)
    specs = [parse_policy(s, tuned_file) for s in expand_specs(policies)]
    if not specs:
        raise EvaluateError("no policy given (use --policy NAME_OR_PATH)")
    refs = [False] * len(specs)
    if reference and not any(s.kind == "baseline" and s.tuned for s in specs):
        best = best_tuned_baseline(tuned_file)
        if best is not None:
            specs.append(parse_policy(best, tuned_file))
            refs.append(True)
    labels = _labels(specs)
    # validates every scenario first
    contexts = {sc: RuleContext(sc, overrides, version=env_version) for sc in scenarios}
    chunks = [seeds[i: i + CHUNK_ROWS] for i in range(0, len(seeds), CHUNK_ROWS)]
    total = sum(contexts[sc].params.episode_steps for sc in scenarios) * len(seeds) * len(specs)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="env-step", unit_scale=True, dynamic_ncols=True,
                   mininterval=0.5)
    cells: list[Cell] = []
    try:
        for spec, label, ref in zip(specs, labels, refs):
            for sc in scenarios:
                ctx = contexts[sc]
                policy = resolve_policy(spec, ctx, tuned_file)
                parts, series = [], None
                for chunk in chunks:
                    core = RationingCore(sc, len(chunk), overrides=overrides, version=env_version)
                    if bar is not None:
                        bar.set_postfix_str(f"{label} | {sc}", refresh=False)
                    tick = functools.partial(bar.update, len(chunk)) if bar is not None else None
                    try:
                        ro = rollout(policy, core, chunk, on_step=tick)
                    except (ValueError, RuntimeError) as exc:
                        if spec.kind == "baseline":
                            raise
                        raise PolicyError(f"policy {spec.spec!r} cannot act on scenario {sc!r}: "
                                          f"{type(exc).__name__}: {exc}") from None
                    parts.append(episode_metrics(ro, ctx.params.dt_h))
                    if series is None:
                        series = {k: ro.series[k][:, 0] for k in SERIES_KEYS}
                metrics = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
                cells.append(Cell(label, spec, sc, seeds, ctx.tier_names, ctx.latency_target_s, ctx.params.dt_h,
                                  int(ctx.params.start_week_step // ctx.params.steps_per_day),
                                  ctx.params.episode_steps, metrics, series or {}, ref))
    finally:
        if bar is not None:
            bar.close()
    ev = Evaluation(cells, scenarios, labels, n_seeds, env_version=env_version)
    summarize(ev)
    import envs
    from agents.evaluate.headline import add_aggregates

    add_aggregates(ev, envs.ENV_IDS[ev.env_version])
    return ev


