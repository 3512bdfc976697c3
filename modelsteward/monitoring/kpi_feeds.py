"""Business KPI observations from files and from SQL queries against a BI database."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from modelsteward.domain.monitoring import KPIPoint
from modelsteward.errors import InvalidArgument, StoreUnavailable

REQUIRED = ("kpi", "scope", "ts", "value")


def points_from_frame(
    frame: pd.DataFrame, *, source: str, kpi: str | None = None, scope: str | None = None
) -> list[KPIPoint]:
    """KPI points from a table with columns ``ts`` and ``value`` (and ``kpi``, ``scope``, ``arm``
    unless given as arguments). Rows with a null value are refused, naming the first."""
    frame = frame.copy()
    if kpi is not None:
        frame["kpi"] = kpi
    if scope is not None:
        frame["scope"] = scope
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InvalidArgument(
            f"a KPI table needs the columns {', '.join(REQUIRED)}; missing: {', '.join(missing)}",
            details={"field": "columns", "missing": missing},
        )
    ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = frame.index[ts.isna() | values.isna()]
    if len(bad):
        position = int(frame.index.get_loc(bad[0]))
        raise InvalidArgument(
            f"row {position + 1} of the KPI table has no valid ts or value",
            details={"field": "row", "row": position + 1},
        )
    arms = frame["arm"] if "arm" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    return [
        KPIPoint(
            kpi=str(k),
            scope=str(s),
            ts=t.to_pydatetime(),
            value=float(v),
            arm=None if pd.isna(a) else str(a),
            source=source,
        )
        for k, s, t, v, a in zip(frame["kpi"], frame["scope"], ts, values, arms, strict=True)
    ]


def points_from_table(data: bytes, *, parquet: bool) -> list[KPIPoint]:
    """KPI points from an uploaded CSV or Parquet file."""
    try:
        frame = pd.read_parquet(io.BytesIO(data)) if parquet else pd.read_csv(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - pandas and pyarrow raise many kinds of errors on bad files
        raise InvalidArgument(f"cannot read the KPI file: {e}", details={"field": "file"}) from e
    return points_from_frame(frame, source="upload")


def points_from_sql(url: str, query: str, *, kpi: str, scope: str, since: datetime | None = None) -> list[KPIPoint]:
    """Run ``query`` (returning ``ts`` and ``value``, optionally ``arm``) against the database at
    ``url`` (any SQLAlchemy URL) and keep the points newer than ``since``."""
    import sqlalchemy as sa

    engine = None
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
        with engine.connect() as conn:
            frame = pd.read_sql_query(sa.text(query), conn)
    except sa.exc.ArgumentError as e:
        raise InvalidArgument(f"invalid KPI database URL: {e}", details={"field": "url"}) from e
    except sa.exc.OperationalError as e:
        raise StoreUnavailable(
            f"the KPI database is unreachable: {str(e.orig).strip()}", details={"field": "url"}
        ) from e
    except sa.exc.DBAPIError as e:
        raise InvalidArgument(f"the KPI query failed: {str(e.orig).strip()}", details={"field": "query"}) from e
    finally:
        if engine is not None:
            engine.dispose()
    points = points_from_frame(frame, source="sql", kpi=kpi, scope=scope)
    if since is not None:
        cutoff = since if since.tzinfo else since.replace(tzinfo=UTC)
        points = [p for p in points if p.ts > cutoff]
    return points


def as_frame(points: list[KPIPoint]) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "ts": [p.ts for p in points],
        "value": [p.value for p in points],
        "arm": [p.arm for p in points],
    }
    return pd.DataFrame(columns)
