"""Reading the serving datasets with DuckDB, the same way everywhere: while they are written and compacted.

The table expression lists the parts itself (a snapshot taken at call time) rather than handing DuckDB a glob:
temporary files are never listed, and while a compaction is in progress the parts its merged file replaces are
left out, so a reader sees every row exactly once. Files that vanish between the listing and the read (a merge
finishing) make :func:`query` and :func:`count` list again and retry.

A plain glob also works for ad-hoc reads and for Dask, minus that last guarantee (during a compaction's grace
period it sees the merged rows twice)::

    SELECT * FROM read_parquet('<root>/**/*.parquet', hive_partitioning=true, union_by_name=true)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelsteward.serving.log_storage import Storage, live_parts, open_storage

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

Root = str | os.PathLike[str]

#: The fixed columns of the prediction log (in_/out_ columns follow), with the partition columns, as DuckDB types.
PREDICTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prediction_id", "VARCHAR"),
    ("request_id", "VARCHAR"),
    ("arm", "VARCHAR"),
    ("model", "VARCHAR"),
    ("version", "BIGINT"),
    ("ref", "VARCHAR"),
    ("step", "VARCHAR"),
    ("status", "VARCHAR"),
    ("error", "VARCHAR"),
    ("latency_ms", "DOUBLE"),
    ("ts", "TIMESTAMPTZ"),
    ("deployment", "VARCHAR"),
    ("date", "DATE"),
)

_OPTIONS = "hive_partitioning=true, union_by_name=true, hive_types={'deployment': VARCHAR, 'date': DATE}"
_RETRIES = 3


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def list_parts(root: Root, *, deployment: str | None = None) -> list[str]:
    """The parts to read now (local paths or URLs), for DuckDB, Dask (``dd.read_parquet(paths)``) or pyarrow."""
    storage = open_storage(root)
    return [storage.reader_path(f.path) for f in live_parts(storage, deployment)]


def scan_sql(
    root: Root,
    *,
    deployment: str | None = None,
    empty_columns: Sequence[tuple[str, str]] = PREDICTION_COLUMNS,
) -> str:
    """A DuckDB table expression over the dataset at ``root`` as it is now: ``SELECT ... FROM <this>``.

    For an fsspec root (``memory://``, ``s3://``), run it on a connection from :func:`connect`. An empty dataset
    gives an empty relation with ``empty_columns``, so queries over it still bind.
    """
    return storage_scan_sql(open_storage(root), deployment, empty_columns)


def storage_scan_sql(storage: Storage, deployment: str | None, empty_columns: Sequence[tuple[str, str]]) -> str:
    paths = [storage.reader_path(f.path) for f in live_parts(storage, deployment)]
    if not paths:
        columns = ", ".join(f"CAST(NULL AS {type_}) AS {name}" for name, type_ in empty_columns)
        return f"(SELECT {columns} WHERE false)"
    return f"read_parquet([{', '.join(map(_quote, paths))}], {_OPTIONS})"


def connect(*roots: Root) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read every one of ``roots`` (fsspec filesystems are registered with it)."""
    import duckdb

    con = duckdb.connect()
    registered: set[int] = set()
    for root in roots:
        fs = open_storage(root).filesystem
        if fs is not None and id(fs) not in registered:
            con.register_filesystem(fs)
            registered.add(id(fs))
    return con


def run_with_retry(roots: Sequence[Root], build: Any, fetch: Any, con: duckdb.DuckDBPyConnection | None = None) -> Any:
    """Build SQL from fresh listings and run it; list again when a file vanished in between (a merge finishing)."""
    import duckdb

    own = con is None
    con = connect(*roots) if con is None else con
    try:
        for attempt in range(_RETRIES):
            sql = build()
            try:
                return fetch(con.execute(sql))
            except (duckdb.IOException, duckdb.InvalidInputException, duckdb.HTTPException):
                if attempt == _RETRIES - 1 or build() == sql:
                    raise
        raise AssertionError("unreachable")
    finally:
        if own:
            con.close()


def query(
    root: Root,
    sql_where: str | None = None,
    *,
    deployment: str | None = None,
    columns: str = "*",
    order_by: str | None = None,
    empty_columns: Sequence[tuple[str, str]] = PREDICTION_COLUMNS,
) -> pd.DataFrame:
    """Rows of the dataset as a DataFrame: ``SELECT <columns> FROM <dataset> WHERE <sql_where> ORDER BY ...``.

    ``sql_where`` is trusted SQL (a monitoring job's filter, not user input).
    """
    storage = open_storage(root)

    def build() -> str:
        sql = f"SELECT {columns} FROM {storage_scan_sql(storage, deployment, empty_columns)}"
        if sql_where:
            sql += f" WHERE {sql_where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        return sql

    return run_with_retry([root], build, lambda cur: cur.df())


def count(root: Root, deployment: str | None = None) -> int:
    """How many rows the dataset holds (in one deployment, or in all)."""
    storage = open_storage(root)
    return int(
        run_with_retry(
            [root],
            lambda: f"SELECT count(*) FROM {storage_scan_sql(storage, deployment, PREDICTION_COLUMNS)}",
            lambda cur: cur.fetchone()[0],
        )
    )
