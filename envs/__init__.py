"""The rationing environment: contested LLM-serving capacity and tiered token demand.

Importing this package registers ``Rationing-v0`` and ``Rationing-v1`` (the current
world: SLA credits, failed requests, batching interference, optional burst action;
version history in :class:`RationingEnv`) with Gymnasium::

    import gymnasium, envs
    env = gymnasium.make("Rationing-v0", scenario="outage")
    vec = gymnasium.make_vec("Rationing-v0", num_envs=1024)   # native numpy batch

Layout: :mod:`envs.capacity` (contested GPUs, outages, burst), :mod:`envs.demand`
(tiers, profiles, agentic mix), :mod:`envs.quota` (action mapping, throttling),
:mod:`envs.user_response` (retries, churn), :mod:`envs.serving` (queues, latency,
collapse), :mod:`envs.economics` (revenue, cost), :mod:`envs.reward`, composed in
:mod:`envs.core`; scenarios in ``envs/scenarios/``.
"""

from gymnasium.envs.registration import register, registry

from .core import (
    PROVIDER_INFO_KEYS,
    SCALAR_INFO_KEYS,
    TIER_INFO_KEYS,
    V1_SCALAR_INFO_KEYS,
    V1_TIER_INFO_KEYS,
    RationingCore,
)
from .rationing_env import ENV_ID, ENV_IDS, ENV_VERSION, LATEST_VERSION, RationingEnv, RationingVectorEnv
from .scenario import Scenario, ScenarioError, available_scenarios, load_scenario

for _version, _id in ENV_IDS.items():
    if _id not in registry:
        register(
            id=_id,
            entry_point="envs.rationing_env:RationingEnv",
            vector_entry_point="envs.rationing_env:RationingVectorEnv",
            kwargs={"version": _version},
        )

__all__ = [
    "ENV_ID",
    "ENV_IDS",
    "ENV_VERSION",
    "LATEST_VERSION",
    "PROVIDER_INFO_KEYS",
    "SCALAR_INFO_KEYS",
    "TIER_INFO_KEYS",
    "V1_SCALAR_INFO_KEYS",
    "V1_TIER_INFO_KEYS",
    "RationingCore",
    "RationingEnv",
    "RationingVectorEnv",
    "Scenario",
    "ScenarioError",
    "available_scenarios",
    "load_scenario",
]
