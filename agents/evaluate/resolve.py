"""Turning a name or a path into a policy (the interface: :class:`agents.common.policy.Policy`).

:func:`resolve_policy` maps a *spec* to a policy for one scenario:

* a baseline name (``static``, ``time-of-use``, ``tier-priority``, ``aimd``,
  ``predictive``, ``fair-share``, ``latency-gradient``): the rule with its tuned
  parameters from ``agents/rules/tuned/baselines.json`` (the defaults if the file has
  none for it); ``<name>:untuned`` forces the defaults;
* a path to a folder a registered loader recognises;
* ``PATH@margin=1,latency=0.5,churn=2``: a preference-conditioned run (``train.py --preference``)
  acting at those weights (rescaled to sum to 3; an objective left out weighs 1; without ``@`` it
  acts at 1,1,1). A policy trained without preferences refuses weights with one line.

Extension point for trained policies: a module that calls :func:`register_loader`
at import, listed in :data:`LOADER_MODULES` (imported the first time a path is
resolved). For example ``agents/ppo/run_policy.py`` would end with::

    register_loader("checkpoint", detect=is_run_or_checkpoint, load=load_run_policy,
                    description="training run folder (run.json) or checkpoint folder (manifest.json)")

and ``LOADER_MODULES`` would list ``"agents.evaluate.loaders"``. Until a loader is
registered, a training run or checkpoint folder (``run.json``/``manifest.json``)
or an exported policy folder (``policy.json``) gives a one-line error saying no
loader is registered. A loader is called once per path (policies loaded from
paths are scenario-independent and cached).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.common.policy import Policy, PolicyError, layout_difference
from agents.rules import RULES, TUNED_FILE, RuleContext, RuleError, make_rule, params_from_dict, tuned_params
from envs import ENV_IDS

UNTUNED_SUFFIX = ":untuned"

#: Folder markers of trained policies, for error messages when no loader takes them.
KNOWN_MARKERS = {
    "run.json": "a training run folder",
    "manifest.json": "a checkpoint folder",
    "policy.json": "an exported policy folder",
}


#: Modules imported before resolving a path; each registers its loaders (see the module docstring).
LOADER_MODULES: tuple[str, ...] = ("agents.evaluate.loaders",)


# ---------------------------------------------------------------------------- loaders
@dataclass(frozen=True)
class Loader:
    kind: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], Policy]
    description: str


_LOADERS: dict[str, Loader] = {}
_CACHE: dict[str, Policy] = {}


def register_loader(kind: str, detect: Callable[[Path], bool], load: Callable[[Path], Policy],
                    description: str = "") -> None:
    """Register (or replace) a loader for policy folders: ``detect(path)`` says whether it applies."""
    _LOADERS[kind] = Loader(kind, detect, load, description or kind)
    _CACHE.clear()


def unregister_loader(kind: str) -> None:
    _LOADERS.pop(kind, None)
    _CACHE.clear()


def registered_loaders() -> list[str]:
    _import_loader_modules()
    return list(_LOADERS)


_imported = False


def _import_loader_modules() -> None:
    global _imported
    if not _imported:
        _imported = True
        for module in LOADER_MODULES:
            importlib.import_module(module)


# ------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class PolicySpec:
    """A parsed ``--policy`` value."""

    spec: str
    label: str
    kind: str
    """``baseline`` or the loader kind."""
    rule: str | None = None
    tuned: bool = False
    path: Path | None = None
    weights: tuple[float, ...] | None = None
    """``PATH@margin=..,latency=..,churn=..``: the weights a preference-conditioned policy acts at."""


def available_text() -> str:
    names = ", ".join(RULES)
    loaders = "; ".join(f"{ld.description}" for ld in _LOADERS.values()) or "none registered"
    return (f"baselines: {names} (append {UNTUNED_SUFFIX} for the default parameters); "
            f"policy folders: {loaders}")


def parse_policy(spec: str, tuned_file: str | Path = TUNED_FILE) -> PolicySpec:
    """Check a spec without building the policy; raises :class:`PolicyError`."""
    text = str(spec).strip()
    name, untuned = (text[: -len(UNTUNED_SUFFIX)], True) if text.endswith(UNTUNED_SUFFIX) else (text, False)
    if name in RULES:
        has_tuned = not untuned and tuned_params(name, tuned_file) is not None
        label = name if has_tuned else f"{name}{UNTUNED_SUFFIX}"
        return PolicySpec(text, label, "baseline", rule=name, tuned=has_tuned)
    _import_loader_modules()
    path, weights = Path(text), None
    if "@" in text and not path.exists():  # PATH@margin=1,latency=0.5,churn=2
        from agents.tradeoffs.preference import PreferenceError, parse_weights

        head, _, tail = text.rpartition("@")
        try:
            weights = parse_weights(tail)
        except PreferenceError as exc:
            raise PolicyError(f"policy {text!r}: {exc}") from None
        path = Path(head)
        if head.removesuffix(UNTUNED_SUFFIX) in RULES:
            raise PolicyError(f"policy {text!r}: the rule {head!r} takes no preference weights (only a run "
                              "trained with --preference does)")
    if not path.exists():
        raise PolicyError(f"unknown policy {text!r}: not a baseline name nor an existing path ({available_text()})")
    for loader in _LOADERS.values():
        if loader.detect(path):
            label = path.name or str(path)
            if weights is not None:
                from agents.tradeoffs.preference import weights_label

                label = f"{label}@{weights_label(weights)}"
            return PolicySpec(text, label, loader.kind, path=path, weights=weights)
    found = [desc for marker, desc in KNOWN_MARKERS.items() if (path / marker).is_file()]
    if found:
        raise PolicyError(f"{text!r} is {found[0]}, but no loader for it is registered "
                          f"(agents.evaluate.resolve.register_loader; {available_text()})")
    raise PolicyError(f"{text!r} is not a checkpoint or exported policy ({available_text()})")


def resolve_policy(spec: str | PolicySpec, scenario: Any = "default", tuned_file: str | Path = TUNED_FILE) -> Policy:
    """The policy named by ``spec`` for ``scenario`` (name, path, Scenario, RationingCore or RuleContext)."""
    ps = spec if isinstance(spec, PolicySpec) else parse_policy(spec, tuned_file)
    if ps.kind == "baseline":
        assert ps.rule is not None
        ctx = scenario if isinstance(scenario, RuleContext) else RuleContext(scenario)
        try:
            params = params_from_dict(ps.rule, tuned_params(ps.rule, tuned_file)) if ps.tuned else None
            return make_rule(ps.rule, ctx, params)
        except RuleError as exc:
            raise PolicyError(f"policy {ps.spec!r}: {exc}") from None
    key = str(ps.path.resolve()) if ps.path is not None else ps.spec
    if key not in _CACHE:
        try:
            _CACHE[key] = _LOADERS[ps.kind].load(ps.path)  # type: ignore[arg-type]
        except ValueError as exc:  # loaders raise ValueError subclasses with one-line messages
            raise PolicyError(f"policy {ps.spec!r}: {exc}") from None
    policy = _CACHE[key]
    if ps.weights is not None:
        at_weights = getattr(policy, "at_weights", None)
        if at_weights is None:
            raise PolicyError(f"policy {ps.spec!r}: this kind of policy takes no preference weights")
        policy = at_weights(ps.weights)  # PolicyError if it was not trained with --preference
    _check_layout(ps.spec, policy, scenario)
    bind = getattr(policy, "for_scenario", None)  # a residual policy binds its rule to the scenario's facts
    if bind is not None:
        ctx = scenario if isinstance(scenario, RuleContext) else RuleContext(
            scenario, version=int(getattr(policy, "env_version", 0)))
        try:
            policy = bind(ctx)
        except ValueError as exc:
            raise PolicyError(f"policy {ps.spec!r}: {exc}") from None
    return policy


def _check_layout(spec: str, policy: Any, scenario: Any) -> None:
    """Refuse a trained policy made for another env version, or whose observation layout (by name) differs."""
    names = getattr(policy, "obs_names", None)
    if names is None:
        return
    if isinstance(scenario, RuleContext):
        expected, version = scenario.obs_names, scenario.env_version
    else:
        from envs import RationingCore

        core = scenario if isinstance(scenario, RationingCore) else RationingCore(scenario, 1)
        expected, version = core.obs_names, core.params.env_version
    made_for = getattr(policy, "env_version", None)
    if made_for is not None and int(made_for) != version:
        raise PolicyError(f"policy {spec!r} was trained on {ENV_IDS.get(int(made_for), made_for)} (env version "
                          f"{made_for}) and cannot act on {ENV_IDS[version]} (env version {version}); "
                          f"evaluate it with --env-version {made_for}")
    diff = layout_difference(names, expected)
    if diff is not None:
        i, got, want = diff
        raise PolicyError(f"policy {spec!r}: observation layout differs from the scenario's at index {i} "
                          f"({got!r} vs {want!r})")
