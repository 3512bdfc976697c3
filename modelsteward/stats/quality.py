"""Data-quality checks of current data against the training data's profile: nulls, types, ranges, categories,
duplicates and freshness, each a vectorized pass per column.

The reference is a :class:`~modelsteward.stats.sketch.DriftProfile` or a
:class:`~modelsteward.domain.records.DatasetFingerprint` (both hold what is needed: types, null rates,
min/max and categories); a :class:`~modelsteward.domain.records.Signature` adds "no nulls where none is
allowed". Every check is a row (check, column, value, threshold, passed); a failing check is a finding, not an
exception.

Example::

    report = check_quality(todays_frame, profile, signature=version.signature, timestamp_column="ts")
    report.failed            # rows that did not pass
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnType, DatasetFingerprint, Record, Signature
from modelsteward.errors import InvalidArgument
from modelsteward.stats.sketch import DriftProfile, category_counts

Check = Literal[
    "row_count",
    "missing_column",
    "null_rate",
    "nulls_not_allowed",
    "type",
    "out_of_range",
    "unseen_categories",
    "duplicate_rows",
    "freshness",
]


class QualityRow(Record):
    """One check: ``value`` against ``threshold`` (pass when value <= threshold, or >= for ``row_count``)."""

    check: Check
    column: str | None = None
    value: float | None
    threshold: float | None
    passed: bool
    message: str = ""


class QualityReport(Record):
    rows: list[QualityRow]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failed(self) -> list[QualityRow]:
        return [r for r in self.rows if not r.passed]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records([r.model_dump() for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **self.model_dump(mode="json")}


@dataclasses.dataclass(frozen=True)
class _Reference:
    name: str
    type: ColumnType
    null_rate: float
    min: float | None
    max: float | None
    categories: frozenset[str] | None  # None: numeric, or the reference did not keep every category


def check_quality(
    current: pd.DataFrame,
    reference: DriftProfile | DatasetFingerprint,
    *,
    signature: Signature | None = None,
    columns: Sequence[str] | None = None,
    null_rate_tolerance: float = 0.05,
    max_out_of_range: float = 0.01,
    max_unseen: float = 0.0,
    max_duplicates: float = 0.01,
    min_rows: int = 1,
    timestamp_column: str | None = None,
    newest: datetime | None = None,
    max_age: timedelta = timedelta(days=1),
    now: datetime | None = None,
) -> QualityReport:
    """Check ``current`` against the training data's profile.

    Thresholds: a column's null rate may exceed the training rate by ``null_rate_tolerance``; at most
    ``max_out_of_range`` of a numeric column's values may lie outside the training min/max, ``max_unseen`` of
    a categorical column's values may be categories training never had, ``max_duplicates`` of the rows may
    repeat an earlier row (hashed, over ``columns``). Freshness, when ``timestamp_column`` or ``newest`` is
    given: the newest timestamp is at most ``max_age`` old at ``now`` (default: the current UTC time).
    """
    refs = _references(reference)
    names = list(columns) if columns is not None else list(refs)
    unknown = [n for n in names if n not in refs]
    if unknown:
        raise InvalidArgument(f"column(s) {unknown} are not in the reference profile", details={"column": unknown[0]})
    nullable = {c.name: c.nullable for c in signature.inputs + signature.outputs} if signature else {}
    n = len(current)
    rows = [
        QualityRow(
            check="row_count",
            value=float(n),
            threshold=float(min_rows),
            passed=n >= min_rows,
            message="" if n >= min_rows else f"{n} row(s), fewer than {min_rows}",
        )
    ]
    present = [name for name in names if name in current.columns]
    for name in names:
        if name not in current.columns:
            rows.append(QualityRow(check="missing_column", column=name, value=1, threshold=0, passed=False))
    null_counts = current[present].isna().sum().to_dict() if present else {}
    for name in present:
        ref, series, nulls = refs[name], current[name], int(null_counts[name])
        rate = nulls / n if n else None
        bound = min(1.0, ref.null_rate + null_rate_tolerance)
        rows.append(_row("null_rate", name, rate, bound, f"{nulls} null(s) of {n}"))
        if nullable.get(name) is False:
            rows.append(_row("nulls_not_allowed", name, float(nulls), 0.0, "the signature allows no nulls"))
        violations, detail = _type_violations(series, ref.type)
        rows.append(_row("type", name, float(violations), 0.0, detail))
        if ref.type in ("integer", "number") and ref.min is not None and ref.max is not None:
            rows.append(_out_of_range(series, ref, max_out_of_range))
        if ref.categories is not None:
            rows.append(_unseen(series, ref, max_unseen))
    if present:
        duplicated = int(pd.util.hash_pandas_object(current[present], index=False).duplicated().sum())
        share = duplicated / n if n else None
        rows.append(_row("duplicate_rows", None, share, max_duplicates, f"{duplicated} repeated row(s)"))
    if timestamp_column is not None or newest is not None:
        rows.append(_freshness(current, timestamp_column, newest, max_age, now))
    return QualityReport(rows=rows)


def _row(check: Check, column: str | None, value: float | None, threshold: float, message: str = "") -> QualityRow:
    passed = value is None or value <= threshold
    return QualityRow(check=check, column=column, value=value, threshold=threshold, passed=passed, message=message)


def _references(reference: DriftProfile | DatasetFingerprint) -> dict[str, _Reference]:
    out = {}
    if isinstance(reference, DriftProfile):
        for col in reference.columns:
            s = col.summary
            complete = col.kind == "categorical" and col.complete
            out[col.name] = _Reference(
                col.name,
                col.type,
                s.null_count / s.rows if s.rows else 0.0,
                s.min,
                s.max,
                frozenset(col.categories or []) if complete else None,
            )
    elif isinstance(reference, DatasetFingerprint):
        for p in reference.columns:
            total = p.count + p.null_count
            complete = p.top_values is not None and not p.other_count
            out[p.name] = _Reference(
                p.name,
                p.type,
                p.null_count / total if total else 0.0,
                p.min,
                p.max,
                frozenset(p.top_values or {}) if complete else None,
            )
    else:
        raise InvalidArgument("the reference must be a DriftProfile or a DatasetFingerprint")
    return out


def _type_violations(series: pd.Series, expected: ColumnType) -> tuple[int, str]:
    """How many non-null values are not of the expected type, without a Python loop over rows."""
    dtype, present = series.dtype, series.notna()
    if expected in ("integer", "number"):
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
            return int(present.sum()), f"expected {expected}, got {dtype}"
        numbers = series if pd.api.types.is_numeric_dtype(dtype) else pd.to_numeric(series, errors="coerce")
        bad = int((numbers.isna() & present).sum())
        if expected == "integer" and pd.api.types.is_float_dtype(numbers.dtype):
            values = numbers.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                bad += int(np.count_nonzero(np.isfinite(values) & (np.floor(values) != values)))
        return bad, f"{bad} value(s) that are not {expected}s" if bad else ""
    if expected == "string":
        if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
            if not pd.api.types.is_object_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
                return 0, ""
            if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):  # one pass in C
                return 0, ""
            # only a column that already mixes types gets here; naming each culprit needs its type
            is_text = series.map(type, na_action="ignore").isin([str])
            bad = int((present & ~is_text).sum())
            return bad, f"{bad} value(s) that are not strings" if bad else ""
        return int(present.sum()), f"expected string, got {dtype}"
    if expected == "boolean":
        if pd.api.types.is_bool_dtype(dtype):
            return 0, ""
        bad = int((present & ~series.isin([True, False])).sum())
        return bad, f"{bad} value(s) that are not booleans" if bad else ""
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return 0, ""
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    bad = int((parsed.isna() & present).sum())
    return bad, f"{bad} value(s) that are not dates" if bad else ""


def _out_of_range(series: pd.Series, ref: _Reference, limit: float) -> QualityRow:
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = values[~np.isnan(values)]
    outside = int(np.count_nonzero((values < ref.min) | (values > ref.max)))
    share = outside / values.size if values.size else None
    message = f"{outside} value(s) outside the training range [{ref.min:g}, {ref.max:g}]"
    if outside:
        message += f" (seen {values.min():g} to {values.max():g})"
    return _row("out_of_range", ref.name, share, limit, message)


def _unseen(series: pd.Series, ref: _Reference, limit: float) -> QualityRow:
    labels, counts = category_counts(series)
    new = ~pd.Index(labels, dtype=object).isin(list(ref.categories or ()))
    unseen, total = int(counts[new].sum()), int(counts.sum())
    share = unseen / total if total else None
    message = f"{unseen} value(s) in {int(new.sum())} categories training never had"
    if unseen:
        order = np.argsort(-counts[new], kind="stable")[:5]
        message += ": " + ", ".join(repr(v) for v in labels[new][order])
    return _row("unseen_categories", ref.name, share, limit, message)


def _freshness(
    frame: pd.DataFrame, column: str | None, newest: datetime | None, max_age: timedelta, now: datetime | None
) -> QualityRow:
    if newest is None:
        if column not in frame.columns:
            raise InvalidArgument(f"no timestamp column {column!r} in the current data", details={"column": column})
        stamps = pd.to_datetime(frame[column], utc=True, errors="coerce").dropna()
        newest = stamps.max().to_pydatetime() if len(stamps) else None
    threshold = max_age.total_seconds()
    if newest is None:
        return QualityRow(
            check="freshness", column=column, value=None, threshold=threshold, passed=False, message="no timestamps"
        )
    stamp = pd.Timestamp(newest)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp
    at = pd.Timestamp(now if now is not None else datetime.now(UTC))
    at = at.tz_localize(UTC) if at.tzinfo is None else at
    return _row("freshness", column, (at - stamp).total_seconds(), threshold, f"newest row at {stamp.isoformat()}")
