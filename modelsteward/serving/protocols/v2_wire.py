"""The Open Inference Protocol v2's wire vocabulary, shared by requests and responses: datatypes, headers."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from modelsteward.errors import InvalidArgument

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"

DATATYPES: dict[str, np.dtype | None] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": None,
}
"""The wire datatypes this codec reads and writes, with their little-endian binary layout (BYTES: none)."""

DATATYPE_OF_COLUMN: dict[str, str] = {
    "integer": "INT64",
    "number": "FP64",
    "string": "BYTES",
    "boolean": "BOOL",
    "datetime": "BYTES",
}

NUMPY_DATATYPE = {np.dtype(dt).newbyteorder("="): name for name, dt in DATATYPES.items() if dt is not None}
"""The wire datatype of each native NumPy dtype."""

U32 = struct.Struct("<I")
"""The 4-byte little-endian length before each element of binary BYTES data."""


def invalid(message: str, field: str, **details: Any) -> InvalidArgument:
    """An :class:`InvalidArgument` whose ``details["field"]`` names the offending part of the request."""
    return InvalidArgument(message, details={"field": field, **details})
