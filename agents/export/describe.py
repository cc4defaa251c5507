"""What an exported policy says about itself: the observation layout's meaning and units, and the source run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.ppo.checkpoint import pointer
from agents.ppo.run_policy import RUN_FILE, read_run, run_checkpoint

KINDS = ("best", "final", "latest")


class ExportError(ValueError):
    """A policy that cannot be exported; the message is one line."""



# ------------------------------------------------------------------ observation docs
#: meaning and unit of each observation entry, by name (or name prefix before "/").
OBS_DOC: dict[str, tuple[str, str]] = {
    "hour_sin": ("time of day: sin(2 pi hour / 24)", "1"),
    "hour_cos": ("time of day: cos(2 pi hour / 24)", "1"),
    "week_sin": ("time of week: sin(2 pi hour_of_week / 168), hour_of_week 0 = Monday 00:00", "1"),
    "week_cos": ("time of week: cos(2 pi hour_of_week / 168), hour_of_week 0 = Monday 00:00", "1"),
    "capacity": ("GPUs available from provider {x} / GPUs contracted from it", "ratio"),
    "burst_capacity": ("burst GPUs / total contracted GPUs", "ratio"),
    "utilisation": ("tokens served / capacity tokens, last step", "ratio"),
    "collapsed": ("1 while the service is collapsed, else 0", "flag"),
    "demand": ("demand tokens of tier {x} this step / its week-average demand tokens per step", "ratio"),
    "queue": ("queued tokens of tier {x} / nominal capacity tokens per step", "ratio"),
    "latency_over_target": ("log(mean latency of tier {x} / its latency target)", "log ratio"),
    "throttled_share": ("share of tier {x}'s users hitting their quota", "share 0..1"),
    "users": ("users of tier {x} / users at episode start", "ratio"),
    "quota": ("log(quota multiplier of tier {x}); multiplier 1 = the scenario's nominal "
              "quota_tokens_per_user_hour", "log multiplier"),
}


def describe_observation(names: list[str], low: np.ndarray, high: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(names):
        head, _, tail = name.partition("/")
        meaning, unit = OBS_DOC.get(name) or OBS_DOC.get(head) or ("undocumented", "?")
        out.append({"index": i, "name": name, "meaning": meaning.replace("{x}", repr(tail)), "unit": unit,
                    "low": float(low[i]), "high": float(high[i])})
    return out


# ------------------------------------------------------------------------ source
def resolve_source(source: str | Path, kind: str | None) -> tuple[Path, dict[str, Any] | None]:
    """The checkpoint folder to export and its run's ``run.json`` (None if not found)."""
    src = Path(source)
    if (src / RUN_FILE).is_file():
        run = read_run(src)
        if kind is None:
            return run_checkpoint(src), run
        folder = pointer(src, kind)
        if folder is None:
            raise ExportError(f"run {str(src)!r} has no {kind} checkpoint ({kind}.json is missing)")
        return folder, run
    if (src / "manifest.json").is_file():
        if kind is not None:
            raise ExportError(f"--checkpoint {kind} applies to a run folder; {str(src)!r} is a checkpoint folder")
        run_dir = src.resolve().parent.parent
        run = read_run(run_dir) if (run_dir / RUN_FILE).is_file() else None
        return src, run
    if not src.exists():
        raise ExportError(f"{str(src)!r} does not exist")
    raise ExportError(f"{str(src)!r} is neither a run folder (run.json) nor a checkpoint folder (manifest.json)")


def _scenario_params(scenarios: list[str], overrides: dict[str, Any] | None, obs_names: list[str],
                     layout: dict[str, Any] | None, version: int = 0):
    """Compiled params of each training scenario; all must share the layout and the action mapping
    (and match the checkpoint's ``action_layout`` if it records one)."""
    import envs
    from envs.observation import names as obs_layout
    from envs.observation import tier_block
    from envs.params import compile_params

    out = []
    for s in scenarios:
        try:
            params = compile_params(envs.load_scenario(s, overrides or None), version)
        except envs.ScenarioError as exc:
            raise ExportError(f"cannot load training scenario {s!r} to read its action mapping: {exc}") from None
        except ValueError as exc:
            raise ExportError(f"training scenario {s!r}: {exc}") from None
        if obs_layout(params.provider_names, params.tier_names, version) != obs_names:
            raise ExportError(f"training scenario {s!r} has another observation layout than the checkpoint's")
        out.append(params)
    first = out[0]
    for s, p in zip(scenarios, out):
        if (p.log_quota_step, p.quota_min, p.quota_max) != (first.log_quota_step, first.quota_min, first.quota_max):
            raise ExportError(f"training scenarios {scenarios[0]!r} and {s!r} map actions differently "
                              "(quota_step_factor / quota_min / quota_max); export a single-scenario run")
        if layout is not None:
            mine = (tier_block(p, "quota").start, p.n_tiers, p.quota_min, p.quota_max)
            theirs = (layout.get("quota_obs_start"), layout.get("n_tiers"), layout.get("quota_min"),
                      layout.get("quota_max"))
            step = layout.get("quota_step_factor")
            if mine != theirs or not isinstance(step, (int, float)) or \
                    not math.isclose(math.log(step), p.log_quota_step, rel_tol=1e-12):
                raise ExportError(f"training scenario {s!r} now maps actions differently from the checkpoint's "
                                  f"action_layout {layout}; the scenario changed since training")
    return out


