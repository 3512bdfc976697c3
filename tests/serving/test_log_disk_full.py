"""A full disk under the prediction log: back-pressure (503), one alert, metrics, readiness; recovery, no loss."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.api.app import create_server
from modelsteward.local_steward import LocalSteward
from modelsteward.serving.prediction_log import LogFull, LogHealth, PredictionBatch, PredictionLog, query
from modelsteward.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WRITER_LOG = "modelsteward.serving.dataset_writer"


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "timed out"
            return value
        time.sleep(0.02)


def logged_ids(root: str | Path) -> set[str]:
    return set(query(str(root), columns="prediction_id")["prediction_id"])


def firing(st: LocalSteward) -> list:
    return [a for a in st.alerts.list_alerts(status="firing") if a.rule == "system-prediction-log"]


def small_log_settings(data_dir: Path, **fields: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        log_flush_interval=0.05,
        log_max_queue_rows=60,
        log_retry_max=0.1,
        log_alert_after_failures=2,
        route_refresh_interval=0.05,
        scheduler=False,
        tune_gc=False,
        **fields,
    )


class SwitchableDisk:
    """Wraps a log's storage: while ``full``, every write fails as a full disk does."""

    def __init__(self, log: PredictionLog) -> None:
        self.write = log._storage.write_parquet
        self.full = False
        log._storage.write_parquet = self  # type: ignore[method-assign]

    def __call__(self, *args: Any) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.write(*args)


# -- the writer's state, without a disk ---------------------------------------------------------------------------


def test_the_writer_reports_a_persistent_failure_once_and_its_end_once(tmp_path: Path, caplog) -> None:
    changes: list[LogHealth] = []
    root = tmp_path / "inference"
    log = PredictionLog(
        root, worker="w1", flush_interval=0.02, retry_initial=0.01, retry_max=0.02, alert_after_failures=3,
        on_health=changes.append,
    )  # fmt: skip
    disk = SwitchableDisk(log)
    try:
        disk.full = True
        with caplog.at_level(logging.DEBUG, logger=WRITER_LOG):
            log.append("d", batch("a"))
            wait_until(lambda: log.write_errors >= 10)  # many retries...
            assert len(changes) == 1  # ...one report
            health = changes[0]
            assert health.failing and log.failing and health.worker == "w1" and health.root == str(root)
            assert health.errno == errno.ENOSPC and "No space left on device" in (health.error or "")
            assert health.failed_attempts == 3 and health.queue_depth == 1 and health.since is not None
            assert not log.refusing  # failing, but the queue still has room
            disk.full = False
            log.flush(timeout=5)
        assert [c.failing for c in changes] == [True, False] and not log.failing
        assert changes[1].failed_attempts >= 10 and "written again" in changes[1].describe()
        errors = [r for r in caplog.records if r.name == WRITER_LOG and r.levelno >= logging.ERROR]
        warnings = [r for r in caplog.records if r.name == WRITER_LOG and r.levelno == logging.WARNING]
        assert len(errors) == 1 and "cannot be written" in errors[0].getMessage()
        assert len(warnings) == 2  # the first failure, and the recovery: not one line per retry
        assert logged_ids(root) == {"a"}
    finally:
        log.close(timeout=2)


def batch(pid: str) -> PredictionBatch:
    return PredictionBatch(request_id=pid, prediction_ids=[pid], inputs={"x": [1.0]}, outputs={"y": [0.5]},
                           model="m", version=1)  # fmt: skip


def test_a_failing_log_raises_an_alert_refuses_beyond_its_queue_and_resolves_with_nothing_lost(
    tmp_path: Path, numeric_model
) -> None:
    model, X = numeric_model
    st = LocalSteward(settings=small_log_settings(tmp_path / "data"))
    try:
        st.register_model("risk", model, input_example=X.head())
        st.deploy("risk", "risk/1")
        st.start_serving()
        sink = st.gateway.sink
        assert isinstance(sink, PredictionLog) and sink.max_queue_rows == 60
        disk = SwitchableDisk(sink)
        disk.full = True
        acknowledged: list[str] = []
        with pytest.raises(LogFull) as refused:
            for i in range(100):
                acknowledged += st.serve("risk", X.head(3), request_id=f"r{i}").prediction_ids
        assert refused.value.http_status == 503 and refused.value.code == "unavailable"
        assert refused.value.details["retry_after"] >= 1 and len(acknowledged) == 60
        assert not st.serving_ready()

        (alert,) = wait_until(lambda: firing(st))
        assert alert.severity == "critical" and alert.details["worker"] == sink.worker
        assert alert.details["log"] == st.settings.resolved_inference_url() and alert.details["errno"] == errno.ENOSPC
        time.sleep(0.3)  # more retries fail: still one alert, raised once
        assert [(a.id, a.occurrences) for a in firing(st)] == [(alert.id, 1)]
        stats = st.serving_stats()
        assert stats["log_failing"] == 1 and stats["log_rows_rejected"] == 3 and stats["log_write_errors"] >= 3

        disk.full = False
        wait_until(lambda: st.alerts.get_alert(alert.id).status == "resolved")
        wait_until(lambda: sink.queue_depth == 0)
        assert st.serving_ready() and st.serving_stats()["log_failing"] == 0
        acknowledged += st.serve("risk", X.head(3), request_id="after").prediction_ids
        st.flush_logs()
        assert logged_ids(st.settings.resolved_inference_url()) == set(acknowledged)
    finally:
        st.close()


# -- a real full disk ------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted after the test. Mounting needs root: CI runs as root and must run this test."""

    def unavailable(reason: str) -> None:
        if IN_CI:
            pytest.fail(f"{reason}; CI must run the full-disk test")
        pytest.skip(f"{reason} (the full-disk test runs in CI, as root)")

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        unavailable("no mount command")
    point = tmp_path / "tiny"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)], capture_output=True, text=True, check=False
    )
    if mounted.returncode:
        unavailable(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(point)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem says ENOSPC; returns it (delete it to free the space)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_answers_503_raises_one_alert_and_loses_no_acknowledged_prediction(
    tiny_disk: Path, tmp_path: Path, numeric_model
) -> None:
    model, X = numeric_model
    root = tiny_disk / "inference"
    app = create_server(small_log_settings(tmp_path / "data", inference_url=str(root)))
    st: LocalSteward = app.state.steward
    st.register_model("risk", model, input_example=X.head())
    st.deploy("risk", "risk/1")
    rows = {"dataframe_records": X.head(3).to_dict(orient="records")}
    acknowledged: list[str] = []
    refused: list[str] = []

    def predict(request_id: str) -> Any:
        response = client.post("/api/v1/deployments/risk/predict", json={**rows, "id": request_id})
        assert response.status_code in (200, 503), response.text  # never a 500
        if response.status_code == 200:
            acknowledged.extend(response.json()["prediction_ids"])
        else:
            refused.append(request_id)
        return response

    with TestClient(app) as client:
        assert predict("before").status_code == 200
        st.flush_logs()
        assert client.get("/v2/health/ready").status_code == 200

        filler = fill(tiny_disk)
        for i in range(200):
            response = predict(f"r{i}")
            if response.status_code == 503:
                break
        assert response.status_code == 503 and len(acknowledged) > 3
        error = response.json()["error"]
        assert error["code"] == "unavailable" and "prediction log" in error["message"]
        assert error["details"]["max_queue_rows"] == 60 and int(response.headers["retry-after"]) >= 1
        # Refused while the disk stays full; the probe tells the load balancer to go elsewhere.
        assert predict("still-full").status_code == 503
        assert client.get("/v2/health/ready").status_code == 503

        (alert,) = wait_until(lambda: firing(st))
        assert alert.details["log"] == str(root) and "worker" in alert.details
        assert alert.details["errno"] == errno.ENOSPC and "No space left on device" in alert.details["error"]
        assert str(root) in alert.title
        time.sleep(0.3)  # retries keep failing
        assert [(a.id, a.occurrences) for a in firing(st)] == [(alert.id, 1)]
        metrics = client.get("/metrics").text
        assert metric(metrics, "steward_prediction_log_write_errors") >= 2
        assert metric(metrics, "steward_prediction_log_rows_rejected") == 3 * len(refused)
        assert metric(metrics, "steward_prediction_log_failing") == 1

        filler.unlink()  # space again
        wait_until(lambda: st.alerts.get_alert(alert.id).status == "resolved")
        wait_until(lambda: st.gateway.sink.queue_depth == 0)  # type: ignore[union-attr]
        assert client.get("/v2/health/ready").status_code == 200
        assert predict("after").status_code == 200
        assert metric(client.get("/metrics").text, "steward_prediction_log_failing") == 0

    # The server stopped (the log flushed): every acknowledged prediction is in the log, no refused one is.
    ids = logged_ids(root)
    assert set(acknowledged) <= ids
    assert not ids & {f"{r}-{j}" for r in refused for j in range(3)}
    assert len(ids) == len(acknowledged)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_root_an_alert_names_carries_no_credentials() -> None:
    from modelsteward.settings import strip_credentials

    assert strip_credentials("s3://AKIA:s3cr3t@bucket/inference") == "s3://bucket/inference"
    assert strip_credentials("https://user:token@host/repo.git") == "https://host/repo.git"
    assert strip_credentials("/var/lib/steward/inference") == "/var/lib/steward/inference"
    assert strip_credentials("s3://bucket/a@b") == "s3://bucket/a@b"  # an @ in the path is not a user
