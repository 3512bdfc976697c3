"""Approvals of waiting runs and the role grants that decide who may give them."""

from __future__ import annotations

from modelsteward.domain.lifecycle import ROLES, RoleGrant, Run, Transition
from modelsteward.domain.records import ModelVersion
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import Conflict, Forbidden, InvalidArgument, NotFound
from modelsteward.lifecycle.runs import Runs
from modelsteward.store import event_repo, lifecycle_repo


class Approvals(Runs):
    def decide(self, ref: str, *, role: str, decision: str, comment: str, actor: str) -> Run:
        """Approve or reject the version's transition waiting for approval. A refusal (the author, a
        user without the role, a second approval by the same person) is recorded, then raised."""
        if role not in ROLES:
            raise InvalidArgument(f"unknown role {role!r} (roles: {', '.join(ROLES)})", details={"field": "role"})
        parsed = ModelRef.parse(ref)
        mv = self.catalog.get_version(parsed) if parsed.version or parsed.alias else None
        with self.db.read() as conn:
            runs = lifecycle_repo.open_runs(conn, model=parsed.name, version=mv.version if mv else None)
        waiting = [r for r in runs if r.status == "waiting_approval"]
        if not waiting:
            raise Conflict(
                f"no transition of {ref} is waiting for approval",
                details={"ref": ref, "open_runs": [r.id for r in runs]},
            )
        run = waiting[0]
        version = mv or self.catalog.get_version(ModelRef(run.model, version=run.version))
        defn, _ = self.governed(run.model)
        transition = defn.transition(run.transition)
        reason = self._refusal(run, transition, version, role, actor)
        with self.db.write() as conn:
            lifecycle_repo.add_approval(
                conn, run.id, principal=actor, role=role, decision=decision, comment=comment,
                accepted=reason is None, reason=reason or "",
            )  # fmt: skip
            action = "lifecycle.approval_refused" if reason else f"lifecycle.{decision.removesuffix('e')}ed"
            event_repo.append_event(
                conn, actor=actor, action=action, model=run.model, version=run.version,
                details={"run": run.id, "transition": run.transition, "role": role, "comment": comment,
                         "reason": reason},
            )  # fmt: skip
            if reason is None and decision == "reject":
                lifecycle_repo.update_run(
                    conn, run.id, status="rejected", error=f"rejected by {actor} ({role}): {comment}"
                )
        if reason is not None:
            raise Forbidden(reason, details={"run": run.id, "role": role, "user": actor})
        return self.process(run.id, actor=actor)

    def _refusal(self, run: Run, transition: Transition, version: ModelVersion, role: str, actor: str) -> str | None:
        needed = {a.role for a in transition.approvals}
        if role not in needed:
            return f"transition {run.transition!r} needs approval by {', '.join(sorted(needed))}, not {role}"
        if version.created_by is not None and version.created_by == actor:
            return f"separation of duties: {actor} registered {run.model}/{run.version} and may not approve it"
        if not self.has_role(actor, role, model=run.model):
            return f"{actor} does not hold the role {role} for {run.model}"
        if any(a.accepted and a.user == actor for a in run.approvals):
            return f"separation of duties: {actor} has already signed this transition"
        return None

    # -- roles ----------------------------------------------------------------------------------------

    def grant(
        self, principal: str, role: str, *, model: str | None = None, unit: str | None = None, actor: str
    ) -> RoleGrant:
        scope = _scope(role, model, unit)
        if model is not None:
            self.catalog.get_model(model)
        with self.db.write() as conn:
            if lifecycle_repo.grant(conn, principal, role, scope, actor=actor):
                event_repo.append_event(
                    conn, actor=actor, action="role.granted", model=model,
                    details={"principal": principal, "role": role, "scope": scope},
                )  # fmt: skip
            found = [g for g in lifecycle_repo.grants(conn, principal) if g.role == role and g.scope == scope]
        return found[0]

    def revoke(
        self, principal: str, role: str, *, model: str | None = None, unit: str | None = None, actor: str
    ) -> None:
        scope = _scope(role, model, unit)
        with self.db.write() as conn:
            if not lifecycle_repo.revoke(conn, principal, role, scope):
                raise NotFound(f"{principal} holds no {role} role in scope {scope}", details={"principal": principal})
            event_repo.append_event(
                conn, actor=actor, action="role.revoked", model=model,
                details={"principal": principal, "role": role, "scope": scope},
            )  # fmt: skip

    def grants(self, principal: str | None = None) -> list[RoleGrant]:
        with self.db.read() as conn:
            return lifecycle_repo.grants(conn, principal)

    def has_role(self, principal: str, role: str, *, model: str | None = None) -> bool:
        scopes = {"global"}
        if model is not None:
            scopes.add(f"model:{model}")
            unit = self.catalog.get_model(model).business_unit
            if unit:
                scopes.add(f"unit:{unit}")
        return any(g.role == role and g.scope in scopes for g in self.grants(principal))


def _scope(role: str, model: str | None, unit: str | None) -> str:
    if role not in ROLES:
        raise InvalidArgument(f"unknown role {role!r} (roles: {', '.join(ROLES)})", details={"field": "role"})
    if model is not None and unit is not None:
        raise InvalidArgument("grant a role for a model or for a business unit, not both", details={"field": "scope"})
    if model is not None:
        check_name(model, field="model")
        return f"model:{model}"
    return f"unit:{unit}" if unit is not None else "global"
