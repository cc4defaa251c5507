"""Fit the synthetic demand model to a request trace and plot the fit.

::

    python -m envs.calibrate TRACE [TRACE ...] [--format auto|csv|jsonl|servegen]
        [--profile api] [--tier api] [--name NAME] [--source TEXT]
        --out FRAGMENT.yaml [--plot FIT.png]

Several TRACE paths are merged into one trace (tenants keep their file names).
The fit (:func:`fit_trace`) estimates, from requests binned into 15-minute steps:

- the weekday hourly profile (24 values, peak = 1) and the weekend factor
  (weekend-day volume / weekday volume; the weekday of the trace's first day is
  found as the rotation that makes Saturday and Sunday the quietest pair, unless
  ``--start-weekday`` is given). Hours are in the trace's own clock;
- burstiness: CV of per-step and per-minute counts, the step-to-step noise CV
  around the fitted profile (robust, Poisson counting noise removed) and
  bursts (steps well above the profile: rate per day and mean multiplier);
- tokens per request (input, output, total): p50/p90/p99, mean, and a
  lognormal fit (mu, sigma of log total tokens);
- tenant concentration: Gini of requests per tenant, top-10 share, and the
  Lomax tail index with that Gini (``usage_tail_alpha = G / (2G - 1)``).

The fragment is a scenario file (``base: default``) that sets the fitted
profile, ``noise_cv``, ``usage_tail_alpha``, ``chat_tokens_per_request`` (p50
input + p50 output, the default scenario's convention; only when the trace has
token counts) and the tier's burst parameters, with every other figure of the
fit as comments and the source named in ``sources``. The plot shows the trace
beside the synthetic model run with the fragment: weekday hourly profile, daily
volume, per-step load over three days and the token-count distributions.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .trace import Trace, bin_trace, load_trace

DAY_S = 86400.0


def merge_traces(traces: list[Trace]) -> Trace:
    """One trace from several (same kind); tenants are prefixed by their trace's name."""
    if len(traces) == 1:
        return traces[0]
    kinds = {t.kind == "servegen" for t in traces}
    if len(kinds) > 1:
        raise ValueError("cannot merge windowed-rate (servegen) and per-request traces")
    t = np.concatenate([x.timestamp_s for x in traces])
    order = np.argsort(t, kind="stable")

    def cat(attr: str) -> np.ndarray:
        return np.concatenate([getattr(x, attr) for x in traces])[order]

    tenants = [x.tenant if x.tenant is not None else np.full(len(x.timestamp_s), "", dtype=object) for x in traces]
    tenant = np.concatenate([np.array([f"{x.name}/{v}" for v in ten], dtype=object)
                             for x, ten in zip(traces, tenants)])[order]
    cv = cat("cv") if all(x.cv is not None for x in traces) else None
    return Trace("+".join(x.name for x in traces), traces[0].kind, t[order], cat("requests"), cat("input_tokens"),
                 cat("output_tokens"), None, tenant, max(x.duration_s for x in traces), cv)


def gini(values: np.ndarray) -> float:
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n < 2 or x.sum() <= 0:
        return 0.0
    return float((2.0 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def _weekend_rotation(daily: np.ndarray) -> int:
    """Weekday index of day 0 that puts the two quietest-on-average days on Sat/Sun."""
    best, best_s = None, 0
    for s in range(7):
        wd = (np.arange(len(daily)) + s) % 7
        share = daily[wd >= 5].mean() / max(daily[wd < 5].mean(), 1e-12)
        if best is None or share < best:
            best, best_s = share, s
    return best_s


def fit_trace(trace: Trace, step_minutes: float = 15.0, start_weekday: int | None = None) -> dict[str, Any]:
    """Fit profile, weekend factor, burstiness, token and tenant statistics (see module doc)."""
    out: dict[str, Any] = {"trace": trace.name, "kind": trace.kind, "span_days": trace.span_s / DAY_S,
                           "requests": float(trace.requests.sum())}
    dt = step_minutes * 60.0
    sph = int(round(60.0 / step_minutes))
    counts = bin_trace(trace, trace.requests, dt)
    minute = bin_trace(trace, trace.requests, 60.0)
    out["cv_per_step"] = float(counts.std() / counts.mean())
    out["cv_per_minute"] = float(minute.std() / minute.mean())
    if trace.cv is not None:
        active = trace.requests > 0
        out["median_window_cv"] = float(np.median(trace.cv[active])) if active.any() else 0.0
    days = int((trace.span_s + 3600.0) // DAY_S)  # a quiet last hour still counts as a whole day
    out["days"] = days
    if days >= 1:
        spd = 24 * sph
        c = np.concatenate([counts, np.zeros(max(0, days * spd - len(counts)))])[: days * spd]
        daily = c.reshape(days, spd).sum(axis=1)
        if days >= 7:
            s = _weekend_rotation(daily) if start_weekday is None else int(start_weekday)
            weekday_of = (np.arange(days) + s) % 7
            weekend = weekday_of >= 5
            out["start_weekday"] = s
            out["weekend_factor"] = float(daily[weekend].mean() / daily[~weekend].mean())
        else:
            weekend = np.zeros(days, dtype=bool)
            out["start_weekday"] = start_weekday
            out["weekend_factor"] = None
        hourly = c.reshape(days, 24, sph).sum(axis=2)[~weekend].mean(axis=0)
        out["hourly"] = (hourly / hourly.max()).tolist()
        out["peak_trough"] = float(hourly.max() / max(hourly.min(), 1e-12))
        out["daily_volume"] = (daily / daily.mean()).tolist()
        # expected count per step from the fitted profile: hour shape x day level
        wf = np.where(weekend, out["weekend_factor"] or 1.0, 1.0)
        day_level = wf / wf.mean() * daily.mean() / spd
        # step-of-day shape from weekdays (finer than hours: ramps within an hour are not noise)
        by_step = c.reshape(days, spd)[~weekend].mean(axis=0)
        shape = by_step / max(by_step.mean(), 1e-12)
        expected = (day_level[:, None] * shape[None, :]).ravel()
        n_wd = int((~weekend).sum())
        r = c / np.maximum(expected, 1e-12)
        med = float(np.median(r))
        # noise CV: std of r over busy steps (expected >= median) with burst outliers trimmed,
        # minus the Poisson counting variance 1/expected of per-request traces
        busy = expected >= np.median(expected)
        rb = r[busy] / med
        spread = 1.4826 * float(np.median(np.abs(rb - 1.0)))
        keep = np.abs(rb - 1.0) <= max(5.0 * spread, 0.05)
        poisson = float(np.mean(1.0 / np.maximum(expected[busy][keep], 1e-12))) if trace.kind != "servegen" else 0.0
        var = float(rb[keep].var()) / (1.0 - 1.0 / n_wd if n_wd > 1 else 1.0)  # shape absorbs 1/n of it
        out["noise_cv"] = float(min(1.0, math.sqrt(max(0.0, var - poisson))))
        thresh = 1.0 + max(0.5, 4.0 * out["noise_cv"])
        hot = r / med > thresh
        starts = hot & ~np.concatenate([[False], hot[:-1]])
        out["burst_rate_per_day"] = float(starts.sum() / days)
        out["burst_multiplier"] = float(np.clip((r / med)[starts].mean(), 1.0, 100.0)) if starts.any() else 1.0
    if trace.has_tokens:
        ins, outs = trace.input_tokens, trace.output_tokens
        tot = ins + outs
        for name, arr in (("input", ins), ("output", outs), ("total", tot)):
            p50, p90, p99 = np.percentile(arr, [50, 90, 99])
            out[f"{name}_tokens"] = {"mean": float(arr.mean()), "p50": float(p50), "p90": float(p90),
                                     "p99": float(p99)}
        logs = np.log(tot[tot > 0])
        out["lognormal_mu"] = float(logs.mean())
        out["lognormal_sigma"] = float(logs.std())
        out["chat_tokens_per_request"] = float(np.median(ins) + np.median(outs))
    if trace.tenant is not None:
        labels, inv = np.unique(trace.tenant.astype(str), return_inverse=True)
        per = np.bincount(inv, weights=trace.requests)
        g = gini(per)
        out["tenants"] = int(len(labels))
        out["tenant_gini"] = g
        out["top10_share"] = float(np.sort(per)[::-1][:10].sum() / per.sum())
        out["usage_tail_alpha"] = float(np.clip(g / (2 * g - 1), 1.06, 20.0)) if g > 0.5 + 1e-3 else 20.0
    return out


def fragment(fit: dict[str, Any], name: str, profile: str, tier: str, source: str) -> dict[str, Any]:
    """Scenario fragment (``base: default``) with the fitted numbers."""
    demand: dict[str, Any] = {}
    if fit.get("hourly") is not None:
        prof: dict[str, Any] = {"hourly": [round(v, 3) for v in fit["hourly"]]}
        if fit.get("weekend_factor") is not None:
            prof["weekend_factor"] = round(float(np.clip(fit["weekend_factor"], 0.01, 2.0)), 3)
        demand["profiles"] = {profile: prof}
        demand["noise_cv"] = round(fit["noise_cv"], 3)
    if "usage_tail_alpha" in fit:
        demand["usage_tail_alpha"] = round(fit["usage_tail_alpha"], 3)
    if "chat_tokens_per_request" in fit:
        demand["chat_tokens_per_request"] = round(fit["chat_tokens_per_request"])
    frag: dict[str, Any] = {
        "base": "default", "name": name,
        "description": f"Default scenario with the {profile!r} demand profile fitted to {fit['trace']} "
                       f"by envs.calibrate.",
        "sources": [f"{source}; fitted by envs.calibrate on {date.today().isoformat()}"],
    }
    if demand:
        frag["demand"] = demand
    if "burst_rate_per_day" in fit:
        frag["tiers"] = [{"name": tier, "burst_rate_per_day": round(fit["burst_rate_per_day"], 3),
                          "burst_multiplier": round(fit["burst_multiplier"], 3)}]
    return frag


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def write_fragment(fit: dict[str, Any], frag: dict[str, Any], path: str | Path, command: str = "") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Fitted by envs.calibrate" + (f": {command}" if command else ""), "# Fit (all figures):"]
    lines += [f"#   {k}: {_fmt(v)}" for k, v in fit.items()]
    body = yaml.safe_dump(frag, sort_keys=False, width=110, default_flow_style=None)
    path.write_text("\n".join(lines) + "\n" + body)
    return path


# ------------------------------------------------------------------------------ plot
def _synthetic(frag_path: Path, tier: str, days: int = 7) -> tuple[np.ndarray, float]:
    """Fresh demand of ``tier`` per step over ``days`` (8 seeds, (steps, 8)) from the fragment, and steps/hour."""
    from .core import RationingCore

    n = 8
    core = RationingCore(frag_path, n, overrides={"time": {"episode_days": days, "start_weekday": 0}})
    core.reset(np.arange(n))
    j = core.tier_names.index(tier)
    out = np.empty((core.params.episode_steps, n))
    for k in range(len(out)):
        out[k] = core.step(np.zeros((n, core.n_tiers), np.float32))[4]["fresh_demand_tokens"][:, j]
    return out, 1.0 / core.params.dt_h


def _synthetic_tokens(frag_path: Path, tier: str, n: int = 20000) -> np.ndarray:
    """Tokens per request of the synthetic model (chat, or agentic = chat x truncated Pareto)."""
    from .scenario import load_scenario

    sc = load_scenario(frag_path)
    t = next(x for x in sc.tiers if x.name == tier)
    ag = sc.demand.agentic
    rng = np.random.default_rng(0)
    u = rng.random(n)
    tail = 1.0 - (ag.multiplier_min / ag.multiplier_max) ** ag.tail_alpha
    mult = ag.multiplier_min * (1.0 - tail * u) ** (-1.0 / ag.tail_alpha)
    chat = sc.demand.chat_tokens_per_request
    return np.where(rng.random(n) < t.agentic_share, chat * mult, chat)


def plot_fit(trace: Trace, fit: dict[str, Any], frag_path: Path, tier: str, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(13, 8.5))
    fig.suptitle(f"Trace {fit['trace']} vs synthetic model ({frag_path.name}, tier {tier!r})", fontsize=13)
    syn_all, sph = _synthetic(frag_path, tier)
    syn = syn_all[:, 0]
    sph_i = int(round(sph))
    syn_h = syn_all.mean(axis=1).reshape(-1, sph_i).sum(axis=1)
    syn_wd = syn_h[: 5 * 24].reshape(5, 24).mean(axis=0)
    a = ax[0, 0]
    if fit.get("hourly") is not None:
        tr_h = np.asarray(fit["hourly"])
        a.plot(np.arange(24), tr_h / tr_h.mean(), "o-", color="C0",
               label=f"trace (peak/trough {fit['peak_trough']:.2f})")
    a.plot(np.arange(24), syn_wd / syn_wd.mean(), "s--", color="C1",
           label=f"synthetic, mean of 8 seeds (peak/trough {syn_wd.max() / syn_wd.min():.2f})")
    a.set(title="Weekday hourly profile (relative to mean)", xlabel="hour of day (trace clock)",
          ylabel="load / daily mean", xticks=range(0, 24, 3))
    a.legend()
    a.grid(alpha=0.3)

    a = ax[0, 1]
    syn_d = syn_all.mean(axis=1).reshape(7, -1).sum(axis=1)
    a.bar(np.arange(7) - 0.2, syn_d / syn_d.mean(), width=0.4, color="C1", label="synthetic week (Mon..Sun)")
    if fit.get("daily_volume") is not None:
        dv = np.asarray(fit["daily_volume"])
        s = fit.get("start_weekday") or 0
        wk = np.zeros(7)
        cnt = np.zeros(7)
        for d, v in enumerate(dv):
            wk[(d + s) % 7] += v
            cnt[(d + s) % 7] += 1
        wk = np.divide(wk, cnt, out=np.full(7, np.nan), where=cnt > 0)
        wf = fit.get("weekend_factor")
        a.bar(np.arange(7) + 0.2, wk / np.nanmean(wk), width=0.4, color="C0",
              label="trace, mean by weekday" + (f" (weekend/weekday {wf:.2f})" if wf else ""))
    a.set(title="Daily volume (relative to mean)", xticks=range(7), ylim=(0, 1.6),
          xticklabels=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], ylabel="volume / mean")
    a.legend(loc="upper right")
    a.grid(alpha=0.3, axis="y")

    a = ax[1, 0]
    if not fit.get("days"):  # shorter than a day: per-minute counts over the trace
        ax[0, 0].text(0.05, 0.92, "trace shorter than a day: no hourly profile", transform=ax[0, 0].transAxes)
        m = bin_trace(trace, trace.requests, 60.0)
        a.plot(np.arange(len(m)) / 60.0, m / m.mean(), lw=1, color="C0",
               label=f"trace requests per minute (CV {fit['cv_per_minute']:.2f})")
        a.set(title="Trace load per minute", xlabel="hour", ylabel="load / mean")
        a.legend()
        a.grid(alpha=0.3)
    dt = 3600.0 / sph
    counts = bin_trace(trace, trace.requests, dt)
    n3 = min(len(counts), 3 * 24 * sph_i) if fit.get("days") else 0
    x = np.arange(n3) / sph / 24.0
    a.plot(x, counts[:n3] / counts.mean(), lw=0.8, color="C0", label=f"trace (CV/step {fit['cv_per_step']:.2f})")
    if fit.get("days"):
        syn3 = syn[: 3 * 24 * sph_i]
        a.plot(np.arange(len(syn3)) / sph / 24.0, syn3 / syn.mean(), lw=0.8, color="C1",
               label=f"synthetic tokens, one seed (CV/step {syn.std() / syn.mean():.2f})")
        a.set(title="Per-step load, first three days (trace: requests)", xlabel="day", ylabel="load / mean")
        a.legend()
        a.grid(alpha=0.3)

    a = ax[1, 1]
    syn_tok = np.sort(_synthetic_tokens(frag_path, tier))
    a.plot(syn_tok, np.linspace(0, 1, len(syn_tok)), color="C1", label="synthetic (chat + agentic mix)")
    if trace.has_tokens:
        tot = np.sort(trace.input_tokens + trace.output_tokens)
        a.plot(tot, np.linspace(0, 1, len(tot)), color="C0",
               label=f"trace total tokens (p50 {np.median(tot):,.0f}, p99 {np.percentile(tot, 99):,.0f})")
        mu, sg = fit["lognormal_mu"], fit["lognormal_sigma"]
        grid = np.geomspace(max(1.0, tot[0]), tot[-1], 200)
        from math import erf

        cdf = [0.5 * (1 + erf((math.log(g) - mu) / (sg * math.sqrt(2)))) for g in grid]
        a.plot(grid, cdf, "k:", label=f"lognormal fit (mu {mu:.2f}, sigma {sg:.2f})")
    else:
        a.text(0.3, 0.5, "trace has no token counts (windowed rates)", transform=a.transAxes)
    a.set(xscale="log", title="Tokens per request (CDF)", xlabel="tokens (input + output)", ylabel="CDF")
    a.legend(loc="lower right")
    a.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line (as every command of the project), not the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    """The command line; bad input prints one line ``error: ...`` on stderr and returns 2, writing nothing."""
    from .scenario import ScenarioError
    from .trace import TraceError

    try:
        run(argv)
    except (TraceError, ScenarioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # e.g. traces of different kinds given together
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    return 0


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Fit, write the fragment (and plot); returns the fit. Raises TraceError / ValueError on bad input."""
    ap = _OneLineParser(prog="python -m envs.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("trace", nargs="+", help="trace file(s) or ServeGen directories (merged)")
    ap.add_argument("--format", default="auto", choices=["auto", "csv", "jsonl", "servegen"])
    ap.add_argument("--time-unit", default="auto", choices=["auto", "s", "ms"])
    ap.add_argument("--start-weekday", type=int, default=None, help="weekday of the trace's first day (0 = Mon)")
    ap.add_argument("--profile", default="api", help="demand profile the fit sets")
    ap.add_argument("--tier", default="api", help="tier whose burst parameters the fit sets")
    ap.add_argument("--name", default=None, help="scenario name of the fragment")
    ap.add_argument("--source", default=None, help="source note written into 'sources'")
    ap.add_argument("--out", required=True, help="fragment YAML to write")
    ap.add_argument("--plot", default=None, help="PNG of trace vs synthetic")
    args = ap.parse_args(argv)
    if args.start_weekday is not None and not 0 <= args.start_weekday <= 6:
        ap.error(f"--start-weekday = {args.start_weekday}: must be 0 (Monday) .. 6 (Sunday)")
    for flag, value in (("--out", args.out), ("--plot", args.plot)):
        if value is not None and (Path(value).is_dir() or not Path(value).parent.is_dir()):
            ap.error(f"{flag} {value!r}: must be a file path in an existing folder")
    trace = merge_traces([load_trace(p, args.format, args.time_unit) for p in args.trace])
    fit = fit_trace(trace, start_weekday=args.start_weekday)
    out = Path(args.out)
    frag = fragment(fit, args.name or out.stem, args.profile, args.tier, args.source or f"trace {fit['trace']}")
    cmd = "python -m envs.calibrate " + shlex.join(argv if argv is not None else sys.argv[1:])
    write_fragment(fit, frag, out, cmd)
    print(f"wrote {out}")
    for k in ("requests", "days", "peak_trough", "weekend_factor", "start_weekday", "noise_cv", "cv_per_step",
              "cv_per_minute", "median_window_cv", "burst_rate_per_day", "burst_multiplier", "tenants",
              "tenant_gini", "top10_share", "lognormal_mu", "lognormal_sigma", "chat_tokens_per_request"):
        if k in fit:
            print(f"  {k}: {_fmt(fit[k])}")
    if args.plot:
        print(f"wrote {plot_fit(trace, fit, out, args.tier, args.plot)}")
    return fit


if __name__ == "__main__":
    raise SystemExit(main())
