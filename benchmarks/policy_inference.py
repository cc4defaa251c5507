"""Inference speed of an exported policy: decisions/s, ONNX Runtime vs the numpy path.

    python benchmarks/policy_inference.py [EXPORTED_DIR] [--seconds 1]

Without a folder it exports a freshly initialised policy of the default
architecture (``agents/ppo/hyperparams/ppo.yaml``: MLP 64-64 tanh, 45 observations,
6 tiers) into a temporary folder; speed does not depend on the weights' values.
For each backend it times ``predict`` (the action) and ``act`` (action plus quota
mapping) on one observation, and ``predict`` on a batch of 1,024 observations
taken from a real rollout. One thread everywhere (BLAS and onnxruntime's intra-op
pool), as a simulator embedding the policy would typically run it. Target: a
single-observation decision under 100 microseconds.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from agents.export.exported import load_policy  # noqa: E402


def _rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    for _ in range(20):
        fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            fn()
        count += 50
    return count / (time.perf_counter() - start)


def _synthetic_export(folder: Path) -> Path:
    """Export a freshly initialised default-architecture policy (for timing only)."""
    import yaml

    import envs
    from agents.export.exporter import export_policy
    from agents.ppo.checkpoint import save_checkpoint
    from agents.ppo.config import HYPERPARAMS_FILE
    from agents.ppo.parameterisation import ActionLayout
    from agents.ppo.run_policy import build_policy

    hp = yaml.safe_load(HYPERPARAMS_FILE.read_text())["default"]
    core = envs.RationingCore("default", 1)
    policy = build_policy(hp, core.obs_size, core.n_tiers)
    d = core.obs_size
    norm = {"obs_mean": np.zeros(d), "obs_var": np.ones(d), "obs_count": np.array(1.0), "ret_mean": np.array(0.0),
            "ret_var": np.array(1.0), "ret_count": np.array(1.0), "returns": np.zeros(1), "clip_obs": np.array(10.0),
            "clip_reward": np.array(10.0), "epsilon": np.array(1e-8), "gamma": np.array(0.99),
            "norm_obs": np.array(True), "norm_reward": np.array(True)}
    meta = {"timesteps": 0, "run_name": "untrained", "env_id": envs.ENV_ID, "env_version": envs.ENV_VERSION,
            "obs_names": core.obs_names, "tier_names": core.tier_names, "hyperparams": hp, "scenarios": ["default"],
            "seed": 0, "git_commit": None, "action_layout": ActionLayout.from_params(core.params).to_dict()}
    ckpt = save_checkpoint(folder / "checkpoints" / "best-000000000000", policy.state_dict(), norm, meta)
    out = folder / "exported"
    export_policy(ckpt, out)
    return out


def _observations(n: int) -> np.ndarray:
    """``n`` observations from a random-action rollout of the default scenario (numpy-only fallback: zeros)."""
    try:
        import envs
    except ImportError:
        return np.zeros((n, 45), np.float32)
    core = envs.RationingCore("default", 64)
    obs = [core.reset(np.arange(64, dtype=np.uint64)).copy()]
    rng = np.random.default_rng(0)
    while sum(len(o) for o in obs) < n:
        obs.append(core.step(rng.uniform(-1, 1, (64, core.n_tiers)).astype(np.float32))[0].copy())
    return np.concatenate(obs)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy", nargs="?", help="an exported policy folder (default: a synthetic one)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.policy) if args.policy else _synthetic_export(Path(tmp))
        import onnxruntime

        batch = _observations(1024)
        single = batch[100].copy()
        print(f"policy {folder} | numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
              f"{platform.processor() or platform.machine()}, 1 thread")
        print(f"{'backend':8s} {'call':22s} {'decisions/s':>13s} {'us/decision':>12s}")
        results = {}
        for backend in ("onnx", "numpy"):
            policy = load_policy(folder, backend=backend)
            assert policy.obs_size == batch.shape[1]
            cases = [("predict, 1 obs", 1, lambda p=policy: p.predict(single)),
                     ("act, 1 obs", 1, lambda p=policy: p.act(single)),
                     ("predict, batch 1,024", 1024, lambda p=policy: p.predict(batch))]
            for label, n, fn in cases:
                rate = _rate(fn, args.seconds) * n
                results[(backend, label)] = rate
                print(f"{backend:8s} {label:22s} {rate:13,.0f} {1e6 / rate:12.2f}")
        a_onnx = load_policy(folder, backend="onnx").predict(batch)[0]
        a_np = load_policy(folder, backend="numpy").predict(batch)[0]
        print(f"max |onnx - numpy| action difference on the batch: {np.abs(a_onnx - a_np).max():.2g}")
        best = max(results[(b, "predict, 1 obs")] for b in ("onnx", "numpy"))
        print(f"single-observation decision: {1e6 / best:.1f} us with the faster backend (target < 100 us)")


if __name__ == "__main__":
    main()
