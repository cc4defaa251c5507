"""The fixed-rule baselines: the rules operators use today, as batched numpy policies.

Every rule answers stable-baselines3's call,
``predict(obs, state=None, episode_start=None, deterministic=True) -> (action, state)``,
for observations of shape ``(N, obs_size)`` or ``(obs_size,)``, and returns float32
actions in [-1, 1] of shape ``(N, T)`` (or ``(T,)``). A rule reads only

* the observation: time of day/week from the sin/cos entries, the current quota
  multiplier from ``quota/<tier>`` (= log multiplier), latency, queue, demand,
  users and capacity entries; and
* the scenario's static parameters given at construction (:class:`RuleContext`):
  tier names, latency targets, priority weights, contracted GPUs, the quota and
  action mapping, the demand profile.

Each rule computes a *target* quota multiplier per tier and converts it to the
action with :func:`envs.quota.action_for_multiplier` (one step can at most halve
or double a quota with the default ``quota_step_factor`` 2). Rules with memory
(``aimd``, ``latency-gradient``) keep it in ``state``, as SB3 recurrent policies
do: pass the returned state back, with ``episode_start`` marking new episodes.

Parameters are a frozen dataclass per rule (``Rule.Params``); per-tier values are
dicts keyed by tier name, with ``"*"`` as the value for tiers not listed. The
defaults are an operator's first guess; ``agents/rules/tuned/baselines.json`` (written
by ``python -m agents.tune``; ``baselines-v0.json`` for Rationing-v0) holds the tuned ones. ``Rule.space`` lists the
tunable dimensions and their ranges.

| name               | rule                                                                   |
|--------------------|------------------------------------------------------------------------|
| ``static``         | nominal quotas (multiplier 1), never adjusted                           |
| ``time-of-use``    | 24x7 multiplier table per tier: tight in weekday working hours         |
| ``tier-priority``  | shed the lowest tiers first when predicted wait / latency pass thresholds |
| ``aimd``           | global multiplier: x decrease on a latency breach, + increase while healthy |
| ``predictive``     | admit what the current capacity serves within each tier's latency target |
| ``fair-share``     | weighted max-min fair share of capacity per tier, unused share lent out |
| ``latency-gradient`` | per-tier limit scaled by long-run / short-run latency (Gradient2)    |
| ``fair-share-tod`` | ``fair-share`` x a tuned per-tier (weekday/weekend x 4-hour block) table |

Burst action (Rationing-v1 with ``action.burst: policy``): every rule appends the
scenario's fixed burst rule as its burst action (+1 when the last step's
utilisation was over ``buy_above_utilisation``, -1 under
``release_below_utilisation``, else 0), so a rule acts exactly as it does with
``action.burst: rule``; :meth:`RuleContext.burst_action`.

Batched parameters: :meth:`Rule.batched` builds one rule whose N rows each have
their own parameter set (used by the tuner to evaluate many candidates in one
:class:`envs.RationingCore`).
"""


from .allocation import (
    FairShareParams,
    FairShareRule,
    PredictiveAdmissionParams,
    PredictiveRule,
    TierPriorityParams,
    TierPriorityRule,
    weighted_max_min,
)
from .base import Dim, NoParams, Rule, tier_values
from .context import ANY_TIER, RuleContext, RuleError, per_tier
from .feedback import AIMDParams, AIMDRule, LatencyGradientParams, LatencyGradientRule
from .registry import RULES, flat_coordinates, get_value, make_rule, params_from_dict, params_to_dict, with_value
from .schedules import StaticRule, TimeOfUseParams, TimeOfUseRule
from .timeofday import FairShareTodParams, FairShareTodRule
from .tuned import (
    TUNED_FILE,
    TUNED_FILE_V0,
    TUNED_FORMAT,
    best_tuned_baseline,
    read_tuned,
    tuned_file_for,
    tuned_params,
)

__all__ = [
    "AIMDParams",
    "AIMDRule",
    "ANY_TIER",
    "Dim",
    "FairShareParams",
    "FairShareRule",
    "FairShareTodParams",
    "FairShareTodRule",
    "LatencyGradientParams",
    "LatencyGradientRule",
    "NoParams",
    "PredictiveAdmissionParams",
    "PredictiveRule",
    "RULES",
    "Rule",
    "RuleContext",
    "RuleError",
    "StaticRule",
    "TUNED_FILE",
    "TUNED_FILE_V0",
    "TUNED_FORMAT",
    "TierPriorityParams",
    "TierPriorityRule",
    "TimeOfUseParams",
    "TimeOfUseRule",
    "best_tuned_baseline",
    "flat_coordinates",
    "get_value",
    "make_rule",
    "params_from_dict",
    "params_to_dict",
    "per_tier",
    "read_tuned",
    "tier_values",
    "tuned_file_for",
    "tuned_params",
    "weighted_max_min",
    "with_value",
]
