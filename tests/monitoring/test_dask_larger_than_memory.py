"""A drift monitor over a prediction log larger than a Dask worker's memory runs part by part on a cluster
(``steward monitor run NAME --scheduler tcp://...``) and gives the figures of the single-machine path.

The log is written directly with pyarrow in the prediction log's layout and columns (serving millions of
predictions would take minutes): ``deployment=NAME/date=D/part-*.parquet``, the fixed columns of
``PREDICTION_COLUMNS`` and ``in_``/``out_`` columns.
"""

from __future__ import annotations

import importlib
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelsteward import LocalSteward
from modelsteward.cli.main import app
from modelsteward.monitoring.window import INPUT_PREFIX, OUTPUT_PREFIX
from modelsteward.serving.log_columns import TIMESTAMP
from modelsteward.serving.log_storage import DATE_KEY, DEPLOYMENT_KEY
from modelsteward.serving.prediction_log import PREDICTION_COLUMNS
from modelsteward.settings import Settings

pytestmark = pytest.mark.slow

WORKER_MEMORY = 400 * 2**20  # each of the two workers: an idle worker with pandas and pyarrow loaded holds ~150 MiB
INPUTS = [f"f{i:02d}" for i in range(96)]  # wide rows: the bytes of a big log, fewer rows to convert
PARTS, ROWS_PER_PART = 44, 14_000  # 616,000 predictions, ~11.4 MiB a part, ~500 MiB in all
DEPLOYMENT = "big"
_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "TIMESTAMPTZ": TIMESTAMP}
_PARTITION = ("deployment", "date")


def _inputs(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    """One row per input column (contiguous columns for Arrow)."""
    values = rng.standard_normal((len(INPUTS), n))
    values[:4] += shift  # the first columns drift in part of the traffic
    return values


def _write_log(root: Path, start: datetime) -> int:
    """The parts of the log, as the prediction log writes them; returns their size on disk."""
    rng = np.random.default_rng(7)
    size = 0
    for i in range(PARTS):
        ts0 = start + timedelta(seconds=30 * i)
        n = ROWS_PER_PART
        ids = pc.cast(pa.array(np.arange(i * n, (i + 1) * n)), pa.string())
        fixed = {
            "prediction_id": ids,
            "request_id": ids,
            "arm": pa.array(["champion"] * n),
            "model": pa.array([DEPLOYMENT] * n),
            "version": pa.array(np.ones(n, dtype=np.int64)),
            "ref": pa.array([f"{DEPLOYMENT}/1"] * n),
            "step": pa.nulls(n, pa.string()),
            "status": pa.array(["ok"] * n),
            "error": pa.nulls(n, pa.string()),
            "latency_ms": pa.array(rng.uniform(0.5, 3.0, n)),
            "ts": pa.array(pd.Timestamp(ts0).value // 1000 + np.arange(n), type=TIMESTAMP),
        }
        assert [c for c, _ in PREDICTION_COLUMNS if c not in _PARTITION] == list(fixed)
        columns = {name: array.cast(_ARROW[dict(PREDICTION_COLUMNS)[name]]) for name, array in fixed.items()}
        values = _inputs(rng, n, shift=1.0 if i % 3 == 0 else 0.0)
        columns |= {f"{INPUT_PREFIX}{c}": pa.array(values[j]) for j, c in enumerate(INPUTS)}
        columns[f"{OUTPUT_PREFIX}prediction"] = pa.array((values[0] > 0).astype(np.int64))
        directory = root / f"{DEPLOYMENT_KEY}{DEPLOYMENT}" / f"{DATE_KEY}{ts0.date().isoformat()}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"part-gen-{i:04d}.parquet"
        pq.write_table(pa.table(columns), path, compression="none", use_dictionary=False)
        size += path.stat().st_size
    return size


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY, dashboard_address=None
    ) as local:
        yield local


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # Linux: VmHWM (peak resident memory) starts again from now
        f.write("5")


def _memory() -> dict[str, int]:
    """This process's resident memory now and at its peak, in bytes (Linux)."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


def test_drift_over_a_log_larger_than_a_worker_memory_equals_the_single_machine_path(tmp_path: Path, cluster) -> None:
    from dask.distributed import Client, get_task_stream

    at = datetime.now(UTC).replace(microsecond=0)
    size = _write_log(tmp_path / "inference", at - timedelta(minutes=40))
    assert size > WORKER_MEMORY

    st = LocalSteward(settings=Settings(data_dir=tmp_path))
    train = pd.DataFrame(_inputs(np.random.default_rng(0), 5000, 0.0).T, columns=INPUTS)
    model = LogisticRegression(max_iter=200).fit(train, (train["f00"] > 0).astype(int))
    st.register_model(DEPLOYMENT, model, training_data=train)
    st.deploy(DEPLOYMENT, f"{DEPLOYMENT}/1")
    spec = {"target": {"deployment": DEPLOYMENT}, "window": "1h", "min_rows": 1000, "checks": [{"drift": {}}]}
    st.put_monitor("big-local", spec)
    st.put_monitor("big-dask", {**spec, "engine": "dask"})

    with Client(cluster.scheduler_address) as client:
        # _memory travels by value: a worker importing this module (sklearn, the CLI) would measure that
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        client.run(importlib.import_module, "modelsteward.monitoring.dask_engine")  # imports are not data
        client.run(_reset_peak)
        pids, before = client.run(os.getpid), client.run(_memory)
        # The command line, as an operator runs it against a cluster: engine: dask in the monitor's
        # definition, the scheduler's address given with --scheduler.
        with get_task_stream(client) as stream:
            command = ["monitor", "run", "big-dask", "--at", at.isoformat(), "--data-dir", str(tmp_path),
                       "--scheduler", cluster.scheduler_address]  # fmt: skip
            out = CliRunner().invoke(app, command)
        assert out.exit_code == 0, out.output
        assert client.run(os.getpid) == pids  # no worker was killed (and restarted) for its memory
        after = client.run(_memory)
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    on_dask = st.monitor_results("big-dask")[0]

    # One task per part, on both workers; no worker's peak memory reached its limit or grew by a quarter of the log
    # (what it grows by is Arrow's and malloc's retained batches, the same for any size of log).
    tasks = [t for t in stream.data if str(t["key"]).startswith("_part_sketch")]
    assert len(tasks) == PARTS and {t["worker"] for t in tasks} == set(pids)
    for worker, memory in after.items():
        assert memory["VmHWM"] < WORKER_MEMORY
        assert memory["VmHWM"] - before[worker]["VmRSS"] < size / 4, (worker, memory, before[worker])

    local = st.run_monitor("big-local", at=at)
    assert on_dask.error is None and local.error is None
    assert on_dask.rows == local.rows == PARTS * ROWS_PER_PART
    assert on_dask.status == local.status == "breach"
    expected = {r["column"]: r["value"] for r in local.figures["drift"]["rows"]}
    got = {r["column"]: r["value"] for r in on_dask.figures["drift"]["rows"]}
    assert got.keys() == expected.keys() == set(INPUTS)
    for column, value in expected.items():
        assert got[column] == pytest.approx(value, rel=1e-9, abs=1e-12), column
    assert on_dask.figures["drift"]["drifted"] == local.figures["drift"]["drifted"] == INPUTS[:4]
    st.close()
