"""Reading a monitor's window from the prediction log (and ground truth from the feedback log) with DuckDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from modelsteward.domain.monitoring import Target
from modelsteward.serving.feedback_log import join_feedback
from modelsteward.serving.log_reader import query

INPUT_PREFIX = "in_"
OUTPUT_PREFIX = "out_"


@dataclass(frozen=True)
class Window:
    """The rows a monitor looks at: what the model was given and what it answered."""

    start: datetime
    end: datetime
    rows: pd.DataFrame

    @property
    def size(self) -> int:
        return len(self.rows)

    def inputs(self) -> pd.DataFrame:
        """The ``in_*`` columns under their own names (the model's input columns)."""
        columns = [c for c in self.rows.columns if c.startswith(INPUT_PREFIX)]
        frame = self.rows[columns]
        return frame.set_axis([c[len(INPUT_PREFIX) :] for c in columns], axis=1)

    def outputs(self) -> pd.DataFrame:
        columns = [c for c in self.rows.columns if c.startswith(OUTPUT_PREFIX)]
        frame = self.rows[columns]
        return frame.set_axis([c[len(OUTPUT_PREFIX) :] for c in columns], axis=1)

    def dominant_version(self) -> tuple[str, int] | None:
        """The model version that answered most of the window's rows."""
        if self.rows.empty:
            return None
        counts = self.rows.groupby(["model", "version"]).size().sort_values(ascending=False)
        model, version = counts.index[0]
        return str(model), int(version)


def _where(target: Target, start: datetime, end: datetime, extra: str = "") -> str:
    clauses = [
        f"ts >= TIMESTAMPTZ '{start.isoformat()}'",
        f"ts < TIMESTAMPTZ '{end.isoformat()}'",
        "status = 'ok'",
        # shadows are watched through their own monitors (target: model); a deployment's traffic is
        # what its answering arms saw
        "arm <> 'shadow'",
    ]
    if target.step is not None:
        clauses.append(f"step = '{target.step}'")
    if target.model is not None:
        name, _, version = target.model.partition("/")
        clauses.append(f"model = '{name}'")
        if version.isdigit():
            clauses.append(f"version = {int(version)}")
    if extra:
        clauses.append(extra)
    return " AND ".join(clauses)


def load(inference_root: str, target: Target, start: datetime, end: datetime) -> Window:
    """The window ``[start, end)`` of a target's answered predictions, oldest first."""
    where = _where(target, start, end)
    rows = query(inference_root, where, deployment=target.deployment, order_by="ts")
    return Window(start=start, end=end, rows=rows)


def load_with_feedback(
    inference_root: str, feedback_root: str, target: Target, start: datetime, end: datetime
) -> Window:
    """The window's predictions that have ground truth, with their ``actual*`` columns."""
    where = _where(target, start, end)
    rows: Any = join_feedback(inference_root, feedback_root, deployment=target.deployment, sql_where=where)
    if "ts" in rows.columns:
        rows = rows.sort_values("ts", kind="stable").reset_index(drop=True)
    return Window(start=start, end=end, rows=rows)
