"""``steward up`` as a real process: nothing acknowledged is lost on SIGTERM, a kill -9 leaves a
readable log, and several workers share one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from modelsteward import Steward
from modelsteward.serving.prediction_log import count, list_parts

pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def data_dir(tmp_path: Path, numeric_model) -> Path:
    model, X = numeric_model
    st = Steward(data_dir=tmp_path / "data")
    v = st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", v.version)
    st.deploy("risk", "risk@production")
    st.close()
    return tmp_path / "data"


@pytest.fixture
def postgres_store(tmp_path: Path, numeric_model, clean_postgres: str) -> tuple[Path, str]:
    """A data dir (artifacts, logs) whose metadata lives in PostgreSQL."""
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    model, X = numeric_model
    st = LocalSteward(settings=Settings(data_dir=tmp_path / "data", database_url=clean_postgres))
    v = st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", v.version)
    st.deploy("risk", "risk@production")
    st.close()
    return tmp_path / "data", clean_postgres


class Server:
    def __init__(
        self,
        data_dir: Path,
        *,
        workers: int = 1,
        flush_interval: float = 1.0,
        database_url: str | None = None,
        env_extra: dict[str, str] | None = None,
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")} | (env_extra or {})
        env["STEWARD_LOG_FLUSH_INTERVAL"] = str(flush_interval)
        if database_url:
            env["STEWARD_DATABASE_URL"] = database_url
        self.log = open(data_dir.parent / f"server-{self.port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelsteward.cli",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, (data_dir.parent / f"server-{self.port}.log").read_text()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        os.killpg(self.proc.pid, sig)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


def _predict(url: str, rows: list[dict], request_id: str) -> int:
    response = httpx.post(
        f"{url}/api/v1/deployments/risk/predict", json={"id": request_id, "instances": rows}, timeout=30
    )
    response.raise_for_status()
    return len(response.json()["prediction_ids"])


def test_sigterm_flushes_every_acknowledged_prediction(data_dir: Path, numeric_model) -> None:
    _, X = numeric_model
    server = Server(data_dir, flush_interval=60)  # only the shutdown flush can write the log
    records = X.head(5).to_dict(orient="records")
    acknowledged = sum(_predict(server.url, records[: 1 + i % 5], f"r{i}") for i in range(120))
    assert count(data_dir / "inference") == 0  # nothing flushed yet
    server.stop(signal.SIGTERM)
    assert count(data_dir / "inference", deployment="risk") == acknowledged


@pytest.mark.parametrize("workers", [1, 2])
def test_an_idle_keep_alive_connection_outlives_uvicorns_five_seconds(data_dir: Path, numeric_model, workers) -> None:
    """A load balancer reuses idle connections for up to its own idle timeout (60 s on AWS ALB): a server
    closing them first (uvicorn's default: after 5 s) races its next request and the client gets an error."""
    import http.client
    import json

    _, X = numeric_model
    body = json.dumps({"instances": X.head(1).to_dict(orient="records")})
    headers = {"content-type": "application/json"}
    default = Server(data_dir, workers=workers)
    short = Server(data_dir, workers=workers, env_extra={"STEWARD_KEEP_ALIVE_TIMEOUT": "1"})
    try:
        kept, dropped = (http.client.HTTPConnection("127.0.0.1", s.port, timeout=10) for s in (default, short))
        for conn in (kept, dropped):
            conn.request("POST", "/api/v1/deployments/risk/predict", body, headers)
            assert conn.getresponse().read() and conn.sock is not None
        time.sleep(6)
        kept.request("POST", "/api/v1/deployments/risk/predict", body, headers)  # the same socket, 6 s idle
        assert kept.getresponse().status == 200
        assert dropped.sock.recv(1) == b""  # the setting is what decides: after 1 s idle the server closed it
    finally:
        default.stop()
        short.stop()


def test_kill_9_leaves_a_readable_log(data_dir: Path, numeric_model) -> None:
    _, X = numeric_model
    server = Server(data_dir, flush_interval=0.2)
    records = X.head(2).to_dict(orient="records")
    sent = 0
    started = time.monotonic()
    safe = 0
    while time.monotonic() - started < 2.0:
        sent += _predict(server.url, records, f"k{sent}")
        if time.monotonic() - started < 1.0:
            safe = sent  # acknowledged well over a flush interval before the kill
    server.stop(signal.SIGKILL)
    written = count(data_dir / "inference", deployment="risk")  # must not raise
    assert safe <= written <= sent
    leftovers = [p for p in (data_dir / "inference").rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    assert all(".tmp" in p.name for p in leftovers)  # only ignored temporary files may remain


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_workers_share_the_store_and_follow_alias_moves(
    store: str, request: pytest.FixtureRequest, numeric_model
) -> None:
    model, X = numeric_model
    if store == "sqlite":
        data_dir, database_url = request.getfixturevalue("data_dir"), None
    else:
        data_dir, database_url = request.getfixturevalue("postgres_store")
    server = Server(data_dir, workers=2, flush_interval=0.2, database_url=database_url)
    records = X.head(3).to_dict(orient="records")
    with ThreadPoolExecutor(8) as pool:
        acknowledged = sum(pool.map(lambda i: _predict(server.url, records, f"w{i}"), range(200)))
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    st = LocalSteward(settings=Settings(data_dir=data_dir, database_url=database_url))
    v2 = st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", v2.version)
    st.close()
    deadline = time.monotonic() + 10
    seen: set[str] = set()
    while True:
        seen = set()
        for _ in range(10):
            response = httpx.post(f"{server.url}/api/v1/deployments/risk/predict", json={"instances": records[:1]})
            seen.add(response.headers["x-steward-model-version"])
            acknowledged += 1
        if seen == {"risk/2"}:
            break
        assert time.monotonic() < deadline, f"workers still answer with {seen}"
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "steward_predictions_requests_total" in metrics
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert count(data_dir / "inference", deployment="risk") == acknowledged
    # part-<host>-<pid>-<run>-<seq>.parquet: both worker processes wrote their own parts
    pids = {Path(p).name.rsplit("-", 3)[1] for p in list_parts(data_dir / "inference")}
    assert len(pids) == 2
