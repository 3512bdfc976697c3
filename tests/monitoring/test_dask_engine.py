"""A drift monitor on Dask gives the same figures as the in-memory path (LocalCluster and threads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelsteward import LocalSteward
from modelsteward.settings import Settings

pytestmark = pytest.mark.slow


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.uniform(0, 1, n), "z": rng.exponential(2.0, n)})


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def test_drift_on_dask_equals_the_in_memory_drift(tmp_path: Path, cluster) -> None:
    st = LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=0.05))
    train = _data(5000, 0)
    model = LogisticRegression().fit(train, (train["x"] > 0).astype(int))
    st.register_model("m", model, input_example=train.head(), training_data=train)
    st.deploy("m", "m/1")
    for i in range(12):  # several requests and flushes: several Parquet parts
        st.serve("m", _data(250, 100 + i, shift=0.4 if i % 2 else 0.0))
        st.gateway.sink.flush()  # type: ignore[union-attr]
    st.stop_serving()
    spec = {"target": {"deployment": "m"}, "window": "1h", "min_rows": 100, "checks": [{"drift": {}}]}
    st.put_monitor("local", spec)
    st.put_monitor("threads", {**spec, "engine": "dask"})
    local = st.run_monitor("local")
    on_threads = st.run_monitor("threads")
    st.settings = st.settings.model_copy(update={"dask_scheduler": cluster.scheduler_address})
    st.monitors.dask_scheduler = cluster.scheduler_address
    st.put_monitor("cluster", {**spec, "engine": "dask"})
    on_cluster = st.run_monitor("cluster")
    assert local.status == on_threads.status == on_cluster.status == "breach"
    assert local.rows == on_threads.rows == on_cluster.rows == 3000
    for result in (on_threads, on_cluster):
        expected = {r["column"]: r["value"] for r in local.figures["drift"]["rows"]}
        got = {r["column"]: r["value"] for r in result.figures["drift"]["rows"]}
        assert got.keys() == expected.keys()
        for column, value in expected.items():
            assert got[column] == pytest.approx(value, rel=1e-9, abs=1e-12), column
        assert result.figures["drift"]["drifted"] == local.figures["drift"]["drifted"] == ["x"]

    # A cluster that cannot finish in time fails the run with the cause, instead of holding the round forever.
    st.monitors.dask_timeout = 1e-4
    stalled = st.run_monitor("cluster")
    assert stalled.status == "error", stalled
    assert f"the Dask cluster at {cluster.scheduler_address} did not summarise the window" in (stalled.error or "")
    st.monitors.dask_timeout = 3600.0
    assert st.run_monitor("cluster").status == "breach"  # the cluster is still usable afterwards
    st.close()


def test_only_drift_checks_run_on_dask(tmp_path: Path) -> None:
    st = LocalSteward(settings=Settings(data_dir=tmp_path))
    train = _data(500, 0)
    st.register_model("m", LogisticRegression().fit(train, (train["x"] > 0).astype(int)), training_data=train)
    st.deploy("m", "m/1")
    st.put_monitor(
        "mixed", {"target": {"deployment": "m"}, "engine": "dask", "checks": [{"drift": {}}, {"quality": {}}]}
    )
    result = st.run_monitor("mixed")
    assert result.status == "error" and "engine: local" in (result.error or "")
    st.close()
