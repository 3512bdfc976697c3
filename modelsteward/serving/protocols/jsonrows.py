"""The plain JSON protocol on the wire: MLflow/KServe-v1-style rows or columns in, prediction records out.

A superset of :mod:`modelsteward.api.payloads` (``frame_from_json``/``frame_to_records``): the same
four body shapes with the same error messages, plus a top-level ``id`` and ``parameters``, KServe v1
``instances`` given as lists in the signature's column order, and, given a signature, columns built
directly in the signature's types instead of through ``DataFrame.from_records`` (with ``allow_extra``,
the body's other columns after them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from operator import itemgetter
from typing import Any, NoReturn

import numpy as np
import orjson
import pandas as pd

from modelsteward.domain.records import ColumnType, Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.serving.protocols.frames import (
    TablePlan,
    assemble_frame,
    column_arrays,
    conform_with_field,
    inferred_column,
    iso_strings,
    string_array,
    table_plan,
    to_column,
    with_extra,
)
from modelsteward.serving.protocols.json_body import JSON_OPTIONS, json_default, load_json

ACCEPTED = ("instances", "dataframe_split", "dataframe_records", "inputs")

_EMPTY = {"number": np.empty(0, np.float64), "integer": np.empty(0, np.int64), "boolean": np.empty(0, np.bool_)}


def decode_json_request(
    body: bytes, *, signature: Signature | None, owner: str = "the model", allow_extra: bool = False
) -> tuple[pd.DataFrame, str | None, dict[str, Any]]:
    """Read a JSON prediction body into ``(frame, request id, parameters)``.

    Accepted, exactly one of: ``{"instances": [{...}, ...]}`` or ``{"dataframe_records": [...]}``
    (one object per row), ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}``,
    ``{"inputs": {"col": [...], ...}}``, and, with a signature, ``{"instances": [[...], ...]}`` (rows
    in the signature's column order); plus an optional top-level ``"id"`` (string or integer, returned
    as a string) and ``"parameters"`` (an object).

    With a signature the frame is conformed to it (signature order and types, nulls checked; a
    :class:`SchemaMismatch` names the column and, in ``details["field"]``, the body key). Without one it
    is the frame :func:`modelsteward.api.payloads.frame_from_json` builds, for the caller to check.

    With ``allow_extra=True``, columns the signature does not name are kept after the signature's
    columns, in the order the body gives them, instead of being refused: a sticky key such as
    ``customer_id``, or columns only a challenger model reads. They are typed as pandas infers JSON
    values (integers -> int64, numbers -> float64, strings -> pandas' string dtype, booleans -> bool,
    mixed -> object); the signature's columns are checked as always.

    >>> frame, request_id, params = decode_json_request(b'{"id": "r1", "instances": [{"age": 41}]}',
    ...                                                 signature=None)
    >>> frame.to_dict("list"), request_id, params
    ({'age': [41]}, 'r1', {})
    """
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise InvalidArgument("the body must be a JSON object", details={"field": "body"})
    present = [key for key in ACCEPTED if key in doc]
    if len(present) != 1:
        raise InvalidArgument(
            f"give exactly one of {', '.join(ACCEPTED)}",
            details={"field": "body", "accepted": list(ACCEPTED)},
        )
    request_id = doc.get("id")
    if isinstance(request_id, int) and not isinstance(request_id, bool):
        request_id = str(request_id)
    elif request_id is not None and not isinstance(request_id, str):
        raise InvalidArgument("id must be a string", details={"field": "id"})
    parameters = doc.get("parameters")
    if parameters is None:
        parameters = {}
    elif not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object", details={"field": "parameters"})
    key = present[0]
    plan = None if signature is None else table_plan(signature)
    columns, n_rows = _columns(key, doc[key], plan, allow_extra=allow_extra, owner=owner)
    if signature is None or plan is None:
        return _raw_frame(key, doc[key]), request_id, parameters

    def field_of(column: str | None) -> str:
        return key

    arrays = None
    extra_names: tuple[str, ...] = ()
    extra_arrays: list[Any] = []
    if columns is not None:
        arrays = [_typed(columns[name], kind) for name, kind in zip(plan.names, plan.types, strict=True)]
        if len(columns) != len(plan.names):  # allow_extra let columns outside the signature through
            extra_names = tuple(name for name in columns if name not in plan.position)
            extra_arrays = [inferred_column(columns[name]) for name in extra_names]
    if arrays is None or any(a is None for a in arrays):
        frame = _raw_frame(key, doc[key], signature)
        conformed = conform_with_field(frame, signature, owner=owner, field_of=field_of, allow_extra=allow_extra)
        return with_extra(conformed, plan, extra_names, extra_arrays), request_id, parameters
    frame = assemble_frame(
        arrays,
        plan,
        n_rows,
        signature=signature,
        owner=owner,
        field_of=field_of,
        extra_names=extra_names,
        extra_arrays=extra_arrays,
    )
    return frame, request_id, parameters


def _columns(
    key: str, value: Any, plan: TablePlan | None, *, allow_extra: bool, owner: str
) -> tuple[dict[str, list[Any]] | None, int]:
    """Validate the body's shape; with a signature whose columns it names, its columns as lists.

    The columns are those of the signature, plus the others in body order when ``allow_extra``; None
    when the body names other columns than that, leaving :func:`conform` to report what is wrong.
    """
    if key in ("instances", "dataframe_records"):
        if key == "instances" and plan is not None and _rows_of_lists(value):
            return _split_columns(key, list(plan.names), value, plan, allow_extra=False, owner=owner)
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            hint = " (or of lists in the signature's column order)" if key == "instances" and plan else ""
            raise InvalidArgument(f"{key} must be a list of objects (one per row){hint}", details={"field": key})
        if plan is None:
            return None, len(value)
        return _record_columns(value, plan, allow_extra), len(value)
    if key == "dataframe_split":
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("columns"), list)
            or not isinstance(value.get("data"), list)
        ):
            raise InvalidArgument(
                "dataframe_split needs 'columns' (a list of names) and 'data' (a list of rows)",
                details={"field": key},
            )
        columns = [str(c) for c in value["columns"]]
        return _split_columns(key, columns, value["data"], plan, allow_extra=allow_extra, owner=owner)
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise InvalidArgument("inputs must be an object of column -> list of values", details={"field": key})
    lengths = {len(v) for v in value.values()}
    if len(lengths) > 1:
        raise InvalidArgument("every column in inputs must have the same length", details={"field": key})
    n_rows = lengths.pop() if lengths else 0
    if plan is None or not _covers(value.keys(), plan, allow_extra):
        return None, n_rows
    return value, n_rows


def _covers(keys: AbstractSet[str], plan: TablePlan, allow_extra: bool) -> bool:
    """Whether a body with these columns can be decoded column by column: the signature's, plus extras if allowed."""
    wanted = plan.position.keys()
    return wanted == keys or (allow_extra and wanted <= keys)


def _rows_of_lists(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(row, list) for row in value)


def _split_columns(
    key: str, columns: list[str], data: list[Any], plan: TablePlan | None, *, allow_extra: bool, owner: str
) -> tuple[dict[str, list[Any]] | None, int]:
    width = len(columns)
    field = "instances" if key == "instances" else f"{key}.data"
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidArgument(
                f"{field}[{i}] must be a list of {width} values",
                details={"field": f"{field}.{i}"},
            )
    if plan is None:
        return None, len(data)
    unique = set(columns)
    if len(unique) != width:
        if allow_extra:  # conform reports a repeated signature column, but would drop a repeated extra one
            _refuse_repeats(key, columns, owner)
        return None, len(data)
    if not _covers(unique, plan, allow_extra):
        return None, len(data)
    # zip(*rows) transposes in C; with no rows every column is empty.
    transposed = list(zip(*data, strict=True)) if data else [() for _ in columns]
    return {name: list(values) for name, values in zip(columns, transposed, strict=True)}, len(data)


def _refuse_repeats(key: str, columns: list[str], owner: str) -> NoReturn:
    counts = Counter(columns)
    repeated = [name for name in dict.fromkeys(columns) if counts[name] > 1]
    problems = [{"column": name, "problem": "appears more than once"} for name in repeated]
    raise SchemaMismatch(
        f"input does not match the signature of {owner}: "
        + "; ".join(f"column '{p['column']}': {p['problem']}" for p in problems),
        details={"field": key, "column": repeated[0], "problems": problems},
    )


def _record_columns(rows: list[dict[str, Any]], plan: TablePlan, allow_extra: bool) -> dict[str, list[Any]] | None:
    names = plan.names
    if not rows:
        return {name: [] for name in names}
    keys: set[str] = set().union(*rows)
    wanted: Sequence[str] = names
    if keys != plan.position.keys():
        if not _covers(keys, plan, allow_extra):
            return None  # missing or unknown columns: conform reports them
        wanted = (*names, *_first_seen(rows, keys.difference(names)))
    if len(wanted) == 1:
        name = wanted[0]
        return {name: [row.get(name) for row in rows]}
    try:
        transposed = list(zip(*map(itemgetter(*wanted), rows), strict=True))
    except KeyError:  # a row without some key: a null there, as from_records gives
        transposed = [[row.get(name) for row in rows] for name in wanted]
    return {name: list(values) for name, values in zip(wanted, transposed, strict=True)}


def _first_seen(rows: list[dict[str, Any]], extra: set[str]) -> list[str]:
    """The extra keys in the order the rows first give them (usually all in the first row)."""
    if len(extra) == 1:
        return list(extra)
    order: dict[str, None] = {}
    for row in rows:
        order.update((k, None) for k in row if k in extra)
        if len(order) == len(extra):
            break
    return list(order)


def _typed(values: list[Any], kind: ColumnType) -> Any:
    """The column in its signature dtype when that is a plain conversion, else None (conform decides)."""
    if not values and kind in _EMPTY:
        return _EMPTY[kind]
    if kind == "string":
        try:
            return string_array(values)
        except TypeError:
            return None
    if kind == "datetime":
        return None
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim != 1 or (array.size and array.dtype.kind not in ("b" if kind == "boolean" else "iuf")):
        return None
    if kind == "boolean":
        return array if array.dtype == np.bool_ else None
    column = to_column(array, kind)
    return column if column.dtype == (np.float64 if kind == "number" else np.int64) else None


def _raw_frame(key: str, value: Any, signature: Signature | None = None) -> pd.DataFrame:
    """The frame as ``frame_from_json`` builds it, with the body already validated by :func:`_columns`."""
    if key in ("instances", "dataframe_records"):
        if signature is not None and key == "instances" and _rows_of_lists(value):
            return pd.DataFrame(value, columns=signature.input_names)
        if signature is not None and not value:
            return pd.DataFrame(columns=signature.input_names)
        return pd.DataFrame.from_records(value)
    if key == "dataframe_split":
        return pd.DataFrame(value["data"], columns=[str(c) for c in value["columns"]])
    return pd.DataFrame(value)


def encode_json_response(
    *,
    model_version: str,
    request_id: str | None,
    prediction_ids: Sequence[str] | None,
    outputs: pd.DataFrame,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """``{"id", "model_version", "prediction_ids", "columns", "predictions": [{column: value}, ...]}``.

    NaN, infinities and missing values become ``null``; datetimes are ISO 8601 strings. ``extra``
    adds top-level keys (it cannot replace the ones above).

    >>> body = encode_json_response(model_version="credit/3", request_id="r1", prediction_ids=["p1"],
    ...                             outputs=pd.DataFrame({"score": [float("nan")]}))
    >>> orjson.loads(body)["predictions"]
    [{'score': None}]
    """
    columns = [str(c) for c in outputs.columns]
    lists = [_json_values(values) for values in column_arrays(outputs)]
    if lists:
        predictions: list[dict[str, Any]] = [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]
    else:
        predictions = [{} for _ in range(len(outputs))]
    doc: dict[str, Any] = {
        "id": request_id,
        "model_version": model_version,
        "prediction_ids": None if prediction_ids is None else list(prediction_ids),
        "columns": columns,
        "predictions": predictions,
    }
    for name, value in (extra or {}).items():
        doc.setdefault(name, value)
    return orjson.dumps(doc, option=JSON_OPTIONS, default=json_default)


def _json_values(values: Any) -> list[Any]:
    """A column as a list of JSON-ready Python values (float NaN is fine: orjson writes it as null)."""
    if isinstance(values, np.ndarray):
        return iso_strings(values) if values.dtype.kind == "M" else values.tolist()
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return iso_strings(values)
    return values.to_numpy(dtype=object, na_value=None).tolist()
