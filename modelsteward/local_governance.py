"""The facade's governance methods for the embedded body: identities and sign-in, comments and a model's history,
the audit trail, compliance suites and explanations, the auditor's report. A part of ``LocalSteward``, kept
apart to keep each module about one concern; every method checks the caller's permission first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelsteward.domain.compliance import ComplianceRun, ComplianceSuite, StoredSuite, TestResult, parse_suite
from modelsteward.domain.records import (
    AuditCheck,
    Comment,
    Event,
    NewToken,
    Principal,
    TokenInfo,
)
from modelsteward.domain.refs import model_of
from modelsteward.errors import Forbidden, InvalidArgument
from modelsteward.governance.permissions import BOOTSTRAP_ADMIN, Reach
from modelsteward.steward import Steward

if TYPE_CHECKING:
    from datetime import datetime

    from modelsteward.domain.explain import Explanation
    from modelsteward.domain.report import Report


class GovernanceMethods:
    """Mixed into :class:`~modelsteward.local_steward.LocalSteward`, whose services and checks it uses."""

    def add_comment(self, model: str, text: str, *, version: int | None = None) -> Comment:
        self._authorize("comment.write", model=model)
        from modelsteward.store import comment_repo, event_repo

        text = text.strip()
        if not text:
            raise InvalidArgument("a comment needs some text", details={"field": "text"})
        if len(text) > 10_000:
            raise InvalidArgument("a comment is at most 10,000 characters", details={"field": "text"})
        if version is not None:
            self.catalog.get_version(f"{model}/{version}")
        else:
            self.catalog.get_model(model)
        with self.db.write() as conn:
            comment = comment_repo.add(conn, model=model, version=version, author=self.actor, text=text)
            event_repo.append_event(conn, actor=self.actor, action="comment.added", model=model, version=version,
                                    details={"comment": comment.id, "text": text[:500]})  # fmt: skip
        return comment

    def model_history(self, model: str, *, limit: int = 100) -> list[Event]:
        self._authorize("catalog.read", model=model)
        self.catalog.get_model(model)
        return self.catalog.list_events(model=model, limit=limit)

    def list_comments(self, model: str, *, version: int | None = None, limit: int = 200) -> list[Comment]:
        self._authorize("catalog.read", model=model)
        from modelsteward.store import comment_repo

        self.catalog.get_model(model)
        with self.db.read() as conn:
            return comment_repo.list_for(conn, model, version=version, limit=limit)

    def create_user(self, name: str, *, kind: str = "user", display_name: str = "") -> Principal:
        self._authorize("identity.admin")
        return self.identities.create_principal(name, kind=kind, display_name=display_name, actor=self.actor)

    def list_users(self) -> list[Principal]:
        self._authorize("identity.read")
        return self.identities.list_principals()

    def disable_user(self, name: str) -> None:
        self._authorize("identity.admin")
        self.identities.disable(name, actor=self.actor)

    def create_token(self, principal: str, *, name: str = "default", expires_in: str | None = "90d") -> NewToken:
        self._authorize("identity.admin")
        return self.identities.create_token(principal, name=name, expires_in=expires_in, actor=self.actor)

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        self._authorize("identity.read")
        return self.identities.list_tokens(principal)

    def revoke_token(self, token_id: int) -> None:
        self._authorize("identity.admin")
        self.identities.revoke_token(token_id, actor=self.actor)

    def authenticate(self, token: str) -> str:
        """The principal an API token speaks for (what the server does with each request's token)."""
        return self.identities.authenticate(token)

    def sign_in(self, token: str) -> str:
        """Who a bearer token (an API header or the dashboard's session) names: the bootstrap admin for
        STEWARD_API_TOKEN, an identity provider's user for its JWT when OpenID Connect is configured (roles come
        from Steward's grants to that name), else a Steward token's user or service account."""
        import hmac

        expected = self.settings.api_token
        if expected is not None and hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
            return BOOTSTRAP_ADMIN
        if self.settings.oidc_issuer:
            from modelsteward.governance.oidc import looks_like_jwt, verifier_for

            if looks_like_jwt(token):  # a stw_ token never has a JWT's three dot-separated segments
                return verifier_for(self.settings).verify(token)
        return self.authenticate(token)

    def may(self, permission: str, *, model: str | None = None) -> bool:
        """Would this facade allow ``permission`` (on ``model``)? For pages that offer only what the viewer
        may do; the call itself is still checked (and a refusal audited) when it is made."""
        if not self._enforce:
            return True
        models = {model} if model is not None else set()
        return self.access.allowed(self.actor, permission, models=models, reach=Reach.ANYWHERE,
                                   implicit=self._implicit_roles)  # fmt: skip

    def verify_audit(self) -> AuditCheck:
        self._authorize("audit.read")
        from modelsteward.governance.audit import AuditService

        return AuditService(self.db).verify()

    def export_audit(self, out: IO[str], *, after: int = 0) -> int:
        self._authorize("audit.read")
        from modelsteward.governance.audit import AuditService

        return AuditService(self.db).export(out, after=after)

    def audit_lines(self, *, after: int = 0) -> Iterator[str]:
        """The trail as JSON Lines, one event at a time (what the API streams)."""
        self._authorize("audit.read")
        from modelsteward.governance.audit import AuditService

        return AuditService(self.db).lines(after=after)

    # -- compliance -------------------------------------------------------------------------------------

    def put_compliance_suite(self, suite: ComplianceSuite | dict[str, Any] | str | Path) -> StoredSuite:
        self._authorize("compliance.define")
        parsed = parse_suite(suite)
        self._files_inside(parsed)
        return self.compliance.put_suite(parsed, actor=self.actor)

    def list_compliance_suites(self) -> list[StoredSuite]:
        self._authorize("catalog.read", reach=Reach.ANYWHERE)
        return self.compliance.list_suites()

    def run_compliance(
        self, ref: str, suite: ComplianceSuite | dict[str, Any] | str | Path, *, data: Any = None
    ) -> ComplianceRun:
        self._authorize("compliance.run", model=model_of(ref))
        self._files_inside(self.compliance.resolve_suite(suite))
        frame = None
        if data is not None:
            from modelsteward.catalog.registration import read_table
            from modelsteward.stats.schema import to_frame

            frame = read_table(data) if isinstance(data, (str, Path)) else to_frame(data)
        return self.compliance.run(ref, suite, data=frame, actor=self.actor)

    def _files_inside(self, suite: ComplianceSuite) -> None:
        """On a server that checks its callers, a suite reads files under the data directory only: a file name
        in a request must not make the server read whatever it can reach."""
        if not self._enforce:
            return
        from modelsteward.compliance.service import files_outside

        outside = files_outside(suite, self.settings.data_dir)
        if outside:
            raise Forbidden(
                f"{outside[0]} is outside the server's data directory: give the data with the run, or link it "
                "to the version at registration",
                details={"field": "data", "path": outside[0]},
            )

    def compliance_runs(
        self, ref: str | None = None, *, suite: str | None = None, limit: int = 50
    ) -> list[ComplianceRun]:
        if ref is None:
            self._authorize("catalog.read", reach=Reach.ANYWHERE)
        else:
            self._authorize("catalog.read", model=model_of(ref))
        return self.compliance.runs(ref, suite=suite, limit=limit)

    def get_compliance_run(self, run_id: int) -> ComplianceRun:
        if self._enforce:  # a grant somewhere first (so an unknown run is a 403 too), then on the run's model
            self._authorize("catalog.read", reach=Reach.ANYWHERE)
            self._authorize("catalog.read", model=self.compliance.get_run(run_id).model)
        return self.compliance.get_run(run_id)

    def feature_importance(self, ref: str) -> TestResult:
        self._authorize("catalog.read", model=model_of(ref))
        return self.compliance.importance(ref)

    def explain(self, deployment: str, data: Any) -> list[Explanation]:
        from modelsteward.stats.schema import to_frame

        self._authorize("inference.predict", models=self._deployment_models(deployment))
        champion = next((a for a in self.deployments.get(deployment).arms if a.role == "champion"), None)
        if champion is None:
            raise InvalidArgument(
                f"deployment {deployment!r} runs a pipeline: explain one of its models by its own deployment",
                details={"deployment": deployment},
            )
        version = self.catalog.get_version(champion.version)
        return self.compliance.explain(version, to_frame(data))

    def audit_report(self, ref: str, *, as_of: datetime | None = None) -> Report:
        """The report needs audit.report on the model; what it shows (events, the trail's check, monitors,
        runs) is then read unchecked, since that permission is for exactly this view of the model."""
        self._authorize("audit.report", model=model_of(ref))
        return Steward.audit_report(self.acting_as(self.actor), ref, as_of=as_of)
