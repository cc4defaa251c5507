"""Registers the loaders of trained policies with :func:`agents.evaluate.resolve.register_loader`.

* ``checkpoint``: a training run folder (``run.json``; its best checkpoint) or a
  checkpoint folder (``manifest.json``), loaded by :func:`agents.ppo.run_policy.load_run_policy`
  (stable-baselines3 policy, weights from safetensors);
* ``exported``: an exported policy folder (``policy.json``), loaded by
  :func:`agents.export.exported.load_policy` (numpy / onnxruntime only, no pickle).

Kept apart from :mod:`agents.export.exported` so that module stays free of stable-baselines3.
"""

from __future__ import annotations

from agents.evaluate.resolve import register_loader
from agents.export.exported import is_exported, load_policy
from agents.ppo.run_policy import is_run_or_checkpoint, load_run_policy

register_loader("checkpoint", detect=is_run_or_checkpoint, load=load_run_policy,
                description="training run folder (run.json) or checkpoint folder (manifest.json)")
register_loader("exported", detect=is_exported, load=load_policy,
                description="exported policy folder (policy.json)")
