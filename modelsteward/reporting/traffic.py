"""A deployment's traffic from the prediction log (DuckDB): answers, errors and latency per time bucket and arm.

An answer is one prediction id on one arm: a pipeline logs a row per step, which count as one answer whose latency
is the sum of its steps' and which failed when any step did; a shadow's rows are an arm of their own.

>>> traffic(root, "credit-risk", start=since, end=until, bucket="1d")      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from modelsteward.domain.monitoring import parse_duration
from modelsteward.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

    from modelsteward.serving.log_reader import Root

#: the columns of :func:`traffic`'s frame
TRAFFIC_COLUMNS = ("bucket", "arm", "requests", "errors", "error_rate", "p50_ms", "p95_ms")
#: the columns of :func:`traffic_summary`'s frame
SUMMARY_COLUMNS = ("deployment", "arm", "requests", "errors", "error_rate", "last_ts")
MAX_BUCKETS = 2000  # a chart of more points says nothing more, and costs the page its speed


def _literal(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise InvalidArgument("give a timezone-aware time", details={"field": "since"})
    return f"TIMESTAMPTZ '{ts.astimezone(UTC).isoformat()}'"


def _answers(scan: str, where: str, *, by_deployment: bool = False) -> str:
    """One row per answer: (deployment,) arm, prediction id, its time, latency and whether it failed."""
    deployment = "deployment, " if by_deployment else ""
    return (
        f"SELECT {deployment}arm, coalesce(prediction_id, request_id) AS answer, min(ts) AS ts, "
        f"sum(latency_ms) AS latency_ms, bool_or(coalesce(status, 'ok') <> 'ok') AS failed "
        f"FROM {scan} {where} GROUP BY ALL"
    )


def _run(root: Root, build: object) -> pd.DataFrame:
    from modelsteward.serving.log_reader import connect, run_with_retry

    con = connect(root)
    try:
        con.execute("SET TimeZone = 'UTC'")  # buckets start at midnight UTC, whatever the machine's zone
        return run_with_retry([root], build, lambda cur: cur.df(), con)
    finally:
        con.close()


def traffic(root: Root, deployment: str, *, start: datetime, end: datetime, bucket: str = "1d") -> pd.DataFrame:
    """Per time bucket (``1h``, ``1d``...) and arm, from ``start`` (inclusive) to ``end`` (exclusive): answers,
    failed answers, their share, and the median and 95th percentile of the latency in milliseconds
    (:data:`TRAFFIC_COLUMNS`), oldest bucket first. Buckets without traffic are left out."""
    from modelsteward.serving.log_reader import PREDICTION_COLUMNS, storage_scan_sql
    from modelsteward.serving.log_storage import open_storage

    try:
        width = parse_duration(bucket)
    except ValueError as e:
        raise InvalidArgument(str(e), details={"field": "bucket"}) from e
    if width <= timedelta(0) or (end - start) / width > MAX_BUCKETS:
        raise InvalidArgument(
            f"{bucket} buckets over {end - start} make more than {MAX_BUCKETS} points: take wider buckets",
            details={"field": "bucket"},
        )
    storage = open_storage(root)
    seconds = int(width.total_seconds())
    # the date partition prunes files before the time filter reads any row
    where = (
        f"WHERE date >= DATE '{(start.astimezone(UTC) - timedelta(days=1)).date()}' "
        f"AND ts >= {_literal(start)} AND ts < {_literal(end)}"
    )

    def build() -> str:
        answers = _answers(storage_scan_sql(storage, deployment, PREDICTION_COLUMNS), where)
        return (
            f"WITH answers AS ({answers}) "
            f"SELECT time_bucket(INTERVAL '{seconds} seconds', ts) AS bucket, arm, count(*) AS requests, "
            "count(*) FILTER (WHERE failed) AS errors, count(*) FILTER (WHERE failed) / count(*) AS error_rate, "
            "quantile_cont(latency_ms, 0.5) AS p50_ms, quantile_cont(latency_ms, 0.95) AS p95_ms "
            "FROM answers GROUP BY ALL ORDER BY bucket, arm"
        )

    frame = _run(root, build)
    return frame.astype({"requests": "int64", "errors": "int64"})[list(TRAFFIC_COLUMNS)]


def traffic_summary(root: Root, *, since: datetime) -> pd.DataFrame:
    """Per deployment and arm: answers and failed answers since ``since``, their share, and the time of the arm's
    latest answer ever logged (:data:`SUMMARY_COLUMNS`)."""
    from modelsteward.serving.log_reader import PREDICTION_COLUMNS, storage_scan_sql
    from modelsteward.serving.log_storage import open_storage

    storage = open_storage(root)
    after = _literal(since)

    def build() -> str:
        answers = _answers(storage_scan_sql(storage, None, PREDICTION_COLUMNS), "", by_deployment=True)
        return (
            f"WITH answers AS ({answers}) "
            f"SELECT deployment, arm, count(*) FILTER (WHERE ts >= {after}) AS requests, "
            f"count(*) FILTER (WHERE ts >= {after} AND failed) AS errors, "
            f"CASE WHEN count(*) FILTER (WHERE ts >= {after}) = 0 THEN NULL ELSE "
            f"count(*) FILTER (WHERE ts >= {after} AND failed) / count(*) FILTER (WHERE ts >= {after}) END "
            "AS error_rate, max(ts) AS last_ts FROM answers GROUP BY ALL ORDER BY deployment, arm"
        )

    frame = _run(root, build)
    return frame.astype({"requests": "int64", "errors": "int64"})[list(SUMMARY_COLUMNS)]


def latest_day(root: Root, deployment: str) -> date | None:
    """The latest day (UTC) the deployment answered on, from the log's date partitions: no row is read."""
    from modelsteward.serving.log_storage import live_parts, open_storage

    days = {f.date for f in live_parts(open_storage(root), deployment)}
    return date.fromisoformat(max(days)) if days else None


@dataclass(frozen=True)
class Traffic:
    """A deployment's traffic over a window: the window and :func:`traffic`'s frame."""

    deployment: str
    start: datetime
    end: datetime
    bucket: str
    frame: pd.DataFrame


def traffic_window(
    root: Root,
    deployment: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    days: int = 60,
    bucket: str = "1d",
) -> Traffic:
    """:func:`traffic` over ``[since, until)``. ``until`` defaults to the end of the day (UTC) of the deployment's
    latest answer, so a quiet or replayed deployment still shows its traffic (the next full hour before any answer);
    ``since`` to ``days`` before ``until``."""
    if until is None:
        day = latest_day(root, deployment)
        until = (
            datetime.combine(day + timedelta(days=1), time(), UTC)
            if day is not None
            else datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        )
    if since is None:
        since = until - timedelta(days=days)
    frame = traffic(root, deployment, start=since, end=until, bucket=bucket)
    return Traffic(deployment=deployment, start=since, end=until, bucket=bucket, frame=frame)
