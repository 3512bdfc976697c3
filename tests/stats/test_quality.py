"""Data-quality checks against the training profile: each check finds what it should and passes clean data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument
from modelsteward.stats.fingerprint import fingerprint
from modelsteward.stats.quality import check_quality
from modelsteward.stats.sketch import reference_sketch

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def training(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 80, n),
            "region": pd.Series(rng.choice(["north", "south", "east"], n), dtype="str"),
            "flag": rng.uniform(size=n) < 0.2,
        }
    )


def failures(report) -> set[tuple[str, str | None]]:
    return {(r.check, r.column) for r in report.failed}


@pytest.mark.parametrize("reference", ["profile", "fingerprint"])
def test_clean_data_passes_every_check(reference: str) -> None:
    train = training()
    ref = reference_sketch(train) if reference == "profile" else fingerprint(train)
    report = check_quality(training(500, seed=1), ref)
    assert report.passed, report.failed
    checks = {r.check for r in report.rows}
    assert {"row_count", "null_rate", "type", "out_of_range", "unseen_categories", "duplicate_rows"} <= checks


@pytest.mark.parametrize("reference", ["profile", "fingerprint"])
def test_each_problem_is_found(reference: str) -> None:
    train = training()
    ref = reference_sketch(train) if reference == "profile" else fingerprint(train)
    current = training(1000, seed=2)
    current.loc[:199, "income"] = np.nan  # 20% nulls where training had none
    current.loc[200:219, "age"] = 150  # 2% out of range
    current["region"] = current["region"].astype(object)
    current.loc[220:239, "region"] = "west"  # unseen category
    current.loc[240:259, "region"] = 7  # not a string
    current = pd.concat([current, current.iloc[300:340]], ignore_index=True)  # duplicate rows
    report = check_quality(current, ref)
    assert failures(report) == {
        ("null_rate", "income"),
        ("out_of_range", "age"),
        ("unseen_categories", "region"),
        ("type", "region"),
        ("duplicate_rows", None),
    }
    rows = {(r.check, r.column): r for r in report.rows}
    assert rows[("null_rate", "income")].value == pytest.approx(200 / 1040)
    assert (
        rows[("out_of_range", "age")].value == pytest.approx(20 / 1040)
        and "150" in rows[("out_of_range", "age")].message
    )
    assert rows[("type", "region")].value == 20
    assert "'west'" in rows[("unseen_categories", "region")].message
    assert rows[("duplicate_rows", None)].value == pytest.approx(current.duplicated().sum() / 1040)
    assert current.duplicated().sum() >= 40


def test_signature_forbids_nulls_and_integer_columns_reject_fractions() -> None:
    ref = reference_sketch(training())
    signature = Signature(
        inputs=[ColumnSpec(name="age", type="integer"), ColumnSpec(name="income", type="number", nullable=True)]
    )
    current = training(100, seed=3)
    current["age"] = current["age"].astype(float)
    current.loc[0, "age"] = np.nan
    current.loc[1, "age"] = 30.5
    current.loc[2, "income"] = np.nan
    report = check_quality(current, ref, signature=signature, columns=["age", "income"])
    rows = {(r.check, r.column): r for r in report.rows}
    assert not rows[("nulls_not_allowed", "age")].passed and rows[("nulls_not_allowed", "age")].value == 1
    assert ("nulls_not_allowed", "income") not in rows
    assert not rows[("type", "age")].passed and rows[("type", "age")].value == 1
    assert rows[("null_rate", "age")].passed  # 1% is within the 5-point tolerance


def test_missing_column_empty_window_and_unknown_column() -> None:
    ref = reference_sketch(training())
    report = check_quality(training(50).drop(columns=["flag"]), ref)
    assert ("missing_column", "flag") in failures(report)
    empty = check_quality(training(0), ref)
    assert failures(empty) == {("row_count", None)}
    with pytest.raises(InvalidArgument, match="nope"):
        check_quality(training(10), ref, columns=["nope"])


def test_freshness_from_a_column_or_a_value() -> None:
    ref = reference_sketch(training())
    current = training(10).assign(ts=pd.date_range(NOW - timedelta(hours=40), periods=10, freq="h", tz="UTC"))
    stale = check_quality(current, ref, timestamp_column="ts", now=NOW)
    row = next(r for r in stale.rows if r.check == "freshness")
    assert not row.passed and row.value == pytest.approx(31 * 3600) and row.threshold == 86400
    fresh = check_quality(current, ref, newest=NOW - timedelta(minutes=5), now=NOW, max_age=timedelta(hours=1))
    assert next(r for r in fresh.rows if r.check == "freshness").passed
    naive = check_quality(current, ref, newest=datetime(2026, 11, 27, 11, 0), now=NOW)
    assert next(r for r in naive.rows if r.check == "freshness").value == pytest.approx(3600)
    none = check_quality(current.assign(ts=pd.NaT), ref, timestamp_column="ts", now=NOW)
    assert ("freshness", "ts") in failures(none)


def test_report_as_frame_and_dict() -> None:
    report = check_quality(training(100), reference_sketch(training()))
    table = report.to_frame()
    assert {"check", "column", "value", "threshold", "passed"} <= set(table.columns)
    assert report.to_dict()["passed"] is report.passed
