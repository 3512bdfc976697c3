"""Compaction of the serving datasets: many small parts of a partition merged into few large ones, readers unharmed.

A writer flushes a part per deployment and date every second or so; over a day that is tens of thousands of small
files, slow to list and to scan. :func:`compact` merges them, one partition at a time, in three steps:

1. write a manifest ``_compaction-<id>.json`` naming the merged part and its sources (temporary name, renamed);
2. write the merged part ``part-compacted-<id>.parquet`` (temporary name, renamed) and check its row count;
3. after ``grace`` seconds (on a later run, or at once with ``grace=0``), delete the sources, then the manifest.

Readers that list parts through :func:`~modelsteward.serving.log_storage.live_parts` (``query``, ``count``,
``scan_sql``, ``list_parts``) see every row exactly once at every moment: before step 2 the merged part does not
exist; from step 2 on, the manifest hides the sources; after step 3 only the merged part is left. The grace period
lets a reader that listed the sources just before step 2 still open them. A plain ``**/*.parquet`` glob sees the
merged rows twice during the grace period. A crash at any point leaves a readable dataset: a manifest whose merged
part never appeared is removed after ``stale_after`` seconds, a finished one is completed by the next run.

Parts are immutable once renamed into place, so compaction is safe while writers write; ``min_age`` only keeps it
from merging the parts of the last minute over and over. Run one compactor per dataset at a time (a scheduled job,
or one designated worker): a second one skips the partitions with a merge in progress, but it is not a lock.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from modelsteward.domain.refs import check_name
from modelsteward.errors import InvalidArgument
from modelsteward.serving.log_columns import unify_tables
from modelsteward.serving.log_storage import (
    MANIFEST_PREFIX,
    MANIFEST_SUFFIX,
    PART_SUFFIX,
    Storage,
    StoredFile,
    open_storage,
    read_manifest,
)

COMPACTED_PREFIX = "part-compacted-"


@dataclass
class CompactionReport:
    """What one :func:`compact` run did."""

    partitions: int = 0  # partitions looked at
    merged_parts: int = 0  # small parts merged into new ones (deleted now or after the grace period)
    written_parts: int = 0  # merged parts written
    rows: int = 0  # rows in the merged parts written
    deleted_parts: int = 0  # superseded parts deleted (of this run with grace=0, or of earlier runs)
    deleted_temporary: int = 0  # temporary files left by crashed writers, removed
    pending: int = 0  # merges whose sources wait for the grace period to pass
    errors: list[str] = field(default_factory=list)


def compact(
    root: str | os.PathLike[str],
    *,
    deployment: str | None = None,
    min_files: int = 8,
    target_rows: int = 1_000_000,
    min_age: float = 60.0,
    grace: float = 60.0,
    stale_after: float = 3600.0,
    compression: str = "zstd",
) -> CompactionReport:
    """Merge the small parts of each partition of the dataset at ``root`` (or of one deployment).

    A partition is compacted when it holds at least ``min_files`` small parts (fewer than ``target_rows / 2`` rows)
    older than ``min_age`` seconds; they are merged in name order into parts of up to ``target_rows`` rows. Sources
    are deleted ``grace`` seconds after their merged part appeared (on the next run; at once with ``grace=0``).
    Temporary files older than ``stale_after`` seconds (left by a crash) are removed. A failure in one partition is
    reported in ``errors`` and leaves it as it was; the other partitions go on.
    """
    if min_files < 2 or target_rows < 2:
        raise InvalidArgument("need min_files >= 2 and target_rows >= 2", details={"min_files": min_files})
    if deployment is not None:
        check_name(deployment, field="deployment")
    storage = open_storage(root)
    report = CompactionReport()
    partitions: dict[tuple[str, str], list[StoredFile]] = defaultdict(list)
    for f in storage.files(deployment):
        partitions[f.deployment, f.date].append(f)
    for (dep, date), files in sorted(partitions.items()):
        report.partitions += 1
        try:
            _compact_partition(
                storage, storage.partition(dep, date), files, report, min_files, target_rows, min_age, grace,
                stale_after, compression,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - one partition's trouble must not stop the others
            report.errors.append(f"deployment={dep}/date={date}: {type(e).__name__}: {e}")
    return report


def _compact_partition(
    storage: Storage,
    directory: str,
    files: list[StoredFile],
    report: CompactionReport,
    min_files: int,
    target_rows: int,
    min_age: float,
    grace: float,
    stale_after: float,
    compression: str,
) -> None:
    now = time.time()
    parts = {f.name: f for f in files if f.is_part}
    busy: set[str] = set()
    for m in (f for f in files if f.is_manifest):
        data = read_manifest(storage, m.path)
        if data is None:
            continue
        sources = [str(s) for s in data["sources"]]
        age = now - float(data.get("created", 0))
        if data["merged"] in parts and age >= grace:
            _finish(storage, directory, m.path, sources, report)
            for s in sources:
                parts.pop(s, None)
        elif data["merged"] not in parts and age >= stale_after:
            storage.delete(m.path)  # a merge that died before its part appeared: the sources were never hidden
        else:
            report.pending += data["merged"] in parts
            busy.update(sources)
            busy.add(data["merged"])
    for f in files:
        if f.is_temporary and now - (storage.modified(f.path) or now) >= stale_after:
            report.deleted_temporary += storage.delete(f.path)

    candidates = []
    for name in sorted(parts):
        if name in busy or now - (storage.modified(parts[name].path) or 0.0) < min_age:
            continue
        with storage.open(parts[name].path) as fh:
            rows = pq.read_metadata(fh).num_rows
        if rows < target_rows // 2:
            candidates.append((name, rows))
    if len(candidates) < min_files:
        return
    bins: list[list[tuple[str, int]]] = [[]]
    for name, rows in candidates:
        if bins[-1] and sum(r for _, r in bins[-1]) + rows > target_rows:
            bins.append([])
        bins[-1].append((name, rows))
    for chosen in bins:
        if len(chosen) >= 2:
            _merge(storage, directory, chosen, report, grace, compression)


def _merge(
    storage: Storage,
    directory: str,
    chosen: list[tuple[str, int]],
    report: CompactionReport,
    grace: float,
    compression: str,
) -> None:
    ident = f"{int(time.time()):08x}{secrets.token_hex(4)}"
    merged = f"{COMPACTED_PREFIX}{ident}{PART_SUFFIX}"
    manifest = f"{MANIFEST_PREFIX}{ident}{MANIFEST_SUFFIX}"
    sources = [name for name, _ in chosen]
    expected = sum(rows for _, rows in chosen)
    body = {"merged": merged, "sources": sources, "rows": expected, "created": time.time()}
    storage.write_bytes(directory, manifest, json.dumps(body).encode())
    manifest_path = storage.join(directory, manifest)
    merged_path = storage.join(directory, merged)
    try:
        tables = []
        for name in sources:
            with storage.open(storage.join(directory, name)) as fh:
                tables.append(pq.read_table(fh))
        table = unify_tables(tables)
        if table.num_rows != expected:
            raise RuntimeError(f"read {table.num_rows} rows from the sources, their footers say {expected}")
        storage.write_parquet(directory, merged, table, compression)
        with storage.open(merged_path) as fh:
            written = pq.read_metadata(fh).num_rows
        if written != expected:
            raise RuntimeError(f"the merged part holds {written} rows instead of {expected}")
    except BaseException:
        # Undo in the order that keeps readers whole: the merged part first (the sources become visible again).
        storage.delete(merged_path)
        storage.delete(manifest_path)
        raise
    report.merged_parts += len(sources)
    report.written_parts += 1
    report.rows += expected
    if grace <= 0:
        _finish(storage, directory, manifest_path, sources, report)
    else:
        report.pending += 1


def _finish(storage: Storage, directory: str, manifest_path: str, sources: list[str], report: CompactionReport) -> None:
    # Sources first, the manifest last: while it exists it hides whatever sources are left.
    for name in sources:
        report.deleted_parts += storage.delete(storage.join(directory, name))
    storage.delete(manifest_path)
