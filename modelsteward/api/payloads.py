"""Reading prediction inputs from JSON bodies (MLflow-style ``instances``/``dataframe_split``/...)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelsteward.errors import InvalidArgument

ACCEPTED = ("instances", "dataframe_split", "dataframe_records", "inputs")


def frame_from_json(body: Any) -> pd.DataFrame:
    """``{"instances": [{...}]}``, ``{"dataframe_records": [...]}``, ``{"dataframe_split":
    {"columns": [...], "data": [[...]]}}`` or ``{"inputs": {"col": [...]}}`` as a DataFrame."""
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object", details={"field": "body"})
    present = [key for key in ACCEPTED if key in body]
    if len(present) != 1:
        raise InvalidArgument(
            f"give exactly one of {', '.join(ACCEPTED)}",
            details={"field": "body", "accepted": list(ACCEPTED)},
        )
    key = present[0]
    value = body[key]
    if key in ("instances", "dataframe_records"):
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise InvalidArgument(f"{key} must be a list of objects (one per row)", details={"field": key})
        return pd.DataFrame.from_records(value)
    if key == "dataframe_split":
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("columns"), list)
            or not isinstance(value.get("data"), list)
        ):
            raise InvalidArgument(
                "dataframe_split needs 'columns' (a list of names) and 'data' (a list of rows)",
                details={"field": key},
            )
        width = len(value["columns"])
        for i, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidArgument(
                    f"dataframe_split.data[{i}] must be a list of {width} values",
                    details={"field": f"{key}.data.{i}"},
                )
        return pd.DataFrame(value["data"], columns=[str(c) for c in value["columns"]])
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise InvalidArgument("inputs must be an object of column -> list of values", details={"field": key})
    lengths = {len(v) for v in value.values()}
    if len(lengths) > 1:
        raise InvalidArgument("every column in inputs must have the same length", details={"field": key})
    return pd.DataFrame(value)


def frame_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts; NaN becomes null."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict(orient="records")
