"""Drift statistics between a reference profile and a current sketch, vectorized across columns.

Every statistic is computed from the sketches alone (see :mod:`modelsteward.stats.sketch`), with the
columns of one kind stacked as 2-D arrays (columns x bins):

- numeric: **KS** (the largest gap between the two binned CDFs at the reference's ~200 quantile edges, at
  most one bin's mass below the exact statistic, and its asymptotic p-value with the effective sample size
  ``n_ref * n_cur / (n_ref + n_cur)``, as ``scipy.stats.ks_2samp(method="asymp")``); **Wasserstein** W1
  (each bin's mass placed at its mean, so discrete columns are exact), reported raw and divided by the
  reference's standard deviation (``wasserstein``, the normed one Evidently reports); **PSI** and
  **Jensen-Shannon** distance (natural log) on the reference's deciles.
- categorical: **chi-square** test of homogeneity (the 2 x k contingency table of the profile's categories
  plus one "other" cell that holds unseen values, as ``scipy.stats.chi2_contingency(correction=False)``),
  **PSI** and **Jensen-Shannon** on the category shares. PSI replaces an empty share by 0.0001.

Default decision (override per column with ``stattest=``, ``threshold=`` and ``significance=``), chosen by the
study in ``docs/drift-defaults.md`` (``bench/bench_monitoring.py --study``: 200 seeds per cell, a 10,000-row
reference, current windows of 100 to 100,000 rows):

- numeric: **normed Wasserstein >= 0.1 and KS p-value < 0.05**;
- categorical: **Jensen-Shannon distance >= 0.05 and chi-square p-value < 0.05**.

A column drifts when the change is material (the distance) *and* more than sampling noise (the test). The
distance alone false-alarms on small windows (normed Wasserstein >= 0.1 fires on 70% of unchanged 100-row
windows, Jensen-Shannon >= 0.1 on every unchanged 300-row window of a 50-category column); the test alone
flags immaterial changes on large ones (KS p < 0.05 flags a 0.05-sd shift in 85% of 10,000-row windows and 98%
of 100,000-row ones). Together: no false alarm from 3,000 rows up on unchanged normal, lognormal and count data
(the test's nominal ~5% or less below that); a 0.3-sd shift caught in 98% of 300-row windows and all from
1,000 rows up, a 1.5x spread in all from 300 rows up; a 0.1-sd shift sits on the threshold (55-62% from 1,000
rows up). PSI >= 0.1 misses the 0.3-sd shift (43% at 1,000 rows, 2% at 100,000: its value there is ~0.09).
For categories, Evidently's Jensen-Shannon >= 0.1 misses a 10-point move between the two largest categories
above 1,000 rows (0-7%) while chi-square catches it at 1,000 rows: a jump at Evidently's size switch.
Jensen-Shannon >= 0.05 is the categorical counterpart of ~0.14 sd (for small changes the distance is ~0.35 x
the shift in sd units) and catches 10-point moves from 1,000 rows up; the chi-square gate keeps a 150-category
column at the test's ~5%. Evidently instead switches on the reference's size (<= 1,000 rows: the test alone;
above: the distance alone); ``significance=None`` with ``threshold=0.1`` gives its distance rules. A constant
reference column is judged by KS (the share of current values that differ), never by a norm of zero.

Prediction drift and target drift are the same computation on the prediction or target column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

from modelsteward.domain.records import Record
from modelsteward.errors import InvalidArgument
from modelsteward.stats.sketch import (
    ColumnReference,
    ColumnSummary,
    CurrentSketch,
    DriftProfile,
    reference_sketch,
    summarize,
)

NUMERIC_STATTESTS = ("ks", "wasserstein", "psi", "jensenshannon")
CATEGORICAL_STATTESTS = ("chisquare", "psi", "jensenshannon")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "psi": 0.1, "jensenshannon": 0.05}
P_VALUE_STATTESTS = frozenset({"ks", "chisquare"})  # drift when the p-value is below the threshold
SIGNIFICANCE = 0.05  # a distance flags drift only where the column's test also rejects "no change" at this level
PSI_FLOOR = 1e-4
COARSE_BINS = 10  # PSI and Jensen-Shannon of numeric columns use the reference's deciles
_ALIASES = {"kolmogorov_smirnov": "ks", "chi2": "chisquare", "chi_square": "chisquare", "js": "jensenshannon"}


class DriftRow(Record):
    """One column's verdict: the deciding statistic and threshold, and every other statistic for information."""

    column: str
    type: Literal["numeric", "categorical"]
    statistic: str
    value: float | None
    threshold: float
    drifted: bool
    p_value: float | None = None  # the column's test (KS or chi-square), which gates a distance
    significance: float | None = None
    status: Literal["ok", "not_enough_data"] = "ok"
    n_reference: int
    n_current: int
    null_current: int = 0
    nonfinite_current: int = 0
    invalid_current: int = 0
    unseen_current: int = 0
    statistics: dict[str, float | None]
    message: str = ""


class DriftReport(Record):
    """Per-column drift verdicts. ``not_enough_data`` rows are never drifted and not counted in shares."""

    rows: list[DriftRow]

    @property
    def drifted(self) -> list[str]:
        return [r.column for r in self.rows if r.drifted]

    @property
    def share_drifted(self) -> float:
        """Drifted columns over the columns that had enough data to judge (0.0 when none had)."""
        judged = [r for r in self.rows if r.status == "ok"]
        return sum(r.drifted for r in judged) / len(judged) if judged else 0.0

    def row(self, column: str) -> DriftRow:
        for r in self.rows:
            if r.column == column:
                return r
        raise InvalidArgument(f"column {column!r} is not in the drift report", details={"column": column})

    def to_frame(self) -> pd.DataFrame:
        """One row per column; the other statistics as columns prefixed ``stat_``."""
        records = []
        for r in self.rows:
            record = r.model_dump(exclude={"statistics"})
            record.update({f"stat_{k}": v for k, v in r.statistics.items()})
            records.append(record)
        return pd.DataFrame.from_records(records)

    def to_dict(self) -> dict[str, Any]:
        return {"drifted": self.drifted, "share_drifted": self.share_drifted, **self.model_dump(mode="json")}


def detect_drift(
    reference: pd.DataFrame | DriftProfile,
    current: pd.DataFrame | CurrentSketch,
    *,
    columns: Sequence[str] | None = None,
    stattest: str | Mapping[str, str] | None = None,
    threshold: float | Mapping[str, float] | None = None,
    significance: float | None = SIGNIFICANCE,
) -> DriftReport:
    """Compare current data with the reference, column by column.

    ``reference`` is the training data or, better, its :class:`DriftProfile` computed once; ``current`` is
    a DataFrame or a (merged) :class:`CurrentSketch`. ``stattest`` names one of ``ks``, ``wasserstein``
    (normed), ``psi``, ``jensenshannon`` (numeric) or ``chisquare``, ``psi``, ``jensenshannon``
    (categorical), for every column or per column as a mapping; ``threshold`` likewise (a p-value bound
    for ``ks`` and ``chisquare``, a distance otherwise). Unnamed columns keep the defaults (module doc). A
    distance flags drift only where the column's test (KS or chi-square) also has a p-value below
    ``significance``; ``significance=None`` judges by the distance alone, as Evidently does.

    Example::

        report = detect_drift(profile, todays_frame)
        report.drifted            # ['income', 'region']
        report.to_frame()
    """
    profile = reference if isinstance(reference, DriftProfile) else reference_sketch(reference, columns=columns)
    names = list(columns) if columns is not None else profile.names
    refs = [profile.column(n) for n in names]
    if isinstance(current, CurrentSketch):
        if current.profile_digest != profile.digest:
            raise InvalidArgument("the current sketch was summarised against another reference profile")
        absent = [n for n in names if n not in current.columns]
        if absent:
            raise InvalidArgument(f"the current sketch lacks column(s) {absent}", details={"column": absent[0]})
        sketch = current
    else:
        sketch = summarize(current, profile, columns=names)
    for mapping in (stattest, threshold):
        if isinstance(mapping, Mapping):
            unknown = sorted(set(mapping) - set(names))
            if unknown:
                message = f"no such column(s) in this comparison: {unknown}"
                raise InvalidArgument(message, details={"column": unknown[0]})
    values: dict[str, dict[str, float | None]] = {}
    for kind, compute in (("numeric", numeric_statistics), ("categorical", categorical_statistics)):
        group = [r for r in refs if r.kind == kind]
        if group:
            table = compute(group, [sketch.columns[r.name] for r in group])
            for j, ref in enumerate(group):
                values[ref.name] = {k: _clean(v[j]) for k, v in table.items()}
    rows = [_verdict(r, sketch.columns[r.name], values[r.name], stattest, threshold, significance) for r in refs]
    return DriftReport(rows=rows)


# -- the statistics, vectorized across columns ----------------------------------------------------------


def numeric_statistics(refs: Sequence[ColumnReference], current: Sequence[ColumnSummary]) -> dict[str, np.ndarray]:
    """KS (statistic, p-value), Wasserstein (raw, normed), PSI and Jensen-Shannon per numeric column."""
    ref_counts, ref_sums = _stack([r.summary.counts for r in refs]), _stack([r.summary.sums or [] for r in refs])
    cur_counts, cur_sums = _stack([c.counts for c in current]), _stack([c.sums or [] for c in current])
    n_ref, n_cur = ref_counts.sum(axis=1), cur_counts.sum(axis=1)
    with np.errstate(all="ignore"):
        ref_share, cur_share = ref_counts / n_ref[:, None], cur_counts / n_cur[:, None]
        ks = np.abs(np.cumsum(ref_share, axis=1) - np.cumsum(cur_share, axis=1)).max(axis=1)
        effective = np.maximum(np.round(n_ref * n_cur / (n_ref + n_cur)), 1)
        ks_p = np.clip(sps.kstwo.sf(ks, effective), 0.0, 1.0)
        ref_means = np.where(ref_counts > 0, ref_sums / ref_counts, 0.0)
        cur_means = np.where(cur_counts > 0, cur_sums / cur_counts, 0.0)
        w1 = _wasserstein(ref_means, ref_share, cur_means, cur_share)
        std = np.array([r.std if r.std is not None else np.nan for r in refs])
        w_norm = np.where(std > 0, w1 / std, np.where(w1 == 0, 0.0, np.inf))
        ref_coarse, cur_coarse = _deciles(ref_counts, cur_counts, n_ref)
        psi = _psi(ref_coarse / n_ref[:, None], cur_coarse / n_cur[:, None])
        js = _jensenshannon(ref_coarse / n_ref[:, None], cur_coarse / n_cur[:, None])
    empty = (n_ref == 0) | (n_cur == 0)
    out = {"ks": ks, "ks_p_value": ks_p, "wasserstein": w_norm, "wasserstein_abs": w1, "psi": psi}
    out["jensenshannon"] = js
    return {k: np.where(empty, np.nan, v) for k, v in out.items()}


def categorical_statistics(refs: Sequence[ColumnReference], current: Sequence[ColumnSummary]) -> dict[str, np.ndarray]:
    """Chi-square (statistic, p-value), PSI and Jensen-Shannon per categorical column."""
    # the "other" cell (unseen values when the profile is complete) goes last in every row, after the padding
    ref_counts = _stack([[*r.summary.counts[:-1], 0, r.summary.counts[-1]] for r in refs], other_last=True)
    cur_counts = _stack([[*c.counts[:-1], 0, c.counts[-1]] for c in current], other_last=True)
    n_ref, n_cur = ref_counts.sum(axis=1), cur_counts.sum(axis=1)
    with np.errstate(all="ignore"):
        chi, chi_p = _chi_square(ref_counts, cur_counts)
        ref_share, cur_share = ref_counts / n_ref[:, None], cur_counts / n_cur[:, None]
        psi = _psi(ref_share, cur_share)
        js = _jensenshannon(ref_share, cur_share)
    empty = (n_ref == 0) | (n_cur == 0)
    out = {"chisquare": chi, "chisquare_p_value": chi_p, "psi": psi, "jensenshannon": js}
    return {k: np.where(empty, np.nan, v) for k, v in out.items()}


def _chi_square(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity per row. Cells where the reference's share would give the smaller sample
    fewer than 5 counts are pooled into one cell (Cochran's rule: sparse cells make the approximation reject too
    often); the pooling looks at the reference only, so it cannot follow the current sample's noise."""
    n_ref, n_cur = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    sparse = np.minimum(n_ref, n_cur) * ref / np.maximum(n_ref, 1) < 5
    sparse[:, -1] &= ref[:, -1] > 0  # values the reference never had stay a cell of their own
    pooled_ref = np.where(sparse, ref, 0.0).sum(axis=1, keepdims=True)
    pooled_cur = np.where(sparse, cur, 0.0).sum(axis=1, keepdims=True)
    ref = np.concatenate([np.where(sparse, 0.0, ref), pooled_ref], axis=1)
    cur = np.concatenate([np.where(sparse, 0.0, cur), pooled_cur], axis=1)
    both = ref + cur
    seen = both > 0
    expected_ref, expected_cur = n_ref * both / (n_ref + n_cur), n_cur * both / (n_ref + n_cur)
    cells = (ref - expected_ref) ** 2 / expected_ref + (cur - expected_cur) ** 2 / expected_cur
    statistic = np.where(seen, cells, 0.0).sum(axis=1)
    dof = seen.sum(axis=1) - 1
    return statistic, np.where(dof > 0, sps.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)


def _stack(rows: Sequence[Sequence[float]], *, other_last: bool = False) -> np.ndarray:
    """Ragged per-column bins as one zero-padded 2-D array (an empty bin changes no statistic)."""
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), max(width, 1)))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        if other_last and len(r):
            out[i, len(r) - 1], out[i, -1] = 0.0, r[-1]
    return out


def _wasserstein(ref_pos: np.ndarray, ref_w: np.ndarray, cur_pos: np.ndarray, cur_w: np.ndarray) -> np.ndarray:
    """W1 between two weighted point sets per row: the integral of |F_ref - F_cur| over the merged atoms."""
    positions = np.concatenate([ref_pos, cur_pos], axis=1)
    zeros = np.zeros_like(ref_w)
    weights_ref = np.concatenate([ref_w, zeros], axis=1)
    weights_cur = np.concatenate([zeros, cur_w], axis=1)
    order = np.argsort(positions, axis=1, kind="stable")
    positions = np.take_along_axis(positions, order, axis=1)
    gap = np.cumsum(np.take_along_axis(weights_ref, order, axis=1), axis=1) - np.cumsum(
        np.take_along_axis(weights_cur, order, axis=1), axis=1
    )
    return (np.abs(gap[:, :-1]) * np.diff(positions, axis=1)).sum(axis=1)


def _deciles(ref_counts: np.ndarray, cur_counts: np.ndarray, n_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fine bins gathered into the reference's deciles (by the reference share below each bin's middle)."""
    middle = (np.cumsum(ref_counts, axis=1) - ref_counts / 2) / np.maximum(n_ref, 1)[:, None]
    group = np.clip(np.floor(middle * COARSE_BINS), 0, COARSE_BINS - 1).astype(np.int64)
    flat = (group + COARSE_BINS * np.arange(len(group))[:, None]).ravel()
    size = len(group) * COARSE_BINS
    ref = np.bincount(flat, weights=ref_counts.ravel(), minlength=size).reshape(-1, COARSE_BINS)
    cur = np.bincount(flat, weights=cur_counts.ravel(), minlength=size).reshape(-1, COARSE_BINS)
    return ref, cur


def _psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    ref, cur = np.where(ref > 0, ref, PSI_FLOOR), np.where(cur > 0, cur, PSI_FLOOR)
    return ((cur - ref) * np.log(cur / ref)).sum(axis=1)


def _jensenshannon(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    middle = (ref + cur) / 2
    divergence = (special.rel_entr(ref, middle) + special.rel_entr(cur, middle)).sum(axis=1) / 2
    return np.sqrt(np.maximum(divergence, 0.0))


# -- the verdict ----------------------------------------------------------------------------------------------


def _verdict(
    ref: ColumnReference,
    cur: ColumnSummary,
    values: dict[str, float | None],
    stattest: str | Mapping[str, str] | None,
    threshold: float | Mapping[str, float] | None,
    significance: float | None,
) -> DriftRow:
    n_ref, n_cur = ref.summary.count, cur.count
    constant = ref.kind == "numeric" and ref.std == 0.0
    chosen = stattest.get(ref.name) if isinstance(stattest, Mapping) else stattest
    if chosen is None:
        name = default_stattest(ref.kind, constant_reference=constant)
    else:
        name = _ALIASES.get(chosen, chosen)
        allowed = NUMERIC_STATTESTS if ref.kind == "numeric" else CATEGORICAL_STATTESTS
        if name not in allowed:
            raise InvalidArgument(
                f"stattest {chosen!r} does not apply to the {ref.kind} column {ref.name!r}; use one of {allowed}",
                details={"column": ref.name, "stattest": chosen},
            )
    given = threshold.get(ref.name) if isinstance(threshold, Mapping) else threshold
    bound = float(given) if given is not None else DEFAULT_THRESHOLDS[name]
    by_p_value = name in P_VALUE_STATTESTS
    value = values[f"{name}_p_value"] if by_p_value else values[name]
    p_value = values["ks_p_value"] if ref.kind == "numeric" else values["chisquare_p_value"]
    message = ""
    status: Literal["ok", "not_enough_data"] = "ok"
    if n_ref == 0 or n_cur == 0:
        status, value, p_value = "not_enough_data", None, None
        side = "reference" if n_ref == 0 else "current"
        message = f"no usable values in the {side} data (empty, all null or not finite)"
    elif constant and chosen is None:
        message = "constant in the reference: judged by KS (the share of current values that differ)"
    if value is None:
        drifted = False
    elif by_p_value:
        drifted = value < bound
    else:
        drifted = value >= bound and (significance is None or (p_value is not None and p_value < significance))
    unseen = cur.counts[-1] if ref.kind == "categorical" else 0
    return DriftRow(
        column=ref.name,
        type=ref.kind,
        statistic=name,
        value=value,
        threshold=bound,
        drifted=bool(drifted),
        p_value=p_value,
        significance=None if by_p_value else significance,
        status=status,
        n_reference=n_ref,
        n_current=n_cur,
        null_current=cur.null_count,
        nonfinite_current=cur.nonfinite_count,
        invalid_current=cur.invalid_count,
        unseen_current=int(unseen),
        statistics=values,
        message=message,
    )


def default_stattest(kind: str, *, constant_reference: bool = False) -> str:
    """The statistic that decides by default (see the module doc for the evidence)."""
    if kind == "numeric":
        return "ks" if constant_reference else "wasserstein"
    return "jensenshannon"


def _clean(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None
