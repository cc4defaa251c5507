"""SIGKILL train.py at random moments and resume: how many runs end with the uninterrupted run's weights?

    python benchmarks/kill_resume.py --kills 20 [--seed 0]

Runs the tiny configuration of the tests (tests/data/ppo_tiny.yaml, 8,192 timesteps, final evaluation on
1 seed) once uninterrupted, then ``--kills`` times: start, SIGKILL after a random delay drawn over the whole
uninterrupted wall time (start-up, warm start, PPO, checkpoint writes, final evaluation), then
``--resume`` until it exits 0 (killing again at random while attempts remain). A run counts as resumed
when its final policy weights (sha256) and evaluation history equal the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--timesteps", "8192", "--eval-every", "4096", "--checkpoint-every", "4096", "--seed", "3",
        "--hyperparams", str(ROOT / "tests" / "data" / "ppo_tiny.yaml"), "--no-progress", "--val-seeds", "2",
        "--scenario", "default", "--scenario", "outage", "--eval-seeds", "1"]


def _run(argv: list[str], kill_after: float | None) -> int:
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *argv], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return -9


def _result(run: Path) -> tuple[str, list]:
    final = json.loads((run / "final.json").read_text())["path"]
    sha = hashlib.sha256((run / final / "policy.safetensors").read_bytes()).hexdigest()
    history = [(h["timesteps"], h["score"]) for h in map(json.loads, (run / "eval_history.jsonl").read_text()
                                                          .splitlines())]
    return sha, history


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    t0 = time.perf_counter()
    assert _run(["--output", str(work), "--run-name", "ref", *ARGS], None) == 0
    wall = time.perf_counter() - t0
    reference = _result(work / "ref")
    print(f"uninterrupted: {wall:.1f} s")
    same = k = tries = 0
    while k < a.kills:
        out = work / f"k{tries}"
        tries += 1
        delay = rng.uniform(0.0, wall)
        code = _run(["--output", str(out), "--run-name", "r", *ARGS], delay)
        if code == 0:  # finished before the kill: not a killed run, draw again
            continue
        kills, attempts = int(code == -9), 0
        while code != 0 and attempts < 6:
            attempts += 1
            argv = (["--resume", str(out / "r"), "--no-progress", "--eval-seeds", "1"] if (out / "r").exists()
                    else ["--output", str(out), "--run-name", "r", *ARGS])
            again = rng.uniform(0.0, wall) if attempts < 3 and rng.random() < 0.5 else None
            code = _run(argv, again)
            kills += int(code == -9)
        ok = code == 0 and _result(out / "r") == reference and (out / "r" / "evaluation" / "results.md").is_file()
        same += ok
        k += 1
        print(f"run {k}: first kill at {delay:.1f} s, {kills} kill(s), exit {code}, "
              f"{'same result' if ok else 'DIFFERENT'}")
    print(f"{same} of {a.kills} killed runs resumed to the uninterrupted run's weights and history")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if same == a.kills else 1


if __name__ == "__main__":
    raise SystemExit(main())
