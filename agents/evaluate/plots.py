"""Plots of an evaluation (matplotlib, Agg backend): time series, headline bars, margin vs attainment.

Colours are fixed: tier i always has ``TIER_COLOURS[i]``, policy j (in the order
given) ``POLICY_COLOURS[j]``, so figures can be compared side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from agents.evaluate.results import Cell, Evaluation

TIER_COLOURS = ("#9e9e9e", "#1f77b4", "#9467bd", "#2ca02c", "#d62728", "#ff7f0e", "#8c564b", "#e377c2")
POLICY_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
                  "#ccb974", "#64b5cd")
SCENARIO_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def tier_colour(i: int) -> str:
    return TIER_COLOURS[i % len(TIER_COLOURS)]


def policy_colour(j: int) -> str:
    return POLICY_COLOURS[j % len(POLICY_COLOURS)]


def _time_axis(ax, hours: np.ndarray, start_weekday: int, collapsed: np.ndarray | None = None) -> None:
    n_days = int(np.ceil(hours[-1] / 24.0 + 1e-9)) if len(hours) else 0
    for d in range(n_days):
        if (start_weekday + d) % 7 >= 5:
            ax.axvspan(24 * d, 24 * (d + 1), color="#f0f0f0", zorder=0, lw=0)
    if collapsed is not None and collapsed.any():
        dt = hours[1] - hours[0] if len(hours) > 1 else 0.25
        on = np.flatnonzero(np.diff(np.concatenate([[0], (collapsed > 0.5).astype(int), [0]])))
        for a, b in zip(on[::2], on[1::2]):
            ax.axvspan(hours[a], hours[b - 1] + dt, color="#d62728", alpha=0.12, zorder=0, lw=0)
    ax.set_xlim(0, max(hours[-1] if len(hours) else 24, 1e-9))
    ax.set_xticks([24 * d for d in range(n_days + 1)])
    ax.set_xticks(np.arange(0, 24 * n_days + 1, 6), minor=True)
    ax.grid(True, axis="x", which="major", color="#d0d0d0", lw=0.6)
    ax.grid(True, axis="y", color="#e6e6e6", lw=0.5)


def _day_labels(ax, hours: np.ndarray, start_weekday: int) -> None:
    ticks = ax.get_xticks()
    ax.set_xticklabels([DAYS[(start_weekday + int(t // 24)) % 7] + " 00:00" if t < hours[-1] + 1e-6 else ""
                        for t in ticks])


def timeseries(cell: Cell, path: str | Path) -> None:
    """A week of the first evaluation seed: capacity and demand, quota, latency and throttling per tier."""
    s = cell.series
    steps = len(s["capacity_tokens"])
    hours = np.arange(steps) * cell.dt_h
    per_s = 1.0 / (cell.dt_h * 3600.0) / 1e6  # tokens per step -> M tokens/s
    fig, axes = plt.subplots(4, 1, figsize=(12, 11.5), sharex=True,
                             gridspec_kw={"height_ratios": [1.1, 1, 1.2, 0.9]})
    coll = s["collapsed"]
    for ax in axes:
        _time_axis(ax, hours, cell.start_weekday, coll)

    ax = axes[0]
    ax.plot(hours, s["capacity_tokens"] * per_s, color="black", lw=1.6, label="capacity")
    ax.plot(hours, s["demand_tokens"].sum(axis=1) * per_s, color="#1f77b4", lw=1.2, label="demand (fresh + retried)")
    ax.plot(hours, s["served_tokens"].sum(axis=1) * per_s, color="#2ca02c", lw=1.0, ls="--", label="served")
    ax.set_ylabel("M tokens / s")
    ax.set_ylim(bottom=0)
    ax.set_title("Capacity and demand (all tiers)", loc="left", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if coll.any():
        from matplotlib.patches import Patch

        handles.append(Patch(color="#d62728", alpha=0.12))
        labels.append("collapsed")
    ax.legend(handles, labels, loc="upper right", fontsize=8, ncol=4, framealpha=0.9)

    ax = axes[1]
    for i, t in enumerate(cell.tier_names):
        ax.plot(hours, s["quota_multiplier"][:, i], color=tier_colour(i), lw=1.3, label=t)
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", lw=0.7, ls=":")
    ax.set_ylabel("quota multiplier\n(1 = nominal)")
    ax.set_title("Quota per tier", loc="left", fontsize=10)

    ax = axes[2]
    for i, t in enumerate(cell.tier_names):
        ax.plot(hours, s["latency_s"][:, i], color=tier_colour(i), lw=1.1, label=t)
        ax.axhline(cell.latency_target_s[i], color=tier_colour(i), lw=0.9, ls="--", alpha=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("mean latency (s)")
    ax.set_title("Latency per tier (dashed: the tier's target)", loc="left", fontsize=10)

    ax = axes[3]
    dem = np.maximum(s["demand_tokens"], 1e-9)
    for i, t in enumerate(cell.tier_names):
        ax.plot(hours, 100.0 * s["throttled_tokens"][:, i] / dem[:, i], color=tier_colour(i), lw=1.0, label=t)
    ax.set_ylim(0, 100)
    ax.set_ylabel("throttled\n(% of demand)")
    ax.set_title("Demand refused by quota per tier", loc="left", fontsize=10)
    _day_labels(axes[-1], hours, cell.start_weekday)
    axes[-1].set_xlabel(f"time (scenario clock; grey = weekend; first evaluation seed {int(cell.seeds[0])})")

    fig.suptitle(f"{cell.label} on {cell.scenario}", fontsize=13, x=0.01, y=0.995, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, [f"tier: {t}" if i == 0 else t for i, t in enumerate(labels)], loc="upper right",
               ncol=len(labels), fontsize=9, frameon=False, bbox_to_anchor=(0.995, 0.997))
    fig.savefig(path, dpi=110)
    plt.close(fig)


_BARS = (  # metric, title, scale, unit
    ("episode_return", "Episode return", 1.0, "reward units"),
    ("margin_usd", "Gross margin", 1e-6, "$M per episode"),
    ("latency_attainment_all", "Latency-target attainment (all tiers)", 100.0, "% of served tokens"),
    ("churned_users_all", "Churned users (all tiers)", 1e-3, "thousand users"),
    ("throttled_share_all", "Throttled share (all tiers)", 100.0, "% of demanded tokens"),
    ("collapse_hours", "Collapse time", 1.0, "hours"),
)


def _cell_value(ev: Evaluation, policy: str, scenario: str, metric: str) -> tuple[float, float]:
    row = next(r for r in ev.summary if r["policy"] == policy and r["scenario"] == scenario)
    v = row["metrics"][metric]
    mean = np.nan if v["mean"] is None else v["mean"]
    ci = 0.0 if v["ci95"] is None else v["ci95"]
    return mean, ci


def headline_bars(ev: Evaluation, path: str | Path) -> None:
    """Grouped bars (scenario groups, one bar per policy) of the headline metrics with 95% CI."""
    n_p, n_s = len(ev.labels), len(ev.scenarios)
    fig, axes = plt.subplots(3, 2, figsize=(float(np.clip(4 + 0.3 * n_s * n_p, 12, 18)), 12))
    width = 0.8 / n_p
    x = np.arange(n_s)
    for ax, (metric, title, scale, unit) in zip(axes.flat, _BARS):
        for j, p in enumerate(ev.labels):
            vals = np.array([_cell_value(ev, p, sc, metric) for sc in ev.scenarios]) * scale
            lower = vals[:, 1] if metric == "episode_return" else np.minimum(vals[:, 1], vals[:, 0])  # >= 0 metrics
            ax.bar(x - 0.4 + width * (j + 0.5), vals[:, 0], width, yerr=np.stack([lower, vals[:, 1]]), capsize=2,
                   color=policy_colour(j), label=p, error_kw={"lw": 0.8})
        ax.set_xticks(x)
        ax.set_xticklabels(ev.scenarios, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(unit)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.grid(True, axis="y", color="#e6e6e6", lw=0.5)
        ax.set_axisbelow(True)
        if metric == "latency_attainment_all":
            lo = np.nanmin([_cell_value(ev, p, sc, metric)[0] for p in ev.labels for sc in ev.scenarios]) * scale
            ax.set_ylim(max(0.0, np.floor(lo / 5.0) * 5.0 - 5.0), 100.0)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(f"Headline metrics: mean and 95% CI over {ev.n_seeds} evaluation seeds", fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.955))
    fig.legend(handles, labels, loc="upper center", ncol=min(n_p, 7), fontsize=10, frameon=False,
               bbox_to_anchor=(0.5, 0.968))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def margin_vs_attainment(ev: Evaluation, path: str | Path) -> None:
    """Gross margin against latency-target attainment, one panel per scenario; colour = policy, bars = 95% CI."""
    from matplotlib.lines import Line2D

    n = len(ev.scenarios)
    cols = min(n, 3)
    rows = int(np.ceil((n + 1) / cols)) if n >= 3 else 1
    fig, axes = plt.subplots(rows, cols + (1 if n < 3 else 0), figsize=(5.2 * (cols + (n < 3)), 4.6 * rows),
                             squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for k, sc in enumerate(ev.scenarios):
        ax = flat[k]
        for j, p in enumerate(ev.labels):
            a, a_ci = _cell_value(ev, p, sc, "latency_attainment_all")
            m, m_ci = _cell_value(ev, p, sc, "margin_usd")
            ax.errorbar(100 * a, m / 1e6, xerr=100 * a_ci, yerr=m_ci / 1e6, fmt="o", color=policy_colour(j), ms=8,
                        capsize=2, lw=0.9, mec="black", mew=0.4)
        ax.set_title(sc, fontsize=11)
        ax.set_xlabel("attainment, all tiers (% of tokens in target)", fontsize=9)
        ax.set_ylabel("gross margin ($M per episode)", fontsize=9)
        ax.grid(True, color="#e6e6e6", lw=0.5)
    legend_ax = flat[n]
    legend_ax.axis("off")
    handles = [Line2D([], [], color=policy_colour(j), marker="o", ls="", ms=9, mec="black", mew=0.4, label=p)
               for j, p in enumerate(ev.labels)]
    legend_ax.legend(handles=handles, title="policy", loc="center", fontsize=10, title_fontsize=11, frameon=False)
    for ax in flat[n + 1:]:
        ax.axis("off")
    fig.suptitle(f"Margin against latency-target attainment: mean and 95% CI over {ev.n_seeds} seeds "
                 "(up and right is better)", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)
