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


_BY_NUMPY_KIND: dict[str, ColumnType] = {
    "f": "number",
    "i": "integer",
    "u": "integer",
    "b": "boolean",
    "M": "datetime",
}


def infer_columns(frame: pd.DataFrame) -> list[ColumnSpec]:
    """Column specs from example data; a column may be null only if the example has nulls."""
    nulls = frame.isna().to_numpy().any(axis=0).tolist() if len(frame) else [False] * frame.shape[1]
    specs = []
    for position, (name, dtype) in enumerate(zip(frame.columns, frame.dtypes.tolist(), strict=True)):
        kind = _BY_NUMPY_KIND.get(getattr(dtype, "kind", ""), None) if isinstance(dtype, np.dtype) else None
        if kind is None:
            kind = "string" if isinstance(dtype, pd.StringDtype) else column_type(frame.iloc[:, position])
        specs.append(ColumnSpec(name=str(name), type=kind, nullable=bool(nulls[position])))
    return specs


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


def _already_conforms(dtype: Any, kind: str) -> bool:
    # The common case on the request path: the column arrives in the right type and needs no work.
    if kind == "number":
        return dtype == np.float64
    if kind == "integer":
        return dtype == np.int64
    if kind == "boolean":
        return dtype == np.bool_
    if kind == "string":
        return isinstance(dtype, pd.StringDtype)
    return False


def conform(data: Any, signature: Signature, *, owner: str = "the model", allow_extra: bool = False) -> pd.DataFrame:
    """Check ``data`` against ``signature.inputs`` and return it in signature order and types.

    Raises :class:`SchemaMismatch` listing every problem: missing and unknown columns, wrong
    types and nulls where the signature allows none. The checks are column-wise and vectorized;
    columns that already have the right dtype are not touched.
    """
    expected = signature.input_names
    frame = to_frame(data, columns=expected)
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    problems: list[dict[str, str]] = []
    present = set(frame.columns)
    for name in expected:
        if name not in present:
            problems.append(_problem(name, "missing"))
    if not allow_extra:
        wanted = set(expected)
        for name in frame.columns:
            if name not in wanted:
                problems.append(_problem(name, "not in the signature"))
    duplicated = set(frame.columns[frame.columns.duplicated()])
    dtypes = dict(zip(frame.columns, frame.dtypes.tolist(), strict=True))
    converted: dict[str, pd.Series] = {}
    must_be_complete: list[str] = []
    for spec in signature.inputs:
        name = spec.name
        if name not in present:
            continue
        if name in duplicated:
            problems.append(_problem(name, "appears more than once"))
            continue
        if not _already_conforms(dtypes[name], spec.type):
            column, problem = _conform_column(frame[name], spec)
            if problem:
                problems.append(_problem(name, problem))
                continue
            assert column is not None
            converted[name] = column
        if not spec.nullable:
            must_be_complete.append(name)
    if must_be_complete:
        # One vectorized pass over the whole frame beats selecting columns first.
        null_counts = dict(zip(frame.columns, frame.isna().to_numpy().sum(axis=0).tolist(), strict=True))
        for name in must_be_complete:
            count = int(converted[name].isna().sum()) if name in converted else int(null_counts[name])
            if count:
                problems.append(_problem(name, f"{count} null value(s) where none is allowed"))
    if problems:
        summary = "; ".join(f"column '{p['column']}': {p['problem']}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise SchemaMismatch(
            f"input does not match the signature of {owner}: {summary}{more}",
            details={"column": problems[0]["column"], "problems": problems},
        )
    result = frame if list(frame.columns) == expected else frame[expected]
    if converted:
        result = result.assign(**converted)
    return result
