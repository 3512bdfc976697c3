"""The prediction log: every prediction the gateway serves, as a hive-partitioned Parquet dataset with typed columns.

>>> log = PredictionLog("steward-data/inference", worker=default_worker_name())   # doctest: +SKIP
>>> log.append("credit-risk", PredictionBatch(                                     # doctest: +SKIP
...     request_id="r-1", prediction_ids=["r-1"], model="credit-risk", version=3, ref="credit-risk@production",
...     inputs={"income": [52_000.0], "region": ["north"]}, outputs={"score": [0.12]}, latency_ms=1.8))
>>> log.close()                                                                     # doctest: +SKIP
>>> query("steward-data/inference", "deployment = 'credit-risk' AND arm = 'champion'")   # doctest: +SKIP

Each row is one prediction of one arm of one request. Stored columns: ``prediction_id, request_id, arm, model,
version, ref, step, status, error, latency_ms, ts`` (timestamp, UTC), then ``in_<column>`` and ``out_<column>``
with their own types; ``deployment`` and ``date`` (the UTC date of ``ts``) are the hive partition columns of the path
``<root>/deployment=<name>/date=YYYY-MM-DD/part-<worker>-<run>-<seq>.parquet``, not stored inside the files.
Parts written by different model versions may have different ``in_``/``out_`` columns: read with the helpers below
(or DuckDB's ``union_by_name``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from modelsteward.errors import InvalidArgument
from modelsteward.serving.dataset_writer import (
    DatasetWriter,
    LogFull,
    LogHealth,
    LogUnavailable,
    default_worker_name,
    subset,
)
from modelsteward.serving.log_columns import TIMESTAMP, column_to_arrow, typed_array, unify_tables
from modelsteward.serving.log_reader import PREDICTION_COLUMNS, connect, count, list_parts, query, scan_sql

__all__ = [
    "PREDICTION_COLUMNS",
    "LogFull",
    "LogHealth",
    "LogUnavailable",
    "PredictionBatch",
    "PredictionLog",
    "connect",
    "count",
    "default_worker_name",
    "list_parts",
    "query",
    "scan_sql",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class PredictionBatch(NamedTuple):
    """The rows of one request for one arm (champion, challenger, shadow) or one pipeline step.

    The fields common to the request are given once; ``prediction_ids``, and each value list of ``inputs`` and
    ``outputs`` (NumPy arrays, lists or pandas Series, one value per row), have one entry per row. ``outputs`` may be
    empty when ``status`` is ``"error"``. ``ts`` is a datetime (naive means UTC), epoch nanoseconds (int) or epoch
    seconds (float); ``None`` means the time of ``append``.
    """

    request_id: str
    prediction_ids: Sequence[str]
    inputs: Mapping[str, Any]
    model: str
    version: int
    outputs: Mapping[str, Any] = _EMPTY
    arm: str = "champion"
    ref: str | None = None
    latency_ms: float | None = None
    status: str = "ok"
    error: str | None = None
    step: str | None = None
    ts: Any = None


# Positions in PredictionBatch, for the column-wise transposition of a list of batches with zip(*batches).
_REQUEST, _IDS, _INPUTS, _MODEL, _VERSION, _OUTPUTS, _ARM, _REF, _LATENCY, _STATUS, _ERROR, _STEP, _TS = range(13)
_COMMON = (
    ("request_id", _REQUEST, pa.string()),
    ("arm", _ARM, pa.string()),
    ("model", _MODEL, pa.string()),
    ("version", _VERSION, pa.int64()),
    ("ref", _REF, pa.string()),
    ("step", _STEP, pa.string()),
    ("status", _STATUS, pa.string()),
    ("error", _ERROR, pa.string()),
    ("latency_ms", _LATENCY, pa.float64()),
)


class PredictionLog(DatasetWriter):
    """This process's writer of the prediction log under ``root`` (a directory or an fsspec URL).

    ``append`` costs about a microsecond and never touches the disk; a daemon thread started here writes a part
    per (deployment, date) every ``flush_interval`` seconds, or as soon as ``max_buffer_rows`` rows wait.

    Back-pressure and errors, never silent loss:

    - ``append`` raises :class:`LogFull` (a :class:`~modelsteward.errors.StoreUnavailable`, HTTP 503) instead of
      queueing when ``queue_depth`` would exceed ``max_queue_rows``; nothing of that batch is kept.
    - a failed write (disk full, permissions, network) keeps the rows and retries with exponential backoff
      (``retry_initial`` doubling up to ``retry_max`` seconds); it sets ``last_error``, counts ``write_errors``
      and calls ``on_error(exc)`` on the writer thread. A successful write clears ``last_error``.
    - after ``alert_after_failures`` failed writes in a row the log is ``failing``: it logs one error and calls
      ``on_health(LogHealth)`` once (the server raises an alert from it); once every kept row is written it logs
      the recovery and calls ``on_health`` again. ``refusing`` is true from a refused batch until the queue is
      written (the server's readiness probe answers 503 meanwhile).
    - ``flush(timeout)`` and ``close(timeout)`` raise :class:`LogUnavailable` when the rows could not be written.
    - the one loss there can be is a batch that cannot be stored even on its own, which validation at ``append``
      rules out unless its arrays are changed afterwards: it is dropped, counted in ``rows_dropped``, logged as an
      error and passed to ``on_error``, so that it cannot block the rows behind it.

    Create it in the process that appends (after a fork, for instance in the app's lifespan), with a ``worker``
    name unique among the processes writing at the same time (:func:`default_worker_name`), and close it on
    shutdown (an ``atexit`` hook also flushes it at interpreter exit).
    """

    batch_type = PredictionBatch
    what = "prediction"

    def _rows(self, batch: PredictionBatch) -> int:
        if type(batch) is not PredictionBatch:
            raise InvalidArgument(f"expected a PredictionBatch, got {type(batch).__name__}")
        try:
            n = len(batch.prediction_ids)
            for v in batch.inputs.values():
                if len(v) != n:
                    raise ValueError
            for v in batch.outputs.values():
                if len(v) != n:
                    raise ValueError
        except (TypeError, ValueError, AttributeError):
            raise InvalidArgument(
                "prediction_ids and every inputs/outputs column need one value per row",
                details={"request_id": str(batch.request_id)},
            ) from None
        ts = batch.ts
        if ts is not None and type(ts) is not int:
            self._check_ts(ts)
        return n

    def _table(self, fields: Sequence[tuple[Any, ...]], ts_ns: np.ndarray) -> pa.Table:
        try:
            columns = _columns(fields[_INPUTS], "in_") + _columns(fields[_OUTPUTS], "out_")
        except _MixedColumns:
            return self._split(fields, ts_ns)
        ids = fields[_IDS]
        counts = list(map(len, ids))
        n_batches = len(ids)
        # Fields common to a request are converted once per batch, then repeated for its rows.
        take = None if sum(counts) == n_batches else pa.array(np.repeat(np.arange(n_batches), counts))

        names = ["prediction_id"]
        arrays = [typed_array(list(chain.from_iterable(ids)), pa.string())]
        for name, pos, type_ in _COMMON:
            arr = typed_array(fields[pos], type_)
            names.append(name)
            arrays.append(arr if take is None else arr.take(take))
        ts = pa.array(ts_ns // 1000, type=TIMESTAMP)
        names.append("ts")
        arrays.append(ts if take is None else ts.take(take))
        for name, chunks in columns:
            names.append(name)
            arrays.append(column_to_arrow(chunks))
        return pa.Table.from_arrays(arrays, names=names)

    def _split(self, fields: Sequence[tuple[Any, ...]], ts_ns: np.ndarray) -> pa.Table:
        # Batches of different model versions (column sets) in one partition: a table per column set, then one
        # table with the union of the columns.
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = defaultdict(list)
        for i, (inputs, outputs) in enumerate(zip(fields[_INPUTS], fields[_OUTPUTS], strict=True)):
            groups[tuple(inputs), tuple(outputs)].append(i)
        return unify_tables([self._table(subset(fields, index), ts_ns[index]) for index in groups.values()])


class _MixedColumns(Exception):
    pass


def _columns(dicts: tuple[Mapping[str, Any], ...], prefix: str) -> list[tuple[str, list[Any]]]:
    """Per column of the first batch, its chunks over all batches; raises _MixedColumns if the column sets differ."""
    first = dicts[0]
    if len(set(map(len, dicts))) != 1:
        raise _MixedColumns
    try:
        return [(prefix + str(column), list(map(itemgetter(column), dicts))) for column in first]
    except KeyError:  # as many columns, not the same ones
        raise _MixedColumns from None
