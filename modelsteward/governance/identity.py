"""Users, service accounts and their API tokens: created and revoked with an audit event, stored as a
hash, shown once, checked in constant time, with an expiry."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelsteward.domain.monitoring import parse_duration
from modelsteward.domain.records import NewToken, Principal, TokenInfo
from modelsteward.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from modelsteward.store import event_repo, identity_repo
from modelsteward.store.database import Database

PREFIX = "stw_"
_TOKEN = re.compile(r"^stw_(\d{1,12})_([A-Za-z0-9_-]{20,200})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_CACHE_SECONDS = 5.0  # a revoked token stops working within this long on every worker
_TOUCH_EVERY = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class IdentityService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.clock = clock or (lambda: datetime.now(UTC))
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    # -- principals ---------------------------------------------------------------------------------

    def create_principal(self, name: str, *, kind: str = "user", display_name: str = "", actor: str) -> Principal:
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidArgument(
                f"invalid user name {name!r}: letters, digits and . _ @ - (at most 128)", details={"field": "name"}
            )
        if kind not in ("user", "service"):
            raise InvalidArgument(f"kind must be 'user' or 'service', not {kind!r}", details={"field": "kind"})
        with self.db.write() as conn:
            if not identity_repo.add_principal(conn, name, kind, display_name, actor=actor):
                raise AlreadyExists(f"{name!r} already exists", details={"name": name})
            event_repo.append_event(conn, actor=actor, action="principal.created",
                                    details={"principal": name, "kind": kind})  # fmt: skip
            created = identity_repo.principal(conn, name)
        assert created is not None
        return created

    def list_principals(self) -> list[Principal]:
        with self.db.read() as conn:
            return identity_repo.list_principals(conn)

    def disable(self, name: str, *, actor: str) -> None:
        """A disabled user's tokens stop working (within seconds on every worker)."""
        with self.db.write() as conn:
            if not identity_repo.set_disabled(conn, name, True):
                raise NotFound(f"no user or service account named {name!r}", details={"name": name})
            event_repo.append_event(conn, actor=actor, action="principal.disabled", details={"principal": name})

    # -- tokens -------------------------------------------------------------------------------------

    def create_token(self, principal: str, *, name: str = "default", expires_in: str | None = "90d",
                     actor: str) -> NewToken:  # fmt: skip
        """A new token for ``principal``: the secret is in the returned ``token`` and nowhere else."""
        expires_at = None
        if expires_in is not None:
            try:
                expires_at = self.clock() + parse_duration(expires_in)
            except ValueError as e:
                raise InvalidArgument(str(e), details={"field": "expires_in"}) from e
        secret = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            who = identity_repo.principal(conn, principal)
            if who is None:
                raise NotFound(f"no user or service account named {principal!r}: create it first",
                               details={"principal": principal})  # fmt: skip
            if who.disabled:
                raise InvalidArgument(f"{principal} is disabled", details={"principal": principal})
            info = identity_repo.add_token(conn, principal, name[:128], _digest(secret), expires_at=expires_at,
                                           actor=actor)  # fmt: skip
            event_repo.append_event(
                conn, actor=actor, action="token.created",
                details={"token": info.id, "principal": principal, "name": info.name,
                         "expires_at": expires_at.isoformat() if expires_at else None},
            )  # fmt: skip
        return NewToken(**info.model_dump(), token=f"{PREFIX}{info.id}_{secret}")

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        with self.db.read() as conn:
            return identity_repo.list_tokens(conn, principal)

    def revoke_token(self, token_id: int, *, actor: str) -> None:
        with self.db.write() as conn:
            if identity_repo.token_row(conn, token_id) is None:
                raise NotFound(f"no token {token_id}", details={"token": token_id})
            if identity_repo.revoke_token(conn, token_id):
                event_repo.append_event(conn, actor=actor, action="token.revoked", details={"token": token_id})
        with self._lock:
            self._cache.clear()

    def authenticate(self, token: str) -> str:
        """The principal a token speaks for; Unauthenticated (401) when it is malformed, unknown, forged,
        expired, revoked or its principal disabled. The message never repeats the token."""
        key = _digest(token)
        monotonic = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and monotonic - cached[0] < _CACHE_SECONDS:
            return cached[1]
        match = _TOKEN.match(token.strip())
        if match is None:
            raise Unauthenticated("the token is not valid", details={"header": "authorization"})
        token_id, secret = int(match.group(1)), match.group(2)
        now = self.clock()
        with self.db.read() as conn:
            row = identity_repo.token_row(conn, token_id)
            who = identity_repo.principal(conn, row.principal) if row is not None else None
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
            raise Unauthenticated("the token is not valid", details={"header": "authorization"})
        if row.revoked_at is not None:
            raise Unauthenticated("the token was revoked", details={"token": token_id})
        expires = (
            row.expires_at.replace(tzinfo=UTC) if row.expires_at and row.expires_at.tzinfo is None else row.expires_at
        )
        if expires is not None and expires <= now:
            raise Unauthenticated(f"the token expired on {expires:%Y-%m-%d %H:%M} UTC", details={"token": token_id})
        if who is None or who.disabled:
            raise Unauthenticated(f"{row.principal} is disabled", details={"token": token_id})
        last = (
            row.last_used_at.replace(tzinfo=UTC)
            if row.last_used_at and row.last_used_at.tzinfo is None
            else row.last_used_at
        )
        if last is None or now - last > _TOUCH_EVERY:
            with self.db.write() as conn:
                identity_repo.touch_token(conn, token_id, now)
        with self._lock:
            self._cache[key] = (monotonic, who.name)
        return who.name
