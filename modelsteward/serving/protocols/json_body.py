"""JSON text on the wire, shared by the protocols: parsing a request body, and what orjson cannot encode alone."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelsteward.errors import InvalidArgument

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def load_json(body: bytes | memoryview) -> Any:
    """Parse a request body once, or raise InvalidArgument on the field ``body``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidArgument(f"the body is not valid JSON: {e}", details={"field": "body"}) from e


def json_default(value: Any) -> Any:
    """orjson's fallback for values pandas leaves in object columns: missing values become null."""
    if value is pd.NA or value is pd.NaT or value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode a {type(value).__name__} as JSON")
