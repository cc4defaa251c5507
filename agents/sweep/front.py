"""The sweep's front: every trial's best checkpoint and the tuned rules on margin, latency attainment and churn."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from agents.sweep.config import SweepConfig

FRONT_FIELDS = ["policy", "kind", "params", "margin_usd", "latency_attainment", "churned_users", "episode_return",
                "pareto"]



# ---------------------------------------------------------------------------- front
def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def pareto_flags(points: list[tuple[float, float, float]]) -> list[bool]:
    """Non-dominated points, maximising the first two coordinates and minimising the third."""
    def dominates(a, b) -> bool:
        return a[0] >= b[0] and a[1] >= b[1] and a[2] <= b[2] and a != b

    return [not any(dominates(q, p) for q in points) for p in points]


def front(cfg: SweepConfig, run_dirs: list[Path], params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Evaluate the trials' best checkpoints and the tuned baselines; write front.csv and front.png."""
    from agents.evaluate.command import records, run_evaluation

    scenarios = cfg.front.scenarios or cfg.base.scenario
    ev = run_evaluation([str(d) for d in run_dirs] + ["baselines"], scenarios, cfg.front.seeds, progress=False,
                        reference=False)
    names = {str(d): d.name for d in run_dirs}
    agg: dict[str, dict[str, Any]] = {}
    for r in records(ev):
        name = names.get(r["spec"], r["policy"])
        a = agg.setdefault(name, {"policy": name, "kind": "rl" if r["spec"] in names else "baseline",
                                  "params": (params or {}).get(name, ""), "n": 0,
                                  "margin_usd": 0.0, "latency_attainment": 0.0, "churned_users": 0.0,
                                  "episode_return": 0.0})
        a["n"] += 1
        for key, src in (("margin_usd", "margin_usd"), ("latency_attainment", "latency_attainment_all"),
                         ("churned_users", "churned_users_all"), ("episode_return", "episode_return")):
            a[key] += r[src] if r[src] is not None else math.nan
    rows = []
    for a in agg.values():
        n = a.pop("n")
        rows.append({k: (v / n if isinstance(v, float) else v) for k, v in a.items()})
    flags = pareto_flags([(r["margin_usd"], r["latency_attainment"], r["churned_users"]) for r in rows])
    for r, flag in zip(rows, flags):
        r["pareto"] = flag
    out = Path(cfg.output)
    with open(out / "front.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FRONT_FIELDS)
        w.writeheader()
        w.writerows(rows)
    plot_front(rows, out / "front.png", f"{cfg.name}: {', '.join(Path(s).stem for s in scenarios)}, "
               f"{cfg.front.seeds} evaluation seeds")
    return rows


def plot_front(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6.5), dpi=110)
    churn = [r["churned_users"] for r in rows]
    lo, hi = min(churn), max(churn)
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    for kind, marker, size in (("rl", "o", 70), ("baseline", "s", 80)):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        ax.scatter([r["latency_attainment"] * 100 for r in sel], [r["margin_usd"] / 1e6 for r in sel],
                        c=[r["churned_users"] for r in sel], cmap="viridis", norm=norm, marker=marker, s=size,
                        edgecolors=["red" if r["pareto"] else "black" for r in sel],
                        linewidths=[2.0 if r["pareto"] else 0.6 for r in sel], zorder=3)
    xs = [r["latency_attainment"] * 100 for r in rows]
    ys = [r["margin_usd"] / 1e6 for r in rows]
    xspan, yspan = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    groups: list[tuple[str, list[tuple[float, float, str]]]] = []  # points within 3% of the axes share a label
    for r, x, y in zip(rows, xs, ys):
        rl = r["kind"] == "rl"
        params = r.get("params") or ""
        item = (x, y, r["policy"] + (f" ({params})" if rl and params and len(params) <= 30 else ""))
        for kind, members in groups:
            if kind == r["kind"] and abs(members[0][0] - x) < 0.03 * xspan and abs(members[0][1] - y) < 0.03 * yspan:
                members.append(item)
                break
        else:
            groups.append((r["kind"], [item]))
    for kind, members in groups:
        rl = kind == "rl"
        x, y = members[0][0], members[0][1]
        names = [m[2] for m in members]
        text = names[0] if len(names) == 1 else (f"{len(names)} PPO trials" if rl else " = ".join(names))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(6, -11 if rl else 4), fontsize=7 if rl else 8,
                    color="dimgray" if rl else "black")
    # 2-D front (margin, attainment), dashed; red outlines: Pareto-optimal in all three (churn too)
    pts = sorted(((r["latency_attainment"] * 100, r["margin_usd"] / 1e6) for r in rows), key=lambda p: (-p[0], -p[1]))
    line, best = [], -math.inf
    for x, y in pts:
        if y > best:
            line.append((x, y))
            best = y
    if len(line) > 1:
        ax.plot([p[0] for p in line], [p[1] for p in line], "--", color="gray", lw=1.2, zorder=2)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label="churned users (mean)")
    ax.set_xlabel("latency attainment, all tiers (% of served tokens within target)")
    ax.set_ylabel("gross margin per episode (M$)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    kw = {"ls": "", "ms": 8}
    handles = [Line2D([], [], marker="o", mfc="lightgray", mec="black", label="PPO trial (best checkpoint)", **kw),
               Line2D([], [], marker="s", mfc="lightgray", mec="black", label="tuned baseline", **kw),
               Line2D([], [], marker="s", mfc="none", mec="red", mew=2, label="Pareto-optimal (3 metrics)", **kw),
               Line2D([], [], ls="--", color="gray", label="front in margin and attainment")]
    ax.legend(handles=handles, loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


