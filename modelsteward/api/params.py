"""Path and query parameters shared by the routes, bounded by what the store can hold: a number past a 64-bit
integer would otherwise reach the database driver and fail there (a 500) instead of here (a 422 naming it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from modelsteward.domain.refs import MAX_VERSION

#: the largest integer a column of the metadata store holds (SQLite INTEGER, PostgreSQL BIGINT)
STORE_INT_MAX = 2**63 - 1

RowId = Annotated[int, Path(ge=1, le=STORE_INT_MAX, description="a stored record's number")]
Offset = Annotated[int, Query(ge=0, le=STORE_INT_MAX, description="rows to skip")]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="a version number")]
VersionQuery = Annotated[int | None, Query(ge=1, le=MAX_VERSION, description="a version number")]
