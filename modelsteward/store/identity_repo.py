"""Principals and API tokens on an open transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.records import Principal, TokenInfo
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import api_tokens, principals

PR, TK = principals.c, api_tokens.c
_TOKEN = sa.select(api_tokens).where(TK.id == sa.bindparam("id"))
_PRINCIPAL = sa.select(principals).where(PR.name == sa.bindparam("name"))


def _principal(row: Row[Any]) -> Principal:
    return Principal(name=row.name, kind=row.kind, display_name=row.display_name, disabled=row.disabled,
                     created_by=row.created_by, created_at=utc(row.created_at))  # fmt: skip


def _token(row: Row[Any]) -> TokenInfo:
    def maybe(value: datetime | None) -> datetime | None:
        return utc(value) if value is not None else None

    return TokenInfo(id=row.id, principal=row.principal, name=row.name, created_by=row.created_by,
                     created_at=utc(row.created_at), expires_at=maybe(row.expires_at),
                     revoked_at=maybe(row.revoked_at), last_used_at=maybe(row.last_used_at))  # fmt: skip


def add_principal(conn: Connection, name: str, kind: str, display_name: str, *, actor: str) -> bool:
    if conn.execute(_PRINCIPAL, {"name": name}).first() is not None:
        return False
    conn.execute(principals.insert().values(name=name, kind=kind, display_name=display_name, disabled=False,
                                            created_by=actor, created_at=now()))  # fmt: skip
    return True


def principal(conn: Connection, name: str) -> Principal | None:
    row = conn.execute(_PRINCIPAL, {"name": name}).first()
    return _principal(row) if row is not None else None


def list_principals(conn: Connection) -> list[Principal]:
    return [_principal(r) for r in conn.execute(sa.select(principals).order_by(PR.name))]


def set_disabled(conn: Connection, name: str, disabled: bool) -> bool:
    return bool(conn.execute(principals.update().where(PR.name == name).values(disabled=disabled)).rowcount)


def add_token(
    conn: Connection, principal_name: str, name: str, secret_hash: str, *, expires_at: datetime | None, actor: str
) -> TokenInfo:
    token_id = conn.execute(
        api_tokens.insert()
        .values(principal=principal_name, name=name, secret_hash=secret_hash, created_by=actor, created_at=now(),
                expires_at=expires_at)
        .returning(TK.id)
    ).scalar_one()  # fmt: skip
    row = conn.execute(_TOKEN, {"id": token_id}).one()
    return _token(row)


def token_row(conn: Connection, token_id: int) -> Row[Any] | None:
    return conn.execute(_TOKEN, {"id": token_id}).first()


def list_tokens(conn: Connection, principal_name: str | None = None) -> list[TokenInfo]:
    query = sa.select(api_tokens).order_by(TK.id)
    if principal_name is not None:
        query = query.where(TK.principal == principal_name)
    return [_token(r) for r in conn.execute(query)]


def revoke_token(conn: Connection, token_id: int) -> bool:
    query = api_tokens.update().where(TK.id == token_id, TK.revoked_at.is_(None)).values(revoked_at=now())
    return bool(conn.execute(query).rowcount)


def touch_token(conn: Connection, token_id: int, at: datetime) -> None:
    conn.execute(api_tokens.update().where(TK.id == token_id).values(last_used_at=at))
