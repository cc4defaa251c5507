"""The figure of :mod:`agents.tradeoffs.front`: margin against latency attainment and against churn.

The conditioned run's points are numbered (``1``, ``2``, ...) and the rules tuned at a weighting are
``T1``, ``T2``, ...; a key under the panels gives each number's weighting. Shipped rules and single
runs carry their names. Points closer than 2% of both axes' spans share one label (``3, 7, T2,
fair-share-tod``), so a cluster of near-identical policies stays readable; error bars (95% CI over
seeds) are drawn light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STYLE = {"preference": ("^", "tab:orange", "conditioned run at a weighting (numbered: key below)"),
         "single": ("o", "tab:blue", "run trained at one weighting (m,l,c)"),
         "rule": ("s", "dimgray", "tuned rule"),
         "weighted-rule": ("D", "tab:green", "rule tuned at one weighting (T-numbered: key below)")}
RULE_KINDS = ("rule", "weighted-rule")
"""Front rows of rules: the shipped tuned rules, and rules tuned at another weighting (``--tuned-rules``)."""
SHORT = {"preference": "conditioned", "single": "single"}


def _name(r: dict[str, Any]) -> str:
    if "_id" in r:
        return r["_id"]
    return r["policy"] if r["kind"] in RULE_KINDS else f"{SHORT[r['kind']]} {r['weights']}"


def numbered(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Copies of ``rows`` with ``_id`` on the conditioned points (1, 2, ...) and the weighted rules (T1, ...),
    and the key's entries (``1 m3,l0,c0``, ``T1 fair-share-tod [m1,l0,c0]``)."""
    out, key, n = [], [], {"preference": 0, "weighted-rule": 0}
    for r in rows:
        r = dict(r)
        if r["kind"] in n:
            n[r["kind"]] += 1
            r["_id"] = f"{'' if r['kind'] == 'preference' else 'T'}{n[r['kind']]}"
            key.append(f"{r['_id']} {r['weights'] if r['kind'] == 'preference' else r['policy']}")
        out.append(r)
    return out, key


def group_labels(points: list[tuple[float, float, dict[str, Any]]], span: tuple[float, float]) -> list[tuple]:
    """(x, y, text) per group of points within 2% of both spans of the group's first point: the members'
    labels (:func:`_name`) joined, numbers first."""
    groups: list[list[tuple[float, float, dict[str, Any]]]] = []
    for p in points:
        for g in groups:
            if abs(g[0][0] - p[0]) < 0.02 * span[0] and abs(g[0][1] - p[1]) < 0.02 * span[1]:
                g.append(p)
                break
        else:
            groups.append([p])
    out = []
    for g in groups:
        names = [_name(r) for _, _, r in g]
        ids = [t for t in names if t[:1].isdigit() or (t[:1] == "T" and t[1:].isdigit())]
        out.append((g[0][0], g[0][1], ", ".join(ids + [t for t in names if t not in ids])))
    return out


def _labels(ax, labels: list[tuple], xr: tuple[float, float], yr: tuple[float, float], reversed_x: bool) -> None:
    """Labels beside their points, on the inner side near the right edge, moved down while they would overlap."""
    placed: list[tuple[float, float]] = []
    for x, y, text in sorted(labels, key=lambda t: -t[1]):
        fx = (x - xr[0]) / xr[1]
        fx = 1.0 - fx if reversed_x else fx
        fy = (y - yr[0]) / yr[1]
        dy = 0
        while any(abs(fx - px) < 0.3 and abs(fy + dy / 300 - py) < 0.035 for px, py in placed):
            dy -= 11  # points; about 0.037 of the axis height
        placed.append((fx, fy + dy / 300))
        left = fx > 0.6
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(-7 if left else 7, 4 + dy), fontsize=7.5,
                    ha="right" if left else "left",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "gray"} if dy else None)


PANELS = (("latency_attainment", 100.0, "latency attainment, all tiers (% of served tokens within target)"),
          ("churned_users", 1e-3, "churned users per episode (thousands; axis reversed: lower is better)"))


def _panel(ax, rows: list[dict[str, Any]], key: str, unit: float, zoom: bool) -> None:
    """One panel; ``zoom``: limited to the learned policies' points (plus 20%), every point labelled alone;
    a learned point further from the shipped rules' box than that box is wide on either axis (a far
    corner of the simplex) is left out of the zoom, so that the region the rules share stays readable."""
    inside = rows
    if zoom:
        learned = [r for r in rows if r["kind"] not in RULE_KINDS] or rows
        shipped = [r for r in rows if r["kind"] == "rule"]
        if shipped:
            box = [(min(v), max(v)) for v in ([r[key] * unit for r in shipped],
                                              [r["margin_usd"] / 1e6 for r in shipped])]
            near = [r for r in learned if all(lo - (hi - lo) <= v <= hi + (hi - lo) for v, (lo, hi) in
                                              zip((r[key] * unit, r["margin_usd"] / 1e6), box))]
            learned = near or learned
        lo_x, hi_x = min(r[key] * unit for r in learned), max(r[key] * unit for r in learned)
        lo_y, hi_y = min(r["margin_usd"] / 1e6 for r in learned), max(r["margin_usd"] / 1e6 for r in learned)
        px, py = 0.2 * ((hi_x - lo_x) or abs(hi_x) * 1e-3 or 1.0), 0.2 * ((hi_y - lo_y) or abs(hi_y) * 1e-3 or 1.0)
        ax.set_xlim(lo_x - px, hi_x + px)
        ax.set_ylim(lo_y - py, hi_y + py)
        inside = [r for r in rows if lo_x - px <= r[key] * unit <= hi_x + px
                  and lo_y - py <= r["margin_usd"] / 1e6 <= hi_y + py]
    for kind, (marker, colour, legend) in STYLE.items():
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        x, y = [r[key] * unit for r in sel], [r["margin_usd"] / 1e6 for r in sel]
        if not zoom:
            ax.errorbar(x, y, xerr=[r[f"{key}_ci95"] * unit for r in sel],
                        yerr=[r["margin_usd_ci95"] / 1e6 for r in sel], fmt="none", ecolor=colour, alpha=0.25,
                        lw=0.8, capsize=0, zorder=1)
        ax.scatter(x, y, marker=marker, c=colour, s=60 if kind not in RULE_KINDS else 50, edgecolors="black",
                   linewidths=0.5, label=legend, zorder=3 if kind not in RULE_KINDS else 2)
    front = [r for r in rows if r["pareto"]]
    ax.scatter([r[key] * unit for r in front], [r["margin_usd"] / 1e6 for r in front], s=170, facecolors="none",
               edgecolors="red", linewidths=1.1, zorder=4, label="Pareto-optimal in all three metrics")
    xs, ys = [r[key] * unit for r in inside], [r["margin_usd"] / 1e6 for r in inside]
    span = ((max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0)
    groups = group_labels(list(zip(xs, ys, inside)), span)
    _labels(ax, groups, (min(xs), span[0]), (min(ys), span[1]), reversed_x=key == "churned_users")
    ax.grid(alpha=0.3)
    if key == "churned_users":
        ax.invert_xaxis()  # right is better on every panel


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Top: every point with its 95% CI; bottom: zoomed on the learned policies, each point labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, keys = numbered(rows)
    fig, axes = plt.subplots(2, 2, figsize=(13, 11), dpi=100)
    for row, zoom in enumerate((False, True)):
        for col, (key, unit, label) in enumerate(PANELS):
            _panel(axes[row, col], rows, key, unit, zoom)
            axes[row, col].set_xlabel(label + (" (zoom)" if zoom else ""))
        axes[row, 0].set_ylabel("gross margin per episode (M$)" + (" (zoom)" if zoom else ""))
    axes[0, 0].legend(loc="lower left", fontsize=8)
    fig.suptitle(title + "\ntop: all points (faint bars: 95% CI over seeds; the seeds are shared, so differences are "
                 "tighter); bottom: zoom on the learned policies. Up and right is better.", fontsize=9.5)
    lines = ["   ".join(keys[i: i + 8]) for i in range(0, len(keys), 8)]
    if lines:
        fig.text(0.01, 0.005, "numbered points (weights m,l,c):\n" + "\n".join(lines), fontsize=7.5, va="bottom",
                 ha="left")
    fig.tight_layout(rect=(0, 0.013 * (len(lines) + 1) + 0.005, 1, 1))
    fig.savefig(path)
    plt.close(fig)


__all__ = ["RULE_KINDS", "group_labels", "numbered", "plot"]
