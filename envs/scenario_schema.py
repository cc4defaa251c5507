"""Scenario schema: the pydantic models of a scenario file and their validators.

One strict, frozen model per section (``time``, ``capacity``, ``demand`` with
its ``trace``, ``tiers``, ``serving``, ``action``, ``reward``, ``randomization``)
and :class:`Scenario`, the whole file with its cross-references checked. Field
docstrings give units and meaning. Loading, ``base:`` merging and error messages
are in :mod:`envs.scenario`, which re-exports every model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .contracts import SLAConfig
from .scenario_types import MAX_VALUE, MIN_POSITIVE, Big, Hours, Money, NonNeg, Positive, Rate, Share, _range, _Strict  # noqa: F401


# ----------------------------------------------------------------------------- time
class TimeConfig(_Strict):
    step_minutes: Annotated[float, Field(gt=0.0, le=240.0)] = 15.0
    """Wall time covered by one environment step, in minutes (must divide a day)."""
    episode_days: Annotated[float, Field(gt=0.0, le=90.0)] = 7.0
    """Episode length in days; the episode is truncated after this many steps."""
    start_weekday: Annotated[int, Field(ge=0, le=6)] = 0
    """Weekday of the first step, 0 = Monday."""

    @model_validator(mode="after")
    def _divides_day(self) -> TimeConfig:
        per_day = 1440.0 / self.step_minutes
        if abs(per_day - round(per_day)) > 1e-9:
            raise ValueError(f"step_minutes = {self.step_minutes}: must divide 1440 (a day)")
        steps = self.episode_days * per_day
        if abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f"episode_days = {self.episode_days}: must be a whole number of steps of "
                f"{self.step_minutes} min"
            )
        return self


# ------------------------------------------------------------------------- capacity
class ProviderConfig(_Strict):
    name: str
    contracted_gpus: _range(0.01, 1e8)
    """GPUs contracted from this provider."""
    rent_usd_per_gpu_hour: Money
    """Rent per GPU-hour, paid on contracted GPUs that are not reclaimed."""
    reclaim_base_share: Share = 0.0
    """Share of the contract the provider always keeps for itself."""
    reclaim_peak_share: Share = 0.0
    """Extra share reclaimed at the provider's own working-hours peak (weekdays)."""
    reclaim_peak_hour: Annotated[float, Field(ge=0.0, lt=24.0)] = 14.0
    """Hour of day (in the scenario's clock) of the provider's internal demand peak."""
    reclaim_width_h: Annotated[float, Field(gt=0.0, le=12.0)] = 4.0
    """Width (std. dev., hours) of the reclaim peak."""
    reclaim_weekend_factor: Share = 0.3
    """Reclaim peak on weekends relative to weekdays."""
    reclaim_noise: Share = 0.2
    """Relative step-to-step noise of the reclaimed share (uniform, +/-)."""
    outage_rate_per_week: Rate = 0.0
    """Expected random outages per week."""
    outage_duration_h: tuple[Hours, Hours] = (2.0, 8.0)
    """Random outage duration, uniform between these hours."""
    recovery_days: Hours = 2.0
    """Time constant of the degraded recovery after an outage, in days."""
    degraded_share: Share = 0.3
    """Share of capacity still missing right after an outage ends; decays with recovery_days."""

    @model_validator(mode="after")
    def _ordered(self) -> ProviderConfig:
        lo, hi = self.outage_duration_h
        if lo > hi:
            raise ValueError(f"outage_duration_h = [{lo}, {hi}]: must be [low, high] with low <= high")
        if self.reclaim_base_share + self.reclaim_peak_share > 0.95:
            raise ValueError(
                "reclaim_base_share + reclaim_peak_share = "
                f"{self.reclaim_base_share + self.reclaim_peak_share}: must be <= 0.95"
            )
        return self


class BurstConfig(_Strict):
    """On-demand capacity bought by a fixed rule (the policy does not buy capacity)."""

    max_gpus: _range(0.0, 1e8) = 0.0
    step_gpus: _range(0.0, 1e8) = 0.0
    """GPUs ordered (or released) per step when the rule fires."""
    rent_usd_per_gpu_hour: Money = 8.0
    delay_h: Annotated[float, Field(ge=0.0, le=48.0)] = 2.0
    """Time between an order and the GPUs serving, in hours."""
    buy_above_utilisation: Annotated[float, Field(gt=0.0, le=2.0)] = 0.95
    release_below_utilisation: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6


class OutageEvent(_Strict):
    """A scheduled outage of one provider."""

    provider: str
    start_h: Big
    """Hours after the episode start."""
    duration_h: Hours
    recovery_days: Hours = 7.0
    degraded_share: Share = 0.3


class CapacityConfig(_Strict):
    tokens_per_gpu_s: _range(1e-3, 1e7) = 3000.0
    """Blended (input + output) tokens served per GPU per second."""
    variable_cost_usd_per_mtok: Money = 0.0
    """Cost per million tokens served on top of rent (power, networking)."""
    providers: Annotated[list[ProviderConfig], Field(min_length=1)]
    burst: BurstConfig = BurstConfig()
    events: list[OutageEvent] = []

    @model_validator(mode="after")
    def _known_providers(self) -> CapacityConfig:
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"providers: names {names} must be unique")
        for i, ev in enumerate(self.events):
            if ev.provider not in names:
                raise ValueError(f"events[{i}].provider = {ev.provider!r}: must be one of {names}")
        return self


# --------------------------------------------------------------------------- demand
class ProfileConfig(_Strict):
    hourly: Annotated[list[Big], Field(min_length=24, max_length=24)]
    """Relative weekday load per local hour 0..23 (any scale; normalised)."""
    weekend_factor: Annotated[float, Field(gt=0.0, le=2.0)] = 1.0
    """Weekend-day volume relative to a weekday."""


class TimezoneShare(_Strict):
    offset_h: Annotated[float, Field(ge=-12.0, le=14.0)]
    """Local time minus scenario clock, hours."""
    share: _range(1e-6, 1e6)


class DemandEvent(_Strict):
    """A scheduled demand burst (a launch, a viral moment)."""

    tiers: Annotated[list[str], Field(min_length=1)]
    start_h: Big
    multiplier: Annotated[float, Field(ge=1.0, le=100.0)]
    """Peak demand multiplier at start (decays back to 1)."""
    decay_h: Hours
    """Time constant of the decay, hours."""


class AgenticConfig(_Strict):
    multiplier_min: _range(1.0, 1e4) = 10.0
    multiplier_max: _range(1.0, 1e4) = 100.0
    """Agentic interactions carry this many times the tokens of a chat request."""
    tail_alpha: _range(0.05, 100.0) = 1.2
    """Pareto tail index of the multiplier (truncated to [min, max])."""
    share_growth_per_day: Annotated[float, Field(ge=0.0, le=0.2)] = 0.0
    """Absolute growth of every tier's agentic share per day (capped at 0.95)."""
    tokens_growth_per_day: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    """Relative growth per day of tokens per agentic request."""

    @model_validator(mode="after")
    def _ordered(self) -> AgenticConfig:
        if self.multiplier_min > self.multiplier_max:
            raise ValueError(
                f"multiplier_min = {self.multiplier_min}: must be <= multiplier_max = {self.multiplier_max}"
            )
        return self


class TraceConfig(_Strict):
    """Fresh demand replayed from a request trace (formats and mapping: :mod:`envs.trace`)."""

    path: str
    """Trace file (or ServeGen directory); relative to the scenario file that names it."""
    format: Literal["auto", "csv", "jsonl", "servegen"] = "auto"
    time_unit: Literal["auto", "s", "ms"] = "auto"
    """Timestamp unit; auto = ms for JSON lines (Mooncake), s otherwise."""
    tier_column: bool | None = None
    """Map requests by the trace's tier column (None: use it when the trace has one)."""
    tenant_tiers: dict[str, str] = {}
    """Tenant id -> tier name."""
    default_tier: str | None = None
    """Tier of tenants not in tenant_tiers."""
    shares: dict[str, Big] = {}
    """Split every request across tiers by these shares (normalised)."""
    tokens_per_request: _range(1e-3, 1e7) | None = None
    """Tokens per request for traces without token counts (default: demand.chat_tokens_per_request)."""
    time_scale: Annotated[float, Field(gt=0.0, le=1e4)] = 1.0
    """Trace second x plays at episode second x * time_scale."""
    period_h: Hours | None = None
    """Tiling period in episode hours (default: the trace's length)."""
    start_offset_h: Big = 0.0
    """Start this many episode hours into the trace."""
    randomize_offset: bool = False
    """Start each episode at a random step of the trace."""
    scale: _range(1e-9, 1e9) = 1.0
    """Multiplier on the trace's tokens."""
    volume: Literal["trace", "scenario"] = "trace"
    """trace: the trace's own tokens; scenario: rescale each trace tier to the scenario's mean demand."""

    @model_validator(mode="after")
    def _one_mapping(self) -> TraceConfig:
        used = [k for k in ("tier_column", "tenant_tiers", "shares") if getattr(self, k)]
        if len(used) > 1:
            raise ValueError(f"{used[0]} and {used[1]}: give at most one tier mapping")
        if self.shares and sum(self.shares.values()) <= 0:
            raise ValueError(f"shares = {self.shares}: must have a positive share")
        return self


class DemandConfig(_Strict):
    profiles: dict[str, ProfileConfig]
    timezones: Annotated[list[TimezoneShare], Field(min_length=1)]
    chat_tokens_per_request: _range(1e-3, 1e7) = 1130.0
    agentic: AgenticConfig = AgenticConfig()
    usage_tail_alpha: Annotated[float, Field(gt=1.05, le=20.0)] = 1.5
    """Lomax tail index of per-user usage within a tier (Gini = a / (2a - 1))."""
    noise_cv: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    """Step-to-step multiplicative demand noise (uniform, this coefficient of variation)."""
    retry_return_per_hour: Share = 0.25
    """Share of the retry pool that comes back each hour."""
    retry_abandon_per_hour: Share = 0.05
    """Share of the retry pool that gives up each hour."""
    events: list[DemandEvent] = []
    trace: TraceConfig | None = None
    """Replay fresh demand from a request trace instead of the synthetic model."""


class ChurnConfig(_Strict):
    base_per_month: Share = 0.03
    """Churn per month under perfect service."""
    throttle_sensitivity_per_month: Rate = 0.5
    """Extra churn per month at a sustained 100% throttled-user share."""
    throttle_exponent: Annotated[float, Field(ge=1.0, le=4.0)] = 1.0
    """>1: small, occasional limits barely matter; repeated hard limits do."""
    latency_sensitivity_per_month: Rate = 0.1
    """Extra churn per month per unit of sustained latency over target (latency/target - 1)."""
    memory_h: Hours = 24.0
    """Users remember throttling and latency with this time constant."""
    acquisition_per_month: Rate = 0.05
    """New users per month, as a share of current users, under good service."""


class TierConfig(_Strict):
    name: str
    users: _range(1.0, 1e12)
    """Users (seats, organisations for API) at the episode start."""
    price_usd_per_month: Money = 0.0
    api_price_usd_per_mtok: Money = 0.0
    """Pay-per-token price, blended input/output, per million tokens served."""
    requests_per_user_day: _range(1e-6, 1e6)
    profile: str
    """Name of a demand profile in demand.profiles."""
    agentic_share: Annotated[float, Field(ge=0.0, le=0.95)] = 0.0
    """Share of requests that are agentic."""
    burst_rate_per_day: Rate = 0.0
    burst_multiplier: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0
    burst_decay_h: Hours = 2.0
    quota_tokens_per_user_hour: _range(1e-6, 1e10)
    """Nominal quota (multiplier 1) per user per hour."""
    priority_weight: _range(1e-6, 1e6) = 1.0
    """Weight in the weighted fair sharing of capacity."""
    latency_target_s: _range(1e-3, 1e6)
    """Mean-latency target (attainment assumes exponential latency within a step)."""
    late_penalty_usd_per_mtok: Money = 0.0
    """Reward penalty per million tokens served later than the target."""
    lifetime_value_usd: Money = 0.0
    """Value lost per churned user (reward's churn term)."""
    retry_share: Share = 0.5
    """Share of throttled demand that retries later; the rest is lost."""
    churn: ChurnConfig = ChurnConfig()
    sla: SLAConfig | None = None
    """Service-level agreement and its credits (Rationing-v1, :mod:`envs.contracts`); None = best effort."""


class ServingConfig(_Strict):
    base_latency_s: _range(1e-3, 1e6) = 1.0
    """Mean latency of an unloaded service."""
    max_contention_utilisation: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    """Utilisation cap in the M/M/1 contention factor 1/(1-u)."""
    max_latency_s: _range(1e-3, 1e7) = 3600.0
    queue_timeout_per_step: Share = 0.3
    """Share of the queue left after serving that times out each step."""
    collapse_pressure: Annotated[float, Field(gt=1.0, le=10.0)] = 1.6
    """Backlog/capacity ratio above which the service is overloaded."""
    collapse_after_h: Hours = 1.0
    """Sustained overload this long collapses the service."""
    collapse_duration_h: Hours = 2.0
    collapse_capacity_share: Share = 0.25
    """Share of capacity left while collapsed."""
    collapse_failed_share: Share = 1.0
    """v1: share of the unserved backlog that fails (errors) in each collapsed step."""
    max_batch: Annotated[int, Field(ge=1, le=4096)] = 64
    """v1: batch size of the serving engine at full occupancy (batching curve, :mod:`envs.serving`)."""
    full_batch_speedup: Annotated[float, Field(ge=1.0)] = 14.0
    """v1: tokens/s of a full batch relative to batch 1 (<= max_batch)."""

    @model_validator(mode="after")
    def _speedup(self) -> ServingConfig:
        if self.full_batch_speedup > self.max_batch:
            raise ValueError(f"full_batch_speedup = {self.full_batch_speedup}: must be <= max_batch = {self.max_batch}")
        return self


class ActionConfig(_Strict):
    quota_step_factor: Annotated[float, Field(gt=1.0, le=10.0)] = 2.0
    """Action a in [-1, 1] multiplies the quota by quota_step_factor ** a."""
    quota_min: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    quota_max: Annotated[float, Field(ge=1.0, le=100.0)] = 4.0
    burst: Literal["rule", "policy"] = "rule"
    """v1: ``policy`` adds an action entry ordering (+) or releasing (-) burst GPUs; ``rule``: the fixed rule."""


class RewardConfig(_Strict):
    margin_weight: _range(0.0, 1e6) = 1.0
    latency_weight: _range(0.0, 1e6) = 1.0
    churn_weight: _range(0.0, 1e6) = 1.0
    scale_usd: _range(1e-3, 1e15) = 10000.0
    """Reward = (weighted dollars) / scale_usd."""


class RandomizationConfig(_Strict):
    """Per-episode multipliers drawn uniformly in [low, high] (domain randomisation)."""

    demand_scale: tuple[_range(1e-3, 1e3), _range(1e-3, 1e3)] = (1.0, 1.0)
    capacity_scale: tuple[_range(1e-3, 1e3), _range(1e-3, 1e3)] = (1.0, 1.0)
    reclaim_scale: tuple[_range(0.0, 1e3), _range(0.0, 1e3)] = (1.0, 1.0)
    agentic_scale: tuple[_range(0.0, 1e3), _range(0.0, 1e3)] = (1.0, 1.0)

    @model_validator(mode="after")
    def _ordered(self) -> RandomizationConfig:
        for name in type(self).model_fields:
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} = [{lo}, {hi}]: must be [low, high] with low <= high")
        return self


class Scenario(_Strict):
    name: str
    description: str = ""
    sources: list[str] = []
    """Where the numbers come from (sections of docs/calibration.md)."""
    time: TimeConfig = TimeConfig()
    capacity: CapacityConfig
    demand: DemandConfig
    tiers: Annotated[list[TierConfig], Field(min_length=1, max_length=32)]
    serving: ServingConfig = ServingConfig()
    action: ActionConfig = ActionConfig()
    reward: RewardConfig = RewardConfig()
    randomization: RandomizationConfig = RandomizationConfig()

    @model_validator(mode="after")
    def _cross_refs(self) -> Scenario:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tiers: names {names} must be unique")
        for i, tier in enumerate(self.tiers):
            if tier.profile not in self.demand.profiles:
                raise ValueError(
                    f"tiers[{i}].profile = {tier.profile!r}: must be one of {sorted(self.demand.profiles)}"
                )
        for i, ev in enumerate(self.demand.events):
            for name in ev.tiers:
                if name not in names:
                    raise ValueError(f"demand.events[{i}].tiers: {name!r} must be one of {names}")
        tr = self.demand.trace
        if tr is not None:
            refs = [("shares", k) for k in tr.shares] + [("tenant_tiers", v) for v in tr.tenant_tiers.values()]
            refs += [("default_tier", tr.default_tier)] if tr.default_tier is not None else []
            for where, name in refs:
                if name not in names:
                    raise ValueError(f"demand.trace.{where}: {name!r} must be one of {names}")
        return self

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @property
    def steps_per_day(self) -> int:
        return int(round(1440.0 / self.time.step_minutes))

    @property
    def episode_steps(self) -> int:
        return int(round(self.time.episode_days * self.steps_per_day))
