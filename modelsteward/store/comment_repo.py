"""Comments on models and versions, on an open transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from modelsteward.domain.records import Comment
from modelsteward.store.catalog_repo import now, utc
from modelsteward.store.tables import comments

C = comments.c


def _comment(row: Row[Any]) -> Comment:
    return Comment(id=row.id, model=row.model, version=row.version, author=row.author, text=row.text,
                   created_at=utc(row.created_at))  # fmt: skip


def add(conn: Connection, *, model: str, version: int | None, author: str, text: str) -> Comment:
    comment_id = conn.execute(
        comments.insert().values(model=model, version=version, author=author, text=text, created_at=now())
        .returning(C.id)
    ).scalar_one()  # fmt: skip
    return _comment(conn.execute(sa.select(comments).where(C.id == comment_id)).one())


def list_for(conn: Connection, model: str, *, version: int | None = None, limit: int = 200) -> list[Comment]:
    query = sa.select(comments).where(C.model == model).order_by(C.id.desc()).limit(limit)
    if version is not None:
        query = query.where(C.version == version)
    return [_comment(r) for r in conn.execute(query)]
