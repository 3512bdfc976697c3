"""Faults under load on a real ``steward up``: a worker killed with SIGKILL mid-request, and the
PostgreSQL server stopped and started again under the gateway's feet."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from modelsteward.serving.log_reader import list_parts

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PREDICT = "/api/v1/deployments/risk/predict"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``steward up`` in its own process group, stopped by signal."""

    def __init__(self, data_dir: Path, *, workers: int, database_url: str | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env["STEWARD_LOG_FLUSH_INTERVAL"] = "0.2"
        if database_url:
            env["STEWARD_DATABASE_URL"] = database_url
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "modelsteward.cli", "up", "--data-dir", str(data_dir),
                   "--port", str(self.port), "--workers", str(workers), "--log-level", "warning"]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code


# -- processes and sockets, read from /proc (psutil may be missing) -------------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _worker_pids(supervisor: int) -> set[int]:
    """uvicorn's worker processes: the supervisor's children started by multiprocessing's spawn."""
    workers = set()
    for pid in _children(supervisor):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.add(pid)
    return workers


def _socket_owner(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """The worker holding the server side of the TCP connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == server_port and int(remote[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


# -- the kill -9 of one worker ------------------------------------------------------------------------------


@pytest.fixture
def two_versions(tmp_path: Path, numeric_model) -> Path:
    from modelsteward import Steward

    model, X = numeric_model
    st = Steward(data_dir=tmp_path / "data")
    for _ in range(2):
        st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", 1)
    st.deploy("risk", "risk@production")
    st.close()
    return tmp_path / "data"


@dataclass
class Outcome:
    worker: int | None  # the process that held the connection's server side (None: not known)
    kind: str
    status: int | None  # None: a connection error
    error: str = ""
    ids: list[str] = field(default_factory=list)
    started: float = 0.0


class Connection:
    """One keep-alive connection and the worker process that accepted it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.http.connect()
        self.client_port = self.http.sock.getsockname()[1]
        self.worker: int | None = None

    def send(self, kind: str, method: str, path: str, body: dict) -> Outcome:
        started = time.monotonic()
        try:
            self.http.request(method, path, body=json.dumps(body), headers={"content-type": "application/json"})
            response = self.http.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as e:
            return Outcome(self.worker, kind, None, f"{type(e).__name__}: {e}", started=started)
        if self.worker is None:  # the worker has accepted the connection by now: find which one it is
            self.worker = _socket_owner(self.server.port, self.client_port, _worker_pids(self.server.proc.pid))
        ids = json.loads(data).get("prediction_ids", []) if response.status == 200 and kind == "predict" else []
        return Outcome(self.worker, kind, response.status, "" if response.status < 400 else data.decode(), ids, started)

    def close(self) -> None:
        self.http.close()


def _spread_connections(server: Server, workers: set[int], per_worker: int, body: dict) -> dict[int, list[Connection]]:
    """Open keep-alive connections until each worker holds ``per_worker`` of them (a worker accepts
    connections once it has started: under load, one may be a while behind the other)."""
    held: dict[int, list[Connection]] = {pid: [] for pid in workers}
    deadline = time.monotonic() + 45
    while not all(len(c) >= per_worker for c in held.values()) and time.monotonic() < deadline:
        conn = Connection(server)
        outcome = conn.send("predict", "POST", PREDICT, body)
        assert outcome.status == 200, outcome
        if outcome.worker in held and len(held[outcome.worker]) < per_worker:
            held[outcome.worker].append(conn)
        else:
            conn.close()
            time.sleep(0.05)
    assert all(len(c) >= per_worker for c in held.values()), {pid: len(c) for pid, c in held.items()}
    return held


def test_kill_9_of_one_worker_mid_request_leaves_the_other_serving_and_the_store_whole(
    two_versions: Path, numeric_model
) -> None:
    _, X = numeric_model
    data_dir = two_versions
    server = Server(data_dir, workers=2)
    try:
        deadline = time.monotonic() + 30
        while len(workers := _worker_pids(server.proc.pid)) < 2:
            assert time.monotonic() < deadline, "two workers did not start"
            time.sleep(0.1)
        records = X.head(3).to_dict(orient="records")
        held = _spread_connections(server, workers, 3, {"instances": records})
        victim, survivor = sorted(workers)
        outcomes: list[Outcome] = []
        lock = threading.Lock()
        stop = threading.Event()

        def predicting(conn: Connection, name: str) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                outcome = conn.send("predict", "POST", PREDICT, {"id": f"{name}-{i}", "instances": records})
                with lock:
                    outcomes.append(outcome)
                if outcome.status is None:  # the worker died under it: a new connection, to a live worker
                    conn.close()
                    time.sleep(0.05)
                    conn = Connection(server)
            conn.close()

        def moving_the_alias(conn: Connection) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                outcome = conn.send("alias", "PUT", "/api/v1/models/risk/aliases/production", {"version": 1 + i % 2})
                with lock:
                    outcomes.append(outcome)
                if outcome.status is None:
                    return  # the mutation in flight in the killed worker
            conn.close()

        threads = [
            threading.Thread(target=predicting, args=(conn, f"p{pid}-{n}"))
            for pid, conns in held.items()
            for n, conn in enumerate(conns[:2])
        ]
        threads.append(threading.Thread(target=moving_the_alias, args=(held[victim][2],)))
        held[survivor][2].close()
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        time.sleep(3.0)  # the survivor serves alone, then the supervisor's replacement joins
        deadline = time.monotonic() + 30
        while len(after := _worker_pids(server.proc.pid)) < 2:
            assert time.monotonic() < deadline, "uvicorn's supervisor did not replace the dead worker"
            time.sleep(0.2)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)

        # uvicorn's supervisor notices the dead worker and starts a new one in its place
        assert victim not in after and survivor in after and len(after) == 2
        (replacement,) = after - {survivor}

        failures = [o for o in outcomes if o.status != 200]
        # the only failures: connection errors of requests to the killed worker, never an HTTP error
        assert all(o.status is None and o.worker == victim for o in failures), failures[:5]
        assert any(o.worker == victim and o.kind == "alias" for o in failures)  # a mutation died in flight
        assert any(o.worker == victim and o.kind == "predict" for o in failures)
        served_after = [o for o in outcomes if o.started > killed_at + 0.5 and o.status == 200]
        assert sum(o.worker == survivor for o in served_after) > 10  # the survivor kept serving
        assert all(o.worker in (survivor, replacement) for o in served_after)
        acknowledged_by_survivors = {i for o in outcomes if o.status == 200 and o.worker != victim for i in o.ids}
        assert len(acknowledged_by_survivors) > 20
    finally:
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), server.log_path.read_text()[-3000:]

    # no torn writes: every part reads whole; a kill -9 may leave only ignored temporary files
    logged: set[str] = set()
    parts = list_parts(data_dir / "inference")
    assert parts
    for part in parts:
        logged |= set(pq.read_table(part, columns=["prediction_id"]).column("prediction_id").to_pylist())
    leftovers = [p for p in (data_dir / "inference").rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    assert all(".tmp" in p.name for p in leftovers), leftovers
    # every prediction a surviving worker acknowledged was logged by its SIGTERM flush at the latest
    assert acknowledged_by_survivors <= logged, len(acknowledged_by_survivors - logged)

    # the mutation cut short in the killed worker left the store consistent
    from modelsteward import Steward

    with Steward(data_dir=data_dir) as st:
        assert st.verify_audit().ok
        moves = [e for e in st.list_events(model="risk", limit=10_000) if e.action == "alias.set"]
        acknowledged_moves = [o for o in outcomes if o.kind == "alias" and o.status == 200]
        assert len(moves) >= 1 + len(acknowledged_moves)  # each acknowledged move has its audit event
        assert st.get_version("risk@production").version == moves[0].details["after"]  # newest first
    verified = subprocess.run(
        [sys.executable, "-m", "modelsteward.cli", "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


# -- PostgreSQL stopped and started again under load --------------------------------------------------------


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own on a free port, to stop and start without touching the shared server."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
        problem = None
        if not bins:
            problem = "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        elif os.geteuid() != 0:
            problem = "starting a throwaway PostgreSQL cluster needs root (to run it as the postgres user)"
        elif shutil.which("su") is None:
            problem = "no su to run PostgreSQL as the postgres user"
        else:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                problem = "no postgres user to run a throwaway PostgreSQL cluster"
        if problem:
            if IN_CI:
                pytest.fail(problem)
            pytest.skip(problem + " (this test runs in CI)")
        self.bin = bins[-1].parent
        # not under pytest's tmp_path: its parents are private to root and the postgres user must reach the data
        self.dir = Path(tempfile.mkdtemp(prefix="steward-pg-"))
        shutil.chown(self.dir, "postgres")
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres(f"{self.bin}/initdb -D {self.dir}/data -U postgres --auth=trust -E UTF8 --no-locale")
        self.start()

    def _as_postgres(self, command: str) -> None:
        done = subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.dir}/data -l {self.dir}/log -w -o '{options}' start")

    def stop(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.dir}/data -m fast -w stop")

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        yield cluster
    finally:
        cluster.remove()


@dataclass
class Call:
    kind: str
    started: float
    elapsed: float
    status: int | None
    body: dict


def test_postgres_restarted_under_load_fails_fast_with_503_and_recovers_without_a_restart(
    tmp_path: Path, numeric_model, own_postgres: ThrowawayPostgres
) -> None:
    from modelsteward.local_steward import LocalSteward
    from modelsteward.settings import Settings

    model, X = numeric_model
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, database_url=own_postgres.url)
    with LocalSteward(settings=settings) as st:
        for _ in range(2):
            st.register_model("risk", model, input_example=X.head())
        st.set_alias("risk", "production", 1)
        st.deploy("risk", "risk@production")
    server = Server(data_dir, workers=1, database_url=own_postgres.url)
    records = X.head(2).to_dict(orient="records")
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()

    def call(client: httpx.Client, kind: str, method: str, path: str, body: dict | None = None) -> Call:
        started = time.monotonic()
        try:
            response = client.request(method, path, json=body, timeout=30)
            status, payload = response.status_code, response.json()
        except httpx.TransportError as e:
            status, payload = None, {"transport": f"{type(e).__name__}: {e}"}
        done = Call(kind, started, time.monotonic() - started, status, payload)
        with lock:
            calls.append(done)
        return done

    def traffic(kind: str) -> None:
        with httpx.Client(base_url=server.url) as client:
            i = 0
            while not stop.is_set():
                i += 1
                if kind == "predict":
                    call(client, kind, "POST", PREDICT, {"instances": records})
                elif kind == "read":
                    call(client, kind, "GET", "/api/v1/models/risk")
                else:  # a catalog write: a comment, which appends an audit event too
                    call(client, kind, "POST", "/api/v1/models/risk/comments", {"text": f"note {i}"})
                time.sleep(0.02)

    threads = [threading.Thread(target=traffic, args=(kind,)) for kind in ("predict", "read", "write", "predict")]
    probe = httpx.Client(base_url=server.url)
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        own_postgres.stop()
        down_at = time.monotonic()
        time.sleep(3.0)  # the outage, under traffic
        health = call(probe, "health", "GET", "/api/v1/health")
        ready = call(probe, "ready", "GET", "/v2/health/ready")
        up_at = time.monotonic()
        own_postgres.start()
        # without restarting Steward, catalog requests recover
        deadline = time.monotonic() + 30
        while call(probe, "poll", "GET", "/api/v1/models/risk").status != 200:
            assert time.monotonic() < deadline, "the catalog did not recover after PostgreSQL came back"
            time.sleep(0.2)
        recovered_at = time.monotonic()
        moved = call(probe, "move", "PUT", "/api/v1/models/risk/aliases/production", {"version": 2})
        assert moved.status == 200, moved
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        # the gateway follows the move made after the recovery
        deadline = time.monotonic() + 15
        while probe.post(PREDICT, json={"instances": records[:1]}).headers["x-steward-model-version"] != "risk/2":
            assert time.monotonic() < deadline, "the gateway did not follow the alias moved after recovery"
            time.sleep(0.2)
    finally:
        stop.set()
        probe.close()
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), server.log_path.read_text()[-3000:]

    # never a 500, never a hang; every failure is a 503 with the usual body
    assert all(c.status is not None for c in calls), [c for c in calls if c.status is None][:3]
    assert not [c for c in calls if c.status >= 500 and c.status != 503], [c for c in calls if c.status >= 500][:3]
    for c in calls:
        if c.status == 503 and c.kind != "ready":
            assert c.body["error"]["code"] == "unavailable", c
    assert max(c.elapsed for c in calls) < 10, max(calls, key=lambda c: c.elapsed)

    during = [c for c in calls if c.started > down_at and c.started + c.elapsed < up_at]
    for kind in ("read", "write"):
        failed = [c for c in during if c.kind == kind]
        assert failed and all(c.status == 503 for c in failed), (kind, failed[:3])
    # the prediction path needs no database: it keeps serving from memory
    predictions = [c for c in during if c.kind == "predict"]
    assert len(predictions) > 5 and all(c.status == 200 for c in predictions), predictions[:3]
    assert health.status == 503 and health.body["error"]["code"] == "unavailable"
    # readiness means "can answer inference requests", which it can: a load balancer keeps sending them
    assert ready.status == 200 and ready.body == {"ready": True}

    after = [c for c in calls if c.started > recovered_at]
    assert after and all(c.status in (200, 201) for c in after), [c for c in after if c.status not in (200, 201)][:3]
    # writes made after the recovery persist
    with LocalSteward(settings=settings) as st:
        assert st.get_version("risk@production").version == 2
        notes = {c.body["text"] for c in calls if c.kind == "write" and c.status == 201}
        stored = {c.text for c in st.list_comments("risk", limit=100_000)}
        assert notes <= stored
        assert any(c.started > recovered_at for c in calls if c.kind == "write" and c.status == 201)
        assert st.verify_audit().ok
