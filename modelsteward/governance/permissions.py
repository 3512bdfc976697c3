"""The permission policy: named permissions, the roles that grant each, and the scopes a grant covers.

Pure data and functions (no I/O): the facade asks :func:`allows` with a principal's grants, and the
README's table is generated from :data:`PERMISSIONS`.

A grant's scope is ``global``, ``model:NAME`` or ``unit:BUSINESS_UNIT``. A permission on a model is
allowed when the principal holds a granting role in any scope covering that model (the model itself,
its business unit, or global). Calls about no model in particular need:

- ``Reach.ANYWHERE`` for listings and other reads: a granting role in any scope (a viewer of one model
  may list the catalog; the model's details and changes are checked against the model);
- ``Reach.GLOBAL`` for changes to shared things (monitors, channels, alert rules, life-cycle
  definitions, identities): a global grant.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelsteward.domain.lifecycle import ROLES

#: whoever holds the server's STEWARD_API_TOKEN (the bootstrap admin): allowed everything
BOOTSTRAP_ADMIN = "token:admin"


class Reach(enum.Enum):
    """Where a grant must apply for a call that names no model."""

    ANYWHERE = "any scope"
    GLOBAL = "global scope"


@dataclass(frozen=True, slots=True)
class Permission:
    name: str
    description: str
    roles: tuple[str, ...]


_EVERYONE = ROLES
_ALL_BUT_VIEWER = tuple(r for r in ROLES if r != "viewer")


def _p(name: str, description: str, *roles: str) -> Permission:
    assert set(roles) <= set(ROLES), roles
    return Permission(name, description, tuple(r for r in ROLES if r in roles))


PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in (
        _p(
            "catalog.read",
            "see models, versions, aliases, lineage, deployments, monitors, alerts, life cycles, runs,"
            " jobs, KPIs and model debt",
            *_EVERYONE,
        ),  # fmt: skip
        _p("model.download", "download a version's artifact", *_ALL_BUT_VIEWER),
        _p(
            "model.register",
            "register a version (a new model: with a global grant or one for its unit)",
            "data_scientist",
            "admin",
        ),  # fmt: skip
        _p("model.update", "change a model's metadata", "data_scientist", "admin"),
        _p("alias.set", "point or remove an alias", "data_scientist", "admin"),
        _p("deployment.manage", "deploy, change traffic, roll back, undeploy", "operator", "admin"),
        _p(
            "inference.predict",
            "predict through a deployment or with a version",
            "data_scientist",
            "validator",
            "operator",
            "admin",
        ),  # fmt: skip
        _p("feedback.write", "send ground truth and business KPI observations", "operator", "admin"),
        _p("monitor.manage", "create, replace and delete monitors", "operator", "admin"),
        _p("monitor.run", "run a monitor now", "data_scientist", "operator", "admin"),
        _p("alert.manage", "alert channels and rules; acknowledge and resolve alerts", "operator", "admin"),
        _p("lifecycle.define", "apply life-cycle definitions and put models under them", "admin"),
        _p("lifecycle.request", "ask to move a version to a stage", "data_scientist", "admin"),
        _p(
            "lifecycle.approve",
            "approve or reject a transition (the engine also checks the transition's role)",
            "validator",
            "approver",
            "admin",
        ),  # fmt: skip
        _p("lifecycle.cancel", "cancel an open life-cycle run", "operator", "admin"),
        _p(
            "compliance.run",
            "run compliance suites on a version; evaluate a transition's gates without moving",
            "data_scientist",
            "validator",
            "approver",
            "admin",
        ),  # fmt: skip
        _p("compliance.define", "store compliance suites (Model Risk Management's tests)", "validator", "admin"),
        _p(
            "audit.report",
            "the auditor's report of a version (everything it shows, the trail's check included)",
            "data_scientist",
            "validator",
            "approver",
            "auditor",
            "admin",
        ),  # fmt: skip
        _p(
            "comment.write",
            "comment on a model or a version",
            "data_scientist",
            "validator",
            "approver",
            "operator",
            "auditor",
            "admin",
        ),  # fmt: skip
        _p("audit.read", "read, export and verify the audit trail", "auditor", "admin"),
        _p("identity.read", "see users, service accounts, tokens (never secrets) and role grants", "auditor", "admin"),
        _p("identity.admin", "create and disable users, create and revoke tokens, grant and revoke roles", "admin"),
    )
}


PERMISSION_KEY = "x-steward-permission"


def needs(permission: str | None) -> dict[str, Any]:
    """Route arguments declaring the permission its facade call checks (``None``: a public route, open to
    anyone who may reach the server). It shows in the OpenAPI document, and the authorization matrix
    test fails for a route that declares nothing."""
    if permission is not None and permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return {"openapi_extra": {PERMISSION_KEY: permission or "public"}}


def permission(name: str) -> Permission:
    try:
        return PERMISSIONS[name]
    except KeyError:
        raise KeyError(f"unknown permission {name!r} (known: {', '.join(PERMISSIONS)})") from None


def covering_scopes(model: str, unit: str | None) -> frozenset[str]:
    """The grant scopes that cover ``model`` (whose business unit is ``unit``)."""
    return frozenset({"global", f"model:{model}", *((f"unit:{unit}",) if unit else ())})


def allows(grants: Iterable[tuple[str, str]], name: str, scopes: frozenset[str] | Reach) -> bool:
    """Do ``grants`` ((role, scope) pairs) give permission ``name`` in ``scopes`` (a set of scopes any of
    which will do, or a :class:`Reach`)?"""
    roles = permission(name).roles
    for role, scope in grants:
        if role not in roles:
            continue
        if scopes is Reach.ANYWHERE or (scope == "global" if scopes is Reach.GLOBAL else scope in scopes):
            return True
    return False


def matrix() -> list[tuple[str, str, dict[str, bool]]]:
    """Permission x role, for documentation: (permission, description, {role: granted})."""
    return [(p.name, p.description, {r: r in p.roles for r in ROLES}) for p in PERMISSIONS.values()]
