"""The facade: every use case is a method of ``Steward``, embedded (``LocalSteward``) or remote."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelsteward.domain.lifecycle import (
    GateCheck,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    RoleGrant,
    Run,
)
from modelsteward.domain.monitoring import (
    Alert,
    AlertRule,
    AlertRuleState,
    Channel,
    Delivery,
    KPIPoint,
    Monitor,
    MonitorResult,
    MonitorSpec,
)
from modelsteward.domain.records import (
    Alias,
    AuditCheck,
    BusinessKPI,
    Comment,
    Dataset,
    DebtPoint,
    DebtReport,
    Deployment,
    DeploymentRevision,
    DeploymentSpec,
    Event,
    Lineage,
    ModelPage,
    ModelUpdate,
    ModelVersion,
    NewToken,
    Principal,
    RegisteredModel,
    Resources,
    TokenInfo,
    VersionSummary,
)
from modelsteward.errors import InvalidArgument

if TYPE_CHECKING:
    from datetime import date, datetime

    import pandas as pd

    from modelsteward.catalog.registration import Registration
    from modelsteward.domain.compliance import ComplianceRun, ComplianceSuite, StoredSuite, TestResult
    from modelsteward.domain.explain import Explanation
    from modelsteward.domain.report import Report
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.gateway import Served
    from modelsteward.stats.drift import DriftReport


def model_update(
    *,
    description: str | None = None,
    owner: str | None = None,
    business_unit: str | None = None,
    risk_tier: str | None = None,
    kpis: list[str | dict[str, Any] | BusinessKPI] | None = None,
    resources: dict[str, Any] | Resources | None = None,
    protected_attributes: list[str] | None = None,
    tags: dict[str, Any] | None = None,
) -> ModelUpdate:
    """Validate model metadata given as keyword arguments; errors name the field."""
    from pydantic import ValidationError

    try:
        return ModelUpdate.model_validate(
            {
                "description": description,
                "owner": owner,
                "business_unit": business_unit,
                "risk_tier": risk_tier,
                "kpis": kpis,
                "resources": resources,
                "protected_attributes": protected_attributes,
                "tags": tags,
            }
        )
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"invalid {field}: {first['msg']}", details={"field": field}) from e


def parse_spec(model: type[Any], value: Any, *, what: str) -> Any:
    """A Pydantic spec from an instance, a dict, YAML text (a str) or a YAML file (a ``pathlib.Path``);
    errors name the field, and the line when it came from YAML."""
    from pydantic import ValidationError

    if isinstance(value, model):
        return value
    if isinstance(value, (str, Path)):
        from modelsteward.domain.yaml_source import definition_error, load_yaml

        source = str(value) if isinstance(value, Path) else what
        text = value.read_text(encoding="utf-8") if isinstance(value, Path) else value
        data, locate = load_yaml(text, source=source)
        try:
            return model.model_validate(data)
        except ValidationError as e:
            raise definition_error(e, locate, source) from e
    try:
        return model.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or what
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidArgument(f"invalid {what}: {field}: {message}", details={"field": field}) from e


def deployment_spec(
    *,
    champion: str | None = None,
    challengers: dict[str, float] | None = None,
    shadows: list[str] | None = None,
    sticky_key: str | None = None,
    pipeline: dict[str, Any] | str | Path | None = None,
    log_predictions: bool = True,
    description: str = "",
) -> DeploymentSpec:
    """Validate a route set given as keyword arguments; a pipeline may be a dict, YAML text (a str)
    or a YAML file (a ``pathlib.Path``)."""
    from pydantic import ValidationError

    definition: dict[str, Any] | None = None
    if pipeline is not None:
        from modelsteward.serving.pipeline import PipelineSpec

        if isinstance(pipeline, dict):
            parsed = PipelineSpec.model_validate(pipeline)
        elif isinstance(pipeline, Path):
            parsed = PipelineSpec.from_file(pipeline)
        else:  # a string is YAML text, never a path: a server must not read files a client names
            parsed = PipelineSpec.from_yaml(str(pipeline), source="pipeline")
        definition = parsed.model_dump(mode="json")
    try:
        return DeploymentSpec(
            champion=champion,
            challengers=challengers or {},
            shadows=shadows or [],
            sticky_key=sticky_key,
            pipeline=definition,
            log_predictions=log_predictions,
            description=description,
        )
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "deployment"
        raise InvalidArgument(
            f"invalid deployment: {first['msg'].removeprefix('Value error, ')}", details={"field": field}
        ) from e


class Steward(abc.ABC):
    """Model Steward's one interface.

    ``Steward(data_dir="./steward-data")`` works embedded, on a data directory (SQLite and local
    files by default, or the URLs in ``STEWARD_DATABASE_URL`` / ``STEWARD_ARTIFACT_URL``);
    ``Steward(url="http://127.0.0.1:8765", token=...)`` talks to a server and behaves the same.

    >>> st = Steward(data_dir="./steward-data")               # doctest: +SKIP
    >>> v = st.register_model("credit-risk", estimator, input_example=X.head(), training_data=X)  # doctest: +SKIP
    >>> st.set_alias("credit-risk", "production", v.version)  # doctest: +SKIP
    >>> st.predict("credit-risk@production", X)                # doctest: +SKIP
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Steward:
        if cls is Steward:
            if kwargs.get("url") is not None:
                from modelsteward.client.remote import RemoteSteward

                cls = RemoteSteward
            else:
                from modelsteward.local_steward import LocalSteward

                cls = LocalSteward
        return super().__new__(cls)

    # -- registration -------------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        kind: str | None = None,
        input_example: Any = None,
        training_data: Any = None,
        datasets: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        version_tags: dict[str, Any] | None = None,
        description: str | None = None,
        version_description: str = "",
        owner: str | None = None,
        business_unit: str | None = None,
        risk_tier: str | None = None,
        kpis: list[str | dict[str, Any] | BusinessKPI] | None = None,
        resources: dict[str, Any] | Resources | None = None,
        protected_attributes: list[str] | None = None,
        capture_git: bool = True,
    ) -> ModelVersion:
        """Register a new version of ``name`` (creating the model on first use) and return it.

        ``model`` is anything a kind accepts: a scikit-learn estimator, an ONNX model, a rule-set or
        optimization YAML file, an MLflow model directory, an object with ``predict``. The kind is
        inferred when not given. ``input_example`` (a few rows) fixes the signature;
        ``training_data`` (a DataFrame or a CSV/Parquet path) is fingerprinted and linked as
        lineage; ``datasets`` adds more, by role (``{"validation": df}``). ``tags``, ``owner``,
        ``kpis`` and the other model fields update the registered model; ``version_tags`` and
        ``version_description`` belong to this version only.
        """
        from modelsteward.catalog.registration import prepare_registration

        registration = prepare_registration(
            name,
            model,
            kind=kind,
            input_example=input_example,
            training_data=training_data,
            datasets=datasets,
            metrics=metrics,
            params=params,
            version_tags=version_tags,
            description=version_description,
            model_update=model_update(
                description=description,
                owner=owner,
                business_unit=business_unit,
                risk_tier=risk_tier,
                kpis=kpis,
                resources=resources,
                protected_attributes=protected_attributes,
                tags=tags,
            ),
            capture_git=capture_git,
        )
        return self.register_prepared(registration)

    @abc.abstractmethod
    def register_prepared(self, registration: Registration) -> ModelVersion:
        """Record a registration prepared by ``prepare_registration`` (used by the faces)."""

    # -- models -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name`` with its metadata and aliases."""

    @abc.abstractmethod
    def update_model(self, name: str, **fields: Any) -> RegisteredModel:
        """Change a model's metadata: description, owner, business_unit, risk_tier, kpis, resources,
        protected_attributes, tags (tags replace the old set)."""

    @abc.abstractmethod
    def search_models(
        self,
        *,
        kind: str | None = None,
        owner: str | None = None,
        business_unit: str | None = None,
        risk_tier: str | None = None,
        tags: dict[str, str] | None = None,
        query: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order_by: str = "name",
    ) -> ModelPage:
        """One page of models matching every filter given; ``query`` searches names, descriptions,
        owners and business units."""

    def list_models(
        self,
        *,
        kind: str | None = None,
        owner: str | None = None,
        business_unit: str | None = None,
        risk_tier: str | None = None,
        tags: dict[str, str] | None = None,
        query: str | None = None,
    ) -> list[RegisteredModel]:
        """Every model matching the filters, sorted by name."""
        items: list[RegisteredModel] = []
        while True:
            page = self.search_models(
                kind=kind,
                owner=owner,
                business_unit=business_unit,
                risk_tier=risk_tier,
                tags=tags,
                query=query,
                limit=1000,
                offset=len(items),
            )
            items.extend(page.items)
            if not page.items or len(items) >= page.total:
                return items

    # -- versions -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def get_version(self, ref: str) -> ModelVersion:
        """The version a reference names: ``name`` (latest), ``name/3`` or ``name@production``."""

    @abc.abstractmethod
    def list_versions(
        self, name: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[VersionSummary]:
        """Summaries of one model's versions (newest first), or of the whole catalog when ``name`` is
        None; ``get_version`` gives a version's full record."""

    @abc.abstractmethod
    def get_lineage(self, ref: str) -> Lineage:
        """The data sets a version was trained and tested on (and, later, where it is deployed)."""

    @abc.abstractmethod
    def get_dataset(self, content_hash: str) -> Dataset:
        """A data set's fingerprint: hash, rows, schema and per-column profile."""

    # -- aliases ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int, *, expected_version: int | None = None) -> Alias:
        """Point ``name@alias`` at ``version``. With ``expected_version``, only if the alias still
        points there (compare-and-set), else :class:`Conflict`."""

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""

    @abc.abstractmethod
    def list_aliases(self, name: str) -> list[Alias]:
        """A model's aliases and the versions they point at."""

    # -- using models -------------------------------------------------------------------------------

    @abc.abstractmethod
    def load_model(self, ref: str) -> LoadedModel:
        """Load a version in this process; the artifact's sha256 is checked before loading."""

    @abc.abstractmethod
    def predict(self, ref: str, data: Any) -> pd.DataFrame:
        """Predict with a version (embedded: in process; remote: on the server)."""

    @abc.abstractmethod
    def artifact_bytes(self, ref: str) -> tuple[ModelVersion, bytes]:
        """A version and its artifact's bytes, checked against the registered sha256."""

    def score_file(
        self,
        ref: str,
        input_path: str | Path,
        output_path: str | Path,
        *,
        chunk_size: int = 50_000,
        include_input: bool = True,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Batch-score a CSV or Parquet file into a .parquet or .csv file, chunk by chunk, in this
        process; ``progress(rows_done, total_rows)`` is called after each chunk. Returns the row count."""
        from modelsteward.serving.batch import score_file

        model = self.load_model(ref)
        return score_file(
            model,
            input_path,
            output_path,
            chunk_size=chunk_size,
            include_input=include_input,
            progress=progress,
        )

    def score_with_dask(
        self,
        ref: str,
        input_path: str | Path,
        output_path: str | Path,
        *,
        scheduler: str | None = None,
        include_input: bool = True,
        blocksize: int | str | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """Batch-score a CSV or Parquet input (a file or a directory of parts) on Dask into a directory of
        Parquet parts, with the same rows and columns as :meth:`score_file`; returns the row count.

        Each worker loads the version once from the artifact (sha256 checked on the worker); no process
        holds the whole data. ``scheduler``: a ``dask.distributed`` address, default a LocalCluster for
        the call.

        >>> st.score_with_dask("credit-risk@production", "big/", "out/", scheduler="tcp://host:8786")  # doctest: +SKIP
        """
        from modelsteward.serving.batch_dask import score_with_dask

        version, data = self.artifact_bytes(ref)
        return score_with_dask(
            version.model_dump(mode="json"),
            data,
            input_path,
            output_path,
            scheduler=scheduler,
            include_input=include_input,
            blocksize=blocksize,
            progress=progress,
        )

    # -- deployments --------------------------------------------------------------------------------

    @abc.abstractmethod
    def deploy(
        self,
        name: str,
        champion: str | None = None,
        *,
        challengers: dict[str, float] | None = None,
        shadows: list[str] | None = None,
        sticky_key: str | None = None,
        pipeline: dict[str, Any] | str | Path | None = None,
        log_predictions: bool = True,
        description: str = "",
    ) -> Deployment:
        """Create or change the route set ``name``.

        ``champion`` answers (usually ``"credit-risk@production"``); ``challengers`` maps references to
        their share of traffic (A/B, canary); ``shadows`` receive a copy of every request and are
        only logged; ``sticky_key`` names a request field whose hash picks the arm. Instead of a
        champion, ``pipeline`` (a dict, YAML text, or a ``pathlib.Path`` to a YAML file) serves a
        graph of steps.
        Moving an alias later re-routes live traffic without a redeploy.
        """

    @abc.abstractmethod
    def set_traffic(self, name: str, challengers: dict[str, float]) -> Deployment:
        """Change the challengers' shares, e.g. a canary step from 0.05 to 0.25 (1.0: all traffic)."""

    def set_share(self, name: str, ref: str, weight: float) -> Deployment:
        """One challenger's share changed and the others kept: a canary step (``set_traffic`` sets them all)."""
        return self.set_traffic(name, {**self.get_deployment(name).spec.challengers, ref: weight})

    @abc.abstractmethod
    def undeploy(self, name: str) -> Deployment:
        """Stop serving ``name`` (its history stays; ``rollback`` brings it back)."""

    @abc.abstractmethod
    def rollback(self, name: str) -> Deployment:
        """Return to the route set before the last change, atomically."""

    @abc.abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """A deployment with its arms as they resolve now."""

    @abc.abstractmethod
    def list_deployments(self, *, status: str | None = None) -> list[Deployment]:
        """Every deployment (``status="active"`` for the served ones)."""

    @abc.abstractmethod
    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        """A deployment's revisions, newest first."""

    @abc.abstractmethod
    def serve(self, name: str, data: Any, *, request_id: str | None = None) -> Served:
        """Send one request through deployment ``name``'s route set, as the gateway does."""

    # -- monitoring ---------------------------------------------------------------------------------

    def detect_drift(self, reference: Any, current: Any, **options: Any) -> DriftReport:
        """Compare two data sets (or a stored profile and a data set) column by column, in process.

        >>> report = st.detect_drift(training_df, todays_df)   # doctest: +SKIP
        >>> report.drifted, report.to_frame()                   # doctest: +SKIP
        """
        from modelsteward.stats.drift import detect_drift

        return detect_drift(reference, current, **options)

    @abc.abstractmethod
    def put_monitor(self, name: str, spec: MonitorSpec | dict[str, Any] | str | Path) -> Monitor:
        """Create or replace a monitor (a MonitorSpec, a dict, YAML text or a YAML file)."""

    @abc.abstractmethod
    def get_monitor(self, name: str) -> Monitor: ...

    @abc.abstractmethod
    def list_monitors(self) -> list[Monitor]: ...

    @abc.abstractmethod
    def delete_monitor(self, name: str) -> None: ...

    @abc.abstractmethod
    def run_monitor(self, name: str, *, at: datetime | None = None) -> MonitorResult:
        """Run a monitor now (or over the window ending at ``at``), store and alert on its result."""

    @abc.abstractmethod
    def monitor_results(self, name: str, *, limit: int = 50) -> list[MonitorResult]: ...

    @abc.abstractmethod
    def record_kpis(self, points: list[KPIPoint | dict[str, Any]]) -> int:
        """Record business KPI observations (kpi, scope, ts, value, arm)."""

    @abc.abstractmethod
    def kpi_series(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[KPIPoint]: ...

    @abc.abstractmethod
    def compare_kpi_arms(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        """Compare a KPI between the two arms of an A/B deployment (Welch or two-proportion test)."""

    @abc.abstractmethod
    def kpi_change(
        self, kpi: str, scope: str, *, change_at: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        """Did the KPI move at the deployment change? Before/after test plus a change-point search;
        ``answer`` says it in a sentence."""

    @abc.abstractmethod
    def put_channel(self, channel: Channel | dict[str, Any]) -> Channel:
        """Create or replace an alert channel (webhook, slack, email, ticket)."""

    @abc.abstractmethod
    def list_channels(self) -> list[Channel]: ...

    @abc.abstractmethod
    def put_alert_rule(self, rule: AlertRule | dict[str, Any]) -> AlertRuleState:
        """Create or replace an alert rule over a monitor's results or a KPI."""

    @abc.abstractmethod
    def list_alert_rules(self) -> list[AlertRuleState]: ...

    @abc.abstractmethod
    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]: ...

    @abc.abstractmethod
    def acknowledge_alert(self, alert_id: int) -> Alert: ...

    @abc.abstractmethod
    def resolve_alert(self, alert_id: int) -> Alert: ...

    @abc.abstractmethod
    def list_deliveries(self, *, alert_id: int | None = None, status: str | None = None) -> list[Delivery]: ...

    # -- life cycles --------------------------------------------------------------------------------

    @abc.abstractmethod
    def apply_lifecycle(self, definition: LifecycleDefinition | dict[str, Any] | str | Path) -> Lifecycle:
        """Store a life-cycle definition (a LifecycleDefinition, a dict, YAML text or a YAML file) and put
        the models it lists under it; errors name the field, and the line for YAML."""

    @abc.abstractmethod
    def get_lifecycle(self, name: str) -> Lifecycle: ...

    @abc.abstractmethod
    def list_lifecycles(self) -> list[Lifecycle]: ...

    @abc.abstractmethod
    def assign_lifecycle(
        self, model: str, lifecycle: str, *, parameters: dict[str, float] | None = None
    ) -> LifecycleStatus:
        """Put one model under a stored life cycle, overriding some of its thresholds."""

    @abc.abstractmethod
    def lifecycle_status(self, model: str) -> LifecycleStatus:
        """Each version's stage, and the model's recent transitions with their gates and approvals."""

    @abc.abstractmethod
    def advance(self, ref: str, to: str) -> Run:
        """Ask to move a version to stage ``to``: gates run now; approvals and actions follow."""

    @abc.abstractmethod
    def check_gates(self, ref: str, to: str) -> GateCheck:
        """Evaluate the gates of the move to ``to`` without starting it (what CI pipelines call)."""

    @abc.abstractmethod
    def approve(self, ref: str, *, role: str, comment: str = "") -> Run:
        """Sign the version's transition that waits for approval, in ``role``. Refused (and recorded)
        for the version's author, a user without the role, or a second signature by one person."""

    @abc.abstractmethod
    def reject(self, ref: str, *, role: str, comment: str = "") -> Run: ...

    @abc.abstractmethod
    def lifecycle_runs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Run]: ...

    @abc.abstractmethod
    def get_lifecycle_run(self, run_id: int) -> Run: ...

    @abc.abstractmethod
    def cancel_lifecycle_run(self, run_id: int, *, reason: str = "") -> Run: ...

    @abc.abstractmethod
    def grant_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> RoleGrant:
        """Grant a role globally, for one model, or for a business unit."""

    @abc.abstractmethod
    def revoke_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    def list_grants(self, principal: str | None = None) -> list[RoleGrant]: ...

    @abc.abstractmethod
    def list_jobs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Job]:
        """Retraining jobs, newest first, with their status, duration, log tail and produced version."""

    @abc.abstractmethod
    def get_job(self, job_id: int) -> Job: ...

    def lifecycle_diagram(self, name: str, *, model: str | None = None) -> str:
        """The life cycle ``name`` as a Mermaid state diagram; with ``model``, its versions' stages marked."""
        from modelsteward.domain.lifecycle_diagram import mermaid

        status = self.lifecycle_status(model) if model is not None else None
        return mermaid(self.get_lifecycle(name).definition, status)

    # -- the trail ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def list_events(
        self, *, model: str | None = None, action: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[Event]:
        """The newest audit events, optionally for one model, one ``action`` (or a family: ``"lifecycle.*"``)
        and one ``actor``."""

    # -- collaboration --------------------------------------------------------------------------------

    @abc.abstractmethod
    def add_comment(self, model: str, text: str, *, version: int | None = None) -> Comment:
        """Comment on a model or one of its versions (a finding, an answer); it joins the model's timeline and
        the audit trail."""

    @abc.abstractmethod
    def model_history(self, model: str, *, limit: int = 100) -> list[Event]:
        """One model's audit events, newest first: what its page's timeline shows to anyone who may see the model
        (the whole trail, ``list_events``, is for auditors)."""

    @abc.abstractmethod
    def list_comments(self, model: str, *, version: int | None = None, limit: int = 200) -> list[Comment]:
        """A model's comments, newest first (of one version with ``version``)."""

    # -- identities ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_user(self, name: str, *, kind: str = "user", display_name: str = "") -> Principal:
        """A user or (``kind="service"``) a service account, who can then hold tokens and roles."""

    @abc.abstractmethod
    def list_users(self) -> list[Principal]: ...

    @abc.abstractmethod
    def disable_user(self, name: str) -> None:
        """Its tokens stop working at once (within seconds on every worker)."""

    @abc.abstractmethod
    def create_token(self, principal: str, *, name: str = "default", expires_in: str | None = "90d") -> NewToken:
        """An API token for ``principal``; ``token`` is shown this once and stored only as a hash."""

    @abc.abstractmethod
    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: int) -> None: ...

    @abc.abstractmethod
    def model_debt(self, model: str | None = None, *, max_age: str = "180d", stale_after: str = "2d") -> DebtReport:
        """Model debt per model, worst first: in production without a monitor, monitors that stopped running,
        open alerts, failing gates, approvals past their SLA, a production version older than ``max_age``,
        no owner."""

    @abc.abstractmethod
    def record_debt(self, day: date | None = None) -> int:
        """Take the day's snapshot of model debt (today's by default): each model's ``model_debt`` score and
        flags, replacing any snapshot taken earlier that day. Returns the number of models.

        >>> st.record_debt()  # what ``steward up``'s scheduler does once a day  # doctest: +SKIP
        5
        """

    @abc.abstractmethod
    def debt_history(self, days: int = 90) -> list[DebtPoint]:
        """Model debt over the last ``days`` days, one point per day with a snapshot, oldest first: the
        catalog's total, the models with debt and each model's score."""

    @abc.abstractmethod
    def verify_audit(self) -> AuditCheck:
        """Check the audit trail's hash chain from its first event; names the first broken one."""

    @abc.abstractmethod
    def export_audit(self, out: IO[str], *, after: int = 0) -> int:
        """Write the trail (events after sequence ``after``) as JSON Lines with their hashes; returns the count."""

    # -- compliance -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def put_compliance_suite(self, suite: ComplianceSuite | dict[str, Any] | str | Path) -> StoredSuite:
        """Store a compliance suite (YAML file or text, dict) by its name, for runs and life-cycle gates."""

    @abc.abstractmethod
    def list_compliance_suites(self) -> list[StoredSuite]: ...

    @abc.abstractmethod
    def run_compliance(
        self, ref: str, suite: ComplianceSuite | dict[str, Any] | str | Path, *, data: Any = None
    ) -> ComplianceRun:
        """Run a suite (a stored suite's name or a definition) on a version and keep the result with it.

        ``data`` (a DataFrame or a .csv/.parquet path) overrides the suite's held-out data, which is
        otherwise a data set the version's lineage links (``data: test``), read and checked by fingerprint.

        >>> run = st.run_compliance("credit-risk/2", "credit-risk-validation")  # doctest: +SKIP
        >>> run.status, [r.summary for r in run.failed]                          # doctest: +SKIP
        """

    @abc.abstractmethod
    def compliance_runs(
        self, ref: str | None = None, *, suite: str | None = None, limit: int = 50
    ) -> list[ComplianceRun]:
        """Runs newest first, of a model (``name``) or a version (``name/3``, ``name@alias``)."""

    @abc.abstractmethod
    def get_compliance_run(self, run_id: int) -> ComplianceRun: ...

    @abc.abstractmethod
    def feature_importance(self, ref: str) -> TestResult:
        """The global importances stored with a version by its latest explainability test."""

    @abc.abstractmethod
    def explain(self, deployment: str, data: Any) -> list[Explanation]:
        """Per-prediction explanations from the version a deployment's champion resolves to (SHAP values per
        input column, or the rule that fired for a rule set)."""

    def audit_report(self, ref: str, *, as_of: datetime | None = None) -> Report:
        """The auditor's report of a version (``credit-risk@production``) as it stood at ``as_of`` (now by
        default; an alias is resolved as it pointed then), composed from this facade's public methods.
        Render it with ``render_html``/``render_pdf`` from ``modelsteward.governance.report_render``.

        >>> report = st.audit_report("credit-risk@production", as_of=datetime(2026, 3, 1, tzinfo=UTC))  # doctest: +SKIP
        >>> report.subject  # doctest: +SKIP
        'credit-risk/2'
        """
        from modelsteward.reporting.auditor import build_report

        return build_report(self, ref, as_of=as_of)

    def close(self) -> None:  # noqa: B027 - a no-op by default; bodies with connections override it
        """Release connections; the object must not be used afterwards."""

    def __enter__(self) -> Steward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
