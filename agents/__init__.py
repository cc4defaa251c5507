"""Policies for the rationing environment: rule baselines, PPO training support, evaluation.

* :mod:`agents.policy`: the one policy interface (SB3's ``predict``) and ``resolve_policy``.
* :mod:`agents.baselines`: the fixed-rule baselines; tuned by :mod:`agents.tune`
  into ``agents/tuned/baselines.json``.
* :mod:`agents.evaluate`: ``python -m agents.evaluate``: tables, data files, plots.
* :mod:`agents.seeds`: training / evaluation seeds and scenario splits.
"""
