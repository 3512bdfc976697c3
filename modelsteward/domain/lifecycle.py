"""Life cycles as code: the definition schema (stages, transitions, gates, approvals, actions,
triggers, retraining) and the records the engine keeps (positions, runs, steps, approvals, jobs, grants).

A definition is YAML validated here; :func:`check_definition` adds the checks that need the whole
definition (stages that exist, no cycle of automatic transitions, parameters that are defined), each
naming the path so that the YAML loader can point at the line.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelsteward.domain.monitoring import OneOf, parse_duration
from modelsteward.domain.refs import ALIAS_PATTERN, NAME_PATTERN

_NAME = rf"^{NAME_PATTERN}$"
# Names that may follow the model a definition is applied to: "{model}-drift" is credit-risk-drift for credit-risk.
_PER_MODEL = r"^(?:[A-Za-z0-9._-]|\{model\}){1,160}$"
_STAGE = r"^[a-z][a-z0-9_-]{0,62}$"
_PARAM = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")

ROLES = ("viewer", "data_scientist", "validator", "approver", "operator", "auditor", "admin")
Role = Literal["viewer", "data_scientist", "validator", "approver", "operator", "auditor", "admin"]

# A threshold is a number or a reference to one of the definition's parameters: "${min_auc}".
Threshold = float | str


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _threshold(value: Any) -> Any:
    if isinstance(value, str) and not _PARAM.match(value):
        raise ValueError(f"{value!r} is neither a number nor a parameter reference like '${{min_auc}}'")
    return value


def parameter_name(value: Threshold | None) -> str | None:
    """``"${min_auc}"`` -> ``"min_auc"``; a number -> ``None``."""
    if isinstance(value, str):
        match = _PARAM.match(value)
        return match.group(1) if match else None
    return None


# -- gates: automated checks that must pass ----------------------------------------------------------


class MetricGate(Spec):
    """A metric the version was registered with, between bounds."""

    metric: str = Field(min_length=1)
    min: Threshold | None = None
    max: Threshold | None = None

    _check_min = field_validator("min", "max")(_threshold)

    @model_validator(mode="after")
    def _bounded(self) -> MetricGate:
        if self.min is None and self.max is None:
            raise ValueError("give min or max")
        return self


class ChampionGate(Spec):
    """The version against the one that holds ``stage`` now: at least ``min_delta`` better on ``metric``
    (negative allows a small loss). Passes when there is no champion yet."""

    metric: str = Field(min_length=1)
    min_delta: Threshold = 0.0
    higher_is_better: bool = True
    stage: str = Field(default="production", pattern=_STAGE)

    _check_delta = field_validator("min_delta")(_threshold)


class MonitorGate(Spec):
    """The latest result of a monitor (drift, data quality, performance) is recent and not a breach."""

    monitor: str = Field(pattern=_PER_MODEL, description="a monitor; {model} stands for the model's name")
    max_age: str = "1d"
    allow: list[Literal["ok", "not_enough_data", "breach", "error"]] = Field(default_factory=lambda: ["ok"])

    @field_validator("max_age")
    @classmethod
    def _age(cls, value: str) -> str:
        parse_duration(value)
        return value


ProvenanceItem = Literal["training_data", "git_commit", "clean_tree", "environment", "signature"]


class ProvenanceGate(Spec):
    """Reproducibility: the version records what it takes to train it again."""

    require: list[ProvenanceItem] = Field(
        default_factory=lambda: ["training_data", "git_commit", "clean_tree", "environment", "signature"],
        min_length=1,
    )


class ChallengerGate(Spec):
    """Champion against challenger on live traffic: the version's arm on ``deployment`` against the
    champion's, over the last ``window``. ``metric: accuracy`` compares the share of correct answers
    once ground truth arrived (a two-proportion z-test); ``kpi`` compares a business KPI's points per
    arm (Welch's t-test; KPI points name their arm ``name/VERSION``). Below ``min_samples`` per arm the
    gate fails as not enough data, so that promotion is never decided on noise. ``require: better``
    needs a significant gain; ``not_worse`` (default) fails only on a significant loss."""

    deployment: str = Field(pattern=_PER_MODEL)
    metric: Literal["accuracy"] | None = None
    kpi: str | None = Field(default=None, min_length=1, max_length=128)
    window: str = "7d"
    min_samples: int = Field(default=200, ge=10)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    require: Literal["better", "not_worse"] = "not_worse"
    higher_is_better: bool = True
    prediction: str = "prediction"
    actual: str = "actual"

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _what(self) -> ChallengerGate:
        if (self.metric is None) == (self.kpi is None):
            raise ValueError("compare the arms on a metric (accuracy) or on a kpi, one of the two")
        return self


class ComplianceGate(Spec):
    """The version's latest run of a compliance suite passed, and is at most ``max_age`` old; with ``run`` (the
    default) the gate runs the stored suite when there is no such run yet."""

    suite: str = Field(pattern=_PER_MODEL, description="a stored suite; {model} stands for the model's name")
    max_age: str = "30d"
    run: bool = True

    @field_validator("max_age")
    @classmethod
    def _age(cls, value: str) -> str:
        parse_duration(value)
        return value


class Gate(OneOf):
    """Exactly one kind of gate."""

    what: ClassVar[str] = "gate"

    metric: MetricGate | None = None
    champion: ChampionGate | None = None
    challenger: ChallengerGate | None = None
    monitor: MonitorGate | None = None
    provenance: ProvenanceGate | None = None
    compliance: ComplianceGate | None = None


# -- actions: what a transition does once its gates pass and its approvers approved -------------------


class SetAliasAction(Spec):
    alias: str = Field(pattern=rf"^{ALIAS_PATTERN}$")


class RemoveAliasAction(Spec):
    alias: str = Field(pattern=rf"^{ALIAS_PATTERN}$")


class DeployAction(Spec):
    """Put the version on a deployment as a shadow, a challenger (canary) with a weight, or the champion."""

    deployment: str = Field(pattern=_PER_MODEL)
    role: Literal["shadow", "canary", "champion"]
    weight: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _weight(self) -> DeployAction:
        if self.role == "canary" and self.weight is None:
            raise ValueError("a canary needs a weight, e.g. 0.05")
        if self.role != "canary" and self.weight is not None:
            raise ValueError(f"a {self.role} takes no weight")
        return self


class TrafficAction(Spec):
    """Step the version's canary weight up (or down) on a deployment."""

    deployment: str = Field(pattern=_PER_MODEL)
    weight: float = Field(gt=0, le=1)


class PromoteAction(Spec):
    """Move ``alias`` to the version and make it the deployment's only answering arm (champion)."""

    alias: str = Field(default="production", pattern=rf"^{ALIAS_PATTERN}$")
    deployment: str | None = Field(default=None, pattern=_PER_MODEL)


class RollbackAction(Spec):
    deployment: str = Field(pattern=_PER_MODEL)


class RetrainAction(Spec):
    """Run the model's retraining job; its new version enters the life cycle at the initial stage.
    The run waits for the job: a failed or hung job fails the run (and alerts) and nothing else moves."""


class NotifyAction(Spec):
    """Tell people: a notice to alert channels (webhook, Slack, e-mail), once per run."""

    channels: list[str] = Field(min_length=1)
    message: str = ""
    severity: Literal["info", "warning", "critical"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _one_channel(cls, value: Any) -> Any:
        if isinstance(value, dict) and "channel" in value:
            value = {**value, "channels": [value["channel"]]}
            value.pop("channel")
        return value


class TicketAction(Spec):
    """Open a ticket through a ticket channel (Jira-style payload), once per run."""

    channel: str = Field(pattern=_NAME)
    summary: str = ""


class Action(OneOf):
    """Exactly one kind of action."""

    what: ClassVar[str] = "action"

    set_alias: SetAliasAction | None = None
    remove_alias: RemoveAliasAction | None = None
    deploy: DeployAction | None = None
    traffic: TrafficAction | None = None
    promote: PromoteAction | None = None
    rollback: RollbackAction | None = None
    retrain: RetrainAction | None = None
    notify: NotifyAction | None = None
    ticket: TicketAction | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        if value == "retrain":  # `- retrain` reads better than `- retrain: {}`
            return {"retrain": {}}
        if isinstance(value, dict) and list(value) == ["retrain"] and value["retrain"] is None:
            return {"retrain": {}}  # `- retrain:` with nothing after it
        return value


# -- triggers, approvals, transitions ---------------------------------------------------------------

EventName = Literal["entered", "version_registered", "monitor_breach", "alert"]


class Trigger(Spec):
    """What starts a transition besides a person: an event or a schedule.

    ``entered``: as soon as the version enters the transition's from-stage; ``version_registered``:
    a new version of the model; ``monitor_breach`` (optionally one ``monitor``; it fires when the
    monitor enters breach, not again while it keeps breaching) and ``alert``
    (optionally one alert ``rule``; KPI drops arrive as alerts on a KPI rule) apply to the version
    in the from-stage; ``schedule``: cron or an interval.
    """

    event: EventName | None = None
    monitor: str | None = Field(default=None, pattern=_PER_MODEL)
    rule: str | None = Field(default=None, pattern=_PER_MODEL)
    schedule: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        if (self.event is None) == (self.schedule is None):
            raise ValueError("a trigger is an event or a schedule (or write 'manual')")
        if self.monitor is not None and self.event != "monitor_breach":
            raise ValueError("'monitor' goes with event: monitor_breach")
        if self.rule is not None and self.event != "alert":
            raise ValueError("'rule' goes with event: alert")
        return self


class ApprovalRequirement(Spec):
    role: Role
    count: int = Field(default=1, ge=1, le=10)


class Transition(Spec):
    name: str | None = Field(default=None, pattern=_STAGE)
    from_: list[str] = Field(alias="from", min_length=1)
    to: str = Field(pattern=_STAGE)
    trigger: Trigger | None = None
    gates: list[Gate] = Field(default_factory=list)
    approvals: list[ApprovalRequirement] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    sla: str | None = Field(default=None, description="alert when waiting on a gate or an approval longer")

    @field_validator("gates", "approvals", "actions", mode="before")
    @classmethod
    def _empty(cls, value: Any) -> Any:
        return [] if value is None else value  # `actions:` with nothing under it

    @field_validator("from_", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("trigger", mode="before")
    @classmethod
    def _manual(cls, value: Any) -> Any:
        return None if value in ("manual", None) else value

    @field_validator("sla")
    @classmethod
    def _sla(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @property
    def label(self) -> str:
        return self.name or f"{'|'.join(self.from_)}->{self.to}"


class Stage(Spec):
    """A stage. ``single: true`` holds one version at a time (production): when another version
    enters, the one there moves to ``replaced_to`` (e.g. retired)."""

    name: str = Field(pattern=_STAGE)
    description: str = ""
    single: bool = False
    replaced_to: str | None = Field(default=None, pattern=_STAGE)

    @model_validator(mode="after")
    def _replaced(self) -> Stage:
        if self.single and self.replaced_to is None:
            raise ValueError("a single-version stage needs 'replaced_to': where its previous version goes")
        if self.replaced_to is not None and not self.single:
            raise ValueError("'replaced_to' goes with 'single: true'")
        if self.replaced_to == self.name:
            raise ValueError("'replaced_to' must name another stage")
        return self


class RetrainSpec(Spec):
    """How a model is retrained. ``entry_point`` (``package.module:function``) is called in a fresh
    process as ``function(steward, data, model)`` with the result of the ``data`` query, and registers
    the new version (passing ``training_data=data`` records the lineage); or ``command`` runs with the
    store in its environment (``STEWARD_DATA_DIR`` or ``STEWARD_DATABASE_URL``, ``STEWARD_JOB_ID``,
    ``STEWARD_MODEL``) and registers it itself. ``data`` is SQL over the prediction-log views
    (``predictions_with_feedback`` ...) or, with ``url``, against that database."""

    entry_point: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    command: list[str] | None = None
    data: str | None = Field(default=None, description="SQL whose result is the training data")
    url: str | None = Field(default=None, description="SQLAlchemy URL the data query runs against")
    timeout: str = "30m"
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = Field(default=None, description="working directory of the job")

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            import shlex

            return shlex.split(value)
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one(self) -> RetrainSpec:
        if (self.entry_point is None) == (self.command is None):
            raise ValueError("give exactly one of entry_point and command")
        if self.command is not None and not self.command:
            raise ValueError("the command is empty")
        if self.url is not None and self.data is None:
            raise ValueError("'url' needs a 'data' query")
        return self


class ModelBinding(Spec):
    """A model governed by the definition, with its own thresholds and how it is retrained."""

    parameters: dict[str, float] = Field(default_factory=dict)
    retrain: RetrainSpec | None = None


class LifecycleDefinition(Spec):
    name: str = Field(pattern=_NAME)
    description: str = ""
    stages: list[Stage] = Field(min_length=2)
    initial: str | None = Field(default=None, pattern=_STAGE, description="default: the first stage")
    parameters: dict[str, float] = Field(default_factory=dict)
    transitions: list[Transition] = Field(min_length=1)
    models: dict[str, ModelBinding] = Field(default_factory=dict)

    @field_validator("models", mode="before")
    @classmethod
    def _bare_models(cls, value: Any) -> Any:
        if isinstance(value, list):  # `models: [credit-risk, fraud]`
            if not all(isinstance(name, str) for name in value):
                raise ValueError("a list of models holds model names, e.g. [credit-risk, fraud]")
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {k: {} if v is None else v for k, v in value.items()}
        return value

    @property
    def initial_stage(self) -> str:
        return self.initial or self.stages[0].name

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def transition(self, name: str) -> Transition:
        for t in self.transitions:
            if t.label == name:
                return t
        raise KeyError(name)

    def for_model(self, transition: Transition, model: str) -> Transition:
        """The transition as it applies to ``model``: every ``{model}`` in its names replaced."""
        text = transition.model_dump_json(by_alias=True)
        return transition if "{model}" not in text else Transition.model_validate_json(text.replace("{model}", model))

    def transitions_to(self, stage: str, *, from_stage: str) -> list[Transition]:
        return [t for t in self.transitions if t.to == stage and (from_stage in t.from_ or "*" in t.from_)]


def check_definition(defn: LifecycleDefinition) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems that need the whole definition, each with the path it is about."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    stages = defn.stage_names
    seen: set[str] = set()
    for i, stage in enumerate(defn.stages):
        if stage.name in seen:
            problems.append((("stages", i, "name"), f"stage {stage.name!r} is defined twice"))
        seen.add(stage.name)
    for i, stage in enumerate(defn.stages):
        if stage.replaced_to is not None and stage.replaced_to not in seen:
            problems.append(
                (("stages", i, "replaced_to"), f"unknown stage {stage.replaced_to!r} (stages: {', '.join(stages)})")
            )
    if defn.initial is not None and defn.initial not in seen:
        problems.append((("initial",), f"unknown stage {defn.initial!r} (stages: {', '.join(stages)})"))
    labels: set[str] = set()
    for i, t in enumerate(defn.transitions):
        for j, source in enumerate(t.from_):
            if source != "*" and source not in seen:
                problems.append(
                    (("transitions", i, "from", j), f"unknown stage {source!r} (stages: {', '.join(stages)})")
                )
        if t.to not in seen:
            problems.append(
                (("transitions", i, "to"), f"a transition to nowhere: no stage {t.to!r} (stages: {', '.join(stages)})")
            )
        if t.label in labels:
            problems.append((("transitions", i), f"two transitions are called {t.label!r}: give them names"))
        labels.add(t.label)
        for path, value in _thresholds(t):
            name = parameter_name(value)
            if name is not None and name not in defn.parameters:
                problems.append((("transitions", i, *path), f"parameter {name!r} is not defined under 'parameters'"))
    for name, binding in defn.models.items():
        for key in binding.parameters:
            if key not in defn.parameters:
                problems.append(
                    (("models", name, "parameters", key), f"{key!r} overrides no parameter of the definition")
                )
    cycle = _automatic_cycle(defn)
    if cycle:
        i = next(k for k, t in enumerate(defn.transitions) if t.label == cycle[0])
        problems.append((("transitions", i, "trigger"), "a cycle of automatic transitions: " + " -> ".join(cycle)))
    return problems


def _thresholds(t: Transition) -> list[tuple[tuple[str | int, ...], Threshold | None]]:
    out: list[tuple[tuple[str | int, ...], Threshold | None]] = []
    for g, gate in enumerate(t.gates):
        body = gate.body
        for field in ("min", "max", "min_delta"):
            if hasattr(body, field):
                out.append((("gates", g, gate.kind, field), getattr(body, field)))
    return out


def _automatic_cycle(defn: LifecycleDefinition) -> list[str] | None:
    """Transitions that fire on entering their from-stage and need no person, chained into a loop."""
    edges: dict[str, list[Transition]] = {}
    for t in defn.transitions:
        if t.trigger is not None and t.trigger.event == "entered" and not t.approvals:
            for source in defn.stage_names if "*" in t.from_ else t.from_:
                edges.setdefault(source, []).append(t)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(stage: str) -> list[str] | None:
        state[stage] = 1
        for t in edges.get(stage, []):
            path.append(t.label)
            if state.get(t.to) == 1:
                return list(path)
            if state.get(t.to) is None:
                found = visit(t.to)
                if found:
                    return found
            path.pop()
        state[stage] = 2
        return None

    for stage in defn.stage_names:
        if state.get(stage) is None:
            found = visit(stage)
            if found:
                return found
    return None


# -- records the engine keeps ------------------------------------------------------------------------


class Lifecycle(BaseModel):
    name: str
    revision: int
    definition: LifecycleDefinition
    models: list[str] = Field(default_factory=list, description="the models it governs")
    updated_by: str | None = None
    updated_at: datetime


class Position(BaseModel):
    """Where a model version stands in its life cycle."""

    model: str
    version: int
    lifecycle: str
    stage: str
    since: datetime


class GateResult(BaseModel):
    gate: str
    passed: bool
    value: float | str | None = None
    threshold: float | str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class Approval(BaseModel):
    id: int
    run_id: int
    user: str
    role: str
    decision: Literal["approve", "reject"]
    comment: str = ""
    accepted: bool
    reason: str = ""
    at: datetime


class Step(BaseModel):
    seq: int
    kind: Literal["gates", "approval", "action", "note"]
    name: str
    status: Literal["started", "done", "failed", "skipped"]
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


RunStatus = Literal["waiting_approval", "acting", "done", "failed", "rejected", "cancelled"]


class Run(BaseModel):
    """One attempt to move a version through a transition."""

    id: int
    model: str
    version: int
    lifecycle: str
    transition: str
    from_stage: str
    to_stage: str
    status: RunStatus
    trigger: str
    requested_by: str | None = None
    created_at: datetime
    updated_at: datetime
    gates: list[GateResult] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    error: str | None = None

    @property
    def open(self) -> bool:
        return self.status in ("waiting_approval", "acting")


JobStatus = Literal["running", "succeeded", "failed", "timed_out"]


class Job(BaseModel):
    """A retraining job: what ran, for how long, how it ended, its log and the version it produced."""

    id: int
    kind: str
    model: str
    run_id: int | None = None
    status: JobStatus
    spec: dict[str, Any] = Field(default_factory=dict)
    holder: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = None
    version: int | None = None
    error: str | None = None
    log: str = ""
    created_by: str | None = None


class RoleGrant(BaseModel):
    principal: str
    role: str
    scope: str = Field(description="'global', 'model:NAME' or 'unit:BUSINESS_UNIT'")
    granted_by: str | None = None
    granted_at: datetime


class LifecycleStatus(BaseModel):
    """A model's place in its life cycle: every version's stage, open runs, recent runs."""

    model: str
    lifecycle: str | None
    parameters: dict[str, float] = Field(default_factory=dict)
    positions: list[Position] = Field(default_factory=list)
    runs: list[Run] = Field(default_factory=list)


class GateCheck(BaseModel):
    """The gates of one transition evaluated for one version, without moving it (CI pipelines)."""

    model: str
    version: int
    transition: str
    from_stage: str
    to_stage: str
    passed: bool
    gates: list[GateResult]


def parse_lifecycle(value: Any, *, source: str = "life cycle") -> tuple[LifecycleDefinition, str | None]:
    """A definition from an instance, a dict, YAML text or a YAML file, fully checked; errors name the
    field, and the line when it came from YAML. Returns it and its YAML text (None for a dict)."""
    from pathlib import Path

    from pydantic import ValidationError

    from modelsteward.domain.yaml_source import definition_error, format_path, load_yaml, located, nearest_line
    from modelsteward.errors import InvalidDefinition

    if isinstance(value, str) and "\n" not in value and value.strip().endswith((".yaml", ".yml")):
        value = Path(value.strip())  # a file name given as text
        if not value.is_file():
            raise InvalidDefinition(f"no such file: {value}", details={"field": "definition", "path": str(value)})
    if isinstance(value, LifecycleDefinition):
        defn, text, locate = value, None, None
    elif isinstance(value, (str, Path)):
        source = str(value) if isinstance(value, Path) else source
        text = value.read_text(encoding="utf-8") if isinstance(value, Path) else value
        data, locate = load_yaml(text, source=source)
        try:
            defn = LifecycleDefinition.model_validate(data)
        except ValidationError as e:
            raise definition_error(e, locate, source) from e
    else:
        text, locate = None, None
        try:
            defn = LifecycleDefinition.model_validate(value)
        except ValidationError as e:
            first = e.errors()[0]
            field = format_path(tuple(p for p in first["loc"] if isinstance(p, (str, int))))
            message = str(first["msg"]).removeprefix("Value error, ")
            raise InvalidDefinition(f"{source}: {field}: {message}", details={"field": field}) from e
    problems = check_definition(defn)
    if problems:
        path, message = problems[0]
        line = nearest_line(locate, path) if locate is not None else None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise located(f"{format_path(path)}: {message}{more}", source=source, line=line, field=format_path(path),
                      errors=[{"field": format_path(p), "message": m} for p, m in problems])  # fmt: skip
    return defn, text
