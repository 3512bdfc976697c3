"""Batch scoring on Dask: each partition of a CSV or Parquet input is scored and written as one Parquet
part by the worker that holds it, so no process ever holds the whole data set.

Each worker loads the version once from the artifact bytes (shipped once per worker, sha256 checked
there) and keeps it for the rest of the run; the rows and columns written equal ``batch.score_file``'s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from modelsteward.errors import IntegrityError, InvalidArgument, require

Progress = Callable[[int, int | None], None]
"""Called after each partition with (rows done, total rows if known)."""

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler before giving up (an unreachable address fails this fast)."""

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _load_on_worker(version_json: dict[str, Any], data: bytes) -> Any:
    """The version as a ``LoadedModel``, loaded once per worker process and artifact (sha256 checked)."""
    from modelsteward.domain.records import ModelVersion
    from modelsteward.kinds.base import SavedModel
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.kinds.registry import get_kind

    version = ModelVersion.model_validate(version_json)
    key = f"{version.kind}:{version.artifact.sha256}"
    with _models_lock:
        loaded = _models.get(key)
        if loaded is None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != version.artifact.sha256:
                raise IntegrityError(
                    f"the artifact of {version.ref} reached the worker with sha256 {actual[:12]}... but "
                    f"{version.artifact.sha256[:12]}... was registered; refusing to use it",
                    details={"model_version": version.ref},
                )
            kind = get_kind(version.kind)
            saved = SavedModel(data=data, format=version.artifact.format, metadata=version.artifact.metadata)
            loaded = _models[key] = LoadedModel(kind, kind.load(saved), version)
    return loaded


def _score_partition(
    chunk: pd.DataFrame, artifact: tuple[dict[str, Any], bytes], part: str, include_input: bool
) -> int:
    """Score one partition and write it to ``part`` (runs on a Dask worker); returns its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    model = _load_on_worker(*artifact)
    chunk = chunk.reset_index(drop=True)
    predictions = model.predict(chunk, allow_extra=True).set_axis(chunk.index, axis=0)
    if include_input:
        clash = sorted(set(chunk.columns) & set(predictions.columns))
        if clash:
            raise InvalidArgument(
                f"input columns {clash} have the same names as the model's outputs; use --no-include-input",
                details={"field": "include_input", "columns": clash},
            )
        result = pd.concat([chunk, predictions], axis=1)
    else:
        result = predictions
    pq.write_table(pa.Table.from_pandas(result, preserve_index=False), part)
    return len(result)


def _read(path: Path, blocksize: int | str | None) -> tuple[Any, int | None]:
    """The input as a Dask DataFrame (one partition per row group or block) and its row count if known."""
    dd = require("dask.dataframe", "dask")
    if not path.exists():
        raise InvalidArgument(f"no such file: {path}", details={"field": "input"})
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq") or path.is_dir():
            import pyarrow.dataset as ds

            total = ds.dataset(path, format="parquet").count_rows()
            if blocksize is None:
                frame = dd.read_parquet(str(path), split_row_groups=True)
            else:
                frame = dd.read_parquet(str(path), split_row_groups="infer", blocksize=blocksize)
            return frame, total
        if suffix == ".csv":
            return dd.read_csv(str(path), blocksize=blocksize or "64MB"), None
    except (ValueError, OSError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}", details={"field": "input"}) from e
    raise InvalidArgument(
        f"unsupported input type {suffix or '(none)'}: use .csv, .parquet or a Parquet directory",
        details={"field": "input"},
    )


def _client(scheduler: str | None) -> tuple[Any, Any]:
    """A client on ``scheduler``, or on a LocalCluster started for this run (closed with the client)."""
    distributed = require("dask.distributed", "dask")
    if not scheduler:
        cluster = distributed.LocalCluster(dashboard_address=None)
        return distributed.Client(cluster), cluster
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT), None
    except (OSError, TimeoutError, ValueError) as e:
        raise InvalidArgument(
            f"cannot reach the Dask scheduler at {scheduler}: {e}", details={"field": "scheduler", "value": scheduler}
        ) from e


def score_with_dask(
    version_json: dict[str, Any],
    artifact: bytes,
    input_path: str | Path,
    output_path: str | Path,
    *,
    scheduler: str | None = None,
    include_input: bool = True,
    blocksize: int | str | None = None,
    progress: Progress | None = None,
) -> int:
    """Score ``input_path`` into the Parquet directory ``output_path`` (``part-00000.parquet``... in input
    order) on Dask; returns the row count.

    ``scheduler`` is a ``dask.distributed`` address (``tcp://10.0.0.5:8786``); without one a LocalCluster
    runs for the call. Parquet inputs are split by row group unless ``blocksize`` is given. The parts are
    written to a temporary sibling directory renamed at the end, so a failure leaves no partial output;
    workers must see the input and output paths (a shared file system).
    """
    input_path, output_path = Path(input_path).resolve(), Path(output_path).resolve()
    if output_path.exists() and (not output_path.is_dir() or any(output_path.iterdir())):
        raise InvalidArgument(
            f"{output_path} already exists: the Dask engine writes a new directory of Parquet parts",
            details={"field": "output"},
        )
    dask = require("dask", "dask")
    # Dask's own string conversion would write "string" columns where the local path writes "str".
    with dask.config.set({"dataframe.convert-string": False}):
        frame, total = _read(input_path, blocksize)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    client, cluster = _client(scheduler)
    tmp = Path(tempfile.mkdtemp(dir=output_path.parent, prefix=f".{output_path.name}.", suffix=".tmp"))
    try:
        # One key for the artifact: each worker fetches it once, however many partitions it scores.
        shipped = dask.delayed((version_json, artifact), pure=True)
        tasks = [
            dask.delayed(_score_partition)(part, shipped, str(tmp / f"part-{i:05d}.parquet"), include_input)
            for i, part in enumerate(frame.to_delayed())
        ]
        distributed = require("dask.distributed", "dask")
        done = 0
        for future in distributed.as_completed(client.compute(tasks)):
            done += future.result()
            if progress is not None:
                progress(done, total)
        os.replace(tmp, output_path)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return done
