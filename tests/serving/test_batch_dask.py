"""Batch scoring on Dask (``steward predict --engine dask``) writes the same rows as the single-machine path."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelsteward.cli.main import app
from modelsteward.local_steward import LocalSteward
from modelsteward.serving import batch_dask
from modelsteward.settings import Settings

pytestmark = pytest.mark.slow

runner = CliRunner()
ROWS = 50_000


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    # Worker processes, so the artifact really travels and each worker loads the model itself.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


@pytest.fixture()
def scored_setup(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    train = pd.DataFrame({"x": rng.normal(0, 1, 2000), "y": rng.uniform(0, 1, 2000)})
    model = LogisticRegression().fit(train, (train["x"] + train["y"] > 0.5).astype(int))
    data_dir = tmp_path / "data"
    st = LocalSteward(settings=Settings(data_dir=data_dir))
    st.register_model("m", model, input_example=train.head())
    st.close()
    frame = pd.DataFrame(
        {
            "row_id": np.arange(ROWS),
            "x": rng.normal(0, 1, ROWS),
            "y": rng.uniform(0, 1, ROWS),
            "segment": rng.choice(["a", "b", "c"], ROWS),
        }
    )
    source = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), source, row_group_size=6_000)  # 9 groups
    return data_dir, source


def _predict(data_dir: Path, *args: str) -> object:
    return runner.invoke(app, ["predict", "m/1", "--data-dir", str(data_dir), *args])


def test_dask_engine_writes_the_same_rows_as_the_local_engine(tmp_path: Path, scored_setup, cluster) -> None:
    data_dir, source = scored_setup
    local_out, dask_out = tmp_path / "local.parquet", tmp_path / "scored"
    local = _predict(data_dir, "--input", str(source), "--output", str(local_out), "--chunk-size", "7000")
    assert local.exit_code == 0, local.output
    on_dask = _predict(
        data_dir,
        "--input",
        str(source),
        "--output",
        str(dask_out),
        "--engine",
        "dask",
        "--scheduler",
        cluster.scheduler_address,
    )
    assert on_dask.exit_code == 0, on_dask.output
    assert f"scored {ROWS} row(s)" in on_dask.output
    parts = sorted(dask_out.glob("part-*.parquet"))
    assert len(parts) == pq.ParquetFile(source).num_row_groups == 9
    expected = pd.read_parquet(local_out)
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert (
        list(got.columns)
        == list(expected.columns)
        == ["row_id", "x", "y", "segment", "prediction", "proba_0", "proba_1"]
    )
    assert got["row_id"].tolist() == list(range(ROWS))  # input order kept, part by part
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert [str(t) for t in got.dtypes] == [str(t) for t in expected.dtypes]


def test_dask_engine_without_input_columns(tmp_path: Path, scored_setup, cluster) -> None:
    data_dir, source = scored_setup
    st = LocalSteward(settings=Settings(data_dir=data_dir))
    try:
        rows = st.score_with_dask(
            "m/1", source, tmp_path / "out", scheduler=cluster.scheduler_address, include_input=False
        )
        st.score_file("m/1", source, tmp_path / "local.parquet", include_input=False)
    finally:
        st.close()
    assert rows == ROWS
    got = pd.read_parquet(tmp_path / "out")  # the directory reads as one data set
    expected = pd.read_parquet(tmp_path / "local.parquet")
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)


def test_unreachable_scheduler_exits_1_with_a_message(tmp_path: Path, scored_setup, monkeypatch) -> None:
    data_dir, source = scored_setup
    monkeypatch.setattr(batch_dask, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "scored"
    result = _predict(
        data_dir,
        "--input",
        str(source),
        "--output",
        str(out),
        "--engine",
        "dask",
        "--scheduler",
        f"tcp://127.0.0.1:{port}",
    )
    assert result.exit_code == 1
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in result.output
    assert not out.exists() and not list(tmp_path.glob(".scored.*"))  # nothing half-written


def test_unknown_engine_exits_1_with_a_message(tmp_path: Path, scored_setup) -> None:
    data_dir, source = scored_setup
    result = _predict(data_dir, "--input", str(source), "--output", str(tmp_path / "o.parquet"), "--engine", "spark")
    assert result.exit_code == 1
    assert "unknown engine 'spark': use local or dask" in result.output
