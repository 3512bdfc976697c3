"""The request bodies of the routes that read their raw body (inference, feedback), described for the OpenAPI
document: those handlers skip FastAPI's body models for speed, so without this the schema would say they
take no body, and neither a client generator nor a fuzzer would know what to send."""

from __future__ import annotations

from typing import Any

from modelsteward.governance.permissions import needs

_ROWS = {"type": "array", "items": {"type": "object"}, "description": "one object per row: column -> value"}
_ID = {"type": ["string", "integer"], "description": "the request id; prediction ids derive from it"}
_PARAMETERS = {"type": "object"}

JSON_PREDICT: dict[str, Any] = {
    "type": "object",
    "description": "exactly one of instances, dataframe_records, dataframe_split, inputs",
    "properties": {
        "id": _ID,
        "parameters": _PARAMETERS,
        "instances": {
            "anyOf": [_ROWS, {"type": "array", "items": {"type": "array"}}],
            "description": "rows as objects, or as lists in the signature's column order",
        },
        "dataframe_records": _ROWS,
        "dataframe_split": {
            "type": "object",
            "required": ["columns", "data"],
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
            },
        },
        "inputs": {"type": "object", "additionalProperties": {"type": "array"}, "description": "column -> values"},
    },
    "minProperties": 1,
}

_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32",
              "FP64", "BYTES"]  # fmt: skip
V2_INFER: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string", "enum": _DATATYPES},
                    "data": {"type": "array"},
                    "parameters": _PARAMETERS,
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
            },
        },
    },
}

FEEDBACK: dict[str, Any] = {
    "type": "object",
    "required": ["feedback"],
    "properties": {
        "feedback": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["prediction_id"],
                "properties": {"prediction_id": {"type": "string"}, "actual": {}},
                "description": "several targets may come as actual_<name> fields",
            },
        }
    },
}


def needs_with_body(permission: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``needs(permission)`` plus a JSON request body described by ``schema``."""
    route = needs(permission)
    route["openapi_extra"]["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return route
