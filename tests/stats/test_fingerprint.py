"""Data-set fingerprints: stable hashes and correct per-column profiles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelsteward.stats.fingerprint import QUANTILE_LEVELS, fingerprint


def frame(seed: int = 0, n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south"], n, p=[0.7, 0.3]),
            "flag": rng.uniform(size=n) < 0.2,
        }
    )


def test_hash_is_stable_and_sensitive() -> None:
    a = fingerprint(frame())
    assert a.content_hash == fingerprint(frame()).content_hash
    changed = frame()
    changed.loc[10, "income"] += 1
    assert fingerprint(changed).content_hash != a.content_hash
    assert fingerprint(frame().rename(columns={"age": "years"})).content_hash != a.content_hash


def test_numeric_profile_matches_numpy() -> None:
    data = frame()
    data.loc[:9, "income"] = np.nan
    fp = fingerprint(data)
    income = fp.column("income")
    values = data["income"].dropna().to_numpy()
    assert income.null_count == 10 and income.count == len(values)
    assert income.mean == pytest.approx(values.mean())
    assert income.std == pytest.approx(values.std(ddof=1))
    assert income.quantiles == pytest.approx(np.quantile(values, QUANTILE_LEVELS).tolist())
    assert sum(income.histogram.counts) == len(values)
    assert fp.column("age").type == "integer"


def test_categorical_profile() -> None:
    fp = fingerprint(frame())
    region = fp.column("region")
    assert region.type == "string"
    assert sum(region.top_values.values()) == 1000
    assert region.top_values["north"] > region.top_values["south"]
    assert fp.column("flag").type == "boolean"
    assert fp.row_count == 1000
    assert [c.name for c in fp.schema_] == ["income", "age", "region", "flag"]


def test_empty_and_all_null_columns() -> None:
    fp = fingerprint(pd.DataFrame({"x": [np.nan, np.nan], "y": [None, None]}))
    assert fp.column("x").count == 0 and fp.column("x").mean is None
    assert fp.row_count == 2
