"""Open Inference Protocol v2 responses and metadata: an output frame to a response body, and the metadata documents.

Pure functions of frames: the gateway sends back the bytes and headers :func:`encode_response` returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelsteward.domain.records import Signature
from modelsteward.serving.protocols.frames import column_arrays, iso_strings
from modelsteward.serving.protocols.json_body import JSON_OPTIONS, json_default
from modelsteward.serving.protocols.v2_wire import (
    BINARY_CONTENT_TYPE,
    DATATYPE_OF_COLUMN,
    HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    NUMPY_DATATYPE,
    U32,
    invalid,
)


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: pd.DataFrame,
    parameters: dict[str, Any] | None = None,
    binary: bool = False,
    requested_outputs: list[str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The v2 response body for a frame of outputs, and the headers to send with it.

    One 1-D tensor of shape ``[n]`` per output column (only ``requested_outputs``, in that order,
    when given). Datatypes follow the column dtypes: float64 -> FP64, float32 -> FP32, int64 ->
    INT64 (and the other widths), bool -> BOOL, strings, datetimes (ISO 8601) and other objects ->
    BYTES. A nullable integer or boolean column holding nulls is sent as FP64 with NaN. In JSON, NaN
    and infinities are written as ``null`` (orjson's behaviour; the protocol itself has no nulls), and a
    missing string as ``null``; in binary, floats keep their IEEE bits and a missing string is an
    empty element. ``binary=True`` sends every tensor as binary data after the JSON header, with the
    ``Inference-Header-Content-Length`` header.
    """
    names = [str(c) for c in outputs.columns]
    if requested_outputs is None:
        selected = list(enumerate(names))
    else:
        where = {name: i for i, name in enumerate(names)}
        for j, name in enumerate(requested_outputs):
            if name not in where:
                raise invalid(
                    f"outputs[{j}].name: the model returned no output '{name}' (it returned {', '.join(names)})",
                    f"outputs[{j}].name",
                )
        selected = [(where[name], name) for name in requested_outputs]
    n_rows = len(outputs)
    tensors: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    arrays = column_arrays(outputs)
    for pos, name in selected:
        datatype, values = _output_values(arrays[pos])
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [n_rows]}
        if binary:
            buffer = _binary_of(values)
            tensor["parameters"] = {"binary_data_size": len(buffer)}
            buffers.append(buffer)
        else:
            tensor["data"] = values
        tensors.append(tensor)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    doc["outputs"] = tensors
    header = orjson.dumps(doc, option=JSON_OPTIONS, default=json_default)
    if not binary:
        return header, {"Content-Type": JSON_CONTENT_TYPE}
    return header + b"".join(buffers), {"Content-Type": BINARY_CONTENT_TYPE, HEADER_LENGTH: str(len(header))}


def _output_values(values: Any) -> tuple[str, np.ndarray | list[Any]]:
    """The wire datatype of a column and its values: a contiguous NumPy array, or a list for BYTES."""
    if isinstance(values, pd.arrays.NumpyExtensionArray):  # pragma: no cover - pandas without column arrays
        values = values.to_numpy()
    dtype = values.dtype
    if isinstance(values, np.ndarray):
        if dtype.kind in "biuf":
            native = dtype.newbyteorder("=")
            if native in NUMPY_DATATYPE:
                return NUMPY_DATATYPE[native], np.ascontiguousarray(values)
            return "FP64", values.astype(np.float64)  # float128 and the like
        if dtype.kind == "M":
            return "BYTES", iso_strings(values)
        return _object_values(values.astype(object, copy=False))
    if isinstance(dtype, pd.StringDtype):
        return "BYTES", values.to_numpy(dtype=object, na_value=None).tolist()
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "BYTES", iso_strings(values)
    if isinstance(dtype, pd.CategoricalDtype):
        return _output_values(np.asarray(values))
    numpy_dtype = getattr(dtype, "numpy_dtype", None)  # nullable Int64/Float64/boolean, Arrow numbers
    if isinstance(numpy_dtype, np.dtype) and numpy_dtype.kind in "biuf":
        if not values.isna().any():
            return _output_values(values.to_numpy(dtype=numpy_dtype))
        return "FP64", values.to_numpy(dtype=np.float64, na_value=np.nan)
    return _object_values(np.asarray(values, dtype=object))


def _object_values(values: np.ndarray) -> tuple[str, np.ndarray | list[Any]]:
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred in ("string", "empty"):
        return "BYTES", [v if isinstance(v, str) else None for v in values.tolist()]
    has_nulls = bool(pd.isna(values).any())
    if inferred == "integer" and not has_nulls:
        return "INT64", np.asarray(values.tolist(), dtype=np.int64)
    if inferred == "boolean" and not has_nulls:
        return "BOOL", np.asarray(values.tolist(), dtype=np.bool_)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        return "FP64", pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    if inferred in ("datetime", "datetime64", "date"):
        return "BYTES", iso_strings(values)
    if inferred == "bytes":
        return "BYTES", [v.decode("utf-8", "replace") if isinstance(v, bytes) else None for v in values.tolist()]
    # Anything else (lists, dicts, mixed values) travels as its JSON text.
    return "BYTES", [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else _as_text(v) for v in values.tolist()
    ]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=JSON_OPTIONS, default=json_default).decode()


def _binary_of(values: np.ndarray | list[Any]) -> bytes:
    if isinstance(values, np.ndarray):
        if values.dtype.byteorder == ">":  # pragma: no cover - big-endian hosts
            values = values.astype(values.dtype.newbyteorder("<"))
        return values.tobytes()
    pack = U32.pack
    parts: list[bytes] = []
    for value in values:
        encoded = b"" if value is None else value.encode()
        parts.append(pack(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


# -- metadata ------------------------------------------------------------------------------------------


def model_metadata(name: str, versions: list[str], signature: Signature, platform: str = "modelsteward") -> dict:
    """The v2 model metadata (``GET /v2/models/{name}``): every input and output as a ``[-1]`` tensor.

    Datatypes follow the column types: integer -> INT64, number -> FP64, boolean -> BOOL, string
    and datetime (ISO 8601) -> BYTES.
    """
    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": [{"name": c.name, "datatype": DATATYPE_OF_COLUMN[c.type], "shape": [-1]} for c in signature.inputs],
        "outputs": [{"name": c.name, "datatype": DATATYPE_OF_COLUMN[c.type], "shape": [-1]} for c in signature.outputs],
    }


def server_metadata(version: str) -> dict:
    """The v2 server metadata (``GET /v2``)."""
    return {"name": "modelsteward", "version": version, "extensions": ["binary_tensor_data"]}
