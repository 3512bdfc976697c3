"""The remote body of the facade: the same ``Steward`` methods, over the REST API with httpx."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import threading
from collections import OrderedDict
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from modelsteward.domain.compliance import ComplianceRun, ComplianceSuite, StoredSuite, TestResult, parse_suite
from modelsteward.domain.lifecycle import (
    GateCheck,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    RoleGrant,
    Run,
    parse_lifecycle,
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
    Comment,
    Dataset,
    DebtPoint,
    DebtReport,
    Deployment,
    DeploymentRevision,
    Event,
    Lineage,
    ModelPage,
    ModelVersion,
    NewToken,
    Principal,
    RegisteredModel,
    TokenInfo,
    VersionSummary,
)
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import IntegrityError, RemoteError, StoreUnavailable, error_from_dict
from modelsteward.steward import Steward, deployment_spec, model_update, parse_spec

if TYPE_CHECKING:
    import pandas as pd

    from modelsteward.catalog.registration import Registration
    from modelsteward.domain.explain import Explanation
    from modelsteward.domain.report import Report
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.gateway import Served


class RemoteSteward(Steward):
    """``Steward(url="http://127.0.0.1:8765", token=...)``: talks to ``steward up``.

    Registration prepares the model here (serialize, signature, fingerprints) and uploads the
    artifact with a manifest; ``load_model`` downloads the artifact and checks its sha256 against
    the catalog before loading it; ``predict`` runs on the server.
    """

    def __init__(
        self,
        data_dir: Any = None,
        *,
        url: str,
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        actor: str | None = None,
    ) -> None:
        """``actor`` names the user to a server without a token (a laptop or a test server): it
        defaults to ``STEWARD_USER`` or the login name. A server with a token ignores it."""
        if data_dir is not None:
            raise TypeError("give data_dir (embedded) or url (remote), not both")
        self.url = url.rstrip("/")
        headers = {"user-agent": "modelsteward-client"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        try:
            headers["x-steward-actor"] = actor or os.environ.get("STEWARD_USER") or getpass.getuser()
        except (KeyError, OSError):
            pass
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._natives: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<RemoteSteward {self.url}>"

    # -- HTTP ---------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise StoreUnavailable(
                f"cannot reach the Model Steward server at {self.url}: {e}", details={"url": self.url}
            ) from e
        if response.status_code >= 400:
            self._raise(response)
        return response

    def _raise(self, response: httpx.Response) -> None:
        """The server's error as the StewardError it names (the body ``{"error": {...}}``)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise error_from_dict(body["error"])
        request = response.request
        raise RemoteError(
            f"the server answered {response.status_code} to {request.method} {request.url.path}",
            details={"status": response.status_code},
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- registration -------------------------------------------------------------------------------

    def register_prepared(self, registration: Registration) -> ModelVersion:
        from modelsteward.catalog.registration import to_manifest

        manifest, data = to_manifest(registration)
        body = self._json(
            "POST",
            f"/api/v1/models/{registration.name}/versions",
            files={"artifact": ("artifact", data, "application/octet-stream")},
            data={"manifest": json.dumps(manifest)},
        )
        return ModelVersion.model_validate(body)

    # -- models -------------------------------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._json("GET", f"/api/v1/models/{check_name(name)}"))

    def update_model(self, name: str, **fields: Any) -> RegisteredModel:
        update = model_update(**fields)
        body = self._json(
            "PATCH",
            f"/api/v1/models/{check_name(name)}",
            json=update.model_dump(mode="json", exclude_none=True),
        )
        return RegisteredModel.model_validate(body)

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
        params: dict[str, Any] = {
            k: v
            for k, v in {
                "kind": kind,
                "owner": owner,
                "business_unit": business_unit,
                "risk_tier": risk_tier,
                "q": query,
                "limit": 1000 if limit is None else limit,
                "offset": offset,
                "order_by": order_by,
            }.items()
            if v is not None
        }
        if tags:
            params["tag"] = [f"{k}={v}" for k, v in tags.items()]
        return ModelPage.model_validate(self._json("GET", "/api/v1/models", params=params))

    # -- versions -----------------------------------------------------------------------------------

    def get_version(self, ref: str) -> ModelVersion:
        parsed = ModelRef.parse(ref)
        return ModelVersion.model_validate(self._json("GET", "/api/v1/resolve", params={"ref": str(parsed)}))

    def list_versions(
        self, name: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[VersionSummary]:
        path = "/api/v1/versions" if name is None else f"/api/v1/models/{check_name(name)}/versions"
        page_size = 1000
        items: list[VersionSummary] = []
        while True:
            want = page_size if limit is None else min(page_size, limit - len(items))
            if want <= 0:
                return items
            body = self._json("GET", path, params={"limit": want, "offset": offset + len(items)})
            page = [VersionSummary.model_validate(v) for v in body["items"]]
            items.extend(page)
            if len(page) < want or offset + len(items) >= body["total"]:
                return items

    def get_lineage(self, ref: str) -> Lineage:
        version = self.get_version(ref)
        return Lineage.model_validate(
            self._json("GET", f"/api/v1/models/{version.name}/versions/{version.version}/lineage")
        )

    def get_dataset(self, content_hash: str) -> Dataset:
        return Dataset.model_validate(self._json("GET", f"/api/v1/datasets/{content_hash}"))

    # -- aliases ------------------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int, *, expected_version: int | None = None) -> Alias:
        body = self._json(
            "PUT",
            f"/api/v1/models/{check_name(name)}/aliases/{alias}",
            json={"version": version, "expected_version": expected_version},
        )
        return Alias.model_validate(body)

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/api/v1/models/{check_name(name)}/aliases/{alias}")

    def list_aliases(self, name: str) -> list[Alias]:
        return [Alias.model_validate(a) for a in self._json("GET", f"/api/v1/models/{check_name(name)}/aliases")]

    # -- using models -------------------------------------------------------------------------------

    def artifact_bytes(self, ref: str) -> tuple[ModelVersion, bytes]:
        """A version and its artifact, downloaded and checked against the registered sha256."""
        version = self.get_version(ref)
        data = self._request("GET", f"/api/v1/models/{version.name}/versions/{version.version}/artifact").content
        actual = hashlib.sha256(data).hexdigest()
        if actual != version.artifact.sha256:
            raise IntegrityError(
                f"the artifact of {version.ref} downloaded with sha256 {actual[:12]}... but "
                f"{version.artifact.sha256[:12]}... was registered; refusing to use it",
                details={"model_version": version.ref},
            )
        return version, data

    def load_model(self, ref: str) -> LoadedModel:
        from modelsteward.kinds.base import SavedModel
        from modelsteward.kinds.loaded import LoadedModel
        from modelsteward.kinds.registry import get_kind

        version = self.get_version(ref)
        kind = get_kind(version.kind)
        key = f"{version.kind}:{version.artifact.sha256}"
        with self._lock:
            native = self._natives.get(key)
        if native is None:
            data = self._request("GET", f"/api/v1/models/{version.name}/versions/{version.version}/artifact").content
            actual = hashlib.sha256(data).hexdigest()
            if actual != version.artifact.sha256:
                raise IntegrityError(
                    f"the artifact of {version.ref} downloaded with sha256 {actual[:12]}... but "
                    f"{version.artifact.sha256[:12]}... was registered; refusing to load it",
                    details={"model_version": version.ref},
                )
            native = kind.load(
                SavedModel(data=data, format=version.artifact.format, metadata=version.artifact.metadata)
            )
            with self._lock:
                self._natives[key] = native
                while len(self._natives) > 64:
                    self._natives.popitem(last=False)
        return LoadedModel(kind, native, version)

    def predict(self, ref: str, data: Any) -> pd.DataFrame:
        import pandas as pd

        from modelsteward.stats.schema import to_frame

        parsed = ModelRef.parse(ref)
        frame = to_frame(data)
        params: dict[str, Any] = {}
        if parsed.version is not None:
            params["version"] = parsed.version
        if parsed.alias is not None:
            params["alias"] = parsed.alias
        records = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
        body = self._json(
            "POST",
            f"/api/v1/models/{parsed.name}/predict",
            params=params,
            json={"dataframe_split": {"columns": records["columns"], "data": records["data"]}},
        )
        out = pd.DataFrame.from_records(body["predictions"], columns=body["columns"])
        out.index = frame.index
        return out

    # -- deployments --------------------------------------------------------------------------------

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
        spec = deployment_spec(
            champion=champion,
            challengers=challengers,
            shadows=shadows,
            sticky_key=sticky_key,
            pipeline=pipeline,
            log_predictions=log_predictions,
            description=description,
        )
        body = self._json("PUT", f"{_deployment_path(name)}", json=spec.model_dump(mode="json"))
        return Deployment.model_validate(body)

    def set_traffic(self, name: str, challengers: dict[str, float]) -> Deployment:
        body = self._json("PUT", f"{_deployment_path(name)}/traffic", json={"challengers": challengers})
        return Deployment.model_validate(body)

    def undeploy(self, name: str) -> Deployment:
        return Deployment.model_validate(self._json("DELETE", f"{_deployment_path(name)}"))

    def rollback(self, name: str) -> Deployment:
        return Deployment.model_validate(self._json("POST", f"{_deployment_path(name)}/rollback"))

    def get_deployment(self, name: str) -> Deployment:
        return Deployment.model_validate(self._json("GET", f"{_deployment_path(name)}"))

    def list_deployments(self, *, status: str | None = None) -> list[Deployment]:
        params = {"status": status} if status else {}
        return [Deployment.model_validate(d) for d in self._json("GET", "/api/v1/deployments", params=params)]

    def deployment_history(self, name: str) -> list[DeploymentRevision]:
        body = self._json("GET", f"{_deployment_path(name)}/history")
        return [DeploymentRevision.model_validate(r) for r in body]

    def serve(self, name: str, data: Any, *, request_id: str | None = None) -> Served:
        import pandas as pd

        from modelsteward.serving.gateway import Served
        from modelsteward.stats.schema import to_frame

        frame = to_frame(data)
        records = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
        payload: dict[str, Any] = {"dataframe_split": {"columns": records["columns"], "data": records["data"]}}
        if request_id is not None:
            payload["id"] = request_id
        response = self._request("POST", f"{_deployment_path(name)}/predict", json=payload)
        body = response.json()
        outputs = pd.DataFrame.from_records(body["predictions"], columns=body["columns"])
        outputs.index = frame.index
        return Served(
            deployment=name,
            request_id=body["id"],
            prediction_ids=body["prediction_ids"],
            outputs=outputs,
            versions=body["model_version"].split(","),
        )

    # -- monitoring and alerts ----------------------------------------------------------------------

    def put_monitor(self, name: str, spec: MonitorSpec | dict[str, Any] | str | Path) -> Monitor:
        parsed = parse_spec(MonitorSpec, spec, what="monitor")
        body = self._json(
            "PUT", f"/api/v1/monitors/{check_name(name, field='monitor')}", json=parsed.model_dump(mode="json")
        )
        return Monitor.model_validate(body)

    def get_monitor(self, name: str) -> Monitor:
        return Monitor.model_validate(self._json("GET", f"/api/v1/monitors/{check_name(name, field='monitor')}"))

    def list_monitors(self) -> list[Monitor]:
        return [Monitor.model_validate(m) for m in self._json("GET", "/api/v1/monitors")]

    def delete_monitor(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/monitors/{check_name(name, field='monitor')}")

    def run_monitor(self, name: str, *, at: datetime | None = None) -> MonitorResult:
        body = {"at": at.isoformat()} if at is not None else None
        result = self._json("POST", f"/api/v1/monitors/{check_name(name, field='monitor')}/run", json=body)
        return MonitorResult.model_validate(result)

    def monitor_results(self, name: str, *, limit: int = 50) -> list[MonitorResult]:
        body = self._json(
            "GET", f"/api/v1/monitors/{check_name(name, field='monitor')}/results", params={"limit": limit}
        )
        return [MonitorResult.model_validate(r) for r in body]

    def record_kpis(self, points: list[KPIPoint | dict[str, Any]]) -> int:
        parsed = [parse_spec(KPIPoint, p, what="KPI point").model_dump(mode="json") for p in points]
        return int(self._json("POST", "/api/v1/kpis", json={"points": parsed})["accepted"])

    def kpi_series(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[KPIPoint]:
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        return [KPIPoint.model_validate(p) for p in self._json("GET", f"/api/v1/kpis/{kpi}/{scope}", params=params)]

    def compare_kpi_arms(
        self, kpi: str, scope: str, *, start: datetime | None = None, end: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"kind": kind}
        params.update({k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None})
        return self._json("GET", f"/api/v1/kpis/{kpi}/{scope}/arms", params=params)

    def kpi_change(
        self, kpi: str, scope: str, *, change_at: datetime | None = None, kind: str = "mean"
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"kind": kind}
        if change_at is not None:
            params["change_at"] = change_at.isoformat()
        return self._json("GET", f"/api/v1/kpis/{kpi}/{scope}/change", params=params)

    def put_channel(self, channel: Channel | dict[str, Any]) -> Channel:
        parsed = parse_spec(Channel, channel, what="channel")
        return Channel.model_validate(
            self._json("PUT", f"/api/v1/channels/{parsed.name}", json=parsed.model_dump(mode="json"))
        )

    def list_channels(self) -> list[Channel]:
        return [Channel.model_validate(c) for c in self._json("GET", "/api/v1/channels")]

    def put_alert_rule(self, rule: AlertRule | dict[str, Any]) -> AlertRuleState:
        parsed = parse_spec(AlertRule, rule, what="alert rule")
        body = self._json("PUT", f"/api/v1/alert-rules/{parsed.name}", json=parsed.model_dump(mode="json"))
        return AlertRuleState.model_validate(body)

    def list_alert_rules(self) -> list[AlertRuleState]:
        return [AlertRuleState.model_validate(r) for r in self._json("GET", "/api/v1/alert-rules")]

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return [Alert.model_validate(a) for a in self._json("GET", "/api/v1/alerts", params=params)]

    def acknowledge_alert(self, alert_id: int) -> Alert:
        return Alert.model_validate(self._json("POST", f"/api/v1/alerts/{int(alert_id)}/acknowledge"))

    def resolve_alert(self, alert_id: int) -> Alert:
        return Alert.model_validate(self._json("POST", f"/api/v1/alerts/{int(alert_id)}/resolve"))

    def list_deliveries(self, *, alert_id: int | None = None, status: str | None = None) -> list[Delivery]:
        params = {k: v for k, v in (("alert_id", alert_id), ("status", status)) if v is not None}
        return [Delivery.model_validate(d) for d in self._json("GET", "/api/v1/deliveries", params=params)]

    # -- life cycles --------------------------------------------------------------------------------

    def apply_lifecycle(self, definition: LifecycleDefinition | dict[str, Any] | str | Path) -> Lifecycle:
        defn, text = parse_lifecycle(definition)  # the same errors, with lines, before anything is sent
        body = {"yaml": text} if text is not None else {"definition": defn.model_dump(mode="json", by_alias=True)}
        return Lifecycle.model_validate(self._json("POST", "/api/v1/lifecycles", json=body))

    def get_lifecycle(self, name: str) -> Lifecycle:
        return Lifecycle.model_validate(self._json("GET", f"/api/v1/lifecycles/{check_name(name, field='lifecycle')}"))

    def list_lifecycles(self) -> list[Lifecycle]:
        return [Lifecycle.model_validate(x) for x in self._json("GET", "/api/v1/lifecycles")]

    def assign_lifecycle(
        self, model: str, lifecycle: str, *, parameters: dict[str, float] | None = None
    ) -> LifecycleStatus:
        body = {"lifecycle": lifecycle, "parameters": parameters}
        return LifecycleStatus.model_validate(
            self._json("PUT", f"/api/v1/models/{check_name(model)}/lifecycle", json=body)
        )

    def lifecycle_status(self, model: str) -> LifecycleStatus:
        return LifecycleStatus.model_validate(self._json("GET", f"/api/v1/models/{check_name(model)}/lifecycle"))

    def advance(self, ref: str, to: str) -> Run:
        return Run.model_validate(self._json("POST", "/api/v1/lifecycle/advance", json={"ref": ref, "to": to}))

    def check_gates(self, ref: str, to: str) -> GateCheck:
        return GateCheck.model_validate(self._json("POST", "/api/v1/lifecycle/gates", json={"ref": ref, "to": to}))

    def approve(self, ref: str, *, role: str, comment: str = "") -> Run:
        body = {"ref": ref, "role": role, "comment": comment}
        return Run.model_validate(self._json("POST", "/api/v1/lifecycle/approve", json=body))

    def reject(self, ref: str, *, role: str, comment: str = "") -> Run:
        body = {"ref": ref, "role": role, "comment": comment}
        return Run.model_validate(self._json("POST", "/api/v1/lifecycle/reject", json=body))

    def lifecycle_runs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Run]:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if status is not None:
            params["status"] = status
        return [Run.model_validate(x) for x in self._json("GET", "/api/v1/lifecycle/runs", params=params)]

    def get_lifecycle_run(self, run_id: int) -> Run:
        return Run.model_validate(self._json("GET", f"/api/v1/lifecycle/runs/{int(run_id)}"))

    def cancel_lifecycle_run(self, run_id: int, *, reason: str = "") -> Run:
        body = {"reason": reason}
        return Run.model_validate(self._json("POST", f"/api/v1/lifecycle/runs/{int(run_id)}/cancel", json=body))

    def grant_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> RoleGrant:
        body = {"principal": principal, "role": role, "model": model, "business_unit": business_unit}
        return RoleGrant.model_validate(self._json("POST", "/api/v1/roles", json=body))

    def revoke_role(
        self, principal: str, role: str, *, model: str | None = None, business_unit: str | None = None
    ) -> None:
        body = {"principal": principal, "role": role, "model": model, "business_unit": business_unit}
        self._request("POST", "/api/v1/roles/revoke", json=body)

    def list_jobs(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Job]:
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if status is not None:
            params["status"] = status
        return [Job.model_validate(x) for x in self._json("GET", "/api/v1/jobs", params=params)]

    def get_job(self, job_id: int) -> Job:
        return Job.model_validate(self._json("GET", f"/api/v1/jobs/{int(job_id)}"))

    def list_grants(self, principal: str | None = None) -> list[RoleGrant]:
        params = {"principal": principal} if principal is not None else {}
        return [RoleGrant.model_validate(x) for x in self._json("GET", "/api/v1/roles", params=params)]

    # -- the trail ----------------------------------------------------------------------------------

    def list_events(
        self, *, model: str | None = None, action: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[Event]:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("model", model), ("action", action), ("actor", actor)):
            if value is not None:
                params[key] = value
        return [Event.model_validate(e) for e in self._json("GET", "/api/v1/events", params=params)]

    def add_comment(self, model: str, text: str, *, version: int | None = None) -> Comment:
        check_name(model)
        body = {"text": text, "version": version}
        return Comment.model_validate(self._json("POST", f"/api/v1/models/{model}/comments", json=body))

    def model_history(self, model: str, *, limit: int = 100) -> list[Event]:
        check_name(model)
        path = f"/api/v1/models/{model}/history"
        return [Event.model_validate(e) for e in self._json("GET", path, params={"limit": limit})]

    def list_comments(self, model: str, *, version: int | None = None, limit: int = 200) -> list[Comment]:
        check_name(model)
        params: dict[str, Any] = {"limit": limit}
        if version is not None:
            params["version"] = version
        return [Comment.model_validate(c) for c in self._json("GET", f"/api/v1/models/{model}/comments", params=params)]

    def create_user(self, name: str, *, kind: str = "user", display_name: str = "") -> Principal:
        body = {"name": name, "kind": kind, "display_name": display_name}
        return Principal.model_validate(self._json("POST", "/api/v1/users", json=body))

    def list_users(self) -> list[Principal]:
        return [Principal.model_validate(x) for x in self._json("GET", "/api/v1/users")]

    def disable_user(self, name: str) -> None:
        self._request("POST", f"/api/v1/users/{name}/disable")

    def create_token(self, principal: str, *, name: str = "default", expires_in: str | None = "90d") -> NewToken:
        body = {"principal": principal, "name": name, "expires_in": expires_in}
        return NewToken.model_validate(self._json("POST", "/api/v1/tokens", json=body))

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        params = {"principal": principal} if principal is not None else {}
        return [TokenInfo.model_validate(x) for x in self._json("GET", "/api/v1/tokens", params=params)]

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/api/v1/tokens/{int(token_id)}")

    def model_debt(self, model: str | None = None, *, max_age: str = "180d", stale_after: str = "2d") -> DebtReport:
        params: dict[str, Any] = {"max_age": max_age, "stale_after": stale_after}
        if model is not None:
            params["model"] = model
        return DebtReport.model_validate(self._json("GET", "/api/v1/debt", params=params))

    def record_debt(self, day: date | None = None) -> int:
        body = {"day": day.isoformat()} if day is not None else None
        return int(self._json("POST", "/api/v1/debt/snapshots", json=body)["models"])

    def debt_history(self, days: int = 90) -> list[DebtPoint]:
        points = self._json("GET", "/api/v1/debt/history", params={"days": days})
        return [DebtPoint.model_validate(p) for p in points]

    # -- compliance -------------------------------------------------------------------------------------

    def put_compliance_suite(self, suite: ComplianceSuite | dict[str, Any] | str | Path) -> StoredSuite:
        parsed = parse_suite(suite)
        body = {"definition": parsed.model_dump(mode="json", exclude_defaults=True)}
        return StoredSuite.model_validate(self._json("PUT", f"/api/v1/compliance/suites/{parsed.name}", json=body))

    def list_compliance_suites(self) -> list[StoredSuite]:
        return [StoredSuite.model_validate(x) for x in self._json("GET", "/api/v1/compliance/suites")]

    def run_compliance(
        self, ref: str, suite: ComplianceSuite | dict[str, Any] | str | Path, *, data: Any = None
    ) -> ComplianceRun:
        body: dict[str, Any] = {"ref": ref, "suite": _suite_payload(suite)}
        if data is not None:
            body["data"] = {"dataframe_split": _split(data)}
        return ComplianceRun.model_validate(self._json("POST", "/api/v1/compliance/runs", json=body))

    def compliance_runs(
        self, ref: str | None = None, *, suite: str | None = None, limit: int = 50
    ) -> list[ComplianceRun]:
        params: dict[str, Any] = {"limit": limit}
        if ref is not None:
            params["ref"] = ref
        if suite is not None:
            params["suite"] = suite
        return [ComplianceRun.model_validate(x) for x in self._json("GET", "/api/v1/compliance/runs", params=params)]

    def get_compliance_run(self, run_id: int) -> ComplianceRun:
        return ComplianceRun.model_validate(self._json("GET", f"/api/v1/compliance/runs/{int(run_id)}"))

    def feature_importance(self, ref: str) -> TestResult:
        version = self.get_version(ref)
        path = f"/api/v1/models/{version.name}/versions/{version.version}/importance"
        return TestResult.model_validate(self._json("GET", path))

    def explain(self, deployment: str, data: Any) -> list[Explanation]:
        from modelsteward.domain.explain import Explanation

        check_name(deployment)
        body = {"dataframe_split": _split(data)}
        return [
            Explanation.model_validate(x)
            for x in self._json("POST", f"/api/v1/deployments/{deployment}/explain", json=body)
        ]

    def audit_report(self, ref: str, *, as_of: datetime | None = None) -> Report:
        """The server composes the report (it needs audit.report only, not every read the report makes)."""
        from modelsteward.domain.report import Report

        params: dict[str, Any] = {"ref": ref, "format": "json"}
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        return Report.model_validate(self._json("GET", "/api/v1/audit/report", params=params))

    def verify_audit(self) -> AuditCheck:
        return AuditCheck.model_validate(self._json("GET", "/api/v1/audit/verify"))

    def export_audit(self, out: IO[str], *, after: int = 0) -> int:
        count = 0
        try:
            with self._http.stream("GET", "/api/v1/audit/export", params={"after": after}) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise(response)
                for line in response.iter_lines():
                    if line:
                        out.write(line + "\n")
                        count += 1
        except httpx.TransportError as e:
            raise StoreUnavailable(
                f"cannot reach the Model Steward server at {self.url}: {e}", details={"url": self.url}
            ) from e
        return count

    def close(self) -> None:
        self._http.close()


def _deployment_path(name: str) -> str:
    return f"/api/v1/deployments/{check_name(name, field='deployment')}"


def _split(data: Any) -> dict[str, Any]:
    """A DataFrame, records or a .csv/.parquet path as ``dataframe_split`` JSON."""
    from modelsteward.catalog.registration import read_table
    from modelsteward.stats.schema import to_frame

    frame = read_table(data) if isinstance(data, (str, Path)) else to_frame(data)
    records = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return {"columns": records["columns"], "data": records["data"]}


def _suite_payload(suite: Any) -> Any:
    """A stored suite's name as is; any definition parsed here (so a bad file fails before the request)."""
    if isinstance(suite, str) and "\n" not in suite and not suite.strip().endswith((".yaml", ".yml")):
        return suite.strip()
    return parse_suite(suite).model_dump(mode="json", exclude_defaults=True)
