"""Drift statistics from sketches: agreement with scipy, known drift found, unchanged data left alone, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.stats.drift import DriftReport, categorical_statistics, detect_drift, numeric_statistics
from modelsteward.stats.sketch import merge, reference_sketch, summarize


def numeric_pair(seed: int, n_ref: int, n_cur: int, shift: float = 0.0, scale: float = 1.0) -> tuple:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, n_ref), rng.normal(0, 1, n_cur) * scale + shift


def report_for(ref: np.ndarray, cur: np.ndarray, **kwargs) -> DriftReport:
    return detect_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), **kwargs)


@pytest.mark.parametrize(
    ("shift", "scale", "n_cur"), [(0.0, 1.0, 3000), (0.3, 1.0, 3000), (0.0, 1.5, 800), (0.1, 1, 20000)]
)
def test_numeric_statistics_match_scipy_on_the_raw_data(shift: float, scale: float, n_cur: int) -> None:
    ref, cur = numeric_pair(1, 20_000, n_cur, shift, scale)
    row = report_for(ref, cur).row("x")
    values = row.statistics
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert values["ks"] <= exact.statistic + 1e-12
    assert values["ks"] == pytest.approx(exact.statistic, abs=1 / 200 + 1e-9)  # at most one reference bin
    assert values["ks_p_value"] == pytest.approx(stats.kstwo.sf(values["ks"], round(20_000 * n_cur / (20_000 + n_cur))))
    w1 = stats.wasserstein_distance(ref, cur)
    assert values["wasserstein_abs"] == pytest.approx(w1, abs=0.01)
    assert values["wasserstein"] == pytest.approx(w1 / ref.std(), abs=0.01)
    assert (row.n_reference, row.n_current) == (20_000, n_cur)


def test_discrete_numeric_columns_are_exact() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.poisson(3, 5000).astype(float), rng.poisson(3.4, 2000).astype(float) + (rng.random(2000) < 0.01) * 20
    values = report_for(ref, cur).row("x").statistics
    assert values["ks"] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert values["wasserstein_abs"] == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


def hand_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.where(ref > 0, ref, 1e-4), np.where(cur > 0, cur, 1e-4)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def test_numeric_psi_and_jensenshannon_use_the_reference_deciles() -> None:
    ref, cur = numeric_pair(3, 10_000, 4000, shift=0.4)
    values = report_for(ref, cur).row("x").statistics
    cuts = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    ref_share = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=10) / ref.size
    cur_share = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=10) / cur.size
    assert values["psi"] == pytest.approx(hand_psi(ref_share, cur_share), rel=0.03)
    assert values["jensenshannon"] == pytest.approx(jensenshannon(ref_share, cur_share), rel=0.03)


def test_categorical_statistics_match_scipy_and_handle_unseen_values() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(["a", "b", "c", "d"], 8000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d", "new"], 3000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    row = detect_drift(pd.DataFrame({"k": ref}), pd.DataFrame({"k": cur})).row("k")
    table = pd.crosstab(np.r_[ref, cur], np.r_[np.zeros(ref.size), np.ones(cur.size)]).to_numpy().T
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    values = row.statistics
    assert values["chisquare"] == pytest.approx(chi2) and values["chisquare_p_value"] == pytest.approx(p, abs=1e-300)
    ref_share, cur_share = table[0] / table[0].sum(), table[1] / table[1].sum()
    assert values["jensenshannon"] == pytest.approx(jensenshannon(ref_share, cur_share))
    assert values["psi"] == pytest.approx(hand_psi(ref_share, cur_share))
    assert row.unseen_current == (cur == "new").sum() and row.drifted and row.type == "categorical"


def test_chi_square_equals_the_contingency_test_without_sparse_cells() -> None:
    ref = np.repeat(["x", "y", "z"], [500, 300, 200])
    cur = np.repeat(["x", "y", "z"], [90, 70, 40])
    values = detect_drift(pd.DataFrame({"k": ref}), pd.DataFrame({"k": cur})).row("k").statistics
    expected = stats.chi2_contingency([[500, 300, 200], [90, 70, 40]], correction=False)
    assert values["chisquare"] == pytest.approx(expected[0])
    assert values["chisquare_p_value"] == pytest.approx(expected[1])


@pytest.mark.parametrize("n", [300, 1000, 10_000])
def test_known_numeric_drift_is_detected(n: int) -> None:
    for seed in range(10):
        ref, cur = numeric_pair(seed, 10_000, n, shift=0.5)
        assert report_for(ref, cur).drifted == ["x"], seed
        ref, cur = numeric_pair(seed, 10_000, n, scale=1.5)
        assert report_for(ref, cur).drifted == ["x"], seed


def test_a_third_of_a_standard_deviation_is_caught_where_psi_misses_it() -> None:
    caught = psi_caught = 0
    for seed in range(20):
        row = report_for(*numeric_pair(seed, 10_000, 10_000, shift=0.3)).row("x")
        caught += row.drifted
        psi_caught += row.statistics["psi"] >= 0.1
    assert caught == 20 and psi_caught <= 5  # the study: PSI >= 0.1 catches it in ~10% of runs at 10k rows


def test_no_false_alarms_on_unchanged_data() -> None:
    rng = np.random.default_rng(7)
    columns = {f"s{i}": rng.normal(0, 1, 10_000) for i in range(20)}
    columns.update({f"k{i}": rng.choice(list("abcdef"), 10_000) for i in range(20)})
    profile = reference_sketch(pd.DataFrame(columns))
    for n in (10_000, 100_000):
        current = {f"s{i}": rng.normal(0, 1, n) for i in range(20)}
        current.update({f"k{i}": rng.choice(list("abcdef"), n) for i in range(20)})
        report = detect_drift(profile, pd.DataFrame(current))
        assert report.drifted == [] and report.share_drifted == 0.0  # 0 of 40 columns, study: 0% at >= 3k rows


def test_small_windows_stay_near_the_tests_nominal_rate() -> None:
    rng = np.random.default_rng(8)
    profile = reference_sketch(pd.DataFrame({f"s{i}": rng.normal(0, 1, 10_000) for i in range(100)}))
    report = detect_drift(profile, pd.DataFrame({f"s{i}": rng.normal(0, 1, 200) for i in range(100)}))
    assert len(report.drifted) <= 12  # KS gates the distance: about 5% at most (the study: 4-6%)


def test_category_mix_change_is_detected() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"k": rng.choice(list("abc"), 10_000, p=[0.5, 0.3, 0.2])})
    moved = pd.DataFrame({"k": rng.choice(list("abc"), 5000, p=[0.4, 0.4, 0.2])})
    same = pd.DataFrame({"k": rng.choice(list("abc"), 5000, p=[0.5, 0.3, 0.2])})
    assert detect_drift(ref, moved).drifted == ["k"] and detect_drift(ref, same).drifted == []


def test_overrides_per_column_and_globally() -> None:
    ref, cur = numeric_pair(10, 10_000, 5000, shift=0.3)
    frame_ref = pd.DataFrame({"x": ref, "y": ref, "k": np.where(ref > 0, "p", "n")})
    frame_cur = pd.DataFrame({"x": cur, "y": cur, "k": np.where(cur > 0, "p", "n")})
    report = detect_drift(frame_ref, frame_cur, stattest={"x": "psi", "k": "chi2"}, threshold={"x": 0.2, "y": 0.5})
    x, y, k = report.row("x"), report.row("y"), report.row("k")
    assert (x.statistic, x.threshold, x.drifted) == ("psi", 0.2, False)
    assert (y.statistic, y.threshold, y.drifted) == ("wasserstein", 0.5, False)
    assert (k.statistic, k.threshold, k.drifted) == ("chisquare", 0.05, True)
    assert k.value == k.statistics["chisquare_p_value"]
    everything = detect_drift(frame_ref, frame_cur, stattest="psi", threshold=0.01)
    assert {r.statistic for r in everything.rows} == {"psi"} and len(everything.drifted) == 3
    with pytest.raises(InvalidArgument, match="'k'"):
        detect_drift(frame_ref, frame_cur, stattest="ks")
    with pytest.raises(InvalidArgument, match="nope"):
        detect_drift(frame_ref, frame_cur, threshold={"nope": 0.1})
    plain = detect_drift(frame_ref, frame_cur.head(30), significance=None, threshold={"x": 0.0})
    assert plain.row("x").drifted and plain.row("x").significance is None


def test_not_enough_data_is_a_status_never_an_alarm() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=1000), "k": rng.choice(list("ab"), 1000), "c": np.ones(1000)})
    profile = reference_sketch(ref)
    empty = detect_drift(profile, ref.iloc[:0])
    assert all(r.status == "not_enough_data" and not r.drifted for r in empty.rows)
    assert empty.share_drifted == 0.0 and empty.drifted == []
    nulls = pd.DataFrame({"x": [np.nan, np.inf, -np.inf], "k": [None, None, None], "c": [1.0, 1.0, np.nan]})
    report = detect_drift(profile, nulls)
    x, k, c = report.row("x"), report.row("k"), report.row("c")
    assert (x.status, x.null_current, x.nonfinite_current) == ("not_enough_data", 1, 2)
    assert k.status == "not_enough_data" and k.null_current == 3
    assert (c.status, c.statistic, c.drifted) == ("ok", "ks", False)  # constant column, unchanged
    changed = detect_drift(profile, pd.DataFrame({"x": rng.normal(size=500), "k": ["a"] * 500, "c": np.zeros(500)}))
    assert changed.row("c").drifted and "constant" in changed.row("c").message


def test_all_null_reference_column() -> None:
    ref = pd.DataFrame({"x": [np.nan] * 50, "y": np.arange(50.0)})
    report = detect_drift(ref, pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)}))
    assert report.row("x").status == "not_enough_data" and "reference" in report.row("x").message


def test_missing_column_raises_naming_it() -> None:
    ref = pd.DataFrame({"x": np.arange(100.0), "income": np.arange(100.0)})
    with pytest.raises(SchemaMismatch, match="'income'"):
        detect_drift(ref, pd.DataFrame({"x": np.arange(10.0)}))
    with pytest.raises(InvalidArgument, match="'z'"):
        detect_drift(reference_sketch(ref), ref, columns=["z"])


def test_sketches_of_chunks_give_the_same_report_as_the_whole() -> None:
    rng = np.random.default_rng(12)
    profile = reference_sketch(pd.DataFrame({"x": rng.normal(size=5000), "k": rng.choice(list("abc"), 5000)}))
    current = pd.DataFrame({"x": rng.normal(0.2, 1, 7000), "k": rng.choice(list("abcd"), 7000)})
    merged = merge(*(summarize(current.iloc[i : i + 1000], profile) for i in range(0, 7000, 1000)))
    whole, parts = detect_drift(profile, current), detect_drift(profile, merged)
    for a, b in zip(whole.rows, parts.rows, strict=True):
        assert a.drifted == b.drifted
        for key, value in a.statistics.items():
            assert b.statistics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_report_as_frame_and_dict() -> None:
    ref, cur = numeric_pair(13, 2000, 2000, shift=1.0)
    report = report_for(ref, cur)
    table = report.to_frame()
    assert list(table["column"]) == ["x"] and bool(table["drifted"].iloc[0])
    assert {"stat_ks", "stat_wasserstein", "stat_psi", "stat_jensenshannon"} <= set(table.columns)
    as_dict = report.to_dict()
    assert as_dict["drifted"] == ["x"] and as_dict["share_drifted"] == 1.0 and as_dict["rows"][0]["column"] == "x"


def test_sketch_against_another_profile_is_refused() -> None:
    a = reference_sketch(pd.DataFrame({"x": np.arange(100.0)}))
    b = reference_sketch(pd.DataFrame({"x": np.arange(200.0)}))
    with pytest.raises(InvalidArgument, match="another reference profile"):
        detect_drift(a, summarize(pd.DataFrame({"x": np.arange(10.0)}), b))


samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=80)


@settings(max_examples=40, deadline=None)
@given(samples)
def test_identical_data_has_no_drift(values: list[float]) -> None:
    x = np.asarray(values)
    row = report_for(x, x).row("x")
    for key in ("ks", "wasserstein_abs", "psi", "jensenshannon"):
        assert row.statistics[key] == pytest.approx(0.0, abs=1e-9), key
    assert not row.drifted


@settings(max_examples=40, deadline=None)
@given(samples, samples)
def test_symmetric_statistics_are_symmetric(a: list[float], b: list[float]) -> None:
    x, y = np.asarray(a), np.asarray(b)
    profile = reference_sketch(pd.DataFrame({"x": np.concatenate([x, y])}))
    column = profile.column("x")
    sx, sy = (
        summarize(pd.DataFrame({"x": x}), profile).columns["x"],
        summarize(pd.DataFrame({"x": y}), profile).columns["x"],
    )
    forward = numeric_statistics([column.model_copy(update={"summary": sx})], [sy])
    backward = numeric_statistics([column.model_copy(update={"summary": sy})], [sx])
    for key in ("ks", "wasserstein_abs"):  # PSI and JS bin by the reference's deciles, which swap too
        assert forward[key][0] == pytest.approx(backward[key][0], rel=1e-9, abs=1e-12), key


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=60),
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=60),
)
def test_categorical_statistics_are_symmetric(a: list[str], b: list[str]) -> None:
    profile = reference_sketch(pd.DataFrame({"k": list("abcd")}))
    column = profile.column("k")
    sa, sb = (
        summarize(pd.DataFrame({"k": a}), profile).columns["k"],
        summarize(pd.DataFrame({"k": b}), profile).columns["k"],
    )
    forward = categorical_statistics([column.model_copy(update={"summary": sa})], [sb])
    backward = categorical_statistics([column.model_copy(update={"summary": sb})], [sa])
    for key in ("psi", "jensenshannon"):
        assert forward[key][0] == pytest.approx(backward[key][0], rel=1e-9, abs=1e-12), key
    same = categorical_statistics([column.model_copy(update={"summary": sa})], [sa])
    assert same["psi"][0] == same["jensenshannon"][0] == same["chisquare"][0] == 0.0
