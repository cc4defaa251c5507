"""Environment throughput: env-steps/s of the batched core vs Gymnasium's CartPoleVectorEnv.

    python benchmarks/env_throughput.py [--seconds 2] [--scenario default]

For each batch size N it steps ``RationingVectorEnv`` (the Gymnasium vector view,
same-step auto-reset included) and, in the same process, Gymnasium's native
numpy ``CartPoleVectorEnv`` at the same N as a reference, and prints both and
their ratio. Also the single ``RationingEnv`` and the stable-baselines3
``RationingVecEnv``. Run with one BLAS/OpenMP thread (set below) on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv  # noqa: E402

import envs  # noqa: E402
from envs.sb3_vec_env import RationingVecEnv  # noqa: E402


def _rate(step, n: int, seconds: float) -> float:
    for _ in range(3):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        count += 10
    return count * n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--sizes", default="1,64,1024,16384")
    args = parser.parse_args()

    print(f"{'N':>7} {'Rationing steps/s':>18} {'CartPole steps/s':>17} {'ratio':>7}")
    for n in [int(s) for s in args.sizes.split(",")]:
        env = envs.RationingVectorEnv(n, scenario=args.scenario)
        env.reset(seed=0)
        act = np.zeros((n, len(env.tier_names)), np.float32)
        ours = _rate(lambda env=env, act=act: env.step(act), n, args.seconds)
        cart = CartPoleVectorEnv(num_envs=n)
        cart.reset(seed=0)
        cact = np.zeros(n, np.int64)
        ref = _rate(lambda cart=cart, cact=cact: cart.step(cact), n, args.seconds)
        print(f"{n:>7} {ours:>18,.0f} {ref:>17,.0f} {ours / ref:>7.2f}")

    single = envs.RationingEnv(args.scenario)
    single.reset(seed=0)
    a = np.zeros(len(single.tier_names), np.float32)

    def single_step() -> None:
        _, _, term, trunc, _ = single.step(a)
        if term or trunc:
            single.reset()

    print(f"single RationingEnv: {_rate(single_step, 1, args.seconds):,.0f} steps/s")
    for n in (64, 1024):
        vec = RationingVecEnv(n, scenario=args.scenario)
        vec.reset()
        act = np.zeros((n, len(vec.tier_names)), np.float32)

        def vec_step(vec=vec, act=act) -> None:
            vec.step_async(act)
            vec.step_wait()

        print(f"SB3 RationingVecEnv N={n}: {_rate(vec_step, n, args.seconds):,.0f} steps/s")


if __name__ == "__main__":
    main()
