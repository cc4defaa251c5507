"""PPO training throughput on the batched env vs the same env through DummyVecEnv.

    python benchmarks/train_throughput.py [--timesteps 327680] [--dummy-timesteps 65536]

Runs stable-baselines3 PPO with the default hyperparameters
(``agents/ppo/hyperparams/ppo.yaml``) and reports, for the whole ``learn()`` wall
time: env-steps/s on the native batched ``RationingVecEnv``, the same on a
``DummyVecEnv`` of single ``RationingEnv`` (same n_envs, same PPO settings) in the
same process, their ratio, and the share of wall time spent inside the
environment (``step_wait``/``reset``). One torch thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper  # noqa: E402

import envs  # noqa: E402
from agents.ppo.config import DEFAULT_TRAIN_SCENARIOS, HYPERPARAMS_FILE, load_hyperparams  # noqa: E402
from envs.sb3_vec_env import RationingVecEnv  # noqa: E402


class EnvTimer(VecEnvWrapper):
    """Accumulates wall time spent in the wrapped env's reset and step_wait."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self):
        t = time.perf_counter()
        obs = self.venv.reset()
        self.seconds += time.perf_counter() - t
        return obs

    def step_wait(self):
        t = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - t
        return out


def measure(venv, hp, timesteps: int) -> tuple[float, float]:
    timed = EnvTimer(venv)
    model = PPO("MlpPolicy", timed, n_steps=hp.n_steps, batch_size=hp.batch_size, n_epochs=hp.n_epochs,
                learning_rate=hp.learning_rate, gamma=hp.gamma, policy_kwargs={"net_arch": list(hp.net_arch)},
                seed=0, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    wall = time.perf_counter() - start
    return model.num_timesteps / wall, timed.seconds / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=327_680)
    parser.add_argument("--dummy-timesteps", type=int, default=65_536)
    parser.add_argument("--n-envs", type=int, default=None, help="override the hyperparameter file")
    parser.add_argument("--n-steps", type=int, default=None, help="override the hyperparameter file")
    parser.add_argument("--batch-size", type=int, default=None, help="override the hyperparameter file")
    parser.add_argument("--no-dummy", action="store_true", help="skip the DummyVecEnv comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hp = load_hyperparams(HYPERPARAMS_FILE, DEFAULT_TRAIN_SCENARIOS,
                          {"n_envs": args.n_envs, "n_steps": args.n_steps, "batch_size": args.batch_size})
    print(f"PPO n_envs={hp.n_envs} n_steps={hp.n_steps} batch={hp.batch_size} epochs={hp.n_epochs} "
          f"net={hp.net_arch}, torch threads=1")
    batched, batched_share = measure(RationingVecEnv(hp.n_envs, scenario=DEFAULT_TRAIN_SCENARIOS), hp,
                                     args.timesteps)
    print(f"batched RationingVecEnv : {batched:>9,.0f} env-steps/s  (env {100 * batched_share:.1f}% of wall time)")
    if args.no_dummy:
        return
    dummy_env = DummyVecEnv([lambda: envs.RationingEnv() for _ in range(hp.n_envs)])
    dummy, dummy_share = measure(dummy_env, hp, args.dummy_timesteps)
    print(f"DummyVecEnv of single envs: {dummy:>7,.0f} env-steps/s  (env {100 * dummy_share:.1f}% of wall time)")
    print(f"ratio batched / DummyVecEnv: {batched / dummy:.1f}x")


if __name__ == "__main__":
    main()
