"""Environment throughput: env-steps/s of the batched core vs Gymnasium's CartPoleVectorEnv.

    python benchmarks/env_throughput.py [--seconds 2] [--scenario default]

For each batch size N it steps ``RationingVectorEnv`` (the Gymnasium vector view,
same-step auto-reset included) of ``Rationing-v0`` and ``Rationing-v1`` and, in the
same process, Gymnasium's native numpy ``CartPoleVectorEnv`` at the same N as a
reference, and prints them and the ratios v1/v0 and v1/CartPole. The three are
measured in alternating rounds and each keeps its best round, so that load from
other processes hits all alike and no side gets a best-of the other lacks. Also
the single ``RationingEnv`` against Gymnasium's single ``CartPole-v1`` (unwrapped),
alternated the same way, and the stable-baselines3 ``RationingVecEnv``. Run with
one BLAS/OpenMP thread (set below) on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import gymnasium as gym  # noqa: E402
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


def _best_of_alternating(steps: list, n: int, seconds: float, rounds: int = 10) -> list[float]:
    """Best-round steps/s of each callable in ``steps`` (each steps n envs), measured in alternating rounds."""
    best = [0.0] * len(steps)
    for _ in range(rounds):
        for i, step in enumerate(steps):
            best[i] = max(best[i], _rate(step, n, seconds / rounds))
    return best


def _vector_rates(n: int, scenario: str, seconds: float) -> list[float]:
    """Best-round env-steps/s of v0, v1 and CartPoleVectorEnv at batch size n, measured alternately."""
    steps = []
    for v in (0, 1):
        env = envs.RationingVectorEnv(n, scenario=scenario, version=v)
        env.reset(seed=0)
        act = np.zeros((n, env.core.action_size), np.float32)
        steps.append(lambda env=env, act=act: env.step(act))
    cart = CartPoleVectorEnv(num_envs=n)
    cart.reset(seed=0)
    cact = np.zeros(n, np.int64)
    steps.append(lambda: cart.step(cact))
    return _best_of_alternating(steps, n, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--sizes", default="1,64,1024,16384")
    args = parser.parse_args()

    print(f"{'N':>7} {'v0 steps/s':>12} {'v1 steps/s':>12} {'v1/v0':>6} {'CartPole steps/s':>17} {'v1/CartPole':>11}")
    for n in [int(s) for s in args.sizes.split(",")]:
        v0, v1, ref = _vector_rates(n, args.scenario, 2 * args.seconds)
        print(f"{n:>7} {v0:>12,.0f} {v1:>12,.0f} {v1 / v0:>6.2f} {ref:>17,.0f} {v1 / ref:>11.2f}")

    single = envs.RationingEnv(args.scenario, version=envs.LATEST_VERSION)
    single.reset(seed=0)
    a = np.zeros(single.action_space.shape, np.float32)

    def single_step() -> None:
        _, _, term, trunc, _ = single.step(a)
        if term or trunc:
            single.reset()

    cart1 = gym.make("CartPole-v1").unwrapped  # Gymnasium's single CartPole, no wrappers: the reference
    cart1.reset(seed=0)

    def cart_step() -> None:
        _, _, term, trunc, _ = cart1.step(0)
        if term or trunc:
            cart1.reset()

    mine, ref1 = _best_of_alternating([single_step, cart_step], 1, 2 * args.seconds)
    print(f"single RationingEnv (v{envs.LATEST_VERSION}): {mine:,.0f} steps/s; single CartPole-v1: {ref1:,.0f} "
          f"steps/s; ratio {mine / ref1:.3f}")
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
