"""Typed columns to DataFrames and back, shared by the wire protocols: plans, conformed frames, extra columns.

A decoder turns a request into one array per signature input, already in the column type's dtype
where that is a plain conversion; :func:`assemble_frame` then builds the frame directly when it
conforms, or lets :func:`~modelsteward.stats.schema.conform` convert it or raise. Columns outside the
signature (``allow_extra``) are kept after the signature's, typed as pandas would infer them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.arrays import ArrowStringArray

from modelsteward.domain.records import ColumnType, Signature
from modelsteward.errors import SchemaMismatch
from modelsteward.stats.schema import conform

_INT64_MAX = np.iinfo(np.int64).max
_F64, _I64, _BOOL = np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.bool_)
_NONE = type(None)
_MAX_PLANS = 1024
_MAX_WIDENED = 64  # column sets with extras cached per signature; their names come from clients

# pandas 3's default string dtype ("str", Arrow-backed, NaN for missing); conform accepts it untouched.
try:
    STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
except TypeError:  # pragma: no cover - pandas < 2.3
    STRING_DTYPE = pd.StringDtype("pyarrow")
try:
    ArrowStringArray(pa.array([], type=pa.large_string()), dtype=STRING_DTYPE)
    _wrap_strings: Callable[[pa.Array], Any] = partial(ArrowStringArray, dtype=STRING_DTYPE)
except TypeError:  # pragma: no cover - pandas < 3 has no dtype argument here
    _wrap_strings = partial(pd.array, dtype=STRING_DTYPE)


@dataclass(frozen=True, slots=True)
class TablePlan:
    """What decoding needs from a signature's inputs, computed once per signature."""

    names: tuple[str, ...]
    types: tuple[ColumnType, ...]
    nullable: tuple[bool, ...]
    position: dict[str, int]
    columns: pd.Index
    widened: dict[tuple[str, ...], pd.Index] = field(default_factory=dict)

    def columns_with(self, extra: tuple[str, ...]) -> pd.Index:
        """The signature's columns followed by ``extra``, as an Index cached per set of extras."""
        index = self.widened.get(extra)
        if index is None:
            # Building an Index costs ~15 us on pandas 3, and a gateway sees the same extras again and again.
            if len(self.widened) >= _MAX_WIDENED:
                self.widened.clear()
            index = self.widened[extra] = pd.Index([*self.names, *extra])
        return index


_PLANS: dict[int, tuple[Signature, TablePlan]] = {}


def table_plan(signature: Signature) -> TablePlan:
    """The decoding plan of a signature, cached by identity (the gateway keeps its signatures in memory)."""
    hit = _PLANS.get(id(signature))
    if hit is not None and hit[0] is signature:
        return hit[1]
    names = tuple(c.name for c in signature.inputs)
    plan = TablePlan(
        names=names,
        types=tuple(c.type for c in signature.inputs),
        nullable=tuple(c.nullable for c in signature.inputs),
        position={name: i for i, name in enumerate(names)},
        # Building an Index of strings costs ~15 us on pandas 3; one per signature is enough (and
        # every frame of the signature sharing it lets later steps recognise its columns by identity).
        columns=pd.Index(names),
    )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    # The entry holds the signature itself, so its id cannot be reused while it is cached.
    _PLANS[id(signature)] = (signature, plan)
    return plan


# -- columns in, typed -----------------------------------------------------------------------------------


def string_array(values: Sequence[Any]) -> Any:
    """Strings (or None) as pandas' Arrow-backed string array; raises TypeError on any other value."""
    try:
        arrow = pa.array(values, type=pa.large_string())
    except (pa.ArrowTypeError, pa.ArrowInvalid) as e:
        raise TypeError(str(e)) from e
    return _wrap_strings(arrow)


def to_column(values: np.ndarray, kind: ColumnType) -> np.ndarray:
    """A 1-D numeric array in the column type's dtype when the conversion is exact, else unchanged."""
    k = values.dtype.kind
    if kind == "number" and k in "iuf":
        return values.astype(np.float64, copy=False)
    if kind == "integer":
        if k == "i":
            return values.astype(np.int64, copy=False)
        if k == "u" and (values.size == 0 or values.max() <= _INT64_MAX):
            return values.astype(np.int64)
        # Whole floats (an FP64 matrix, or 30.0 in JSON) are integers; anything else is left to conform.
        if k == "f" and (values.size == 0 or _whole(values)):
            return values.astype(np.int64)
    return values


def _whole(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).all() and np.abs(values).max() < 2.0**63 and (np.floor(values) == values).all())


def inferred_column(values: list[Any]) -> Any:
    """A column the signature does not type, from JSON values, in the dtype pandas would infer for them.

    Integers -> int64, numbers -> float64 (a null among them -> NaN), strings -> pandas' string dtype
    (null -> NaN), booleans -> bool, anything else (mixed values, nested lists or objects, booleans
    with nulls) -> what ``pd.Series(values)`` gives, usually object.
    """
    kinds = set(map(type, values))
    if str in kinds and kinds <= {str, _NONE}:
        return string_array(values)
    if kinds == {bool}:
        return np.asarray(values, dtype=np.bool_)
    if kinds and kinds <= {int, float, _NONE} and kinds != {_NONE}:
        integers = kinds == {int}
        try:
            array = np.asarray(values) if integers else np.asarray(values, dtype=np.float64)
        except OverflowError:  # integers past float64's range: pandas keeps them as objects
            array = None
        # Past int64's range NumPy makes integers uint64, float64 or object; pandas decides those below.
        if array is not None and array.dtype == (_I64 if integers else _F64):
            return array
    series = pd.Series(values, dtype=None if values else object)
    return series.to_numpy() if isinstance(series.dtype, np.dtype) else series.array


# -- a frame that conforms to the signature --------------------------------------------------------------


def _conforms(arrays: list[Any], plan: TablePlan) -> bool:
    # Exactly the cases where conform() would return the frame untouched: right dtype, no forbidden nulls.
    floats = []
    for values, kind, nullable in zip(arrays, plan.types, plan.nullable, strict=True):
        dtype = values.dtype
        if kind == "number":
            if dtype != _F64:
                return False
            if not nullable:
                floats.append(values)
        elif kind == "integer":
            if dtype != _I64:
                return False
        elif kind == "boolean":
            if dtype != _BOOL:
                return False
        elif kind == "string":
            if not isinstance(dtype, pd.StringDtype) or (not nullable and values.isna().any()):
                return False
        else:
            return False
    # One NaN check over all the float columns that must be complete, not one per column.
    return not floats or not np.isnan(np.concatenate(floats) if len(floats) > 1 else floats[0]).any()


def assemble_frame(
    arrays: list[Any],
    plan: TablePlan,
    n_rows: int,
    *,
    signature: Signature,
    owner: str,
    field_of: Callable[[str | None], str],
    extra_names: tuple[str, ...] = (),
    extra_arrays: Sequence[Any] = (),
) -> pd.DataFrame:
    """The frame of ``arrays`` (one per signature input, in order), conformed to the signature.

    When every column already has its signature dtype and no forbidden null, the frame is built
    directly (what :func:`conform` would return unchanged); otherwise :func:`conform` converts it or
    raises its :class:`SchemaMismatch`, to which ``details["field"]`` is added. ``extra_arrays``
    (columns outside the signature, named by ``extra_names``) follow the signature's columns untouched.
    """
    index = pd.RangeIndex(n_rows)
    if _conforms(arrays, plan):
        columns = plan.columns_with(extra_names) if extra_names else plan.columns
        # verify_integrity=False skips pandas' re-validation of arrays we have just built and checked.
        return pd.DataFrame._from_arrays([*arrays, *extra_arrays], columns=columns, index=index, verify_integrity=False)
    frame = pd.DataFrame._from_arrays(arrays, columns=plan.columns, index=index)
    conformed = conform_with_field(frame, signature, owner=owner, field_of=field_of)
    return with_extra(conformed, plan, extra_names, extra_arrays)


def with_extra(
    frame: pd.DataFrame, plan: TablePlan, extra_names: tuple[str, ...], extra_arrays: Sequence[Any]
) -> pd.DataFrame:
    """A conformed frame (the signature's columns, in order) with the extra columns after them."""
    if not extra_names:
        return frame
    return pd.DataFrame._from_arrays(
        [*column_arrays(frame), *extra_arrays],
        columns=plan.columns_with(extra_names),
        index=frame.index,
        verify_integrity=False,
    )


def conform_with_field(
    frame: pd.DataFrame,
    signature: Signature,
    *,
    owner: str,
    field_of: Callable[[str | None], str],
    allow_extra: bool = False,
) -> pd.DataFrame:
    """:func:`conform`, with the request field a column came from added to the error's details."""
    try:
        return conform(frame, signature, owner=owner, allow_extra=allow_extra)
    except SchemaMismatch as e:
        e.details.setdefault("field", field_of(e.details.get("column")))
        raise


# -- columns out -----------------------------------------------------------------------------------------


def column_arrays(frame: pd.DataFrame) -> list[Any]:
    """The frame's columns as stored (NumPy arrays or extension arrays), by position."""
    get = getattr(frame, "_get_column_array", None)
    if get is not None:  # 0.4 us a column, where frame.iloc[:, i] costs 13 us
        return [get(i) for i in range(frame.shape[1])]
    return [frame.iloc[:, i].array for i in range(frame.shape[1])]  # pragma: no cover - other pandas


def iso_strings(values: Any) -> list[str | None]:
    """Datetimes as ISO 8601 text, missing ones as None."""
    return [None if v is pd.NaT or v is None else v.isoformat() for v in pd.Series(values, copy=False).tolist()]
