"""The Open Inference Protocol v2 codec: JSON and binary requests in both layouts, responses, metadata, errors."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.serving import protocols
from modelsteward.serving.protocols import (
    BINARY_CONTENT_TYPE,
    HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    decode_request,
    encode_response,
    model_metadata,
    server_metadata,
)
from modelsteward.stats.schema import conform

SIG = Signature(
    inputs=[
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="income", type="number"),
        ColumnSpec(name="region", type="string"),
        ColumnSpec(name="owner", type="boolean"),
        ColumnSpec(name="notes", type="string", nullable=True),
    ],
    outputs=[ColumnSpec(name="score", type="number"), ColumnSpec(name="label", type="string")],
)
NUMBERS = Signature(inputs=[ColumnSpec(name=c, type="number") for c in ("a", "b", "c")])

# Wire datatype -> (the NumPy type a client holds, the signature column type it feeds, sample values).
SAMPLES: dict[str, tuple[str, str, list[Any]]] = {
    "BOOL": ("bool", "boolean", [True, False, True]),
    "UINT8": ("<u1", "integer", [0, 7, 255]),
    "UINT16": ("<u2", "integer", [0, 7, 65535]),
    "UINT32": ("<u4", "integer", [0, 7, 4294967295]),
    "UINT64": ("<u8", "integer", [0, 7, 2**62]),
    "INT8": ("<i1", "integer", [-128, 0, 127]),
    "INT16": ("<i2", "integer", [-32768, 0, 32767]),
    "INT32": ("<i4", "integer", [-(2**31), 0, 2**31 - 1]),
    "INT64": ("<i8", "integer", [-(2**62), 0, 2**62]),
    "FP16": ("<f2", "number", [0.5, -1.25, 1024.0]),
    "FP32": ("<f4", "number", [0.5, -1.25, 3.0e10]),
    "FP64": ("<f8", "number", [0.1, -1.25, 1e300]),
}


# -- a client, the way tritonclient builds and reads bodies --------------------------------------------


def serialize_bytes(values: list[str]) -> bytes:
    """BYTES as binary data: a 4-byte little-endian length, then the bytes, per element."""
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def raw(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return serialize_bytes(values)
    return np.asarray(values, dtype=SAMPLES[datatype][0]).tobytes()


def binary_request(
    inputs: list[tuple[str, str, list[int], bytes]],
    *,
    outputs: list[dict[str, Any]] | None = None,
    parameters: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int]:
    """The JSON header with ``binary_data_size`` per input, then the raw tensors in input order."""
    header: dict[str, Any] = {
        "inputs": [
            {"name": name, "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": len(data)}}
            for name, datatype, shape, data in inputs
        ]
    }
    if request_id is not None:
        header["id"] = request_id
    if parameters is not None:
        header["parameters"] = parameters
    if outputs is not None:
        header["outputs"] = outputs
    head = orjson.dumps(header)
    return head + b"".join(data for *_, data in inputs), len(head)


def json_request(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def read_response(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The response document and each output's values, reading binary outputs like tritonclient does."""
    length = int(headers.get(HEADER_LENGTH, len(body)))
    doc = orjson.loads(body[:length])
    values: dict[str, Any] = {}
    offset = length
    for out in doc["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            values[out["name"]] = out["data"]
            continue
        chunk = body[offset : offset + size]
        offset += size
        if out["datatype"] == "BYTES":
            items, pos = [], 0
            while pos < len(chunk):
                (n,) = struct.unpack_from("<I", chunk, pos)
                items.append(chunk[pos + 4 : pos + 4 + n].decode())
                pos += 4 + n
            values[out["name"]] = items
        else:
            values[out["name"]] = np.frombuffer(chunk, dtype=SAMPLES[out["datatype"]][0]).tolist()
    assert offset == len(body)
    return doc, values


def mixed_columns_json() -> list[dict[str, Any]]:
    # What MLServer's pandas codec sends: one tensor per column, strings as BYTES.
    return [
        {"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 41]},
        {"name": "income", "shape": [2, 1], "datatype": "FP32", "data": [[50000.5], [61000]]},
        {"name": "region", "shape": [2], "datatype": "BYTES", "data": ["north", "south"]},
        {"name": "owner", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        {"name": "notes", "shape": [2], "datatype": "BYTES", "data": ["vip", None]},
    ]


def expected_mixed() -> pd.DataFrame:
    return conform(
        pd.DataFrame(
            {
                "age": [30, 41],
                "income": [50000.5, 61000.0],
                "region": ["north", "south"],
                "owner": [True, False],
                "notes": ["vip", None],
            }
        ),
        SIG,
    )


def raises(exc: type[Exception], field: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert info.value.details["field"] == field, info.value.details
    return info.value


def decode(body: bytes, header_length: int | None = None, signature: Signature = SIG) -> protocols.DecodedRequest:
    return decode_request(body, header_length=header_length, signature=signature, owner="credit/3")


# -- the package surface -------------------------------------------------------------------------------


def test_package_all_is_sorted_and_complete() -> None:
    assert protocols.__all__ == sorted(protocols.__all__)
    for name in protocols.__all__:
        assert getattr(protocols, name) is not None


def test_codecs_import_no_http_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, modelsteward.serving.protocols; print([m for m in ('fastapi', 'starlette') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# -- layout (a): one tensor per column -----------------------------------------------------------------


def test_column_tensors_in_json_become_a_conformed_frame() -> None:
    body = json_request(mixed_columns_json(), id="req-1", parameters={"content_type": "pd"})
    decoded = decode(body)
    pd.testing.assert_frame_equal(decoded.frame, expected_mixed())
    assert decoded.frame.dtypes.tolist()[:2] == [np.dtype("int64"), np.dtype("float64")]
    assert decoded.id == "req-1"
    assert decoded.parameters == {"content_type": "pd"}
    assert decoded.binary_outputs is False
    assert decoded.requested_outputs is None


def test_the_frame_needs_no_further_conform() -> None:
    frame = decode(json_request(mixed_columns_json())).frame
    again = conform(frame, SIG)
    pd.testing.assert_frame_equal(again, frame)
    assert list(frame.columns) == SIG.input_names


def test_column_tensors_may_come_in_any_order() -> None:
    body = json_request(list(reversed(mixed_columns_json())))
    pd.testing.assert_frame_equal(decode(body).frame, expected_mixed())


def test_column_tensors_as_binary_data_like_tritonclient() -> None:
    body, length = binary_request(
        [
            ("region", "BYTES", [2], serialize_bytes(["north", "south"])),
            ("age", "INT64", [2, 1], raw("INT64", [30, 41])),
            ("income", "FP64", [2], raw("FP64", [50000.5, 61000.0])),
            ("owner", "BOOL", [2], raw("BOOL", [True, False])),
            ("notes", "BYTES", [2], serialize_bytes(["vip", ""])),
        ],
        request_id="r-7",
    )
    decoded = decode(body, length)
    expected = expected_mixed().assign(notes=pd.array(["vip", ""], dtype=expected_mixed()["notes"].dtype))
    pd.testing.assert_frame_equal(decoded.frame, expected)
    assert decoded.id == "r-7"


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    tensors = mixed_columns_json()
    binary_income = orjson.dumps(
        {
            "inputs": [
                *tensors[:1],
                {"name": "income", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
                *tensors[2:],
            ]
        }
    )
    body = binary_income + raw("FP64", [50000.5, 61000.0])
    pd.testing.assert_frame_equal(decode(body, len(binary_income)).frame, expected_mixed())


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_every_numeric_datatype_reaches_its_column_type(datatype: str, binary: bool) -> None:
    numpy_type, column_type, values = SAMPLES[datatype]
    signature = Signature(inputs=[ColumnSpec(name="x", type=column_type)])
    if binary:
        body, length = binary_request([("x", datatype, [3], raw(datatype, values))])
        frame = decode(body, length, signature).frame
    else:
        body = json_request([{"name": "x", "shape": [3], "datatype": datatype, "data": values}])
        frame = decode(body, None, signature).frame
    expected = {"boolean": np.bool_, "integer": np.int64, "number": np.float64}[column_type]
    assert frame["x"].dtype == expected
    if binary:  # the client's precision, widened without loss
        assert frame["x"].tolist() == np.asarray(values, dtype=numpy_type).astype(expected).tolist()
    else:  # JSON numbers go straight to the column's dtype
        assert frame["x"].tolist() == values


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_bytes_feed_string_columns_with_unicode(binary: bool) -> None:
    signature = Signature(inputs=[ColumnSpec(name="city", type="string")])
    values = ["Zürich", "東京", ""]
    if binary:
        frame = decode(*binary_request([("city", "BYTES", [3], serialize_bytes(values))]), signature).frame
    else:
        frame = decode(
            json_request([{"name": "city", "shape": [3], "datatype": "BYTES", "data": values}]), None, signature
        ).frame
    assert frame["city"].tolist() == values
    assert isinstance(frame["city"].dtype, pd.StringDtype)


def test_bytes_feed_datetime_columns_as_iso_text() -> None:
    signature = Signature(inputs=[ColumnSpec(name="at", type="datetime")])
    body = json_request([{"name": "at", "shape": [1], "datatype": "BYTES", "data": ["2026-03-01T12:00:00Z"]}])
    frame = decode(body, None, signature).frame
    assert frame["at"].iloc[0] == pd.Timestamp("2026-03-01T12:00:00Z")


def test_json_nulls_in_floats_are_nan_where_the_column_is_nullable() -> None:
    signature = Signature(inputs=[ColumnSpec(name="x", type="number", nullable=True)])
    body = json_request([{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, None]}])
    values = decode(body, None, signature).frame["x"].to_numpy()
    assert values[0] == 1.5 and np.isnan(values[1])


def test_zero_rows_decode_to_an_empty_typed_frame() -> None:
    inputs = [{**t, "shape": [0], "data": []} for t in mixed_columns_json()]
    frame = decode(json_request(inputs)).frame
    assert len(frame) == 0
    assert list(frame.columns) == SIG.input_names
    assert frame["age"].dtype == np.int64 and frame["owner"].dtype == np.bool_


# -- layout (b): one [n, k] tensor ---------------------------------------------------------------------


def test_one_matrix_in_json_like_kserve_sklearn() -> None:
    body = json_request([{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4.5, 5, 6]]}])
    frame = decode(body, None, NUMBERS).frame
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame.to_numpy().tolist() == [[1.0, 2.0, 3.0], [4.5, 5.0, 6.0]]
    assert (frame.dtypes == np.float64).all()


def test_one_matrix_in_binary_keeps_the_clients_float32_values() -> None:
    matrix = np.array([[0.1, 0.2, 0.3], [1, 2, 3]], dtype="<f4")
    body, length = binary_request([("input-0", "FP32", [2, 3], matrix.tobytes())])
    frame = decode(body, length, NUMBERS).frame
    np.testing.assert_array_equal(frame.to_numpy(), matrix.astype(np.float64))


def test_a_matrix_feeds_integer_and_number_columns_in_signature_order() -> None:
    signature = Signature(inputs=[ColumnSpec(name="age", type="integer"), ColumnSpec(name="income", type="number")])
    body = json_request([{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [30, 1.5, 41, 2.5]}])
    frame = decode(body, None, signature).frame
    assert frame["age"].dtype == np.int64 and frame["age"].tolist() == [30, 41]
    assert frame["income"].tolist() == [1.5, 2.5]


def test_a_bytes_matrix_feeds_string_columns() -> None:
    signature = Signature(inputs=[ColumnSpec(name="a", type="string"), ColumnSpec(name="b", type="string")])
    body, length = binary_request([("input-0", "BYTES", [2, 2], serialize_bytes(["w", "x", "y", "z"]))])
    frame = decode(body, length, signature).frame
    assert frame.to_numpy().tolist() == [["w", "x"], ["y", "z"]]


def test_a_one_column_signature_takes_a_flat_tensor() -> None:
    signature = Signature(inputs=[ColumnSpec(name="x", type="number")])
    body = json_request([{"name": "input-0", "shape": [3], "datatype": "INT32", "data": [1, 2, 3]}])
    assert decode(body, None, signature).frame["x"].tolist() == [1.0, 2.0, 3.0]


def test_matrix_nans_are_refused_for_non_nullable_columns() -> None:
    body = json_request([{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1, None, 3]}])
    error = raises(SchemaMismatch, "inputs[0]", decode, body, None, NUMBERS)
    assert error.details["column"] == "b"
    nullable = Signature(inputs=[ColumnSpec(name=c, type="number", nullable=True) for c in "abc"])
    assert np.isnan(decode(body, None, nullable).frame["b"].iloc[0])


# -- outputs the client asks for -----------------------------------------------------------------------


def test_binary_outputs_requested_for_the_whole_request() -> None:
    body = json_request(mixed_columns_json(), parameters={"binary_data_output": True})
    decoded = decode(body)
    assert decoded.binary_outputs is True and decoded.requested_outputs is None


def test_binary_outputs_requested_per_output_and_overridden() -> None:
    outputs = [{"name": "label", "parameters": {"binary_data": True}}, {"name": "score"}]
    decoded = decode(json_request(mixed_columns_json(), outputs=outputs))
    assert decoded.binary_outputs is True
    assert decoded.requested_outputs == ["label", "score"]
    off = [{"name": "score", "parameters": {"binary_data": False}}]
    body = json_request(mixed_columns_json(), outputs=off, parameters={"binary_data_output": True})
    assert decode(body).binary_outputs is False


# -- bad requests, each naming its field ---------------------------------------------------------------


def test_malformed_json_names_the_body() -> None:
    raises(InvalidArgument, "body", decode, b'{"inputs": [')
    raises(InvalidArgument, "body", decode, b"[1, 2]")


@pytest.mark.parametrize("doc", [{}, {"inputs": []}, {"inputs": {"age": [1]}}])
def test_missing_inputs(doc: dict[str, Any]) -> None:
    raises(InvalidArgument, "inputs", decode, orjson.dumps(doc))


def test_unknown_datatype() -> None:
    inputs = mixed_columns_json()
    inputs[1]["datatype"] = "FP8"
    error = raises(InvalidArgument, "inputs[1].datatype", decode, json_request(inputs))
    assert "FP8" in error.message and "FP64" in error.message


def test_shape_that_does_not_match_the_data() -> None:
    inputs = mixed_columns_json()
    inputs[0]["data"] = [30, 41, 52]
    raises(InvalidArgument, "inputs[0].shape", decode, json_request(inputs))
    body, length = binary_request([("input-0", "FP32", [2, 3], raw("FP32", [1, 2, 3, 4, 5]))])
    raises(InvalidArgument, "inputs[0].shape", decode, body, length, NUMBERS)


@pytest.mark.parametrize("shape", [[2, -1], [2.0], "2", None])
def test_malformed_shape(shape: Any) -> None:
    inputs = mixed_columns_json()
    inputs[0]["shape"] = shape
    raises(InvalidArgument, "inputs[0].shape", decode, json_request(inputs))


def test_matrix_with_the_wrong_number_of_columns() -> None:
    body = json_request([{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}])
    error = raises(SchemaMismatch, "inputs[0].shape", decode, body, None, NUMBERS)
    assert error.details["expected"] == 3 and error.details["got"] == 4


def test_binary_data_size_overrunning_the_body() -> None:
    body, length = binary_request(
        [("a", "FP64", [1], raw("FP64", [1.0])), ("b", "FP64", [1], raw("FP64", [2.0])), ("c", "FP64", [1], b"")]
    )
    head = orjson.loads(body[:length])
    head["inputs"][1]["parameters"]["binary_data_size"] = 64
    header = orjson.dumps(head)
    error = raises(
        InvalidArgument,
        "inputs[1].parameters.binary_data_size",
        decode,
        header + body[length:],
        len(header),
        NUMBERS,
    )
    assert "overrun" in error.message


def test_binary_data_without_the_header_length() -> None:
    body, _ = binary_request([("input-0", "FP64", [1, 3], raw("FP64", [1, 2, 3]))])
    error = raises(InvalidArgument, "body", decode, body, None, NUMBERS)
    assert HEADER_LENGTH in error.message
    empty, _ = binary_request([("input-0", "FP64", [0, 3], b"")])
    raises(InvalidArgument, "inputs[0].parameters.binary_data_size", decode, empty, None, NUMBERS)


@pytest.mark.parametrize("length", [0, -1, 10_000])
def test_header_length_outside_the_body(length: int) -> None:
    body, _ = binary_request([("input-0", "FP64", [1, 3], raw("FP64", [1, 2, 3]))])
    raises(InvalidArgument, HEADER_LENGTH, decode, body, length, NUMBERS)


def test_binary_bytes_no_input_claims() -> None:
    body, length = binary_request([("input-0", "FP64", [1, 3], raw("FP64", [1, 2, 3]))])
    raises(InvalidArgument, "body", decode, body + b"\x00\x01", length, NUMBERS)


def test_data_and_binary_data_size_together() -> None:
    header = json_request(
        [
            {
                "name": "input-0",
                "shape": [1, 3],
                "datatype": "FP64",
                "data": [1, 2, 3],
                "parameters": {"binary_data_size": 24},
            }
        ]
    )
    raises(InvalidArgument, "inputs[0].data", decode, header + raw("FP64", [1, 2, 3]), len(header), NUMBERS)


def test_missing_data() -> None:
    raises(InvalidArgument, "inputs[0].data", decode, json_request([{"name": "x", "shape": [1], "datatype": "FP64"}]))


def test_mixed_layouts() -> None:
    inputs = mixed_columns_json()[:2] + [{"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [0] * 6}]
    error = raises(InvalidArgument, "inputs[2]", decode, json_request(inputs))
    assert "not both" in error.message


def test_several_matrices() -> None:
    matrix = {"shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}
    body = json_request([{"name": "m0", **matrix}, {"name": "m1", **matrix}])
    raises(InvalidArgument, "inputs", decode, body, None, NUMBERS)


def test_unknown_column_name() -> None:
    inputs = mixed_columns_json()
    inputs[1]["name"] = "salary"
    error = raises(SchemaMismatch, "inputs[1].name", decode, json_request(inputs))
    assert error.details["column"] == "salary"


def test_missing_column_is_named() -> None:
    inputs = [t for t in mixed_columns_json() if t["name"] != "owner"]
    error = raises(SchemaMismatch, "inputs", decode, json_request(inputs))
    assert error.details["column"] == "owner"
    assert "owner" in error.message and "credit/3" in error.message


def test_row_counts_differ_between_column_tensors() -> None:
    inputs = mixed_columns_json()
    inputs[2].update(shape=[3], data=["a", "b", "c"])
    error = raises(InvalidArgument, "inputs[2].shape", decode, json_request(inputs))
    assert "inputs[0]" in error.message


def test_a_column_tensor_must_be_one_column_wide() -> None:
    inputs = mixed_columns_json()
    inputs[0].update(shape=[1, 2])
    raises(InvalidArgument, "inputs[0].shape", decode, json_request(inputs))


def test_the_same_input_twice() -> None:
    inputs = mixed_columns_json()
    inputs.append(dict(inputs[0]))
    raises(InvalidArgument, "inputs[5].name", decode, json_request(inputs))


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP64", ["1.5", "x"]),
        ("INT64", [1.5, 2.5]),
        ("INT64", [1, None]),
        ("BOOL", [1, 0]),
        ("INT8", [1, 300]),
        ("UINT8", [-1, 2]),
        ("BYTES", [1, 2]),
        ("FP64", [[1], [2, 3]]),
    ],
)
def test_data_that_is_not_of_its_datatype(datatype: str, data: list[Any]) -> None:
    signature = Signature(inputs=[ColumnSpec(name="x", type="string" if datatype == "BYTES" else "number")])
    body = json_request([{"name": "x", "shape": [2], "datatype": datatype, "data": data}])
    raises(InvalidArgument, "inputs[0].data", decode, body, None, signature)


def test_binary_bytes_that_are_not_utf8() -> None:
    signature = Signature(inputs=[ColumnSpec(name="x", type="string")])
    body, length = binary_request([("x", "BYTES", [1], struct.pack("<I", 2) + b"\xff\xfe")])
    raises(InvalidArgument, "inputs[0].data", decode, body, length, signature)


@pytest.mark.parametrize("payload", [serialize_bytes(["a"]), serialize_bytes(["a", "b", "c"]), b"\x05\x00\x00\x00ab"])
def test_binary_bytes_holding_another_number_of_elements(payload: bytes) -> None:
    signature = Signature(inputs=[ColumnSpec(name="x", type="string")])
    body, length = binary_request([("x", "BYTES", [2], payload)])
    raises(InvalidArgument, "inputs[0].shape", decode, body, length, signature)


def test_a_column_of_the_wrong_type_names_its_tensor() -> None:
    inputs = mixed_columns_json()
    inputs[1].update(datatype="BYTES", data=["50000.5", "61000"], shape=[2])
    error = raises(SchemaMismatch, "inputs[1]", decode, json_request(inputs))
    assert error.details["column"] == "income"


def test_nulls_in_a_non_nullable_column_name_its_tensor() -> None:
    inputs = mixed_columns_json()
    inputs[2]["data"] = ["north", None]
    error = raises(SchemaMismatch, "inputs[2]", decode, json_request(inputs))
    assert error.details["column"] == "region"


@pytest.mark.parametrize(("key", "value"), [("id", 12), ("parameters", [1]), ("outputs", {"name": "score"})])
def test_malformed_request_fields(key: str, value: Any) -> None:
    raises(InvalidArgument, key, decode, json_request(mixed_columns_json(), **{key: value}))


def test_unknown_requested_output() -> None:
    body = json_request(mixed_columns_json(), outputs=[{"name": "score"}, {"name": "margin"}])
    raises(InvalidArgument, "outputs[1].name", decode, body)


# -- responses -----------------------------------------------------------------------------------------


def outputs_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": [0.25, np.nan],
            "score32": np.array([0.5, 1.5], dtype=np.float32),
            "count": np.array([3, -4], dtype=np.int64),
            "small": np.array([1, 2], dtype=np.int32),
            "byte": np.array([7, 255], dtype=np.uint8),
            "flag": [True, False],
            "label": ["yes", None],
            "tag": pd.Series(["a", "b"], dtype=object),
            "at": pd.to_datetime(["2026-01-02T03:04:05Z", None], utc=True),
            "maybe": pd.array([1, None], dtype="Int64"),
            "whole": pd.array([1, 2], dtype="Int64"),
            "grade": pd.Categorical(["A", "B"]),
        }
    )


EXPECTED_DATATYPES = {
    "score": "FP64",
    "score32": "FP32",
    "count": "INT64",
    "small": "INT32",
    "byte": "UINT8",
    "flag": "BOOL",
    "label": "BYTES",
    "tag": "BYTES",
    "at": "BYTES",
    "maybe": "FP64",
    "whole": "INT64",
    "grade": "BYTES",
}


def test_json_response_has_one_tensor_per_column() -> None:
    body, headers = encode_response(
        model_name="credit",
        model_version="3",
        request_id="req-1",
        outputs=outputs_frame(),
        parameters={"prediction_ids": ["p1", "p2"], "model_version": "credit/3"},
    )
    assert headers == {"Content-Type": JSON_CONTENT_TYPE}
    doc = orjson.loads(body)
    assert doc["model_name"] == "credit" and doc["model_version"] == "3" and doc["id"] == "req-1"
    assert doc["parameters"] == {"prediction_ids": ["p1", "p2"], "model_version": "credit/3"}
    tensors = {t["name"]: t for t in doc["outputs"]}
    assert {name: t["datatype"] for name, t in tensors.items()} == EXPECTED_DATATYPES
    assert all(t["shape"] == [2] for t in tensors.values())
    assert tensors["score"]["data"] == [0.25, None]  # NaN is written as null
    assert tensors["label"]["data"] == ["yes", None]
    assert tensors["at"]["data"] == ["2026-01-02T03:04:05+00:00", None]
    assert tensors["maybe"]["data"] == [1.0, None]
    assert tensors["whole"]["data"] == [1, 2]
    assert tensors["byte"]["data"] == [7, 255]
    assert tensors["grade"]["data"] == ["A", "B"]


def test_response_without_request_id_or_parameters_leaves_them_out() -> None:
    body, _ = encode_response(model_name="m", model_version="1", request_id=None, outputs=pd.DataFrame({"y": [1.0]}))
    assert orjson.loads(body) == {
        "model_name": "m",
        "model_version": "1",
        "outputs": [{"name": "y", "datatype": "FP64", "shape": [1], "data": [1.0]}],
    }


def test_binary_response_round_trips() -> None:
    frame = outputs_frame()
    body, headers = encode_response(
        model_name="credit", model_version="3", request_id="req-1", outputs=frame, binary=True
    )
    assert headers["Content-Type"] == BINARY_CONTENT_TYPE
    length = int(headers[HEADER_LENGTH])
    assert orjson.loads(body[:length])["id"] == "req-1"
    doc, values = read_response(body, headers)
    assert all("data" not in t for t in doc["outputs"])
    assert values["score"][0] == 0.25 and np.isnan(values["score"][1])  # NaN keeps its bits
    assert values["score32"] == [0.5, 1.5]
    assert values["count"] == [3, -4] and values["small"] == [1, 2] and values["byte"] == [7, 255]
    assert values["flag"] == [True, False]
    assert values["label"] == ["yes", ""]  # BYTES has no null: a missing string is empty
    assert values["at"] == ["2026-01-02T03:04:05+00:00", ""]


def test_requested_outputs_select_and_order_tensors() -> None:
    frame = pd.DataFrame({"score": [0.5], "label": ["yes"], "extra": [1]})
    body, _ = encode_response(
        model_name="m", model_version="1", request_id=None, outputs=frame, requested_outputs=["label", "score"]
    )
    assert [t["name"] for t in orjson.loads(body)["outputs"]] == ["label", "score"]
    raises(
        InvalidArgument,
        "outputs[0].name",
        encode_response,
        model_name="m",
        model_version="1",
        request_id=None,
        outputs=frame,
        requested_outputs=["margin"],
    )


def test_object_columns_of_numbers_and_of_structures() -> None:
    frame = pd.DataFrame(
        {
            "ints": pd.Series([1, 2], dtype=object),
            "floats": pd.Series([1.5, None], dtype=object),
            "probs": pd.Series([{"a": 0.9}, [1, 2]], dtype=object),
        }
    )
    body, _ = encode_response(model_name="m", model_version="1", request_id=None, outputs=frame)
    tensors = {t["name"]: t for t in orjson.loads(body)["outputs"]}
    assert (tensors["ints"]["datatype"], tensors["ints"]["data"]) == ("INT64", [1, 2])
    assert (tensors["floats"]["datatype"], tensors["floats"]["data"]) == ("FP64", [1.5, None])
    assert (tensors["probs"]["datatype"], tensors["probs"]["data"]) == ("BYTES", ['{"a":0.9}', "[1,2]"])


def test_a_response_decodes_as_a_request() -> None:
    # Our own output, fed back as input (a chained model): binary tensors survive both ways.
    signature = Signature(inputs=[ColumnSpec(name="score", type="number"), ColumnSpec(name="label", type="string")])
    frame = pd.DataFrame({"score": [0.25, 0.75], "label": ["yes", "no"]})
    body, headers = encode_response(model_name="m", model_version="1", request_id=None, outputs=frame, binary=True)
    length = int(headers[HEADER_LENGTH])
    header = orjson.loads(body[:length])
    request = orjson.dumps({"inputs": header["outputs"]})
    decoded = decode(request + body[length:], len(request), signature)
    pd.testing.assert_frame_equal(decoded.frame, conform(frame, signature))


def test_empty_outputs() -> None:
    body, _ = encode_response(
        model_name="m", model_version="1", request_id=None, outputs=pd.DataFrame({"y": np.array([], dtype=float)})
    )
    assert orjson.loads(body)["outputs"] == [{"name": "y", "datatype": "FP64", "shape": [0], "data": []}]


# -- metadata ------------------------------------------------------------------------------------------


def test_model_metadata() -> None:
    meta = model_metadata("credit", ["1", "3"], SIG)
    assert meta == {
        "name": "credit",
        "versions": ["1", "3"],
        "platform": "modelsteward",
        "inputs": [
            {"name": "age", "datatype": "INT64", "shape": [-1]},
            {"name": "income", "datatype": "FP64", "shape": [-1]},
            {"name": "region", "datatype": "BYTES", "shape": [-1]},
            {"name": "owner", "datatype": "BOOL", "shape": [-1]},
            {"name": "notes", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "score", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    assert model_metadata("x", [], NUMBERS, platform="sklearn")["platform"] == "sklearn"
    orjson.dumps(meta)


def test_server_metadata() -> None:
    assert server_metadata("0.1.0") == {
        "name": "modelsteward",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }


# -- tensors outside the signature (allow_extra) -------------------------------------------------------


def decode_extra(body: bytes, header_length: int | None = None, signature: Signature = SIG) -> pd.DataFrame:
    return decode_request(
        body, header_length=header_length, signature=signature, owner="credit/3", allow_extra=True
    ).frame


# Extra tensors as a client sends them, and the column each becomes: its datatype's dtype.
EXTRA_TENSORS: list[tuple[str, str, list[Any], Any]] = [
    ("customer_id", "BYTES", ["c-001", "c-002"], pd.StringDtype),
    ("visit", "INT32", [3, 4], np.dtype("int32")),
    ("weight", "FP32", [0.5, 2.0], np.dtype("float32")),
    ("returning", "BOOL", [True, False], np.dtype("bool")),
    ("segment", "UINT8", [1, 255], np.dtype("uint8")),
]


def assert_extras(frame: pd.DataFrame, names: list[str]) -> None:
    assert list(frame.columns) == [*SIG.input_names, *names]
    for name, _, values, dtype in EXTRA_TENSORS:
        if name not in names:
            continue
        if dtype is pd.StringDtype:
            assert isinstance(frame[name].dtype, pd.StringDtype), name
        else:
            assert frame[name].dtype == dtype, name
        assert frame[name].tolist() == values, name


def test_allow_extra_keeps_json_column_tensors_after_the_signatures_in_request_order() -> None:
    extras = [{"name": n, "shape": [2], "datatype": d, "data": v} for n, d, v, _ in EXTRA_TENSORS]
    inputs = [extras[0], *mixed_columns_json()[:3], extras[1], *mixed_columns_json()[3:], *extras[2:]]
    frame = decode_extra(json_request(inputs))
    assert_extras(frame, [n for n, *_ in EXTRA_TENSORS])
    pd.testing.assert_frame_equal(frame[SIG.input_names], expected_mixed())


def test_allow_extra_keeps_binary_column_tensors_like_tritonclient_sends_them() -> None:
    signature_part = [
        ("age", "INT64", [2], raw("INT64", [30, 41])),
        ("income", "FP64", [2], raw("FP64", [50000.5, 61000.0])),
        ("region", "BYTES", [2], serialize_bytes(["north", "south"])),
        ("owner", "BOOL", [2], raw("BOOL", [True, False])),
        ("notes", "BYTES", [2], serialize_bytes(["vip", ""])),
    ]
    extras = [
        (n, d, [2, 1] if n == "visit" else [2], serialize_bytes(v) if d == "BYTES" else raw(d, v))
        for n, d, v, _ in EXTRA_TENSORS
    ]
    body, length = binary_request([*extras[:2], *signature_part, *extras[2:]])
    frame = decode_extra(body, length)
    assert_extras(frame, [n for n, *_ in EXTRA_TENSORS])
    expected = expected_mixed().assign(notes=pd.array(["vip", ""], dtype=expected_mixed()["notes"].dtype))
    pd.testing.assert_frame_equal(frame[SIG.input_names], expected)


def test_extras_keep_json_nulls_where_their_datatype_has_them() -> None:
    extras = [
        {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["c-001", None]},
        {"name": "weight", "shape": [2, 1], "datatype": "FP64", "data": [[1.5], [None]]},
    ]
    frame = decode_extra(json_request([*mixed_columns_json(), *extras]))
    assert frame["customer_id"].isna().tolist() == [False, True]
    assert frame["weight"].dtype == np.float64 and np.isnan(frame["weight"].iloc[1])


def test_allow_extra_without_extras_gives_the_same_frame() -> None:
    pd.testing.assert_frame_equal(decode_extra(json_request(mixed_columns_json())), expected_mixed())
    body = json_request([{"name": "input-0", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}])
    pd.testing.assert_frame_equal(decode_extra(body, None, NUMBERS), decode(body, None, NUMBERS).frame)


def test_without_allow_extra_an_extra_tensor_is_still_refused() -> None:
    inputs = [*mixed_columns_json(), {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}]
    error = raises(SchemaMismatch, "inputs[5].name", decode, json_request(inputs))
    assert error.details["column"] == "customer_id"
    assert error.details["problems"] == [{"column": "customer_id", "problem": "not in the signature"}]


def test_the_matrix_layout_takes_no_extras() -> None:
    matrix = {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]}
    extra = {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}
    error = raises(InvalidArgument, "inputs", decode_extra, json_request([matrix, extra]), None, NUMBERS)
    assert "one tensor per column" in error.message
    wider = {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": list(range(8))}
    error = raises(SchemaMismatch, "inputs[0].shape", decode_extra, json_request([wider]), None, NUMBERS)
    assert error.details["expected"] == 3 and error.details["got"] == 4


def test_an_extra_tensor_is_one_column_wide() -> None:
    extra = {"name": "embedding", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}
    error = raises(InvalidArgument, "inputs[5]", decode_extra, json_request([*mixed_columns_json(), extra]))
    assert "not both" in error.message


def test_signature_columns_are_still_checked_when_extras_are_kept() -> None:
    extra = {"name": "customer_id", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]}
    missing = [t for t in mixed_columns_json() if t["name"] != "owner"] + [extra]
    error = raises(SchemaMismatch, "inputs", decode_extra, json_request(missing))
    assert error.details["column"] == "owner" and "credit/3" in error.message
    wrong = mixed_columns_json() + [extra]
    wrong[1].update(datatype="BYTES", data=["50000.5", "61000"], shape=[2])
    assert raises(SchemaMismatch, "inputs[1]", decode_extra, json_request(wrong)).details["column"] == "income"
    nulls = mixed_columns_json() + [extra]
    nulls[2]["data"] = ["north", None]
    assert raises(SchemaMismatch, "inputs[2]", decode_extra, json_request(nulls)).details["column"] == "region"


def test_only_extra_tensors_means_the_signatures_columns_are_missing() -> None:
    inputs = [
        {"name": "customer_id", "shape": [1], "datatype": "BYTES", "data": ["a"]},
        {"name": "visit", "shape": [1], "datatype": "INT64", "data": [1]},
    ]
    error = raises(SchemaMismatch, "inputs", decode_extra, json_request(inputs))
    assert [p["column"] for p in error.details["problems"]] == SIG.input_names
    one = raises(SchemaMismatch, "inputs", decode_extra, json_request(inputs[:1]))
    assert one.details["column"] == "age"


def test_extra_tensors_are_checked_like_any_tensor() -> None:
    def with_extra(**tensor: Any) -> bytes:
        return json_request([*mixed_columns_json(), {"name": "extra", "shape": [2], **tensor}])

    raises(InvalidArgument, "inputs[5].shape", decode_extra, with_extra(datatype="INT64", data=[1, 2], shape=[3]))
    raises(InvalidArgument, "inputs[5].shape", decode_extra, with_extra(datatype="INT64", data=[1, 2, 3]))
    raises(InvalidArgument, "inputs[5].data", decode_extra, with_extra(datatype="INT64", data=[1, None]))
    raises(InvalidArgument, "inputs[5].data", decode_extra, with_extra(datatype="BYTES", data=[1, 2]))
    raises(InvalidArgument, "inputs[5].data", decode_extra, with_extra(datatype="INT8", data=[1, 300]))
    raises(InvalidArgument, "inputs[5].datatype", decode_extra, with_extra(datatype="FP8", data=[1, 2]))


def test_extras_survive_signature_columns_that_need_conform() -> None:
    signature = Signature(inputs=[ColumnSpec(name="at", type="datetime"), ColumnSpec(name="n", type="integer")])
    inputs = [
        {"name": "customer_id", "shape": [1], "datatype": "BYTES", "data": ["c-1"]},
        {"name": "at", "shape": [1], "datatype": "BYTES", "data": ["2026-03-01T12:00:00Z"]},
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [7]},
    ]
    frame = decode_extra(json_request(inputs), None, signature)
    assert list(frame.columns) == ["at", "n", "customer_id"]
    assert frame["at"].iloc[0] == pd.Timestamp("2026-03-01T12:00:00Z") and frame["customer_id"].tolist() == ["c-1"]
    pd.testing.assert_frame_equal(frame.copy(), frame)
