"""Turning the values the logs buffer into typed Arrow columns, without letting one odd value break a flush.

Numbers stay numbers, strings strings, datetimes timestamps; NaN and NaT become null. When the values of one
column disagree (an int in one request, a string in the next), the column is promoted (int and float give float)
or, failing that, stored as strings: a flush never fails on a type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError)
_CONVERSION_ERRORS += (OverflowError,)
# numpy kinds pyarrow converts without a copy or a surprise: bool, ints, floats, datetimes, timedeltas, str, bytes.
_NUMPY_KINDS = frozenset("biufMmUS")

DAY_NS = 86_400 * 1_000_000_000
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def ts_to_ns(ts: Any) -> int:
    """Epoch nanoseconds of a timestamp: ``int`` (epoch ns), ``float`` (epoch s), ``datetime`` (naive = UTC)."""
    if type(ts) is int:
        return ts
    if isinstance(ts, datetime):
        value = getattr(ts, "value", None)  # pandas.Timestamp: exact nanoseconds, already UTC
        if type(value) is int:
            return value
        epoch = _EPOCH_NAIVE if ts.tzinfo is None else _EPOCH_UTC
        return (ts - epoch) // _ONE_US * 1000
    if isinstance(ts, np.datetime64):
        return int(ts.astype("datetime64[ns]").astype(np.int64))
    if isinstance(ts, float | np.floating):
        return int(round(float(ts) * 1e6)) * 1000
    if isinstance(ts, np.integer):
        return int(ts)
    raise TypeError(f"unsupported timestamp {ts!r}: use a datetime, epoch nanoseconds (int) or epoch seconds (float)")


TS_TYPES = (int, float, datetime, np.datetime64, np.integer, np.floating)


def to_text(value: Any) -> str | None:
    """The string a value is stored as when its column had to fall back to strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list | tuple):
        import orjson

        try:
            return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _coerce(value: Any, kind: type) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


def typed_array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """``values`` as an array of ``type_`` (the fixed columns); a value that cannot be converted becomes null."""
    try:
        return pa.array(values, type=type_, from_pandas=True)
    except _CONVERSION_ERRORS:
        pass
    if pa.types.is_string(type_):
        return pa.array([to_text(v) for v in values], type=type_)
    kind: type = int if pa.types.is_integer(type_) else float
    return pa.array([_coerce(v, kind) for v in values], type=type_, from_pandas=True)


def _flatten(chunks: Sequence[Any]) -> list[Any]:
    values: list[Any] = []
    for c in chunks:
        if isinstance(c, np.ndarray):
            values.extend(c.tolist())
        elif hasattr(c, "to_numpy"):  # pandas Series, Arrow arrays
            values.extend(c.to_numpy().tolist())
        else:
            values.extend(c)
    return values


def _concatenate(chunks: Sequence[np.ndarray]) -> np.ndarray:
    if len(chunks) == 1:
        return chunks[0]
    dtypes = set(map(attrgetter("dtype"), chunks))
    if len(dtypes) == 1:
        dtype = dtypes.pop()
        if dtype.kind in "biuf":
            # Joining the raw buffers is 3x faster than np.concatenate over many one-row arrays.
            try:
                return np.frombuffer(b"".join(chunks), dtype=dtype)  # type: ignore[arg-type]
            except (TypeError, BufferError, ValueError):  # a non-contiguous slice
                pass
    return np.concatenate(chunks)


def column_to_arrow(chunks: Sequence[Any]) -> pa.Array:
    """One typed column from per-request chunks (NumPy arrays, lists, Series) of one input or output."""
    types = set(map(type, chunks))
    if types == {np.ndarray}:
        try:
            arr = _concatenate(chunks)
            if arr.dtype.kind in _NUMPY_KINDS:
                if arr.dtype == np.float16:
                    arr = arr.astype(np.float32)
                return pa.array(arr, from_pandas=True)
        except _CONVERSION_ERRORS:
            pass
    if len(types) == 1 and next(iter(types)).__module__.startswith("pandas"):
        # Series keep their own types this way (nullable Int64 stays int64, not float64 with NaN).
        try:
            arrays = [pa.array(c, from_pandas=True) for c in chunks]
            return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)
        except _CONVERSION_ERRORS:
            pass
    values = list(chain.from_iterable(chunks)) if types == {list} else _flatten(chunks)
    try:
        return pa.array(values, from_pandas=True)
    except _CONVERSION_ERRORS:
        return pa.array([to_text(v) for v in values], type=pa.string())


def _as_strings(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    try:
        return pc.cast(column, pa.string())
    except _CONVERSION_ERRORS:
        return pa.array([to_text(v) for v in column.to_pylist()], type=pa.string())


def unify_tables(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables whose columns may differ: missing columns become null, types are promoted or stringified."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except _CONVERSION_ERRORS:
        pass
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for field in t.schema:
            if not pa.types.is_null(field.type):
                types.setdefault(field.name, set()).add(field.type)
    multi = {name for name, found in types.items() if len(found) > 1}
    to_string = set()
    for name in multi:
        try:
            pa.unify_schemas([pa.schema([pa.field(name, t)]) for t in types[name]], promote_options="permissive")
        except _CONVERSION_ERRORS:
            to_string.add(name)
    try:
        return pa.concat_tables(_stringify(tables, to_string), promote_options="permissive")
    except _CONVERSION_ERRORS:
        return pa.concat_tables(_stringify(tables, multi), promote_options="permissive")


def _stringify(tables: Sequence[pa.Table], names: set[str]) -> list[pa.Table]:
    fixed = []
    for t in tables:
        for name in names.intersection(t.column_names):
            i = t.schema.get_field_index(name)
            t = t.set_column(i, pa.field(name, pa.string()), _as_strings(t.column(i)))
        fixed.append(t)
    return fixed
