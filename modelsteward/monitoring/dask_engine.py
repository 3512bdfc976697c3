"""Monitors on Dask: when a window outgrows one machine's memory, each Parquet part of the prediction log
is summarised on the training profile's bins where it lies, and the summaries are added up.

The sketches are mergeable (counts add exactly), so the drift figures equal the in-memory path's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from modelsteward.domain.monitoring import Target
from modelsteward.errors import require
from modelsteward.monitoring.window import INPUT_PREFIX
from modelsteward.serving.log_reader import list_parts
from modelsteward.stats.sketch import CurrentSketch, DriftProfile, merge, summarize


def _part_sketch(
    path: str, target: dict[str, Any], start: datetime, end: datetime, profile: DriftProfile, columns: list[str]
) -> tuple[CurrentSketch | None, int]:
    """One part's rows in the window, as a sketch (runs on a Dask worker)."""
    import pyarrow.parquet as pq

    wanted = [f"{INPUT_PREFIX}{c}" for c in columns]
    schema = pq.read_schema(path)
    present = [c for c in wanted if c in schema.names]
    if len(present) != len(wanted):
        return None, 0  # a part written by a version with other inputs
    fixed = [c for c in ("ts", "status", "arm", "step", "model", "version") if c in schema.names]
    frame = pq.read_table(path, columns=fixed + present).to_pandas()
    ts = pd.to_datetime(frame["ts"], utc=True)
    keep = (
        (ts >= pd.Timestamp(start)) & (ts < pd.Timestamp(end)) & (frame["status"] == "ok") & (frame["arm"] != "shadow")
    )
    if target.get("step") is not None:
        keep &= frame["step"] == target["step"]
    if target.get("model") is not None:
        name, _, version = target["model"].partition("/")
        keep &= frame["model"] == name
        if version:
            keep &= frame["version"] == int(version)
    rows = frame.loc[keep, present]
    if rows.empty:
        return None, 0
    rows = rows.set_axis([c[len(INPUT_PREFIX) :] for c in present], axis=1)
    return summarize(rows, profile, columns=columns), len(rows)


def window_sketch(
    inference_root: str,
    target: Target,
    start: datetime,
    end: datetime,
    profile: DriftProfile,
    columns: list[str],
    *,
    scheduler: str | None = None,
) -> tuple[CurrentSketch | None, int]:
    """The window's sketch and row count, computed part by part on Dask (``scheduler``: the address of
    a ``dask.distributed`` scheduler, e.g. ``tcp://10.0.0.5:8786``; default: Dask's local threads)."""
    dask = require("dask", "dask")
    parts = list_parts(inference_root, deployment=target.deployment)
    if not parts:
        return None, 0
    spec = target.model_dump()
    tasks = [dask.delayed(_part_sketch)(path, spec, start, end, profile, columns) for path in parts]
    if scheduler:
        distributed = require("dask.distributed", "dask")
        with distributed.Client(scheduler) as client:
            results = client.compute(tasks, sync=True)
    else:
        results = dask.compute(*tasks)
    sketches = [sketch for sketch, _ in results if sketch is not None]
    rows = sum(n for _, n in results)
    return (merge(*sketches) if sketches else None), rows
