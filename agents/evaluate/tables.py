"""The Markdown and CSV tables of an evaluation."""

from __future__ import annotations

from typing import Any

from agents.common.seeds import EVAL_SEED_BASE
from agents.evaluate.headline import markdown_section
from agents.evaluate.results import Evaluation


# ------------------------------------------------------------------------------- tables
def _pm(mean: float | None, ci: float | None, scale: float = 1.0, digits: int = 1, comma: bool = False) -> str:
    if mean is None:
        return "n/a"
    fmt = f"{{:,.{digits}f}}" if comma else f"{{:.{digits}f}}"
    text = fmt.format(mean * scale)
    return text if ci is None else f"{text} ± {fmt.format(ci * scale)}"


HEADLINE = (  # column, metric, scale, digits, thousands separators
    ("return", "episode_return", 1.0, 1, False),
    ("margin $k", "margin_usd", 1e-3, 0, True),
    ("revenue $k", "revenue_usd", 1e-3, 0, True),
    ("cost $k", "cost_usd", 1e-3, 0, True),
    ("latency pen. $k", "latency_penalty_usd", 1e-3, 0, True),
    ("churn pen. $k", "churn_penalty_usd", 1e-3, 0, True),
    ("SLA credits $k", "sla_credit_usd_all", 1e-3, 0, True),
    ("attainment %", "latency_attainment_all", 100.0, 1, False),
    ("churned users", "churned_users_all", 1.0, 0, True),
    ("throttled %", "throttled_share_all", 100.0, 1, False),
    ("collapse h", "collapse_hours", 1.0, 1, False),
    ("failed %", "failed_share_all", 100.0, 2, False),
)
TIER_TABLES = (  # title, metric, scale, digits, thousands separators
    ("Latency-target attainment per tier (% of served tokens within target)", "latency_attainment", 100.0, 1, False),
    ("p95 latency per tier (s)", "p95_latency_s", 1.0, 1, True),
    ("Churned users per tier", "churned_users", 1.0, 0, True),
    ("Throttled share per tier (% of demanded tokens refused by quota)", "throttled_share", 100.0, 1, False),
    ("SLA credits per tier ($k; Rationing-v1)", "sla_credit_usd", 1e-3, 1, True),
    ("Availability per tier (% of finished tokens not failed)", "availability", 100.0, 2, False),
)


def markdown(ev: Evaluation) -> str:
    seeds = f"{ev.n_seeds} evaluation seeds ({EVAL_SEED_BASE}..{EVAL_SEED_BASE + ev.n_seeds - 1})"
    lines = [f"# Evaluation: mean ± 95% CI over {seeds}", ""]
    lines.append("Return in units of the scenario's `reward.scale_usd` ($10k by default); money summed over the "
                 "episode. *vs best* = return / return of the best tuned baseline on that scenario (marked **); "
                 "*Δ return vs best* = the difference, with its CI paired over the same seeds.")
    lines.append("")
    head = ["scenario", "policy", *[h[0] for h in HEADLINE[:1]], "vs best", "Δ return vs best",
            *[h[0] for h in HEADLINE[1:]]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(ev.summary, key=lambda r: (ev.scenarios.index(r["scenario"]), ev.labels.index(r["policy"])))
    for r in order:
        m = r["metrics"]
        name = f"**{r['policy']}**" if ev.best.get(r["scenario"]) == r["policy"] else r["policy"]
        if r["reference"]:
            name += " (reference)"
        ratio = r.get("ratio_to_best_baseline")
        cells = [r["scenario"], name, _pm(m["episode_return"]["mean"], m["episode_return"]["ci95"]),
                 "n/a" if ratio is None else f"{ratio:.3f}",
                 _pm(r.get("return_gap_to_best_baseline"), r.get("return_gap_ci95"))]
        cells += [_pm(m[k]["mean"], m[k]["ci95"], s, d, c) for _, k, s, d, c in HEADLINE[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Best tuned baseline: " + ", ".join(f"{sc}: {ev.best.get(sc) or 'n/a'}" for sc in ev.scenarios)
                 + f"; overall (mean return): {ev.best.get('overall') or 'n/a'}.")
    lines += markdown_section(ev)
    for title, metric, scale, digits, comma in TIER_TABLES:
        tiers = list(order[0]["tier_metrics"][metric]) if order else []
        lines += ["", f"## {title}", "", "| scenario | policy | " + " | ".join(tiers) + " |",
                  "|" + "---|" * (2 + len(tiers))]
        for r in order:
            tm = r["tier_metrics"][metric]
            vals = [_pm(tm[t]["mean"], tm[t]["ci95"], scale, digits, comma) if t in tm else "n/a" for t in tiers]
            lines.append(f"| {r['scenario']} | {r['policy']} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _csv_rows(ev: Evaluation) -> tuple[list[str], list[dict[str, Any]]]:
    out = []
    for r in ev.summary:
        row: dict[str, Any] = {"policy": r["policy"], "spec": r["spec"], "kind": r["kind"], "scenario": r["scenario"],
                               "n_seeds": r["n_seeds"], "best_baseline": r.get("best_baseline"),
                               "ratio_to_best_baseline": r.get("ratio_to_best_baseline"),
                               "return_gap_to_best_baseline": r.get("return_gap_to_best_baseline"),
                               "return_gap_ci95": r.get("return_gap_ci95")}
        for m, v in r["metrics"].items():
            row[f"{m}_mean"], row[f"{m}_ci95"] = v["mean"], v["ci95"]
        for m, per in r["tier_metrics"].items():
            for t, v in per.items():
                row[f"{m}.{t}_mean"], row[f"{m}.{t}_ci95"] = v["mean"], v["ci95"]
        out.append(row)
    fields = list(dict.fromkeys(k for row in out for k in row))
    return fields, out


