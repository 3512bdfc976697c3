"""The feedback log: ground truth for served predictions, in the prediction log's layout, joined on prediction_id.

>>> fb = FeedbackLog("steward-data/feedback", worker=default_worker_name())      # doctest: +SKIP
>>> fb.append("credit-risk", FeedbackBatch(prediction_ids=["r-1"], actual=[1]))   # doctest: +SKIP
>>> fb.close()                                                                     # doctest: +SKIP
>>> join_feedback("steward-data/inference", "steward-data/feedback", deployment="credit-risk")  # doctest: +SKIP

Stored columns: ``prediction_id``, ``ts`` (when the truth was observed, UTC), ``actual`` for a model's single target
and ``actual_<name>`` for named targets (several outputs, business KPIs), each with its own type; partitions
``deployment=<name>/date=YYYY-MM-DD`` as for predictions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa

from modelsteward.errors import InvalidArgument
from modelsteward.serving.dataset_writer import DatasetWriter, subset
from modelsteward.serving.log_columns import TIMESTAMP, column_to_arrow, typed_array, unify_tables
from modelsteward.serving.log_reader import PREDICTION_COLUMNS, Root, connect, run_with_retry, storage_scan_sql
from modelsteward.serving.log_storage import open_storage

if TYPE_CHECKING:
    import pandas as pd

_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: The fixed columns of the feedback log with the partition columns (actual/actual_<name> columns follow).
FEEDBACK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("prediction_id", "VARCHAR"),
    ("ts", "TIMESTAMPTZ"),
    ("deployment", "VARCHAR"),
    ("date", "DATE"),
)


class FeedbackBatch(NamedTuple):
    """Observed outcomes for some predictions: ``actual`` (one target) and/or ``actuals`` (named targets).

    Every value list has one entry per prediction id. ``ts`` is when the outcome was observed (see
    :class:`~modelsteward.serving.prediction_log.PredictionBatch` for the accepted forms); ``None`` means now.
    """

    prediction_ids: Sequence[str]
    actual: Any = None
    actuals: Mapping[str, Any] = _EMPTY
    ts: Any = None


_IDS, _ACTUAL, _ACTUALS, _TS = range(4)


class FeedbackLog(DatasetWriter):
    """This process's writer of the feedback log: same queue, back-pressure and error handling as the prediction log.

    See :class:`~modelsteward.serving.prediction_log.PredictionLog` for the parameters and semantics.
    """

    batch_type = FeedbackBatch
    what = "feedback"

    def _rows(self, batch: FeedbackBatch) -> int:
        if type(batch) is not FeedbackBatch:
            raise InvalidArgument(f"expected a FeedbackBatch, got {type(batch).__name__}")
        try:
            n = len(batch.prediction_ids)
            if batch.actual is None and not batch.actuals:
                raise InvalidArgument("feedback needs actual values: give actual=... or actuals={name: ...}")
            if batch.actual is not None and len(batch.actual) != n:
                raise ValueError
            for v in batch.actuals.values():
                if len(v) != n:
                    raise ValueError
        except (TypeError, ValueError, AttributeError):
            raise InvalidArgument("prediction_ids and every actual value list need one value per row") from None
        if batch.ts is not None and type(batch.ts) is not int:
            self._check_ts(batch.ts)
        return n

    def _table(self, fields: Sequence[tuple[Any, ...]], ts_ns: np.ndarray) -> pa.Table:
        actual, actuals = fields[_ACTUAL], fields[_ACTUALS]
        has_actual = actual.count(None) == 0
        if (not has_actual and actual.count(None) != len(actual)) or len({tuple(a) for a in actuals}) != 1:
            # Batches with different targets: a table per target set, then their union.
            groups: dict[tuple[bool, tuple[str, ...]], list[int]] = defaultdict(list)
            for i, (one, named) in enumerate(zip(actual, actuals, strict=True)):
                groups[one is not None, tuple(named)].append(i)
            return unify_tables([self._table(subset(fields, index), ts_ns[index]) for index in groups.values()])
        ids = fields[_IDS]
        counts = list(map(len, ids))
        take = None if sum(counts) == len(ids) else pa.array(np.repeat(np.arange(len(ids)), counts))
        ts = pa.array(ts_ns // 1000, type=TIMESTAMP)
        names = ["prediction_id", "ts"]
        arrays = [typed_array(list(chain.from_iterable(ids)), pa.string()), ts if take is None else ts.take(take)]
        if has_actual:
            names.append("actual")
            arrays.append(column_to_arrow(list(actual)))
        for name in actuals[0]:
            names.append(f"actual_{name}")
            arrays.append(column_to_arrow(list(map(itemgetter(name), actuals))))
        return pa.Table.from_arrays(arrays, names=names)


def _actual_columns(con: Any, scan: str) -> list[str]:
    described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    return [row[0] for row in described if row[0] == "actual" or row[0].startswith("actual_")]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def join_feedback(
    inference_root: Root,
    feedback_root: Root,
    *,
    deployment: str | None = None,
    sql_where: str | None = None,
    how: Literal["inner", "left"] = "inner",
) -> pd.DataFrame:
    """Predictions with their observed outcomes, joined on (deployment, prediction_id), as a DataFrame.

    Each prediction row (one per arm and step) gets, per ``actual``/``actual_<name>`` column, the latest non-null
    value observed for its prediction id, and ``feedback_ts``, the time of the latest feedback. ``how="left"``
    keeps the predictions without feedback yet. ``sql_where`` (trusted SQL) filters the joined rows.
    """
    if how not in ("inner", "left"):
        raise InvalidArgument("how must be 'inner' or 'left'", details={"field": "how"})
    predictions, feedback = open_storage(inference_root), open_storage(feedback_root)
    con = connect(inference_root, feedback_root)

    def build() -> str:
        scan = storage_scan_sql(feedback, deployment, FEEDBACK_COLUMNS)
        latest = ", ".join(
            f"arg_max({q}, ts) FILTER (WHERE {q} IS NOT NULL) AS {q}"
            for q in map(_quote_ident, _actual_columns(con, scan))
        )
        sql = (
            f"WITH fb AS (SELECT deployment AS fb_deployment, prediction_id AS fb_prediction_id, "
            f"max(ts) AS feedback_ts{', ' + latest if latest else ''} FROM {scan} GROUP BY ALL) "
            f"SELECT p.*, fb.* EXCLUDE (fb_deployment, fb_prediction_id) "
            f"FROM {storage_scan_sql(predictions, deployment, PREDICTION_COLUMNS)} AS p "
            f"{how.upper()} JOIN fb ON p.deployment = fb.fb_deployment AND p.prediction_id = fb.fb_prediction_id"
        )
        if sql_where:
            sql += f" WHERE {sql_where}"
        return sql + " ORDER BY p.ts, p.prediction_id"

    try:
        return run_with_retry([inference_root, feedback_root], build, lambda cur: cur.df(), con=con)
    finally:
        con.close()
