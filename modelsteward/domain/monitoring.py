"""Monitoring records: monitor definitions and results, KPI points, alert rules, channels and alerts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelsteward.domain.refs import NAME_PATTERN as _NAME

NAME_PATTERN = rf"^{_NAME}$"

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str | int | float) -> timedelta:
    """``"15m"``, ``"1h"``, ``"7d"`` (or a number of seconds) as a timedelta."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number and s, m, h, d or w, e.g. 15m, 1h, 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OneOf(Spec):
    """A choice written as a one-key mapping (``{drift: {...}}``): exactly one field is set. ``what``
    names the choice in errors; an unknown key is refused with the list of known ones."""

    what: ClassVar[str] = "item"

    @model_validator(mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = [k for k in value if k not in cls.model_fields]
            if unknown:
                raise ValueError(f"unknown {cls.what} {unknown[0]!r} ({cls.what}s: {', '.join(cls.model_fields)})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> OneOf:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            kinds = ", ".join(type(self).model_fields)
            raise ValueError(f"each {self.what} is exactly one of: {kinds} (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def body(self) -> Any:
        return getattr(self, self.kind)


class Target(Spec):
    """What a monitor watches: a deployment's traffic (its prediction log) or a model version."""

    deployment: str | None = Field(default=None, pattern=NAME_PATTERN)
    model: str | None = Field(default=None, pattern=rf"^{_NAME}(/[0-9]{{1,9}})?$", description="name or name/3")
    step: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="a pipeline step")

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.deployment is None) == (self.model is None):
            raise ValueError("give exactly one of deployment and model")
        return self

    @property
    def label(self) -> str:
        return f"deployment {self.deployment}" if self.deployment else f"model {self.model}"


class DriftCheck(Spec):
    """Input drift of the deployment's traffic against the champion's training data (or a window)."""

    columns: list[str] | Literal["all"] = "all"
    stattest: str | None = None
    threshold: float | None = Field(default=None, gt=0)
    max_share_drifted: float = Field(default=0.0, ge=0, le=1, description="breach when more columns drift")


class PredictionDriftCheck(Spec):
    """Drift of one output column (a score or a label) against the window or the training outputs."""

    column: str
    stattest: str | None = None
    threshold: float | None = Field(default=None, gt=0)


class QualityCheck(Spec):
    """Data quality of the inputs: nulls, out-of-range values, unseen categories, duplicates."""

    max_null_rate: float = Field(default=0.05, ge=0, le=1)
    max_out_of_range_rate: float = Field(default=0.05, ge=0, le=1)
    max_unseen_rate: float = Field(default=0.05, ge=0, le=1)


class PerformanceCheck(Spec):
    """Realized performance once ground truth arrives (feedback joined on prediction id)."""

    metric: str = "roc_auc"
    threshold: float
    direction: Literal["min", "max"] = "min"
    score: str | None = Field(default=None, description="output column with the positive-class score")
    prediction: str = "prediction"
    actual: str = "actual"
    segment_by: str | None = Field(
        default=None, description="an input column: the metric is also computed per value, each held to the threshold"
    )
    min_segment_rows: int = Field(default=100, ge=1, description="labelled rows a segment needs to be judged")


class EstimatedPerformanceCheck(Spec):
    """Performance estimated from predicted probabilities before labels arrive (confidence-based)."""

    metric: Literal["accuracy", "roc_auc"] = "accuracy"
    threshold: float
    score: str = "proba_1"
    prediction: str = "prediction"
    actual: str = "actual"


class RuleHitRateCheck(Spec):
    """For rule sets: how often each rule fires now against the reference window."""

    max_ratio: float = Field(default=3.0, gt=1)
    min_share: float = Field(default=0.01, ge=0, le=1, description="ignore rules rarer than this in both windows")


class OptimizationCheck(Spec):
    """For optimization models: solver status, infeasible rate, objective."""

    max_infeasible_rate: float = Field(default=0.05, ge=0, le=1)


class KPIQueryCheck(Spec):
    """Feed a business KPI from a SQL query against a BI database (any SQLAlchemy URL) on the
    monitor's schedule; the query returns ``ts`` and ``value`` (and optionally ``arm``)."""

    kpi: str = Field(min_length=1, max_length=128)
    scope: str = Field(min_length=1, max_length=128)
    url: str
    query: str = Field(min_length=1)


class Check(OneOf):
    """Exactly one kind of check."""

    what: ClassVar[str] = "check"

    drift: DriftCheck | None = None
    prediction_drift: PredictionDriftCheck | None = None
    quality: QualityCheck | None = None
    performance: PerformanceCheck | None = None
    estimated_performance: EstimatedPerformanceCheck | None = None
    rule_hit_rate: RuleHitRateCheck | None = None
    optimization: OptimizationCheck | None = None
    kpi_query: KPIQueryCheck | None = None


class MonitorSpec(Spec):
    """A monitor: what to compute over which window, against which reference, how often.

    ``reference`` is ``"training"`` (the champion version's training-data profile, stored at
    registration) or a past window of the log such as ``{"window": "7d", "offset": "7d"}``.
    """

    target: Target
    window: str = "1d"
    reference: Literal["training"] | dict[str, str] = "training"
    checks: list[Check] = Field(min_length=1)
    min_rows: int = Field(default=100, ge=1)
    schedule: str | None = Field(default=None, description="cron ('*/15 * * * *') or an interval ('15m')")
    engine: Literal["local", "dask"] = Field(
        default="local", description="dask: summarise the log part by part on Dask (windows larger than memory)"
    )
    description: str = ""

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("reference")
    @classmethod
    def _reference(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = set(value) - {"window", "offset"}
            if unknown or "window" not in value:
                raise ValueError("a reference window looks like {window: 7d, offset: 7d}")
            for text in value.values():
                parse_duration(text)
        return value


class Monitor(BaseModel):
    name: str
    spec: MonitorSpec
    enabled: bool = True
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class Breach(BaseModel):
    check: str
    metric: str
    value: float | None
    threshold: float | None
    column: str | None = None
    segment: str | None = None


class MonitorResult(BaseModel):
    """One run of a monitor: its status, every figure it computed, and what breached."""

    monitor: str
    run_id: int | None = None
    status: Literal["ok", "breach", "not_enough_data", "error"]
    window_start: datetime
    window_end: datetime
    rows: int = 0
    figures: dict[str, Any] = Field(default_factory=dict)
    breaches: list[Breach] = Field(default_factory=list)
    error: str | None = None
    started_at: datetime
    finished_at: datetime


class KPIPoint(BaseModel):
    """One observation of a business KPI (approval rate, default rate, profit per decision...)."""

    kpi: str = Field(min_length=1, max_length=128)
    scope: str = Field(min_length=1, max_length=128, description="a model or deployment name")
    ts: datetime
    value: float
    arm: str | None = Field(default=None, description="the A/B arm (version) the value belongs to")
    source: str = "api"


class Channel(Spec):
    """Where alerts go. Secrets are never stored: ``secret_env`` names the variable that holds one."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    type: Literal["webhook", "slack", "email", "ticket"]
    url: str | None = None
    secret_env: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = None
    recipients: list[str] = Field(default_factory=list)
    project: str | None = None
    smtp_starttls: bool = Field(default=False, description="upgrade the SMTP connection with STARTTLS")
    smtp_user_env: str | None = Field(
        default=None, description="variable holding the SMTP user name; ``secret_env`` then holds the password"
    )

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type in ("webhook", "slack", "ticket") and not self.url:
            raise ValueError(f"a {self.type} channel needs a url")
        if self.type == "email" and not (self.smtp_host and self.sender and self.recipients):
            raise ValueError("an email channel needs smtp_host, sender and recipients")
        return self


class AlertCondition(Spec):
    """When a result or a KPI breaches: the monitor's status, or a figure compared with a threshold."""

    status: Literal["breach"] | None = None
    metric: str | None = None
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float | None = None

    @model_validator(mode="after")
    def _complete(self) -> AlertCondition:
        if (self.status is None) == (self.metric is None):
            raise ValueError("give status: breach, or a metric with op and threshold")
        if self.metric is not None and self.threshold is None:
            raise ValueError("a metric condition needs a threshold")
        return self


LifecycleProblem = Literal["sla", "failed", "job_failed", "stalled", "notice"]
#: Conditions Steward watches in itself: a worker's prediction or feedback log cannot be written.
SystemSource = Literal["prediction-log", "feedback-log"]


class LifecycleSignal(BaseModel):
    """Something the life-cycle engine tells the alerting: a problem (a run waiting past its SLA, a
    failed run or retraining job, a stalled life cycle), a problem gone, or a transition's notice."""

    lifecycle: str
    model: str
    version: int | None = None
    problem: LifecycleProblem
    subject: str = Field(description="what the problem is about, e.g. 'run:12': one open alert per subject")
    title: str
    details: dict[str, Any] = Field(default_factory=dict)
    resolved: bool = False
    channels: list[str] = Field(default_factory=list, description="for a notice: where it goes")
    severity: Literal["info", "warning", "critical"] = "warning"


class AlertRule(Spec):
    """A rule over monitor results, KPI points, life-cycle problems or Steward's own health: consecutive
    breaches fire an alert, a pass resolves it. ``lifecycle`` watches one life cycle's problems (``"*"``:
    every one); ``system`` watches a condition the server raises and clears itself (one alert per worker)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    monitor: str | None = None
    kpi: str | None = None
    lifecycle: str | None = None
    system: SystemSource | None = Field(
        default=None,
        description="a condition of Steward itself: prediction-log or feedback-log (a worker cannot write its log)",
    )
    problems: list[LifecycleProblem] = Field(
        default_factory=lambda: ["sla", "failed", "job_failed", "stalled"],
        description="for a lifecycle rule: which problems it alerts on",
    )
    scope: str | None = None
    when: AlertCondition = Field(default_factory=lambda: AlertCondition(status="breach"))
    consecutive: int = Field(default=1, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    channels: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _source(self) -> AlertRule:
        if sum(x is not None for x in (self.monitor, self.kpi, self.lifecycle, self.system)) != 1:
            raise ValueError("an alert rule watches exactly one of monitor, kpi, lifecycle and system")
        if self.kpi is not None and (self.when.metric is None or self.scope is None):
            raise ValueError("a KPI rule needs a scope and a metric condition (metric: value)")
        return self


class AlertRuleState(BaseModel):
    """A stored alert rule with what the store keeps beside it: on or off, and the current breach streak."""

    rule: AlertRule
    enabled: bool = True
    streak: int = 0
    created_at: datetime


class Alert(BaseModel):
    id: int
    rule: str
    fingerprint: str
    status: Literal["firing", "acknowledged", "resolved"]
    severity: str
    title: str
    details: dict[str, Any] = Field(default_factory=dict)
    occurrences: int = 1
    first_fired_at: datetime
    last_fired_at: datetime
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None


class Delivery(BaseModel):
    id: int
    alert_id: int
    channel: str
    event: Literal["fire", "resolve"]
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
