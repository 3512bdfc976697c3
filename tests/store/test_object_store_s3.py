"""Artifacts, the prediction log and the feedback log on S3 (moto's S3-compatible server), configured as a user does.

The only configuration is the environment any AWS SDK reads (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) and Steward's three URLs, as docs/deployment.md describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from modelsteward import IntegrityError, LocalSteward
from modelsteward.settings import Settings

BUCKET = "steward-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A moto S3 server on a free port, the environment pointing at it, and an s3fs filesystem on it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()  # an instance cached before would talk to another endpoint
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        try:
            yield fs
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


def _settings(data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=data_dir,  # the SQLite metadata; everything else is in the bucket
        artifact_url=f"s3://{BUCKET}/artifacts",
        inference_url=f"s3://{BUCKET}/inference",
        feedback_url=f"s3://{BUCKET}/feedback",
        log_flush_interval=0.05,
        scheduler=False,
        **extra,
    )


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, n), "y": rng.uniform(0, 1, n)})


def test_a_whole_flow_with_artifacts_and_logs_in_a_bucket(tmp_path: Path, s3: Any) -> None:
    train = _data(3000, 0)
    model = LogisticRegression().fit(train, (train["x"] > 0).astype(int))
    st = LocalSteward(settings=_settings(tmp_path))
    v = st.register_model("m", model, input_example=train.head(), training_data=train)
    digest = v.artifact.sha256
    assert s3.cat_file(f"{BUCKET}/artifacts/sha256/{digest[:2]}/{digest}")  # stored by its hash, in the bucket
    assert not (tmp_path / "artifacts").exists()
    st.deploy("m", "m/1")
    st.close()

    # A fresh steward (another process, as far as the store can tell) loads the artifact from the bucket.
    st = LocalSteward(settings=_settings(tmp_path))
    fresh = _data(400, 1)
    pd.testing.assert_frame_equal(st.predict("m/1", fresh), st.load_model("m/1").predict(fresh))
    assert (st.predict("m/1", fresh)["prediction"].to_numpy() == model.predict(fresh)).all()

    # Embedded serving, then the same deployment through the API, both logging to the bucket.
    served = [st.serve("m", _data(200, 10 + i, shift=0.8)) for i in range(3)]
    st.flush_logs()
    app_settings = _settings(tmp_path)
    from modelsteward.api.app import create_app

    app = create_app(app_settings)
    with TestClient(app) as client:
        body = {"dataframe_split": {"columns": ["x", "y"], "data": _data(300, 20, shift=0.8).to_numpy().tolist()}}
        response = client.post("/api/v1/deployments/m/predict", content=json.dumps(body))
        assert response.status_code == 200, response.text
        api_ids = response.json()["prediction_ids"]
        assert len(api_ids) == 300
    app.state.steward.close()  # the lifespan flushed its log on shutdown

    parts = s3.find(f"{BUCKET}/inference")
    assert parts and all(p.endswith(".parquet") and "/deployment=m/date=" in p for p in parts)
    assert not [p for p in parts if "/.tmp-" in p]  # written under a temporary name, then moved into place

    # DuckDB reads the log from the bucket.
    from modelsteward.serving.prediction_log import count, query

    assert count(f"s3://{BUCKET}/inference", "m") == 900
    logged = query(f"s3://{BUCKET}/inference", deployment="m", columns="prediction_id, in_x, out_prediction")
    ids = [i for s in served for i in s.prediction_ids] + api_ids
    assert sorted(logged["prediction_id"]) == sorted(ids)

    # Ground truth into the bucket, and performance over the join of the two logs.
    everything = pd.concat([_data(200, 10 + i, shift=0.8) for i in range(3)] + [_data(300, 20, shift=0.8)])
    truth = (everything["x"].to_numpy() > 0.5).astype(int)
    st.send_feedback("m", [{"prediction_id": i, "actual": int(a)} for i, a in zip(ids, truth, strict=True)])
    st.flush_logs()
    assert s3.find(f"{BUCKET}/feedback")
    window = {"target": {"deployment": "m"}, "window": "1h", "min_rows": 100}
    st.put_monitor("perf", {**window, "checks": [{"performance": {"metric": "accuracy", "threshold": 0.99}}]})
    perf = st.run_monitor("perf")
    assert perf.error is None and perf.figures["performance"]["labelled"] == 900
    expected = float((model.predict(everything) == truth).mean())
    assert perf.figures["performance"]["values"]["accuracy"] == pytest.approx(expected)

    # Drift over the log in the bucket, in memory (DuckDB) and part by part (Dask threads): the same figures.
    st.put_monitor("drift", {**window, "checks": [{"drift": {}}]})
    st.put_monitor("drift-dask", {**window, "engine": "dask", "checks": [{"drift": {}}]})
    local, on_dask = st.run_monitor("drift"), st.run_monitor("drift-dask")
    assert local.status == on_dask.status == "breach" and local.rows == on_dask.rows == 900
    assert local.figures["drift"]["drifted"] == on_dask.figures["drift"]["drifted"] == ["x"]
    expected_drift = {r["column"]: r["value"] for r in local.figures["drift"]["rows"]}
    for row in on_dask.figures["drift"]["rows"]:
        assert row["value"] == pytest.approx(expected_drift[row["column"]], rel=1e-9), row["column"]
    st.close()

    # The compactor merges the small parts in the bucket by the same write-then-move; no row is lost or doubled.
    from modelsteward.serving.log_compactor import compact

    report = compact(f"s3://{BUCKET}/inference", min_files=2, min_age=0, grace=0)
    assert report.errors == [] and report.written_parts >= 1 and report.deleted_parts == len(parts)
    assert count(f"s3://{BUCKET}/inference", "m") == 900
    assert len(s3.find(f"{BUCKET}/inference")) < len(parts)


def test_an_artifact_changed_in_the_bucket_is_refused_by_its_hash(tmp_path: Path, s3: Any) -> None:
    train = _data(200, 0)
    st = LocalSteward(settings=_settings(tmp_path))
    v = st.register_model("tampered", LogisticRegression().fit(train, (train["x"] > 0).astype(int)))
    st.close()
    digest = v.artifact.sha256
    key = f"{BUCKET}/artifacts/sha256/{digest[:2]}/{digest}"
    s3.pipe_file(key, s3.cat_file(key) + b"\0")  # someone with write access to the bucket
    st = LocalSteward(settings=_settings(tmp_path))
    with pytest.raises(IntegrityError, match="tampered/1 was changed after registration"):
        st.load_model("tampered/1")
    st.close()
