"""Sweeps: ``python -m agents.sweep``: many ``train.py`` trials on Ray Tune, then the front against the rules.

* :mod:`agents.sweep.config`: the sweep file's schema (``load_sweep``); needs no Ray.
* :mod:`agents.sweep.runner`: the command, trials, Ray Tune (needs the ``sweep`` extra).
* :mod:`agents.sweep.front`: ``front.csv`` / ``front.png``.
"""

from agents.sweep.config import SweepConfig, SweepConfigError, load_sweep

__all__ = ["SweepConfig", "SweepConfigError", "load_sweep"]
