"""Embed an exported rationing policy in your own simulator (no stable-baselines3, no ``envs``).

    python -m agents.export checkpoints/<run> --out exported/my-policy     # once, where SB3 is installed
    python examples/embed_policy.py exported/my-policy [--steps 96] [--backend auto|numpy|onnx]

The toy simulator below (a few lines of numpy: daily demand per tier, two cloud
providers who reclaim GPUs in the afternoon and an outage, a shared queue) stands in
for yours. What carries over to a real simulator:

1. load the folder with ``load_policy`` (numpy, plus onnxruntime if installed);
2. build the observation **by name** from the layout in ``policy.json``
   (``policy.obs_names``; meanings, units and bounds in ``policy.meta["observation"]["entries"]``),
   and fail loudly on a name your simulator does not provide;
3. every step call ``policy.act(obs)``: it returns the quota multipliers the environment would set,
   ``clip(current x quota_step_factor ** action, quota_min, quota_max)``,
   with the current multiplier read from the observation (``quota/<tier>`` = log multiplier).
   ``policy.predict(obs)`` gives the raw action in [-1, 1] if you map it yourself. Both refuse
   an observation with NaN or inf entries (``ObservationError``, a ``ValueError``, one line).

Only numpy and ``agents/export/exported.py`` are needed; that file has no other dependency
in this repository and can be copied into another code base.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    from agents.export.exported import PolicyLoadError, load_policy
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from agents.export.exported import PolicyLoadError, load_policy


class ToySimulator:
    """A deliberately small serving model with the same observation vocabulary."""

    STEP_H = 0.25

    def __init__(self, tiers: list[str], providers: list[str], seed: int = 0) -> None:
        self.tiers, self.providers = tiers, providers
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.quota = np.ones(len(tiers))                       # quota multipliers, 1 = nominal
        self.queue = np.zeros(len(tiers))                      # in units of capacity per step
        self.share = np.linspace(2.0, 1.0, len(tiers)) / np.linspace(2.0, 1.0, len(tiers)).sum()
        self.last_util, self.latency, self.throttled = 0.0, np.ones(len(tiers)), np.zeros(len(tiers))
        self.capacity = np.ones(len(providers))
        self.demand = np.ones(len(tiers))

    def step(self, new_quota: np.ndarray) -> None:
        self.quota = np.asarray(new_quota, dtype=float)
        hour = (self.t * self.STEP_H) % 24
        self.capacity = 1.0 - 0.3 * np.exp(-((hour - 15) / 3) ** 2) * np.ones(len(self.providers))
        if 40 <= self.t < 60:
            self.capacity[0] = 0.2                             # provider 0 is down
        daily = 1.0 + 0.6 * np.sin(2 * np.pi * (hour - 9) / 24)
        self.demand = daily * self.rng.lognormal(0.0, 0.1, len(self.tiers))
        admitted_share = 1.0 - np.exp(-2.0 * self.quota / self.demand)   # heavy users hit the quota first
        self.throttled = np.exp(-2.0 * self.quota / self.demand)
        work = self.queue + 1.1 * self.share * self.demand * admitted_share
        cap = self.capacity.mean()
        served = work * min(1.0, cap / max(work.sum(), 1e-9))
        self.queue = 0.7 * (work - served)
        self.last_util = served.sum() / cap
        self.latency = 1.0 + 8.0 * self.queue / np.maximum(served, 1e-3)
        self.t += 1

    def values(self) -> dict[str, float]:
        """Everything this simulator can report, keyed by the policy's observation names."""
        hour, week_hour = (self.t * self.STEP_H) % 24, (self.t * self.STEP_H) % 168
        v = {"hour_sin": np.sin(2 * np.pi * hour / 24), "hour_cos": np.cos(2 * np.pi * hour / 24),
             "week_sin": np.sin(2 * np.pi * week_hour / 168), "week_cos": np.cos(2 * np.pi * week_hour / 168),
             "burst_capacity": 0.0, "utilisation": self.last_util, "collapsed": 0.0}
        v |= {f"capacity/{p}": c for p, c in zip(self.providers, self.capacity)}
        for i, t in enumerate(self.tiers):
            v |= {f"demand/{t}": self.demand[i], f"queue/{t}": self.queue[i],
                  f"latency_over_target/{t}": np.log(self.latency[i]), f"throttled_share/{t}": self.throttled[i],
                  f"users/{t}": 1.0, f"quota/{t}": np.log(self.quota[i])}
        return v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy", help="an exported policy folder (python -m agents.export ... --out DIR)")
    parser.add_argument("--steps", type=int, default=96, help="simulated 15-minute steps (default: a day)")
    parser.add_argument("--backend", default="auto", choices=["auto", "numpy", "onnx"])
    args = parser.parse_args()

    try:  # a run folder instead of an export, a damaged folder, onnxruntime missing: one line saying what to do
        policy = load_policy(args.policy, backend=args.backend)
    except PolicyLoadError as exc:
        raise SystemExit(f"embed_policy.py: {exc}") from None
    layout = policy.meta["observation"]["entries"]
    low = np.array([e["low"] for e in layout], np.float32)
    high = np.array([e["high"] for e in layout], np.float32)
    providers = [n.split("/", 1)[1] for n in policy.obs_names if n.startswith("capacity/")]
    sim = ToySimulator(policy.tier_names, providers)
    print(f"{policy!r}\ntrained on {policy.meta['training']['scenarios']} at commit "
          f"{str(policy.meta['training']['git_commit'])[:10]}; {len(policy.obs_names)} observation entries")
    print("step  hour  util  quota multipliers (" + " ".join(policy.tier_names) + ")")
    for step in range(args.steps):
        values = sim.values()
        missing = [n for n in policy.obs_names if n not in values]
        if missing:
            raise SystemExit(f"this simulator does not provide observation {missing[0]!r}")
        obs = np.clip(np.array([values[n] for n in policy.obs_names], np.float32), low, high)
        multipliers = policy.act(obs)                          # what the environment would set
        sim.step(multipliers)
        if step % max(1, args.steps // 12) == 0 or step == args.steps - 1:
            print(f"{step:4d} {step * sim.STEP_H % 24:5.2f} {sim.last_util:5.2f}  "
                  + " ".join(f"{m:5.2f}" for m in multipliers))


if __name__ == "__main__":
    main()
