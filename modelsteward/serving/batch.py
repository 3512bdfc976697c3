"""Batch scoring: read a CSV or Parquet file in chunks, predict, write the results as they come."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelsteward.errors import InvalidArgument
from modelsteward.kinds.loaded import LoadedModel

Progress = Callable[[int, int | None], None]
"""Called after each chunk with (rows done, total rows if known)."""


def _chunks(path: Path, chunk_size: int) -> tuple[Iterator[pd.DataFrame], int | None]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidArgument(f"no such file: {path}", details={"field": "input"})
    if suffix in (".parquet", ".pq"):
        try:
            # pre_buffer (pyarrow's default) keeps every row group read so far: memory would grow with the file
            parquet = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowInvalid, OSError) as e:
            raise InvalidArgument(f"cannot read {path} as Parquet: {e}", details={"field": "input"}) from e
        total = parquet.metadata.num_rows
        return (batch.to_pandas() for batch in parquet.iter_batches(batch_size=chunk_size)), total
    if suffix == ".csv":
        try:
            reader = pd.read_csv(path, chunksize=chunk_size)
        except (ValueError, OSError) as e:
            raise InvalidArgument(f"cannot read {path} as CSV: {e}", details={"field": "input"}) from e
        return iter(reader), None
    raise InvalidArgument(
        f"unsupported input type {suffix or '(none)'}: use .csv or .parquet", details={"field": "input"}
    )


def score_file(
    model: LoadedModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    chunk_size: int = 50_000,
    include_input: bool = True,
    progress: Progress | None = None,
) -> int:
    """Score ``input_path`` with ``model`` into ``output_path`` (.parquet or .csv); returns the row count.

    Columns the model does not use are ignored; with ``include_input`` they are copied to the
    output next to the predictions. The output is written to a temporary file and renamed at the
    end, so a failure half-way leaves no partial result behind.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    out_suffix = output_path.suffix.lower()
    if out_suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidArgument("the output must be a .parquet or .csv file", details={"field": "output"})
    if chunk_size < 1:
        raise InvalidArgument("chunk_size must be at least 1", details={"field": "chunk_size"})
    chunks, total = _chunks(input_path, chunk_size)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output_path.parent, prefix=f".{output_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    writer: pq.ParquetWriter | None = None
    done = 0
    try:
        for chunk in chunks:
            predictions = model.predict(chunk, allow_extra=True)
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
            if out_suffix == ".csv":
                result.to_csv(tmp, mode="a", header=done == 0, index=False)
            else:
                table = pa.Table.from_pandas(result, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        if writer is not None:
            writer.close()
            writer = None
        elif out_suffix != ".csv":
            pq.write_table(pa.table({}), tmp)  # an empty input still gives a readable file
        os.replace(tmp, output_path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return done
