"""Data-set fingerprints: a content hash, the row count, the schema and a per-column profile.

The profile (quantiles, a histogram on quantile edges, category frequencies) is what monitoring
compares live data against later, so the training data itself is never needed again.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnProfile, DatasetFingerprint, Histogram
from modelsteward.stats.schema import column_type

QUANTILE_LEVELS = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
HISTOGRAM_BINS = 10
MAX_CATEGORIES = 50


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 over column names, dtypes and a 64-bit hash of every row (order matters)."""
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}\x1f{dtype}\x1e".encode())
    if len(frame):
        row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(np.ascontiguousarray(row_hashes).tobytes())
    return digest.hexdigest()


def _numeric_profiles(frame: pd.DataFrame, names: list[str], types: dict[str, str]) -> dict[str, ColumnProfile]:
    if not names:
        return {}
    values = np.column_stack(
        [pd.to_numeric(frame[n], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for n in names]
    )
    present = ~np.isnan(values)
    counts = present.sum(axis=0)
    # An all-null column is reported through its counts; NumPy's all-NaN warnings add nothing.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mins = np.nanmin(values, axis=0) if len(values) else np.full(len(names), np.nan)
        maxs = np.nanmax(values, axis=0) if len(values) else np.full(len(names), np.nan)
        means = np.nanmean(values, axis=0) if len(values) else np.full(len(names), np.nan)
        stds = np.nanstd(values, axis=0, ddof=1) if len(values) > 1 else np.full(len(names), np.nan)
        quantiles = (
            np.nanquantile(values, QUANTILE_LEVELS, axis=0)
            if len(values)
            else np.full((len(QUANTILE_LEVELS), len(names)), np.nan)
        )
        edges_all = (
            np.nanquantile(values, np.linspace(0, 1, HISTOGRAM_BINS + 1), axis=0)
            if len(values)
            else np.full((HISTOGRAM_BINS + 1, len(names)), np.nan)
        )
    distinct = frame[names].nunique(dropna=True)
    out: dict[str, ColumnProfile] = {}
    for j, name in enumerate(names):
        column = values[present[:, j], j]
        histogram = None
        if column.size:
            edges = np.unique(edges_all[:, j])
            if edges.size == 1:
                edges = np.array([edges[0], edges[0]])
            hist_counts, _ = np.histogram(column, bins=edges)
            histogram = Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in hist_counts])
        out[name] = ColumnProfile(
            name=name,
            type=types[name],  # type: ignore[arg-type]
            count=int(counts[j]),
            null_count=int(len(values) - counts[j]),
            distinct=int(distinct[name]),
            min=_finite(mins[j]),
            max=_finite(maxs[j]),
            mean=_finite(means[j]),
            std=_finite(stds[j]),
            quantiles=[_finite(q) or 0.0 for q in quantiles[:, j]] if column.size else None,
            histogram=histogram,
        )
    return out


def _categorical_profile(series: pd.Series, name: str, kind: str) -> ColumnProfile:
    counts = series.astype("string").value_counts(dropna=True)
    top = counts.iloc[:MAX_CATEGORIES]
    return ColumnProfile(
        name=name,
        type=kind,  # type: ignore[arg-type]
        count=int(counts.sum()),
        null_count=int(series.isna().sum()),
        distinct=int(len(counts)),
        top_values={str(k): int(v) for k, v in top.items()},
        other_count=int(counts.iloc[MAX_CATEGORIES:].sum()),
    )


def fingerprint(frame: pd.DataFrame) -> DatasetFingerprint:
    """Fingerprint a data set; numeric columns are profiled together, as one 2-D array."""
    types = {str(name): column_type(frame[name]) for name in frame.columns}
    renamed = frame.set_axis([str(c) for c in frame.columns], axis=1)
    numeric = [n for n, t in types.items() if t in ("integer", "number")]
    profiles = _numeric_profiles(renamed, numeric, types)
    for name, kind in types.items():
        if kind == "datetime":
            as_seconds = pd.to_datetime(renamed[name], utc=True).astype("int64") / 1e9
            as_seconds[renamed[name].isna()] = np.nan
            profile = _numeric_profiles(pd.DataFrame({name: as_seconds}), [name], types)[name]
            profiles[name] = profile
        elif kind not in ("integer", "number"):
            profiles[name] = _categorical_profile(renamed[name], name, kind)
    from modelsteward.stats.sketch import reference_sketch

    return DatasetFingerprint(
        content_hash=content_hash(renamed),
        row_count=len(renamed),
        quantile_levels=QUANTILE_LEVELS,
        columns=[profiles[name] for name in types],
        # Monitoring compares live traffic with this, so it never needs the training data again.
        drift_profile=reference_sketch(renamed).model_dump(mode="json"),
    )


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
