"""Column types and the vectorized signature check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.stats.schema import conform, infer_columns, to_frame

SIG = Signature(
    inputs=[
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="income", type="number"),
        ColumnSpec(name="region", type="string"),
        ColumnSpec(name="owner", type="boolean"),
        ColumnSpec(name="notes", type="string", nullable=True),
    ]
)


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30, 41],
            "income": [50_000, 61_000.5],
            "region": ["north", "south"],
            "owner": [True, False],
            "notes": ["a", None],
        }
    )


def test_infer_columns() -> None:
    specs = infer_columns(good())
    assert [(c.name, c.type, c.nullable) for c in specs] == [
        ("age", "integer", False),
        ("income", "number", False),
        ("region", "string", False),
        ("owner", "boolean", False),
        ("notes", "string", True),
    ]
    dates = infer_columns(pd.DataFrame({"d": pd.to_datetime(["2026-01-01"])}))
    assert dates[0].type == "datetime"


def test_conform_orders_and_converts() -> None:
    frame = good()[["notes", "owner", "region", "income", "age"]]
    frame["income"] = frame["income"].astype(int)
    out = conform(frame, SIG)
    assert list(out.columns) == SIG.input_names
    assert out["income"].dtype == np.float64
    assert out["age"].dtype == np.int64


def test_integers_arriving_as_floats_are_accepted_only_when_whole() -> None:
    frame = good().assign(age=[30.0, 41.0])
    assert conform(frame, SIG)["age"].tolist() == [30, 41]
    with pytest.raises(SchemaMismatch, match="fractional"):
        conform(good().assign(age=[30.5, 41.0]), SIG)


@pytest.mark.parametrize(
    ("change", "column", "problem"),
    [
        (lambda f: f.drop(columns=["age"]), "age", "missing"),
        (lambda f: f.assign(extra=1), "extra", "not in the signature"),
        (lambda f: f.assign(income=["a", "b"]), "income", "expected number"),
        (lambda f: f.assign(region=[1, 2]), "region", "expected string"),
        (lambda f: f.assign(owner=[1.5, 2.5]), "owner", "expected boolean"),
        (lambda f: f.assign(income=[1.0, None]), "income", "null value"),
        (lambda f: f.assign(age=[True, False]), "age", "got boolean"),
    ],
)
def test_mismatches_name_the_column_and_the_problem(change, column: str, problem: str) -> None:
    with pytest.raises(SchemaMismatch) as info:
        conform(change(good()), SIG, owner="credit-risk/2")
    assert info.value.details["column"] == column
    assert problem in info.value.message
    assert "credit-risk/2" in info.value.message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SchemaMismatch) as info:
        conform(good().drop(columns=["age"]).assign(income=["x", "y"]), SIG)
    assert {p["column"] for p in info.value.details["problems"]} == {"age", "income"}


def test_extra_columns_can_be_allowed() -> None:
    out = conform(good().assign(applicant_id=[1, 2]), SIG, allow_extra=True)
    assert "applicant_id" not in out.columns


def test_to_frame_accepts_common_shapes() -> None:
    assert to_frame([{"a": 1}, {"a": 2}])["a"].tolist() == [1, 2]
    assert to_frame({"a": [1, 2]})["a"].tolist() == [1, 2]
    assert to_frame({"a": 1})["a"].tolist() == [1]
    assert list(to_frame(np.array([[1, 2]]), columns=["a", "b"]).columns) == ["a", "b"]
    with pytest.raises(InvalidArgument):
        to_frame("not data")
