"""PPO training throughput on the batched env, against SB3's own ceiling and against DummyVecEnv.

    python benchmarks/train_throughput.py [--timesteps 327680] [--dummy-timesteps 65536]

Runs stable-baselines3 PPO with the default hyperparameters
(``agents/ppo/hyperparams/ppo.yaml``) and reports, for the whole ``learn()`` wall
time, in the same process:

* env-steps/s on the native batched ``RationingVecEnv`` and the share of wall time
  spent inside the environment (``step_wait``/``reset``);
* the same PPO on :class:`ZeroCostVecEnv`, a ``VecEnv`` with the same spaces, number of
  rows and episode length whose step costs nothing (preallocated arrays): the most
  SB3 PPO allows with these hyperparameters on this machine; and the ratio;
* the same PPO on a ``DummyVecEnv`` of single ``RationingEnv`` (same n_envs), and the ratio.

The ceiling, the batched env and train.py's stack are measured in ``--rounds`` alternating
rounds and the best round of each is kept, so that load from other processes hits all alike; the
ratios of each round (to that round's ceiling) and their median are printed too.

One torch thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper  # noqa: E402

import envs  # noqa: E402
from agents.ppo.config import DEFAULT_TRAIN_SCENARIOS, HYPERPARAMS_FILE, load_hyperparams  # noqa: E402
from envs.sb3_vec_env import RationingVecEnv  # noqa: E402


class EnvTimer(VecEnvWrapper):
    """Accumulates wall time spent in the wrapped env's reset, step_async and step_wait (a residual
    stack computes its rule's actions in step_async)."""

    def __init__(self, venv) -> None:
        super().__init__(venv)
        self.seconds = 0.0

    def reset(self):
        t = time.perf_counter()
        obs = self.venv.reset()
        self.seconds += time.perf_counter() - t
        return obs

    def step_async(self, actions) -> None:
        t = time.perf_counter()
        self.venv.step_async(actions)
        self.seconds += time.perf_counter() - t

    def step_wait(self):
        t = time.perf_counter()
        out = self.venv.step_wait()
        self.seconds += time.perf_counter() - t
        return out


class ZeroCostVecEnv(VecEnv):
    """A ``VecEnv`` with the spaces and episode length of ``like`` whose steps cost nothing.

    Observations and rewards are preallocated constant arrays; every row ends its episode
    after ``episode_steps`` steps (staggered like the training rows) with SB3's
    ``terminal_observation`` / ``TimeLimit.truncated`` infos, as the real env does.
    """

    def __init__(self, like: VecEnv, episode_steps: int) -> None:
        super().__init__(like.num_envs, like.observation_space, like.action_space)
        n = like.num_envs
        self.obs = np.zeros((n, *like.observation_space.shape), dtype=np.float32)
        self.rewards = np.zeros(n, dtype=np.float32)
        self.t = np.arange(n) % episode_steps
        self.episode_steps = episode_steps
        self.empty = [{} for _ in range(n)]

    def reset(self):
        return self.obs

    def step_async(self, actions) -> None:
        pass

    def step_wait(self):
        self.t += 1
        dones = self.t >= self.episode_steps
        infos = self.empty
        if dones.any():
            self.t[dones] = 0
            infos = [{"terminal_observation": self.obs[i], "TimeLimit.truncated": True} if d else {}
                     for i, d in enumerate(dones)]
        return self.obs, self.rewards, dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        pass

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def train_stack(hp):
    """The env exactly as train.py builds it (``agents.ppo.sb3.make_env``): on the default hyperparameters
    a residual on the best tuned rule with its rule twin (a second batch of rows), VecMonitor, VecNormalize."""
    from agents.ppo import sb3
    from agents.ppo.parameterisation import ActionLayout
    from agents.ppo.residual import ResidualSpec
    from agents.rules import tuned_file_for

    probe = RationingVecEnv(1, scenario=DEFAULT_TRAIN_SCENARIOS[0], version=1)
    run = {"seed": 0, "reward_overrides": None, "env_version": 1,
           "action_layout": ActionLayout.from_params(probe.core.params).to_dict()}
    if hp.action_parameterisation == "residual":
        run["residual"] = ResidualSpec.from_tuned(hp.residual_rule, tuned_file_for(1), hp.residual_log_range).to_dict()
    return sb3.make_env(list(DEFAULT_TRAIN_SCENARIOS), run, hp)


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
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the three measurements")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hp = load_hyperparams(HYPERPARAMS_FILE, DEFAULT_TRAIN_SCENARIOS,
                          {"n_envs": args.n_envs, "n_steps": args.n_steps, "batch_size": args.batch_size})
    print(f"PPO n_envs={hp.n_envs} n_steps={hp.n_steps} batch={hp.batch_size} epochs={hp.n_epochs} "
          f"net={hp.net_arch}, torch threads=1")
    real = RationingVecEnv(hp.n_envs, scenario=DEFAULT_TRAIN_SCENARIOS, version=1)
    zero = ZeroCostVecEnv(real, real.core.params.episode_steps)
    stack = train_stack(hp)
    # alternating rounds, best round of each kept: load from other processes hits all three alike
    best = {"ceiling": (0.0, 0.0), "batched": (0.0, 0.0), "stack": (0.0, 0.0)}
    paired: dict[str, list[float]] = {"batched": [], "stack": []}  # each round's ratio to that round's ceiling
    for _ in range(args.rounds):
        this_round = {}
        for name, venv in (("ceiling", zero), ("batched", real), ("stack", stack)):
            this_round[name] = measure(venv, hp, args.timesteps)
            best[name] = max(best[name], this_round[name])
        for name in paired:
            paired[name].append(this_round[name][0] / this_round["ceiling"][0])
    (ceiling, _), (batched, batched_share), (stacked, stacked_share) = best["ceiling"], best["batched"], best["stack"]

    def rounds(name: str) -> str:
        return f"per round {' '.join(f'{x:.2f}' for x in paired[name])}, median {statistics.median(paired[name]):.2f}"

    print(f"batched RationingVecEnv : {batched:>9,.0f} env-steps/s  (env {100 * batched_share:.1f}% of wall time)")
    print(f"zero-cost VecEnv (SB3's ceiling): {ceiling:>9,.0f} env-steps/s; ratio {batched / ceiling:.2f} "
          f"({rounds('batched')})")
    print(f"train.py's stack ({hp.action_parameterisation} actions{', rule twin' if hp.twin_baseline else ''}, "
          f"VecMonitor, VecNormalize): {stacked:>9,.0f} env-steps/s "
          f"(env, rule and wrappers {100 * stacked_share:.1f}% of wall time); "
          f"ratio to the ceiling {stacked / ceiling:.2f} "
          f"({rounds('stack')})")
    if args.no_dummy:
        return
    dummy_env = DummyVecEnv([lambda: envs.RationingEnv(version=1) for _ in range(hp.n_envs)])
    dummy, dummy_share = measure(dummy_env, hp, args.dummy_timesteps)
    print(f"DummyVecEnv of single envs: {dummy:>7,.0f} env-steps/s  (env {100 * dummy_share:.1f}% of wall time)")
    print(f"ratio batched / DummyVecEnv: {batched / dummy:.1f}x")


if __name__ == "__main__":
    main()
