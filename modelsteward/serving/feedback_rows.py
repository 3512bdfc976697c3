"""Ground truth as callers send it (one object per prediction) turned into a feedback-log batch."""

from __future__ import annotations

from typing import Any

from modelsteward.errors import InvalidArgument
from modelsteward.serving.feedback_log import FeedbackBatch

MAX_ROWS = 100_000


def feedback_batch(rows: list[dict[str, Any]]) -> FeedbackBatch:
    """``[{"prediction_id": "...", "actual": 1, "actual_<name>": ...}, ...]`` as a FeedbackBatch.

    Every row needs a ``prediction_id`` and at least one of ``actual`` / ``actual_<name>``; a field
    missing from some rows is null there. Unknown fields are refused, naming the row and field.
    """
    if not rows:
        raise InvalidArgument("feedback needs at least one row", details={"field": "feedback"})
    if len(rows) > MAX_ROWS:
        raise InvalidArgument(f"at most {MAX_ROWS} feedback rows per request", details={"field": "feedback"})
    ids: list[str] = []
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidArgument(f"feedback[{i}] must be an object", details={"field": f"feedback.{i}"})
        prediction_id = row.get("prediction_id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise InvalidArgument(
                f"feedback[{i}].prediction_id must be a non-empty string",
                details={"field": f"feedback.{i}.prediction_id"},
            )
        for key in row:
            if key == "actual" or key.startswith("actual_"):
                names.setdefault(key, None)
            elif key not in ("prediction_id", "ts"):
                raise InvalidArgument(
                    f"feedback[{i}] has an unknown field {key!r}: use prediction_id, actual or actual_<name>",
                    details={"field": f"feedback.{i}.{key}"},
                )
        ids.append(prediction_id)
    if not names:
        raise InvalidArgument("each feedback row needs actual or actual_<name>", details={"field": "feedback"})
    columns = {name: [row.get(name) for row in rows] for name in names}
    return FeedbackBatch(
        prediction_ids=ids,
        actual=columns.pop("actual", None),
        actuals={name.removeprefix("actual_"): values for name, values in columns.items()},
    )
