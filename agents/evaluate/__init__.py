"""Evaluation: ``python -m agents.evaluate``: rollouts, metrics, tables and plots against the tuned rules.

* :mod:`agents.evaluate.resolve`: a policy spec (rule name or folder) to a policy; loader registry.
* :mod:`agents.evaluate.metrics`: batched rollouts and per-seed metrics, confidence intervals.
* :mod:`agents.evaluate.runner`: every policy on every scenario over evaluation seeds.
* :mod:`agents.evaluate.results`: what an evaluation holds, its records and summary.
* :mod:`agents.evaluate.tables`, :mod:`agents.evaluate.plots`: Markdown/CSV tables, PNG plots.
* :mod:`agents.evaluate.command`: the command line and the output folder.
"""

from agents.evaluate.command import evaluate_and_report, main, write_outputs
from agents.evaluate.metrics import episode_metrics, mean_ci, rollout
from agents.evaluate.resolve import parse_policy, register_loader, resolve_policy
from agents.evaluate.results import EvaluateError, Evaluation, records
from agents.evaluate.runner import run_evaluation
from agents.evaluate.tables import markdown

__all__ = ["EvaluateError", "Evaluation", "episode_metrics", "evaluate_and_report", "main", "markdown", "mean_ci",
           "parse_policy", "records", "register_loader", "resolve_policy", "rollout", "run_evaluation",
           "write_outputs"]
