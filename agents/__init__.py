"""Policies for the rationing environment, one package per job:

* :mod:`agents.rules`: the fixed-rule baselines operators use, their parameters and tuning
  (``python -m agents.tune``; tuned values in ``agents/rules/tuned/baselines.json``).
* :mod:`agents.ppo`: PPO support for ``train.py``: config and hyperparameters, the action
  parameterisation, the warm start, checkpoints, loading a run as a policy.
* :mod:`agents.evaluate`: ``python -m agents.evaluate``: rollouts, metrics, tables, plots.
* :mod:`agents.export`: ``python -m agents.export`` and the stand-alone loader
  ``agents.load_policy`` (numpy, optionally onnxruntime: no stable-baselines3, no torch, no pickle).
* :mod:`agents.sweep`: ``python -m agents.sweep``: trials on Ray Tune and the front.
* :mod:`agents.common`: what they share: the policy protocol, seed ranges, files, CLI plumbing.
"""

from __future__ import annotations

from typing import Any


def load_policy(path: Any, backend: str = "auto", obs_names: Any = None, **kwargs: Any) -> Any:
    """Load an exported policy folder; see :func:`agents.export.exported.load_policy`."""
    from agents.export.exported import load_policy as _load

    return _load(path, backend=backend, obs_names=obs_names, **kwargs)
