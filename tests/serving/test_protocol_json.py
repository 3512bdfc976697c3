"""The plain JSON codec: the four body shapes, a drop-in superset of api.payloads, typed frames, responses."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from modelsteward.api.payloads import frame_from_json, frame_to_records
from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.serving.protocols import decode_json_request, encode_json_response
from modelsteward.stats.schema import conform

SIG = Signature(
    inputs=[
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="income", type="number"),
        ColumnSpec(name="region", type="string"),
        ColumnSpec(name="owner", type="boolean"),
        ColumnSpec(name="notes", type="string", nullable=True),
    ]
)

ROWS = [
    {"age": 30, "income": 50000.5, "region": "north", "owner": True, "notes": "vip"},
    {"age": 41, "income": 61000, "region": "south", "owner": False, "notes": None},
]
COLUMNS = list(ROWS[0])

BODIES: dict[str, dict[str, Any]] = {
    "instances": {"instances": ROWS},
    "dataframe_records": {"dataframe_records": ROWS},
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": [list(r.values()) for r in ROWS]}},
    "inputs": {"inputs": {c: [r[c] for r in ROWS] for c in COLUMNS}},
}


def decode(doc: Any, signature: Signature | None = SIG) -> tuple[pd.DataFrame, str | None, dict[str, Any]]:
    return decode_json_request(orjson.dumps(doc), signature=signature, owner="credit/3")


def expected() -> pd.DataFrame:
    return conform(pd.DataFrame.from_records(ROWS), SIG)


def raises(exc: type[Exception], field: str, doc: Any, signature: Signature | None = SIG) -> Any:
    with pytest.raises(exc) as info:
        decode(doc, signature)
    assert info.value.details["field"] == field, info.value.details
    return info.value


# -- accepted shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_every_shape_gives_the_conformed_frame(shape: str) -> None:
    frame, request_id, parameters = decode(BODIES[shape])
    pd.testing.assert_frame_equal(frame, expected())
    assert frame["age"].dtype == np.int64 and frame["income"].dtype == np.float64
    assert frame["owner"].dtype == np.bool_ and isinstance(frame["region"].dtype, pd.StringDtype)
    assert request_id is None and parameters == {}


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_without_a_signature_the_frame_is_frame_from_jsons(shape: str) -> None:
    frame, _, _ = decode(BODIES[shape], signature=None)
    pd.testing.assert_frame_equal(frame, frame_from_json(BODIES[shape]))


def test_kserve_v1_instances_as_lists_in_signature_order() -> None:
    doc = {"instances": [list(r.values()) for r in ROWS]}
    pd.testing.assert_frame_equal(decode(doc)[0], expected())


def test_columns_in_another_order_come_back_in_signature_order() -> None:
    doc = {"dataframe_split": {"columns": COLUMNS[::-1], "data": [list(r.values())[::-1] for r in ROWS]}}
    pd.testing.assert_frame_equal(decode(doc)[0], expected())


def test_id_and_parameters() -> None:
    _, request_id, parameters = decode({**BODIES["instances"], "id": "req-9", "parameters": {"explain": True}})
    assert request_id == "req-9" and parameters == {"explain": True}
    assert decode({**BODIES["inputs"], "id": 42})[1] == "42"


def test_whole_floats_feed_integer_columns() -> None:
    rows = [dict(r, age=float(r["age"])) for r in ROWS]
    frame = decode({"instances": rows})[0]
    assert frame["age"].dtype == np.int64 and frame["age"].tolist() == [30, 41]


def test_a_row_without_a_nullable_key_gets_a_null() -> None:
    rows = [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "notes"}]
    frame = decode({"instances": rows})[0]
    assert frame["notes"].isna().tolist() == [False, True]


def test_nulls_and_datetimes_go_through_conform() -> None:
    signature = Signature(
        inputs=[ColumnSpec(name="x", type="number", nullable=True), ColumnSpec(name="at", type="datetime")]
    )
    rows = [{"x": None, "at": "2026-01-01T00:00:00Z"}, {"x": 1, "at": "2026-01-02T08:30:00Z"}]
    frame = decode({"instances": rows}, signature)[0]
    assert np.isnan(frame["x"].iloc[0]) and frame["x"].iloc[1] == 1.0
    assert pd.api.types.is_datetime64_any_dtype(frame["at"])


def test_empty_instances_give_an_empty_frame_with_the_signatures_columns() -> None:
    frame = decode({"instances": []})[0]
    assert len(frame) == 0 and list(frame.columns) == SIG.input_names
    assert decode({"dataframe_split": {"columns": COLUMNS, "data": []}})[0].shape == (0, 5)


def test_fast_path_matches_conform_on_assorted_bodies() -> None:
    cases = [
        {"instances": [{"age": 1, "income": 2, "region": "r", "owner": False, "notes": "n"}]},
        {
            "inputs": {
                "age": [1, 2],
                "income": [0.5, 1e300],
                "region": ["", "é"],
                "owner": [True, True],
                "notes": [None, "n"],
            }
        },
        {"dataframe_split": {"columns": COLUMNS, "data": [[2**40, -0.0, "x", False, "y"]]}},
    ]
    for doc in cases:
        key = next(iter(doc))
        reference = conform(frame_from_json(doc), SIG)
        pd.testing.assert_frame_equal(decode(doc)[0], reference, obj=key)


def test_an_all_null_string_column_is_still_a_string_column() -> None:
    # conform() would leave it as object; built directly it has the string dtype like any other.
    frame = decode({"inputs": {**BODIES["inputs"]["inputs"], "notes": [None, None]}})[0]
    assert isinstance(frame["notes"].dtype, pd.StringDtype) and frame["notes"].isna().all()


# -- errors --------------------------------------------------------------------------------------------

BAD_BODIES: list[Any] = [
    [1, 2],
    {},
    {"instances": ROWS, "inputs": {}},
    {"instances": {"age": 1}},
    {"dataframe_records": [[1, 2]]},
    {"dataframe_split": {"columns": ["a"]}},
    {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}},
    {"inputs": [1, 2]},
    {"inputs": {"a": [1], "b": [1, 2]}},
]


@pytest.mark.parametrize("doc", BAD_BODIES)
def test_bad_shapes_fail_as_frame_from_json_does(doc: Any) -> None:
    with pytest.raises(InvalidArgument) as theirs:
        frame_from_json(doc)
    with pytest.raises(InvalidArgument) as ours:
        decode(doc, signature=None)
    assert ours.value.message == theirs.value.message
    assert ours.value.details == theirs.value.details


def test_malformed_json_names_the_body() -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_json_request(b'{"instances": [', signature=SIG)
    assert info.value.details["field"] == "body"


def test_instances_as_lists_need_a_signature_and_the_right_width() -> None:
    raises(InvalidArgument, "instances", {"instances": [[1, 2]]}, signature=None)
    error = raises(InvalidArgument, "instances.1", {"instances": [list(ROWS[0].values()), [1, 2]]})
    assert "instances[1]" in error.message


@pytest.mark.parametrize(("key", "value"), [("id", 1.5), ("id", ["a"]), ("parameters", "x")])
def test_malformed_id_and_parameters(key: str, value: Any) -> None:
    raises(InvalidArgument, key, {**BODIES["instances"], key: value})


def test_missing_column_is_named() -> None:
    rows = [{k: v for k, v in r.items() if k != "owner"} for r in ROWS]
    error = raises(SchemaMismatch, "instances", {"instances": rows})
    assert error.details["column"] == "owner" and "credit/3" in error.message


def test_unknown_column_is_named() -> None:
    doc = {"inputs": {**BODIES["inputs"]["inputs"], "salary": [1, 2]}}
    error = raises(SchemaMismatch, "inputs", doc)
    assert error.details["column"] == "salary"


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("income", ["a lot", "some"]),
        ("age", [30.5, 41]),
        ("owner", [1, 0]),
        ("region", [1, 2]),
        ("income", [True, False]),
    ],
)
def test_wrong_types_are_refused_like_conform_does(column: str, values: list[Any]) -> None:
    doc = {"inputs": {**BODIES["inputs"]["inputs"], column: values}}
    error = raises(SchemaMismatch, "inputs", doc)
    assert error.details["column"] == column


def test_nulls_in_a_non_nullable_column() -> None:
    rows = [ROWS[0], dict(ROWS[1], income=None)]
    error = raises(SchemaMismatch, "dataframe_records", {"dataframe_records": rows})
    assert error.details["column"] == "income"


# -- responses -----------------------------------------------------------------------------------------


def outputs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": [0.25, np.nan],
            "label": ["yes", None],
            "n": np.array([1, 2], dtype=np.int32),
            "flag": [True, False],
            "maybe": pd.array([1, None], dtype="Int64"),
            "at": pd.to_datetime(["2026-01-02T03:04:05", None]),
            "obj": pd.Series([{"a": 1}, None], dtype=object),
        }
    )


def test_response_records_with_nulls() -> None:
    body = encode_json_response(
        model_version="credit/3", request_id="req-1", prediction_ids=["p1", "p2"], outputs=outputs()
    )
    doc = orjson.loads(body)
    assert list(doc) == ["id", "model_version", "prediction_ids", "columns", "predictions"]
    assert doc["id"] == "req-1" and doc["model_version"] == "credit/3" and doc["prediction_ids"] == ["p1", "p2"]
    assert doc["columns"] == ["score", "label", "n", "flag", "maybe", "at", "obj"]
    assert doc["predictions"] == [
        {"score": 0.25, "label": "yes", "n": 1, "flag": True, "maybe": 1, "at": "2026-01-02T03:04:05", "obj": {"a": 1}},
        {"score": None, "label": None, "n": 2, "flag": False, "maybe": None, "at": None, "obj": None},
    ]


def test_response_predictions_match_frame_to_records() -> None:
    frame = outputs().drop(columns=["at"])  # frame_to_records leaves Timestamps for FastAPI to encode
    body = encode_json_response(model_version="v", request_id=None, prediction_ids=None, outputs=frame)
    assert orjson.loads(body)["predictions"] == orjson.loads(orjson.dumps(frame_to_records(frame)))


def test_response_extra_keys_do_not_replace_the_standard_ones() -> None:
    body = encode_json_response(
        model_version="v",
        request_id=None,
        prediction_ids=np.array(["p1"]).tolist(),
        outputs=pd.DataFrame({"y": [1.0]}),
        extra={"route": "canary", "model_version": "spoofed"},
    )
    doc = orjson.loads(body)
    assert doc["model_version"] == "v" and doc["route"] == "canary" and doc["id"] is None


def test_response_with_no_columns_or_rows() -> None:
    empty = orjson.loads(
        encode_json_response(model_version="v", request_id=None, prediction_ids=[], outputs=pd.DataFrame({"y": []}))
    )
    assert empty["predictions"] == [] and empty["columns"] == ["y"]
    no_columns = orjson.loads(
        encode_json_response(
            model_version="v", request_id=None, prediction_ids=None, outputs=pd.DataFrame(index=[0, 1])
        )
    )
    assert no_columns["predictions"] == [{}, {}]


# -- columns outside the signature (allow_extra) -------------------------------------------------------

EXTRA = {
    "customer_id": ["c-001", "c-002"],
    "visit": [3, 4],
    "weight": [0.5, 2],
    "returning": [True, False],
}


def with_extra_columns(shape: str) -> dict[str, Any]:
    """The body of ``shape`` with the EXTRA columns, ``customer_id`` first and the others last."""
    first = {"customer_id": EXTRA["customer_id"]}
    last = {k: v for k, v in EXTRA.items() if k != "customer_id"}
    rows = [
        {**{k: v[i] for k, v in first.items()}, **row, **{k: v[i] for k, v in last.items()}}
        for i, row in enumerate(ROWS)
    ]
    columns = list(rows[0])
    return {
        "instances": {"instances": rows},
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": [list(r.values()) for r in rows]}},
        "inputs": {"inputs": {c: [r[c] for r in rows] for c in columns}},
    }[shape]


def decode_extra(doc: Any, signature: Signature = SIG) -> pd.DataFrame:
    return decode_json_request(orjson.dumps(doc), signature=signature, owner="credit/3", allow_extra=True)[0]


def raises_extra(exc: type[Exception], field: str, doc: Any) -> Any:
    with pytest.raises(exc) as info:
        decode_extra(doc)
    assert info.value.details["field"] == field, info.value.details
    return info.value


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_allow_extra_keeps_other_columns_after_the_signatures_in_body_order(shape: str) -> None:
    frame = decode_extra(with_extra_columns(shape))
    assert list(frame.columns) == [*SIG.input_names, *EXTRA]
    pd.testing.assert_frame_equal(frame[SIG.input_names], expected())
    assert frame["visit"].dtype == np.int64 and frame["visit"].tolist() == [3, 4]
    assert frame["weight"].dtype == np.float64 and frame["weight"].tolist() == [0.5, 2.0]
    assert frame["returning"].dtype == np.bool_ and frame["returning"].tolist() == [True, False]
    assert isinstance(frame["customer_id"].dtype, pd.StringDtype)
    assert frame["customer_id"].tolist() == ["c-001", "c-002"]
    # The extras are what pandas makes of the same values.
    reference = pd.DataFrame({name: pd.Series(values) for name, values in EXTRA.items()})
    pd.testing.assert_frame_equal(frame[list(EXTRA)], reference)


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_without_allow_extra_an_extra_column_is_still_refused(shape: str) -> None:
    error = raises(SchemaMismatch, shape, with_extra_columns(shape))
    assert error.details["column"] == "customer_id"
    assert {"column": "customer_id", "problem": "not in the signature"} in error.details["problems"]


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_allow_extra_without_extras_gives_the_same_frame(shape: str) -> None:
    pd.testing.assert_frame_equal(decode_extra(BODIES[shape]), expected())


@pytest.mark.parametrize(
    "values",
    [
        [1, 2],
        [1, 2.5],
        [1, None],
        [0.5, None],
        ["a", None],
        [True, False],
        [True, None],
        ["a", 1],
        [1, True],
        [[1, 2], {"a": 1}],
        [None, None],
        [2**63, 1],
        [2**64 - 1, -1],
    ],
    ids=repr,
)
def test_extra_columns_are_typed_as_pandas_infers_the_values(values: list[Any]) -> None:
    doc = {"inputs": {**BODIES["inputs"]["inputs"], "extra": values}}
    frame = decode_extra(doc)
    pd.testing.assert_series_equal(frame["extra"], pd.Series(values, name="extra"))


def test_a_row_without_an_extra_key_gets_a_null_there() -> None:
    rows = [dict(ROWS[0], customer_id="c-001", visit=1), dict(ROWS[1], visit=2)]
    frame = decode_extra({"instances": rows})
    assert list(frame.columns) == [*SIG.input_names, "customer_id", "visit"]
    assert frame["customer_id"].tolist()[0] == "c-001" and frame["customer_id"].isna().tolist() == [False, True]
    assert frame["visit"].tolist() == [1, 2]


def test_extras_first_given_by_a_later_row_come_in_first_seen_order() -> None:
    rows = [dict(ROWS[0], b=1), dict(ROWS[1], a="x", b=2)]
    frame = decode_extra({"dataframe_records": rows})
    assert list(frame.columns) == [*SIG.input_names, "b", "a"]
    assert frame["a"].isna().tolist() == [True, False]


def test_extras_survive_signature_columns_that_need_conform() -> None:
    # Nulls in a nullable number and ISO datetimes take conform's path, not the direct one.
    signature = Signature(
        inputs=[ColumnSpec(name="x", type="number", nullable=True), ColumnSpec(name="at", type="datetime")]
    )
    rows = [
        {"customer_id": "c-1", "x": None, "at": "2026-01-01T00:00:00Z"},
        {"customer_id": "c-2", "x": 1, "at": "2026-01-02T08:30:00Z"},
    ]
    for doc in ({"instances": rows}, {"inputs": {k: [r[k] for r in rows] for k in rows[0]}}):
        frame = decode_extra(doc, signature)
        assert list(frame.columns) == ["x", "at", "customer_id"]
        assert pd.api.types.is_datetime64_any_dtype(frame["at"]) and np.isnan(frame["x"].iloc[0])
        assert frame["customer_id"].tolist() == ["c-1", "c-2"]
        pd.testing.assert_frame_equal(frame.copy(), frame)  # a sound frame, not just a printable one


def test_extras_with_no_rows() -> None:
    frame = decode_extra({"inputs": {c: [] for c in [*COLUMNS, "customer_id"]}})
    assert list(frame.columns) == [*SIG.input_names, "customer_id"] and len(frame) == 0
    frame = decode_extra({"dataframe_split": {"columns": [*COLUMNS, "customer_id"], "data": []}})
    assert list(frame.columns) == [*SIG.input_names, "customer_id"] and len(frame) == 0


def test_instances_as_lists_take_no_extras() -> None:
    # Lists are read in the signature's column order: a value past its width has no name.
    error = raises_extra(InvalidArgument, "instances.0", {"instances": [[*ROWS[0].values(), "c-001"]]})
    assert "list of 5 values" in error.message


def test_signature_columns_are_still_checked_when_extras_are_kept() -> None:
    missing = [{k: v for k, v in r.items() if k != "owner"} | {"customer_id": "c"} for r in ROWS]
    error = raises_extra(SchemaMismatch, "instances", {"instances": missing})
    assert error.details["column"] == "owner" and "credit/3" in error.message
    assert [p["problem"] for p in error.details["problems"]] == ["missing"]
    wrong = {"inputs": {**BODIES["inputs"]["inputs"], "age": [30.5, 41], "customer_id": ["a", "b"]}}
    assert raises_extra(SchemaMismatch, "inputs", wrong).details["column"] == "age"
    nulls = [dict(ROWS[0], customer_id="a"), dict(ROWS[1], income=None, customer_id="b")]
    assert raises_extra(SchemaMismatch, "dataframe_records", {"dataframe_records": nulls}).details["column"] == "income"


def test_a_repeated_column_is_refused_even_an_extra_one() -> None:
    columns = [*COLUMNS, "customer_id", "customer_id"]
    doc = {"dataframe_split": {"columns": columns, "data": [[*r.values(), "a", "b"] for r in ROWS]}}
    error = raises_extra(SchemaMismatch, "dataframe_split", doc)
    assert error.details["column"] == "customer_id" and "more than once" in error.message
    repeated_age = {"dataframe_split": {"columns": [*COLUMNS, "age"], "data": [[*r.values(), 1] for r in ROWS]}}
    assert raises_extra(SchemaMismatch, "dataframe_split", repeated_age).details["column"] == "age"


def test_allow_extra_changes_nothing_without_a_signature() -> None:
    doc = with_extra_columns("instances")
    frame = decode_json_request(orjson.dumps(doc), signature=None, allow_extra=True)[0]
    pd.testing.assert_frame_equal(frame, frame_from_json(doc))
