"""Monitors on Dask: when a window outgrows one machine's memory, each Parquet part of the prediction log
is summarised on the training profile's bins where it lies, and the summaries are added up.

The sketches are mergeable (counts add exactly), so the drift figures equal the in-memory path's. A task
reads its part in batches of about ``BATCH_BYTES`` (a compacted part may hold a million rows), skips the row
groups outside the window by their statistics, and filters with Arrow, so a worker's memory holds a batch,
never a part, let alone the window. Parts at an fsspec URL (``s3://...``) are opened through fsspec on the
worker, with the worker's own credentials (the same ``AWS_*`` variables as the steward's).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from modelsteward.domain.monitoring import Target
from modelsteward.errors import StoreUnavailable, require
from modelsteward.monitoring.window import INPUT_PREFIX
from modelsteward.serving.log_reader import list_parts
from modelsteward.stats.sketch import CurrentSketch, DriftProfile, merge, summarize

#: About how many bytes of input columns a task holds at once (Arrow batch, its filtered copy, pandas).
BATCH_BYTES = 4 * 2**20


def _open(path: str) -> Any:
    """A local path as it is (Arrow's own reader), an fsspec URL as an open file."""
    if "://" not in path or path.startswith("file://"):
        return contextlib.nullcontext(path.removeprefix("file://"))
    from fsspec.core import url_to_fs

    fs, inner = url_to_fs(path)
    return fs.open(inner, "rb")


def _keep(batch: Any, target: dict[str, Any], start: Any, end: Any) -> Any:
    """The window's filter of ``window.load``, with SQL's three-valued logic (a null never matches)."""
    import pyarrow.compute as pc

    from modelsteward.serving.log_columns import TIMESTAMP

    ts = batch.column("ts").cast(TIMESTAMP)
    keep = pc.and_(pc.greater_equal(ts, start), pc.less(ts, end))
    keep = pc.and_(keep, pc.equal(batch.column("status"), "ok"))
    keep = pc.and_(keep, pc.not_equal(batch.column("arm"), "shadow"))
    if target.get("step") is not None:
        keep = pc.and_(keep, pc.equal(batch.column("step"), target["step"]))
    if target.get("model") is not None:
        name, _, version = target["model"].partition("/")
        keep = pc.and_(keep, pc.equal(batch.column("model"), name))
        if version.isdigit():
            keep = pc.and_(keep, pc.equal(batch.column("version"), int(version)))
    return keep


def _row_groups(metadata: Any, start: datetime, end: datetime) -> list[int]:
    """The row groups whose ``ts`` statistics overlap ``[start, end)`` (all of them when a group has none)."""
    import pandas as pd

    leaf = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == "ts"), None)
    everything = list(range(metadata.num_row_groups))
    if leaf is None:
        return everything
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    keep = []
    for i in everything:
        stats = metadata.row_group(i).column(leaf).statistics
        try:
            outside = stats is not None and stats.has_min_max and (_utc(stats.max) < lo or _utc(stats.min) >= hi)
        except (TypeError, ValueError):  # statistics of another type: read the group
            outside = False
        if not outside:
            keep.append(i)
    return keep


def _utc(value: Any) -> Any:
    import pandas as pd

    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


_OPTIONAL = (("step", "string"), ("model", "string"), ("version", "int64"))


def _part_sketch(
    path: str, target: dict[str, Any], start: datetime, end: datetime, profile: DriftProfile, columns: list[str]
) -> tuple[CurrentSketch | None, int]:
    """One part's rows in the window, as a sketch (runs on a Dask worker)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelsteward.serving.log_columns import TIMESTAMP

    wanted = [f"{INPUT_PREFIX}{c}" for c in columns]
    sketches: list[CurrentSketch] = []
    rows = 0
    with _open(path) as source:
        part = pq.ParquetFile(source, pre_buffer=False)  # pre-buffering would keep the part's groups read so far
        names = part.schema_arrow.names
        if any(c not in names for c in wanted):
            return None, 0  # a part written by a version with other inputs
        fixed = [c for c in ("ts", "status", "arm", "step", "model", "version") if c in names]
        groups = _row_groups(part.metadata, start, end)
        batch_rows = max(1024, BATCH_BYTES // (8 * (len(wanted) + len(fixed))))
        lo, hi = pa.scalar(start, type=TIMESTAMP), pa.scalar(end, type=TIMESTAMP)
        for batch in part.iter_batches(batch_size=batch_rows, row_groups=groups, columns=fixed + wanted):
            for name, type_ in _OPTIONAL:
                if name not in fixed:  # a part written before the column existed: null, as DuckDB reads it
                    batch = batch.append_column(name, pa.nulls(batch.num_rows, pa.type_for_alias(type_)))
            inputs = batch.filter(_keep(batch, target, lo, hi)).select(wanted)
            if inputs.num_rows:
                frame = inputs.rename_columns(columns).to_pandas()
                sketches.append(summarize(frame, profile, columns=columns))
                rows += inputs.num_rows
            del batch, inputs
    pa.default_memory_pool().release_unused()  # hand the batches' memory back: the worker's limit counts it
    return (merge(*sketches) if sketches else None), rows


def window_sketch(
    inference_root: str,
    target: Target,
    start: datetime,
    end: datetime,
    profile: DriftProfile,
    columns: list[str],
    *,
    scheduler: str | None = None,
    timeout: float = 3600.0,
) -> tuple[CurrentSketch | None, int]:
    """The window's sketch and row count, computed part by part on Dask (``scheduler``: the address of
    a ``dask.distributed`` scheduler, e.g. ``tcp://10.0.0.5:8786``; default: Dask's local threads).

    One task per part, and only the small sketches travel back: no process ever holds the window. A cluster
    that does not finish within ``timeout`` seconds (workers paused for memory, lost) is a
    :class:`~modelsteward.errors.StoreUnavailable`, not a scheduler round that waits forever.
    """
    dask = require("dask", "dask")
    parts = list_parts(inference_root, deployment=target.deployment)
    if not parts:
        return None, 0
    spec = target.model_dump()
    shared = dask.delayed(profile, pure=True)  # sent to the workers once, not once per task
    tasks = [dask.delayed(_part_sketch, pure=True)(path, spec, start, end, shared, columns) for path in parts]
    if scheduler:
        distributed = require("dask.distributed", "dask")
        try:
            client = distributed.Client(scheduler, timeout=30)
        except OSError as e:  # nothing listening, a wrong address: said, not a traceback
            raise StoreUnavailable(
                f"cannot reach the Dask scheduler at {scheduler}: {e}", details={"scheduler": scheduler}
            ) from e
        with client:
            futures = client.compute(tasks)
            try:
                distributed.wait(futures, timeout=timeout)
            except TimeoutError as e:
                client.cancel(futures)
                raise StoreUnavailable(
                    f"the Dask cluster at {scheduler} did not summarise the window within {timeout:g} s",
                    details={"scheduler": scheduler, "parts": len(tasks)},
                ) from e
            results = client.gather(futures)
    else:
        results = dask.compute(*tasks)
    sketches = [sketch for sketch, _ in results if sketch is not None]
    rows = sum(n for _, n in results)
    return (merge(*sketches) if sketches else None), rows
