"""Drift sketches: profiles on quantile bins, summaries on the reference's bins, exact merges, JSON round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.stats.sketch import (
    MAX_UNSEEN,
    CurrentSketch,
    DriftProfile,
    _bin_index,
    merge,
    reference_sketch,
    summarize,
)


def frame(seed: int = 0, n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, n),
            "age": rng.integers(18, 80, n),
            "region": pd.Series(rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]), dtype="str"),
            "flag": rng.uniform(size=n) < 0.2,
            "seen_at": pd.date_range("2026-01-01", periods=n, freq="min"),
        }
    )


def test_profile_has_quantile_edges_and_the_reference_counts_on_them() -> None:
    data = frame()
    profile = reference_sketch(data)
    assert profile.names == ["income", "age", "region", "flag"]  # datetimes are left out unless named
    income = profile.column("income")
    assert income.kind == "numeric" and 150 <= len(income.edges) <= 202
    assert income.edges[0] == data["income"].min() and income.edges[-1] > data["income"].max()
    counts = np.array(income.summary.counts)
    assert counts.sum() == len(data) and counts[0] == 0 and counts[-1] == 0  # outer bins: outside the range
    assert counts[1:-1].max() <= 2 * len(data) / profile.bins + 1  # quantile bins hold about equal shares
    assert income.std == pytest.approx(data["income"].std(ddof=0))
    age = profile.column("age")
    assert age.edges[:-1] == list(range(18, 80))  # a discrete column gets one bin per value
    region = profile.column("region")
    assert region.categories == ["north", "south", "east"] and region.complete
    assert sum(region.summary.counts) == len(data) and region.summary.counts[-1] == 0
    assert profile.column("flag").kind == "categorical"


def test_profile_round_trips_through_json_and_stays_compact() -> None:
    profile = reference_sketch(frame(n=50_000))
    text = profile.model_dump_json()
    assert DriftProfile.model_validate_json(text) == profile
    assert len(text) < 40_000  # two numeric and two categorical columns


def test_summary_of_chunks_merges_to_the_summary_of_the_whole() -> None:
    profile = reference_sketch(frame(0))
    current = frame(1, n=9000)
    current.loc[::7, "income"] = np.nan
    current.loc[::11, "income"] = np.inf
    current.loc[3, "region"] = "west"
    whole = summarize(current, profile)
    parts = [summarize(current.iloc[i : i + 2000], profile) for i in range(0, len(current), 2000)]
    merged = merge(*parts)
    assert merged.rows == whole.rows
    for name, summary in whole.columns.items():
        other = merged.columns[name]
        assert other.counts == summary.counts, name
        assert (other.null_count, other.nonfinite_count, other.unseen) == (
            summary.null_count,
            summary.nonfinite_count,
            summary.unseen,
        )
        if summary.sums is not None:
            np.testing.assert_allclose(other.sums, summary.sums, rtol=1e-9)
            assert (other.min, other.max) == (summary.min, summary.max)
    income = current["income"].to_numpy()
    assert whole.columns["income"].null_count == np.isnan(income).sum() > 0
    assert whole.columns["income"].nonfinite_count == np.isinf(income).sum() > 0
    assert whole.columns["region"].unseen == {"west": 1}


def test_merge_refuses_sketches_of_other_profiles() -> None:
    a = summarize(frame(1), reference_sketch(frame(0)))
    b = summarize(frame(1), reference_sketch(frame(2)))
    with pytest.raises(InvalidArgument):
        merge(a, b)
    with pytest.raises(InvalidArgument):
        merge()


def test_missing_column_is_named() -> None:
    profile = reference_sketch(frame())
    with pytest.raises(SchemaMismatch, match="'age'") as info:
        summarize(frame().drop(columns=["age"]), profile)
    assert info.value.details["column"] == "age"


def test_bad_values_are_counted_not_fatal() -> None:
    profile = reference_sketch(frame())
    current = pd.DataFrame(
        {
            "income": pd.Series(["12.5", "abc", None, "1e4"], dtype=object),
            "age": [np.inf, -np.inf, np.nan, 30.0],
            "region": [None, None, None, None],
            "flag": [True, None, False, True],
        }
    )
    sketch = summarize(current, profile)
    income, age, region = sketch.columns["income"], sketch.columns["age"], sketch.columns["region"]
    assert (income.count, income.invalid_count, income.null_count) == (2, 1, 1)
    assert (age.count, age.nonfinite_count, age.null_count) == (1, 2, 1)
    assert (region.count, region.null_count) == (0, 4)


def test_float_codes_match_integer_categories() -> None:
    profile = reference_sketch(pd.DataFrame({"code": [1, 2, 2, 3]}), categorical=["code"])
    sketch = summarize(pd.DataFrame({"code": [1.0, 2.0, np.nan, 4.0]}), profile)
    assert profile.column("code").categories == ["2", "1", "3"]
    assert sketch.columns["code"].counts == [1, 1, 0, 1] and sketch.columns["code"].unseen == {"4": 1}


def test_unseen_names_are_capped_but_counted() -> None:
    profile = reference_sketch(pd.DataFrame({"id": ["a", "b"]}))
    ids = pd.DataFrame({"id": [f"x{i}" for i in range(MAX_UNSEEN + 50)]})
    sketch = summarize(ids, profile)
    column = sketch.columns["id"]
    assert len(column.unseen or {}) == MAX_UNSEEN and column.unseen_other == 50
    assert column.counts[-1] == MAX_UNSEEN + 50


def test_empty_and_all_null_columns() -> None:
    profile = reference_sketch(pd.DataFrame({"x": [np.nan, np.nan], "k": pd.Series([None, None], dtype=object)}))
    assert profile.column("x").kind == "numeric" and profile.column("x").edges == []
    sketch = summarize(pd.DataFrame({"x": pd.Series([], dtype=float), "k": pd.Series([], dtype=object)}), profile)
    assert sketch.rows == 0 and sketch.columns["x"].count == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.lists(st.floats(-2e6, 2e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=200),
    st.integers(0, 2**32 - 1),
)
def test_fast_binning_equals_searchsorted(reference: list[float], picked: list[float], seed: int) -> None:
    edges = np.unique(np.asarray(reference))
    rng = np.random.default_rng(seed)
    spread = rng.uniform(edges.min() - 1, edges.max() + 1, 10_000)  # enough values for the table path
    x = np.concatenate([spread, np.asarray(picked), edges, np.nextafter(edges, np.inf)])
    np.testing.assert_array_equal(_bin_index(x, edges), np.searchsorted(edges, x, side="right"))


def test_fast_binning_on_skewed_and_discrete_data() -> None:
    rng = np.random.default_rng(3)
    for x in (rng.lognormal(0, 3, 200_000), rng.integers(0, 40, 200_000).astype(float), rng.normal(size=200_000)):
        edges = np.unique(np.quantile(x[:5000], np.linspace(0, 1, 201)))
        np.testing.assert_array_equal(_bin_index(x, edges), np.searchsorted(edges, x, side="right"))


def test_current_sketch_round_trips_through_json() -> None:
    profile = reference_sketch(frame())
    sketch = summarize(frame(4), profile)
    assert CurrentSketch.model_validate_json(sketch.model_dump_json()) == sketch
