"""Access control for calls made on a principal's behalf: decide with the policy in ``permissions``, from
briefly cached grants and business units (so the serving path queries no database), and put every
denial in the audit trail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from modelsteward.errors import Forbidden
from modelsteward.governance.permissions import BOOTSTRAP_ADMIN, Reach, allows, covering_scopes, permission
from modelsteward.store import event_repo
from modelsteward.store.database import Database

CACHE_SECONDS = 5.0  # as tokens: a revoked grant stops working within this long on every worker


class AccessControl:
    """One per embedded facade (shared by its ``acting_as`` copies).

    ``grants_of(principal)`` lists (role, scope) pairs; ``unit_of(model)`` is the model's business unit
    (None for a model without one, or one that does not exist).
    """

    def __init__(
        self,
        db: Database,
        grants_of: Callable[[str], Iterable[tuple[str, str]]],
        unit_of: Callable[[str], str | None],
        *,
        ttl: float = CACHE_SECONDS,
    ) -> None:
        self.db = db
        self._grants_of = grants_of
        self._unit_of = unit_of
        self.ttl = ttl
        self._grants: dict[str, tuple[float, tuple[tuple[str, str], ...]]] = {}
        self._units: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget cached grants and units (after a grant, a revoke or a model's unit changed here)."""
        with self._lock:
            self._grants.clear()
            self._units.clear()

    def grants(self, principal: str) -> tuple[tuple[str, str], ...]:
        now = time.monotonic()
        cached = self._grants.get(principal)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = tuple(self._grants_of(principal))
        with self._lock:
            self._grants[principal] = (now, found)
        return found

    def unit(self, model: str) -> str | None:
        now = time.monotonic()
        cached = self._units.get(model)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = self._unit_of(model)
        with self._lock:
            self._units[model] = (now, found)
        return found

    def allowed(
        self,
        principal: str,
        name: str,
        *,
        models: Iterable[str] = (),
        unit: str | None = None,
        reach: Reach = Reach.GLOBAL,
        implicit: tuple[str, ...] = (),
    ) -> bool:
        """Is ``principal`` allowed ``name`` on every one of ``models`` (and on business unit ``unit``)?
        With neither, ``reach`` says where a grant must apply. ``implicit`` roles count as global grants."""
        if principal == BOOTSTRAP_ADMIN:
            return True
        grants = self.grants(principal) + tuple((role, "global") for role in implicit)
        models = list(models)
        for model in models:
            if not allows(grants, name, covering_scopes(model, self.unit(model))):
                return False
        if unit is not None and not allows(grants, name, frozenset({"global", f"unit:{unit}"})):
            return False
        if not models and unit is None:
            return allows(grants, name, reach)
        return True

    def deny(
        self,
        principal: str,
        name: str,
        *,
        models: Iterable[str] = (),
        unit: str | None = None,
        reach: Reach = Reach.GLOBAL,
        request: dict[str, Any] | None = None,
    ) -> Forbidden:
        """Record the refusal in the audit trail (its own transaction, so it stays when the call fails)
        and return the error to raise."""
        models = sorted(set(models))
        if models:
            target = ", ".join(f"model:{m}" for m in models)
        elif unit is not None:
            target = f"unit:{unit}"
        else:
            target = reach.value
        if models and unit is not None:
            target += f" and unit:{unit}"
        roles = permission(name).roles
        details: dict[str, Any] = {"principal": principal, "permission": name, "target": target, "roles": list(roles)}
        if models:
            details["models"] = models
        if unit is not None:
            details["business_unit"] = unit
        request = request or {}
        with self.db.write() as conn:
            event_repo.append_event(
                conn, actor=principal, action="access.denied", model=models[0] if len(models) == 1 else None,
                details={**details, "method": request.get("method"), "path": request.get("path")},
            )  # fmt: skip
        return Forbidden(f"{principal} lacks {name} on {target}: needs one of {', '.join(roles)}", details=details)
