"""KPI evidence: arm comparisons agree with scipy and by hand; before/after tests hold their error rates."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelsteward.errors import InvalidArgument
from modelsteward.stats.kpi import Counts, before_after, change_point, compare_arms

DAYS = pd.date_range("2026-10-01", periods=60, freq="D")
CHANGE = DAYS[40]  # day 41: version 3 of credit-risk is promoted


def approval_rate(seed: int, drop: float = 0.0, at: int = 40) -> np.ndarray:
    """Daily approval rates around 62% with day-to-day noise; ``drop`` from day ``at`` on."""
    values = 0.62 + np.random.default_rng(seed).normal(0, 0.01, len(DAYS))
    values[at:] -= drop
    return values


def test_mean_comparison_is_welchs_t_test() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 200), rng.normal(10.6, 3, 150)
    result = compare_arms(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.df == pytest.approx(reference.df)
    low, high = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert result.difference == pytest.approx(b.mean() - a.mean())
    assert result.effect_size == pytest.approx((b.mean() - a.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    assert result.significant == (reference.pvalue < 0.05)
    assert result.effect_size_name == "cohen_d"


def test_proportion_comparison_is_the_two_proportion_z_test() -> None:
    result = compare_arms(Counts(412, 1000), Counts(371, 1000), kind="proportion", labels=("v2", "v3"))
    pa, pb, pooled = 0.412, 0.371, (412 + 371) / 2000
    z = (pb - pa) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))))
    half = 1.959964 * math.sqrt(pa * (1 - pa) / 1000 + pb * (1 - pb) / 1000)
    assert result.ci_low == pytest.approx(pb - pa - half, abs=1e-6)
    assert result.ci_high == pytest.approx(pb - pa + half, abs=1e-6)
    assert result.effect_size == pytest.approx(2 * math.asin(math.sqrt(pb)) - 2 * math.asin(math.sqrt(pa)))
    assert result.df is None and result.relative_difference == pytest.approx((pb - pa) / pa)
    as_values = compare_arms(
        np.r_[np.ones(412), np.zeros(588)], np.r_[np.ones(371), np.zeros(629)], kind="proportion", labels=("v2", "v3")
    )
    assert as_values.p_value == pytest.approx(result.p_value)
    as_mapping = compare_arms({"successes": 412, "trials": 1000}, Counts(371, 1000), kind="proportion")
    assert as_mapping.statistic == pytest.approx(result.statistic)


def test_verdicts_say_what_was_found() -> None:
    rate = compare_arms(
        Counts(620, 1000), Counts(540, 1000), kind="proportion", labels=("v2", "v3"), name="the approval rate"
    )
    assert rate.significant and rate.verdict.startswith("the approval rate is 8.0 points lower in v3 than in v2")
    assert "95% CI" in rate.verdict and "p < 0.001" in rate.verdict
    same = compare_arms(Counts(620, 1000), Counts(615, 1000), kind="proportion", name="the approval rate")
    assert not same.significant and same.verdict.startswith("no significant difference in the approval rate")
    assert "-0.5 points" in same.verdict


def test_small_arms_are_not_enough_data_and_missing_values_are_dropped() -> None:
    thin = compare_arms([1.0, 2.0, 3.0], [2.0, 3.0, np.nan, 4.0], min_n=10)
    assert thin.status == "not_enough_data" and thin.p_value is None and thin.dropped == 1
    assert "not enough data" in thin.verdict
    rng = np.random.default_rng(1)
    values = rng.normal(size=50)
    values[:5] = np.nan
    assert compare_arms(values, rng.normal(size=50)).n_a == 45


def test_constant_arms_and_bad_inputs() -> None:
    equal = compare_arms(np.full(20, 3.0), np.full(20, 3.0))
    assert equal.p_value == 1.0 and not equal.significant
    apart = compare_arms(np.full(20, 3.0), np.full(20, 4.0))
    assert apart.p_value == 0.0 and apart.significant
    with pytest.raises(InvalidArgument):
        compare_arms([0, 1, 2], [0, 1, 1], kind="proportion")
    with pytest.raises(InvalidArgument):
        compare_arms(Counts(5, 3), Counts(1, 10), kind="proportion")
    with pytest.raises(InvalidArgument):
        compare_arms([1.0], [2.0], kind="median")  # type: ignore[arg-type]


def test_no_effect_gives_false_positives_near_the_nominal_five_percent() -> None:
    seeds = range(50)
    welch = changes = coincide = 0
    for seed in seeds:
        result = before_after(DAYS, approval_rate(seed), CHANGE, seed=seed)
        assert result.change_point is not None
        welch += result.comparison.p_value < 0.05
        changes += result.change_point.p_value < 0.05
        coincide += bool(result.coincides)
    welch_rate, change_rate = welch / len(seeds), changes / len(seeds)
    print(
        f"false-positive rates over 50 series without an effect: Welch {welch_rate:.0%}, change point {change_rate:.0%}"
    )
    # 50 draws of a 5% event: the count is Binomial(50, 0.05), mean 2.5, P(count >= 7) = 1.2%.
    assert welch_rate <= 0.12 and change_rate <= 0.12, (welch_rate, change_rate)
    assert coincide <= 1  # "the new model caused it" needs both the shift and its timing


def test_a_drop_at_the_deployment_is_detected_and_located() -> None:
    for seed in range(5):
        drop = approval_rate(seed, drop=0.041)
        result = before_after(DAYS, drop, CHANGE, name="the approval rate", points=True, seed=seed)
        assert result.status == "ok" and result.comparison.significant
        assert result.comparison.difference == pytest.approx(-0.041, abs=0.01)
        assert result.change_point is not None and result.change_point.p_value < 0.01
        assert abs(result.change_point.at - CHANGE.tz_localize("UTC")) <= pd.Timedelta("1D")
        assert result.coincides
    assert result.answer.startswith("the approval rate fell by ")
    assert " points (95% CI " in result.answer and "after the change on 2026-11-10" in result.answer
    assert "the most likely change point is within 1 day of it" in result.answer
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["change_at"] == "2026-11-10T00:00:00+00:00" and payload["coincides"] is True


def test_a_shift_well_before_the_deployment_does_not_coincide() -> None:
    result = before_after(DAYS, approval_rate(3, drop=0.04, at=20), CHANGE, name="the approval rate")
    assert result.comparison.significant  # before/after alone would blame the deployment
    assert result.change_point is not None and result.change_point.near_change is False
    assert result.coincides is False
    assert abs(result.change_point.at - DAYS[20].tz_localize("UTC")) <= pd.Timedelta("1D")
    assert "days before it" in result.answer and "does not coincide" in result.answer


def test_no_effect_answer_and_not_enough_data() -> None:
    calm = before_after(DAYS, approval_rate(8), CHANGE, name="the approval rate", points=True)
    assert calm.answer.startswith("the approval rate did not change significantly after the change on 2026-11-10")
    assert "no change point stands out" in calm.answer
    early = before_after(DAYS[:42], approval_rate(8)[:42], CHANGE)
    assert early.status == "not_enough_data" and early.change_point is None
    assert "2 after" in early.answer


def test_unsorted_series_with_gaps_and_per_decision_rates() -> None:
    rng = np.random.default_rng(5)
    n = 6000
    stamps = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 60, n), unit="D")
    approved = (rng.uniform(size=n) < np.where(stamps >= CHANGE.tz_localize("UTC"), 0.55, 0.62)).astype(float)
    approved[:10] = np.nan
    result = before_after(stamps, approved, CHANGE.tz_localize("UTC"), kind="proportion", name="the approval rate")
    assert result.dropped == 10 and result.comparison.kind == "proportion"
    assert result.coincides and "points" in result.answer
    assert "2026-11-10 00:00" in result.answer  # times of day shown when the data has them


def test_change_point_search_is_reproducible_and_finds_a_clear_shift() -> None:
    values = np.r_[np.zeros(30), np.ones(30)] + np.random.default_rng(0).normal(0, 0.3, 60)
    first = change_point(values, seed=1)
    assert first == change_point(values, seed=1)
    assert first is not None and first[0] == 30 and first[2] == pytest.approx(1 / 500)
    assert change_point(np.ones(50))[2] == 1.0  # type: ignore[index]
    assert change_point([1.0, 2.0]) is None
