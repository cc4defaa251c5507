"""Policies for the rationing environment: rule baselines, PPO training support, evaluation.

* :mod:`agents.policy`: the one policy interface (SB3's ``predict``) and ``resolve_policy``.
* :mod:`agents.baselines`: the fixed-rule baselines; tuned by :mod:`agents.tune`
  into ``agents/tuned/baselines.json``.
* :mod:`agents.evaluate`: ``python -m agents.evaluate``: tables, data files, plots.
* :mod:`agents.seeds`: training / evaluation seeds and scenario splits.
* :mod:`agents.exported`: ``agents.load_policy(path)`` loads an exported policy with numpy
  (and optionally onnxruntime) only: no stable-baselines3, no torch, no pickle.
"""

from __future__ import annotations

from typing import Any


def load_policy(path: Any, backend: str = "auto", obs_names: Any = None, **kwargs: Any) -> Any:
    """Load an exported policy folder; see :func:`agents.exported.load_policy`."""
    from .exported import load_policy as _load

    return _load(path, backend=backend, obs_names=obs_names, **kwargs)
