"""Column types of tabular data, and the vectorized check of input data against a signature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch

_INFERRED: dict[str, ColumnType] = {
    "integer": "integer",
    "floating": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "string": "string",
    "boolean": "boolean",
    "datetime64": "datetime",
    "datetime": "datetime",
    "date": "datetime",
}


def column_type(series: pd.Series) -> ColumnType:
    """The portable type of a pandas column: integer, number, string, boolean or datetime."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(pd.Series(dtype.categories))
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "string"
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred == "empty":
        return "string"
    if inferred in _INFERRED:
        return _INFERRED[inferred]
    raise InvalidArgument(
        f"column {series.name!r} mixes value types ({inferred}); give it one type",
        details={"column": str(series.name), "inferred": inferred},
    )


def infer_columns(frame: pd.DataFrame) -> list[ColumnSpec]:
    """Column specs from example data; a column may be null only if the example has nulls."""
    nulls = frame.isna().any()
    return [
        ColumnSpec(name=str(name), type=column_type(frame[name]), nullable=bool(nulls[name]))
        for name in frame.columns
    ]


def to_frame(data: Any, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Turn the shapes callers pass (DataFrame, records, a dict of columns, a 2-D array) into a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T if data.name is None else data.to_frame()
    if isinstance(data, Mapping):
        values = list(data.values())
        if values and all(np.ndim(v) == 0 for v in values):
            return pd.DataFrame([data])
        return pd.DataFrame(dict(data))
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidArgument("an array input must be 2-D (rows x columns)", details={"field": "data"})
        if columns is None or len(columns) != data.shape[1]:
            raise InvalidArgument(
                f"a {data.shape[1]}-column array needs the signature's {len(columns or [])} column names",
                details={"field": "data"},
            )
        return pd.DataFrame(data, columns=list(columns))
    if isinstance(data, list):
        if not data:
            return pd.DataFrame(columns=list(columns or []))
        if all(isinstance(row, Mapping) for row in data):
            return pd.DataFrame.from_records(data)
        if columns is not None and all(isinstance(row, (list, tuple)) for row in data):
            return pd.DataFrame.from_records(data, columns=list(columns))
    raise InvalidArgument(
        f"cannot read input of type {type(data).__name__}: pass a DataFrame, a list of records or a dict of columns",
        details={"field": "data"},
    )


def _problem(column: str, problem: str) -> dict[str, str]:
    return {"column": column, "problem": problem}


def _conform_column(series: pd.Series, spec: ColumnSpec) -> tuple[pd.Series | None, str | None]:
    """Return the column converted to the spec's type, or a problem description."""
    dtype = series.dtype
    kind = spec.type
    if kind in ("integer", "number"):
        if pd.api.types.is_bool_dtype(dtype):
            return None, f"expected {kind}, got boolean"
        if pd.api.types.is_numeric_dtype(dtype):
            numeric = series
        else:
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            if inferred not in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
                return None, f"expected {kind}, got {inferred} values"
            numeric = pd.to_numeric(series, errors="coerce")
        if kind == "integer" and pd.api.types.is_float_dtype(numeric.dtype):
            values = numeric.to_numpy(dtype=float, na_value=np.nan)
            finite = values[~np.isnan(values)]
            if finite.size and not np.all(np.floor(finite) == finite):
                return None, "expected integer, got fractional numbers"
            if not np.isnan(values).any():
                return numeric.astype("int64"), None
        if kind == "number" and not pd.api.types.is_float_dtype(numeric.dtype):
            return numeric.astype("float64"), None
        return numeric, None
    if kind == "string":
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            if inferred in ("string", "empty", "categorical"):
                return series, None
            return None, f"expected string, got {inferred} values"
        return None, f"expected string, got {column_type_name(series)}"
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(dtype):
            return series, None
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("boolean", "empty"):
            return series, None
        return None, f"expected boolean, got {inferred} values"
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return series, None
        converted = pd.to_datetime(series, errors="coerce", utc=True)
        if (converted.isna() & series.notna()).any():
            return None, "expected datetime, got values that are not dates"
        return converted, None
    return None, f"unknown column type {kind!r}"  # pragma: no cover - ColumnType is closed


def column_type_name(series: pd.Series) -> str:
    try:
        return column_type(series)
    except InvalidArgument:
        return "mixed values"


def conform(
    data: Any, signature: Signature, *, owner: str = "the model", allow_extra: bool = False
) -> pd.DataFrame:
    """Check ``data`` against ``signature.inputs`` and return it in signature order and types.

    Raises :class:`SchemaMismatch` listing every problem: missing and unknown columns, wrong
    types and nulls where the signature allows none. The checks are column-wise and vectorized.
    """
    expected = signature.input_names
    frame = to_frame(data, columns=expected)
    problems: list[dict[str, str]] = []
    present = set(map(str, frame.columns))
    for name in expected:
        if name not in present:
            problems.append(_problem(name, "missing"))
    if not allow_extra:
        for name in frame.columns:
            if str(name) not in set(expected):
                problems.append(_problem(str(name), "not in the signature"))
    out: dict[str, pd.Series] = {}
    for spec in signature.inputs:
        if spec.name not in present:
            continue
        series = frame[spec.name]
        if isinstance(series, pd.DataFrame):
            problems.append(_problem(spec.name, "appears more than once"))
            continue
        converted, problem = _conform_column(series, spec)
        if problem:
            problems.append(_problem(spec.name, problem))
            continue
        assert converted is not None
        if not spec.nullable:
            null_count = int(converted.isna().sum())
            if null_count:
                problems.append(_problem(spec.name, f"{null_count} null value(s) where none is allowed"))
                continue
        out[spec.name] = converted
    if problems:
        summary = "; ".join(f"column '{p['column']}': {p['problem']}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise SchemaMismatch(
            f"input does not match the signature of {owner}: {summary}{more}",
            details={"column": problems[0]["column"], "problems": problems},
        )
    return pd.DataFrame(out, index=frame.index)
