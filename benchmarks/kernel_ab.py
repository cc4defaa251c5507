"""The compiled step of this checkout against the one at a git revision, in alternating rounds.

    python benchmarks/kernel_ab.py [--rev HEAD~1] [--num-envs 1024] [--scenario default] [--rounds 80]

Loads ``envs/fused_step.py`` as it was at ``--rev`` (``git show``) as a second module of the
``envs`` package (so it uses this checkout's ``fused_rows``/``fused_params``), steps two
identical ``Rationing-v1`` cores with the old and the new ``fused_step.step`` in alternating
rounds of 16 steps, keeps each one's best round and prints ns per row and the ratio new/old.
Alternating rounds in one process make the ratio robust to load from other processes, which
moves absolute figures by up to 2x on a shared VM; run it two or three times all the same.
The old kernel must share this checkout's layout and helpers: revisions from d0c2319 on (the
rows-inner layout, ``envs/fused_layout.py``); an older one is refused with one line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import envs  # noqa: E402
from envs import fused_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_old(rev: str, folder: Path):
    """``envs/fused_step.py`` at ``rev`` as the module ``envs._fused_step_ab``."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:envs/fused_step.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print(f"error: --rev {rev!r}: no envs/fused_step.py at that git revision of {ROOT}", file=sys.stderr)
        sys.exit(2)
    path = folder / "_fused_step_ab.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("envs._fused_step_ab", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        print(f"error: --rev {rev!r}: its envs/fused_step.py does not load with this checkout's helpers ({exc}); "
              "use a revision from d0c2319 on", file=sys.stderr)
        sys.exit(2)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD~1", help="git revision of the old kernel")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--rounds", type=int, default=80)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = load_old(args.rev, Path(folder))
        n = args.num_envs
        cores, steps = {}, {"old": old.step, "new": fused_step.step}
        for name in steps:
            core = envs.RationingCore(args.scenario, num_envs=n, version=1)
            core.reset(seeds=np.arange(n, dtype=np.uint64))
            cores[name] = core
        actions = np.random.default_rng(0).uniform(-1, 1, (16, n, cores["old"].action_size)).astype(np.float32)
        for name, step in steps.items():  # compile and warm up
            for a in actions:
                step(cores[name], a)
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(args.rounds):
            for name, step in steps.items():
                core, start = cores[name], time.perf_counter()
                for a in actions:
                    step(core, a)
                best[name] = min(best[name], (time.perf_counter() - start) / len(actions) / n * 1e9)
        print(f"N={n} {args.scenario}: old ({args.rev}) {best['old']:.0f} ns/row, new {best['new']:.0f} ns/row, "
              f"new/old {best['new'] / best['old']:.3f}")


if __name__ == "__main__":
    main()
