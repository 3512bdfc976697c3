"""Catalog records that cross layers: registered models, versions, aliases, datasets and lineage."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelsteward.domain.refs import named_model

ColumnType = Literal["integer", "number", "string", "boolean", "datetime"]
RiskTier = Literal["low", "medium", "high", "critical"]
DatasetRole = Literal["training", "validation", "test", "reference", "other"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(Record):
    """One column of a signature: its name, portable type and whether nulls are allowed."""

    name: str
    type: ColumnType
    nullable: bool = False


class Signature(Record):
    """What a model version takes and returns, checked before every predict."""

    inputs: list[ColumnSpec]
    outputs: list[ColumnSpec] = Field(default_factory=list)

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [c.name for c in self.outputs]


class Histogram(Record):
    edges: list[float]
    counts: list[int]


class ColumnProfile(Record):
    """Summary statistics of one column, enough to compare later data against it without the data."""

    name: str
    type: ColumnType
    count: int
    null_count: int
    distinct: int | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] | None = None
    histogram: Histogram | None = None
    top_values: dict[str, int] | None = None
    other_count: int | None = None


class DatasetFingerprint(Record):
    """Content hash, row count, schema and per-column profile of a data set."""

    content_hash: str
    row_count: int
    quantile_levels: list[float]
    columns: list[ColumnProfile]
    drift_profile: dict[str, Any] | None = Field(
        default=None, description="the fine-grained reference for drift detection (stats.sketch.DriftProfile)"
    )

    @property
    def schema_(self) -> list[ColumnSpec]:
        return [ColumnSpec(name=c.name, type=c.type, nullable=c.null_count > 0) for c in self.columns]

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


class Dataset(Record):
    """A data set known to the catalog by its fingerprint; the data itself stays where it is."""

    name: str
    uri: str | None = None
    fingerprint: DatasetFingerprint
    created_at: datetime


class DatasetLink(Record):
    """How a version used a data set (training, validation, test...)."""

    role: DatasetRole
    name: str
    content_hash: str
    row_count: int


class Source(Record):
    """Where the code that produced a version came from, captured when run inside git."""

    repository: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    path: str | None = None


class Requirements(Record):
    """The environment captured at registration: interpreter, platform and the packages that matter."""

    python: str
    platform: str
    packages: dict[str, str] = Field(default_factory=dict)


class Resources(Record):
    """What a model needs to run, declared by its owner."""

    model_config = ConfigDict(frozen=True, extra="allow")

    cpu: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)
    gpu: int | None = Field(default=None, ge=0)


class BusinessKPI(Record):
    """A business figure the model drives, such as approval rate or profit per decision."""

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    unit: str = ""
    direction: Literal["increase", "decrease", "target"] | None = None


class ArtifactInfo(Record):
    """The stored bytes of a version: content hash, size and the format its kind wrote."""

    sha256: str
    size: int
    format: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class RegisteredModel(Record):
    """A model in the catalog, whatever its kind, with its business and governance metadata."""

    name: str
    kind: str
    description: str = ""
    owner: str | None = None
    business_unit: str | None = None
    risk_tier: RiskTier | None = None
    kpis: list[BusinessKPI] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    protected_attributes: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    latest_version: int = 0
    aliases: dict[str, int] = Field(default_factory=dict)
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class VersionSummary(Record):
    """A version as catalog listings show it: what it is, its figures, data and aliases.

    ``Steward.get_version`` returns the full :class:`ModelVersion` (signature, parameters, source,
    environment, input example); listings return summaries, which keeps a 10,000-version catalog
    quick to page through.
    """

    name: str
    version: int
    kind: str
    artifact: ArtifactInfo
    metrics: dict[str, float] = Field(default_factory=dict)
    datasets: list[DatasetLink] = Field(default_factory=list)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    created_by: str | None = None
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


class ModelVersion(VersionSummary):
    """One immutable version of a model: artifact, signature, figures, data and provenance."""

    signature: Signature
    params: dict[str, Any] = Field(default_factory=dict)
    source: Source | None = None
    requirements: Requirements
    input_example: list[dict[str, Any]] | None = None


class Alias(Record):
    model: str
    alias: str
    version: int
    updated_by: str | None = None
    updated_at: datetime


class LineageEdge(Record):
    """A directed edge such as ``dataset -> version`` (trained_on) or ``version -> deployment``."""

    source_type: Literal["dataset", "version", "deployment"]
    source: str
    target_type: Literal["dataset", "version", "deployment"]
    target: str
    relation: str
    created_at: datetime


class Lineage(Record):
    """What a version came from and where it went."""

    version: str
    upstream: list[LineageEdge] = Field(default_factory=list)
    downstream: list[LineageEdge] = Field(default_factory=list)


class Event(Record):
    """One entry of the audit trail: who did what to which model, and when."""

    seq: int
    at: datetime
    actor: str
    action: str
    model: str | None = None
    version: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Principal(Record):
    """A user or a service account: who an API token speaks for."""

    name: str
    kind: Literal["user", "service"]
    display_name: str = ""
    disabled: bool = False
    created_by: str | None = None
    created_at: datetime


class TokenInfo(Record):
    """An API token as listings show it: never its secret."""

    id: int
    principal: str
    name: str
    created_by: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class NewToken(TokenInfo):
    """A token just created: ``token`` is the secret, shown this once and stored only as a hash."""

    token: str


class AuditCheck(Record):
    """The audit trail's verification: does every event follow from its content and the one before?"""

    ok: bool
    events: int = Field(description="events checked")
    written: int = Field(description="events the store says were written")
    first_broken: int | None = Field(default=None, description="sequence number of the first broken event")
    message: str
    checked_at: datetime


class DeploymentSpec(Record):
    """A route set: who answers a deployment's requests, who is tried beside it, who only listens.

    ``champion`` answers by default (usually ``name@production``); ``challengers`` maps references to
    the share of traffic they take (A/B or canary; the champion keeps the rest); ``shadows`` get a
    copy of every request, their answers are logged and never returned; ``sticky_key`` names a
    request field whose hash picks the arm, so one customer always meets the same model. A
    deployment can instead be a ``pipeline`` of steps (see ``modelsteward.serving.pipeline``).
    """

    champion: str | None = None
    challengers: dict[str, float] = Field(default_factory=dict)
    shadows: list[str] = Field(default_factory=list)
    sticky_key: str | None = Field(default=None, min_length=1, max_length=128)
    pipeline: dict[str, Any] | None = None
    log_predictions: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> DeploymentSpec:
        if (self.champion is None) == (self.pipeline is None):
            raise ValueError("give exactly one of champion (a model reference) and pipeline")
        if self.pipeline is not None and (self.challengers or self.shadows):
            raise ValueError("a pipeline deployment has no challengers or shadows; its steps name their models")
        for ref, weight in self.challengers.items():
            if not 0 < weight <= 1:
                raise ValueError(f"the weight of challenger {ref!r} must be in (0, 1], got {weight}")
        if sum(self.challengers.values()) > 1 + 1e-9:
            raise ValueError("challenger weights add up to more than 1")
        refs = [r for r in [self.champion, *self.challengers, *self.shadows] if r is not None]
        if len(set(refs)) != len(refs):
            raise ValueError("a reference appears in more than one arm")
        return self

    @property
    def refs(self) -> list[str]:
        return [r for r in [self.champion, *self.challengers, *self.shadows] if r is not None]

    @property
    def model_steps(self) -> dict[str, str]:
        """``{step: model reference}`` of a pipeline's model steps (empty for a route set)."""
        steps = (self.pipeline or {}).get("steps") or []
        return {str(s.get("name", "")): s["model"] for s in steps
                if isinstance(s, dict) and isinstance(s.get("model"), str)}  # fmt: skip

    @property
    def models(self) -> set[str]:
        """The models the route set names: its arms, its shadows and its pipeline's model steps."""
        return {named_model(ref) for ref in [*self.refs, *self.model_steps.values()]}


class RouteArm(Record):
    """One arm of a deployment as it resolves now: its role, reference, version and traffic share."""

    role: Literal["champion", "challenger", "shadow"]
    ref: str
    version: str
    weight: float


class Deployment(Record):
    """A named, versioned route set. Every change makes a new ``revision``; ``rollback`` returns to
    the route set before the last change."""

    name: str
    revision: int
    status: Literal["active", "retired"]
    spec: DeploymentSpec
    arms: list[RouteArm] = Field(default_factory=list)
    created_by: str | None = None
    created_at: datetime
    updated_by: str | None = None
    updated_at: datetime


class DeploymentRevision(Record):
    """One entry in a deployment's history."""

    revision: int
    action: Literal["deploy", "traffic", "rollback", "undeploy"]
    spec: DeploymentSpec
    status: Literal["active", "retired"]
    parent: int | None = None
    created_by: str | None = None
    created_at: datetime


class ModelPage(Record):
    """One page of a catalog listing."""

    items: list[RegisteredModel]
    total: int
    limit: int
    offset: int


class ModelUpdate(Record):
    """The metadata fields of a registered model that a caller may set; ``None`` leaves a field as is."""

    description: str | None = None
    owner: str | None = Field(default=None, max_length=256)
    business_unit: str | None = Field(default=None, max_length=256)
    risk_tier: RiskTier | None = None
    kpis: list[BusinessKPI] | None = None
    resources: Resources | None = None
    protected_attributes: list[str] | None = None
    tags: dict[str, str] | None = None

    @field_validator("kpis", mode="before")
    @classmethod
    def _kpi_names(cls, value: Any) -> Any:
        # A plain list of names is the common case in notebooks: ["approval_rate", "default_rate"].
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class DebtFlag(Record):
    """One reason a model carries debt, with its weight in the model's score."""

    code: Literal[
        "unmonitored", "stale_monitoring", "open_alert", "failing_gates", "compliance_findings", "overdue_review",
        "overdue_retraining", "no_owner",
    ]  # fmt: skip
    message: str
    weight: int


class ModelDebt(Record):
    model: str
    score: int
    in_production: bool
    flags: list[DebtFlag] = Field(default_factory=list)


class Comment(Record):
    """A remark on a model or one of its versions (a validator's finding, the business owner's answer), shown in
    the model's timeline beside its events."""

    id: int
    model: str
    version: int | None = None
    author: str
    text: str
    created_at: datetime


class ModelOverview(Record):
    """A model as the dashboard's catalog lists it: what it is, where its production version stands, how its
    monitors are doing, and what it owes."""

    name: str
    kind: str
    description: str = ""
    owner: str | None = None
    business_unit: str | None = None
    risk_tier: str | None = None
    latest_version: int = 0
    production_version: int | None = None
    lifecycle: str | None = None
    stage: str | None = None
    health: Literal["ok", "breach", "error", "not_enough_data", "no_result", "unmonitored"]
    monitors: int = 0
    open_alerts: int = 0
    debt_score: int = 0
    debt_flags: list[str] = Field(default_factory=list)


class DebtReport(Record):
    """Model debt per model and for the catalog: what is in production unwatched, overdue or failing."""

    models: list[ModelDebt]
    total: int
    with_debt: int
    checked_at: datetime


class DebtPoint(Record):
    """Model debt on one day, from that day's snapshot: the catalog's total, how many models carried debt, and
    each model's score (``record_debt`` takes the snapshots, ``debt_history`` reads them)."""

    day: date
    total: int
    with_debt: int
    models: dict[str, int] = Field(default_factory=dict)
