"""Load: sustained mixed traffic against ``steward up --workers 2`` on PostgreSQL, with the prediction log,
a shadow, an A/B split and scheduled monitors all working; into BENCHMARKS.md.

    .venv/bin/python bench/bench_load.py          # 10 minutes of load; writes bench/results/load.json, BENCHMARKS.md
    .venv/bin/python bench/bench_load.py --quick  # 30 s of load; writes bench/results/load.scratch.json only

What it does, start to finish (see bench/README.md):

1. creates a fresh PostgreSQL database ``steward_load_<random>`` (from ``$STEWARD_TEST_PG_URL``, default
   ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and a temporary data directory, both removed at the end;
2. through the Python SDK registers two models of two versions each and deploys them three ways: ``risk-plain``
   (one champion), ``risk-ab`` (champion and a challenger taking 30 % of the rows) and ``fraud-shadow`` (champion
   and a shadow that sees every request), every deployment logging its predictions; a service account and its
   token for the traffic, since the server demands tokens (``--auth required``);
3. starts ``steward up --workers 2 --auth required`` (metadata in PostgreSQL) in its own session, then schedules
   two drift monitors on the live deployments, which the server's scheduler runs during the load;
4. drives the traffic from one asyncio process with httpx: ``--concurrency`` connections, each sending its next
   request as soon as the last one is answered, mixed over the three deployments, both routes (the JSON API and
   Open Inference Protocol v2) and three batch sizes (1, 5 and 25 rows); every request carries its own id;
5. stops the server with SIGTERM to its process group (the workers flush their logs), then checks the prediction
   log against what the driver was told, request by request (see ``check_log``), and reads the monitor runs from
   the store.

The process exits 1 when any answer was a 5xx, any request failed in transport, or the log and the
acknowledgements differ; 2 when the setup itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_registry import code_state, fmt_ms, machine
from workload import N_FEATURES, SEED, group_cpu_seconds, percentile, replace_section

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Load: two workers on PostgreSQL"
PG_ADMIN_URL = os.environ.get("STEWARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0

# The traffic mix: deployments, routes and batch sizes, each drawn independently per request.
DEPLOYMENTS = ("risk-plain", "risk-ab", "fraud-shadow")
PROTOCOLS = ("json", "v2")
BATCH_ROWS = (1, 5, 25)
BATCH_WEIGHTS = (0.7, 0.2, 0.1)
CHALLENGER_SHARE = 0.3
ANSWERING_ARMS = ("champion", "challenger")  # the arms whose rows are the answer; a shadow's never are
BODIES_PER_SIZE = 64  # distinct row samples per batch size and protocol, drawn at random
TIMELINE_BUCKET_S = 10.0


@dataclasses.dataclass(frozen=True)
class Config:
    """One load run."""

    duration: float = 600.0  # measured seconds of load
    warmup: float = 10.0  # seconds of the same traffic first: acknowledged and checked, not timed
    concurrency: int = 48
    workers: int = 2
    monitor_schedule: str = "30s"
    flush_interval: float = 1.0  # STEWARD_LOG_FLUSH_INTERVAL of the server
    request_timeout: float = 60.0
    seed: int = SEED


FULL = Config()
QUICK = Config(duration=30.0, warmup=5.0, concurrency=48, monitor_schedule="10s")


class BenchError(RuntimeError):
    """The setup failed (database, server, models): no figure would mean anything."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the store: a fresh PostgreSQL database and data directory ---------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str = PG_ADMIN_URL) -> Any:
    """``steward_load_<random>`` on the server of ``admin_url``, dropped at the end; yields its URL."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"steward_load_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        raise BenchError(f"PostgreSQL is not reachable at {admin_url}: {type(e).__name__}: {e}") from e
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception), admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build_models() -> tuple[Any, dict[str, list[Any]]]:
    """The data and two versions each of a logistic regression (``risk``) and a small forest (``fraud``)."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=4000, n_features=N_FEATURES, n_informative=8, random_state=SEED)
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(N_FEATURES)])
    models = {
        "risk": [LogisticRegression(C=1.0, max_iter=200).fit(frame, y), LogisticRegression(C=0.1).fit(frame, y)],
        "fraud": [
            RandomForestClassifier(n_estimators=20, max_depth=6, random_state=s, n_jobs=1).fit(frame, y)
            for s in (SEED, SEED + 1)
        ],
    }
    return frame, models


def set_up_store(settings: Any, frame: Any, models: dict[str, list[Any]]) -> dict[str, Any]:
    """Models, deployments and the traffic's service account, through the SDK; returns the token and the setup."""
    from modelsteward.local_steward import LocalSteward

    st = LocalSteward(settings=settings)
    try:
        for name, versions in models.items():
            for estimator in versions:
                st.register_model(name, estimator, input_example=frame.head(), training_data=frame, capture_git=False)
            st.set_alias(name, "production", 1)
        st.deploy("risk-plain", "risk@production")
        st.deploy("risk-ab", "risk@production", challengers={"risk/2": CHALLENGER_SHARE})
        st.deploy("fraud-shadow", "fraud@production", shadows=["fraud/2"])
        st.create_user("load-driver", kind="service")
        st.grant_role("load-driver", "operator")
        token = st.create_token("load-driver", name="load", expires_in=None).token
        deployments = {d.name: [f"{a.role} {a.version} ({a.weight:g})" for a in d.arms] for d in st.list_deployments()}
    finally:
        st.close()
    return {"token": token, "deployments": deployments}


def monitor_specs(schedule: str) -> dict[str, dict[str, Any]]:
    """Drift (and data quality) against the training profile, over the last hour of each watched deployment."""
    return {
        "risk-ab-drift": {
            "target": {"deployment": "risk-ab"},
            "window": "1h",
            "checks": [{"drift": {}}, {"quality": {}}],
            "min_rows": 50,
            "schedule": schedule,
        },
        "fraud-shadow-drift": {
            "target": {"deployment": "fraud-shadow"},
            "window": "1h",
            "checks": [{"drift": {}}],
            "min_rows": 50,
            "schedule": schedule,
        },
    }


def put_monitors(settings: Any, schedule: str) -> list[str]:
    from modelsteward.local_steward import LocalSteward

    with LocalSteward(settings=settings) as st:
        for name, spec in monitor_specs(schedule).items():
            st.put_monitor(name, spec)
    return list(monitor_specs(schedule))


def monitor_runs(settings: Any, names: list[str], since: dt.datetime) -> dict[str, Any]:
    """Each monitor's runs started at or after ``since``, by status, and the rows its last run read."""
    from modelsteward.local_steward import LocalSteward

    out: dict[str, Any] = {}
    with LocalSteward(settings=settings) as st:
        for name in names:
            results = [r for r in st.monitor_results(name, limit=100_000) if r.started_at >= since]
            statuses = collections.Counter(r.status for r in results)
            out[name] = {
                "runs": len(results),
                "by_status": dict(statuses),
                "computed": statuses["ok"] + statuses["breach"],
                "last_rows": max(results, key=lambda r: r.started_at).rows if results else 0,
                "breached": dict(collections.Counter(f"{b.check} {b.metric}" for r in results for b in r.breaches)),
                "errors": [r.error for r in results if r.status == "error"][:3],
            }
    return out


# -- the server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``steward up`` in its own session (process group): started, waited for, stopped by group with SIGTERM."""

    def __init__(self, data_dir: Path, database_url: str, config: Config, log_path: Path) -> None:
        self.data_dir, self.database_url, self.config, self.log_path = data_dir, database_url, config, log_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self.exit_code: int | None = None
        self.command: list[str] = []

    def start(self) -> None:
        import httpx

        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env["STEWARD_DATABASE_URL"] = self.database_url
        env["STEWARD_LOG_FLUSH_INTERVAL"] = str(self.config.flush_interval)
        self.port = free_port()
        self.command = [
            sys.executable, "-m", "modelsteward.cli", "up",
            "--data-dir", str(self.data_dir), "--port", str(self.port),
            "--workers", str(self.config.workers), "--auth", "required", "--log-level", "warning",
        ]  # fmt: skip
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BenchError(f"steward up exited with code {code} before it was ready:\n{self.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise BenchError(f"steward up was not ready within {READY_TIMEOUT_S:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "    (no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process of the server's group (its workers included)."""
        if self.proc is None:
            return 0.0
        return group_cpu_seconds(self.proc.pid)

    def stop(self) -> int | None:
        """SIGTERM to the whole group (the workers close their gateways and flush their logs); SIGKILL if it hangs."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            say(f"warning: steward up ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.exit_code = self.proc.wait()
        deadline = time.monotonic() + 10  # the workers leave after the parent; the log is complete only then
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            say("warning: a worker outlived steward up by 10 s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None
        return self.exit_code

    def log_problems(self) -> list[str]:
        """Lines of the server's log that report an error (it runs at log level warning)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if "Traceback" in line or "ERROR" in line or "CRITICAL" in line]


def scrape_metrics(url: str, token: str) -> dict[str, float]:
    """The serving counters of /metrics, summed over the live workers."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=30).text
    wanted = {
        "steward_shadow_requests_dropped": "shadows_dropped",
        "steward_prediction_log_write_errors": "log_write_errors",
        "steward_prediction_log_rows_written": "log_rows_written",
        "steward_prediction_log_queue_rows": "log_queue_rows",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        if family.name in wanted:
            out[wanted[family.name]] = sum(s.value for s in family.samples)
    return out


# -- the traffic -------------------------------------------------------------------------------------------


class Bodies:
    """Request bodies made once, so the driver spends its CPU on HTTP: each is the bytes after ``{"id":"<id>",``."""

    def __init__(self, frame: Any, seed: int) -> None:
        rng = random.Random(seed)
        columns = [str(c) for c in frame.columns]
        values = frame.to_numpy(dtype=float)
        self.tails: dict[tuple[str, int], list[bytes]] = {}
        for rows in BATCH_ROWS:
            for protocol in PROTOCOLS:
                tails = []
                for _ in range(BODIES_PER_SIZE):
                    start = rng.randrange(len(values) - rows)
                    block = values[start : start + rows]
                    if protocol == "json":
                        payload: Any = {"instances": [dict(zip(columns, r, strict=True)) for r in block.tolist()]}
                    else:
                        payload = {"inputs": [
                            {"name": c, "shape": [rows], "datatype": "FP64", "data": block[:, j].tolist()}
                            for j, c in enumerate(columns)
                        ]}  # fmt: skip
                    tails.append(json.dumps(payload, separators=(",", ":"))[1:].encode())
                self.tails[(protocol, rows)] = tails

    def body(self, protocol: str, rows: int, request_id: str, pick: int) -> bytes:
        return b'{"id":"' + request_id.encode() + b'",' + self.tails[(protocol, rows)][pick]


def path_for(protocol: str, deployment: str) -> str:
    return f"/api/v1/deployments/{deployment}/predict" if protocol == "json" else f"/v2/models/{deployment}/infer"


def expected_ids(request_id: str, rows: int) -> list[str]:
    """The prediction ids the gateway gives a request (``modelsteward.serving.gateway.prediction_ids``)."""
    return [request_id] if rows == 1 else [f"{request_id}-{i}" for i in range(rows)]


class Tally:
    """Everything the driver saw: latencies, statuses, errors, and each acknowledged request's rows."""

    def __init__(self) -> None:
        self.latencies_s: list[float] = []  # measured phase only
        self.statuses: collections.Counter[int] = collections.Counter()
        self.by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.transport: collections.Counter[str] = collections.Counter()
        self.bad_answers = 0  # 2xx whose prediction ids are not the request's
        self.measured_rows = 0  # rows acknowledged by the answers in the measured phase
        self.samples: list[str] = []
        self.acked: dict[str, list[tuple[str, int]]] = {d: [] for d in DEPLOYMENTS}
        self.timeline: collections.Counter[int] = collections.Counter()
        self.measure_from = 0.0
        self.measure_to = 0.0

    def sample(self, text: str) -> None:
        if len(self.samples) < 10:
            self.samples.append(text[:500])


async def _client_loop(
    index: int, client: Any, bodies: Bodies, tally: Tally, stop_at: float, config: Config, run_tag: str
) -> None:
    import httpx
    import orjson

    rng = random.Random(config.seed * 1000 + index)
    seq = 0
    while True:
        now = time.monotonic()
        if now >= stop_at:
            return
        deployment = rng.choice(DEPLOYMENTS)
        protocol = rng.choice(PROTOCOLS)
        rows = rng.choices(BATCH_ROWS, BATCH_WEIGHTS)[0]
        request_id = f"{run_tag}-{index}-{seq}"
        seq += 1
        body = bodies.body(protocol, rows, request_id, rng.randrange(BODIES_PER_SIZE))
        kind = f"{deployment} {protocol}"
        started = time.perf_counter()
        try:
            response = await client.post(path_for(protocol, deployment), content=body)
        except httpx.TransportError as e:
            tally.transport[type(e).__name__] += 1
            tally.by_kind[kind]["transport_error"] += 1
            tally.sample(f"{kind} {request_id}: {type(e).__name__}: {e}")
            continue
        elapsed = time.perf_counter() - started
        finished = time.monotonic()
        measured = tally.measure_from <= now and finished <= tally.measure_to
        if measured:
            tally.latencies_s.append(elapsed)
            tally.timeline[int((finished - tally.measure_from) // TIMELINE_BUCKET_S)] += 1
        status = response.status_code
        tally.statuses[status] += 1
        if 200 <= status < 300:
            answer = orjson.loads(response.content)
            ids = answer["prediction_ids"] if protocol == "json" else answer["parameters"]["prediction_ids"]
            if ids != expected_ids(request_id, rows):
                tally.bad_answers += 1
                tally.by_kind[kind]["bad_answer"] += 1
                tally.sample(f"{kind} {request_id}: prediction ids {ids[:3]}... for {rows} rows")
                continue
            tally.acked[deployment].append((request_id, rows))
            if measured:
                tally.measured_rows += rows
            tally.by_kind[kind]["ok"] += 1
            tally.by_kind[kind]["rows"] += rows
        else:
            tally.by_kind[kind][f"{status // 100}xx"] += 1
            tally.sample(f"{kind} {request_id}: HTTP {status}: {response.text}")


async def drive(url: str, token: str, bodies: Bodies, config: Config, tally: Tally) -> float:
    """Warm-up, then ``config.duration`` measured seconds of traffic; returns the measured seconds."""
    import httpx

    limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    run_tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=config.request_timeout
    ) as client:
        start = time.monotonic()
        tally.measure_from = start + config.warmup
        tally.measure_to = tally.measure_from + config.duration
        await asyncio.gather(
            *(
                _client_loop(i, client, bodies, tally, tally.measure_to, config, run_tag)
                for i in range(config.concurrency)
            )
        )
    return tally.measure_to - tally.measure_from


def run_traffic(url: str, token: str, bodies: Bodies, config: Config) -> tuple[Tally, float]:
    try:
        import uvloop  # the driver shares the machine with the server: its event loop should cost little
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run  # type: ignore[assignment]
    tally = Tally()
    seconds = runner(drive(url, token, bodies, config, tally))
    return tally, seconds


def summarize_traffic(tally: Tally, seconds: float) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in tally.latencies_s)
    ok = sum(c["ok"] for c in tally.by_kind.values())
    rows = sum(c["rows"] for c in tally.by_kind.values())
    measured = len(ms)
    timeline = [tally.timeline.get(i, 0) / TIMELINE_BUCKET_S for i in range(int(seconds // TIMELINE_BUCKET_S))]
    return {
        "seconds": seconds,
        "requests_measured": measured,
        "requests_total": sum(tally.statuses.values()) + sum(tally.transport.values()),
        "acknowledged_requests": ok,
        "acknowledged_rows": rows,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors_4xx": sum(v for k, v in tally.statuses.items() if 400 <= k < 500),
        "errors_5xx": sum(v for k, v in tally.statuses.items() if k >= 500),
        "transport_errors": dict(tally.transport),
        "bad_answers": tally.bad_answers,
        "error_samples": tally.samples,
        "rps": measured / seconds if seconds > 0 else 0.0,
        "predictions_per_s": tally.measured_rows / seconds if seconds > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(ms, 50) if ms else None,
            "p95": percentile(ms, 95) if ms else None,
            "p99": percentile(ms, 99) if ms else None,
            "mean": sum(ms) / len(ms) if ms else None,
            "max": ms[-1] if ms else None,
        },
        "timeline_rps": timeline,
        "by_kind": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
    }


# -- the check: the prediction log against the acknowledgements --------------------------------------------


def check_log(inference_root: str, tally: Tally, shadows_dropped: float) -> dict[str, Any]:
    """Compare the log with what the driver was told, request by request, per deployment.

    A request the driver got a 2xx for was acknowledged with ``rows`` prediction ids; those rows were split
    between the champion and the challenger (an A/B deployment routes row by row), and each arm logged its own
    rows. So for every deployment and every acknowledged request id, the log's rows of the answering arms
    (champion + challenger) with status ok must number exactly ``rows``, with ``rows`` distinct prediction ids;
    and no request the driver was not acknowledged may have answering rows. ``logged == acknowledged`` is
    that equality, summed, with zero mismatched requests. A shadow logs a copy of every request under its own
    arm (``shadow``), never counted as an answer; the gateway skips a shadow only when too many wait (counted in
    ``steward_shadow_requests_dropped``), so the acknowledged requests without shadow rows must equal that count.
    """
    import pandas as pd

    from modelsteward.serving.prediction_log import connect, scan_sql

    acked = pd.DataFrame(
        [(d, rid, rows) for d, items in tally.acked.items() for rid, rows in items],
        columns=["deployment", "request_id", "rows"],
    )
    answering = ", ".join(f"'{a}'" for a in ANSWERING_ARMS)
    con = connect(inference_root)
    try:
        con.register("acked", acked)
        scan = scan_sql(inference_root)
        per_deployment = con.execute(f"""
            WITH logged AS (
                SELECT deployment, request_id,
                       count(*) FILTER (WHERE arm IN ({answering}) AND status = 'ok') AS answered,
                       count(DISTINCT prediction_id) FILTER (WHERE arm IN ({answering}) AND status = 'ok') AS ids,
                       count(*) FILTER (WHERE arm = 'shadow') AS shadow
                FROM {scan} GROUP BY deployment, request_id
            )
            SELECT coalesce(a.deployment, l.deployment) AS deployment,
                   count(a.request_id) AS requests_acknowledged,
                   coalesce(sum(a.rows), 0) AS rows_acknowledged,
                   coalesce(sum(l.answered), 0) AS rows_logged,
                   count(*) FILTER (WHERE a.request_id IS NOT NULL AND coalesce(l.answered, 0) <> a.rows)
                       AS requests_mismatched,
                   count(*) FILTER (WHERE a.request_id IS NULL AND l.answered > 0) AS requests_logged_not_acknowledged,
                   coalesce(sum(l.answered - l.ids), 0) AS duplicate_ids,
                   coalesce(sum(l.shadow), 0) AS shadow_rows,
                   count(*) FILTER (WHERE a.request_id IS NOT NULL AND coalesce(l.shadow, 0) = 0)
                       AS requests_without_shadow
            FROM acked a FULL OUTER JOIN logged l ON a.deployment = l.deployment AND a.request_id = l.request_id
            GROUP BY 1 ORDER BY 1
        """).df()
        arms = con.execute(
            f"SELECT deployment, arm, status, count(*) AS n FROM {scan} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    deployments: dict[str, Any] = {}
    for record in per_deployment.to_dict(orient="records"):
        name = record.pop("deployment")
        entry = {k: int(v) for k, v in record.items()}
        entry["equal"] = (
            entry["rows_logged"] == entry["rows_acknowledged"]
            and entry["requests_mismatched"] == 0
            and entry["requests_logged_not_acknowledged"] == 0
            and entry["duplicate_ids"] == 0
        )
        entry["arms"] = {}
        deployments[name] = entry
    for deployment, arm, status, n in arms:
        deployments.setdefault(deployment, {"equal": False, "arms": {}})["arms"][f"{arm} {status}"] = int(n)
    missing = [d for d in DEPLOYMENTS if d not in deployments]
    shadow = deployments.get("fraud-shadow", {})
    return {
        "deployments": deployments,
        "missing_deployments": missing,
        "rows_acknowledged": sum(d.get("rows_acknowledged", 0) for d in deployments.values()),
        "rows_logged": sum(d.get("rows_logged", 0) for d in deployments.values()),
        "equal": not missing and all(d["equal"] for d in deployments.values()),
        "shadows_dropped": int(shadows_dropped),
        "shadows_complete": shadow.get("requests_without_shadow", -1) == int(shadows_dropped),
    }


# -- one run -----------------------------------------------------------------------------------------------


def run(config: Config, *, database_url: str | None = None, admin_url: str = PG_ADMIN_URL) -> dict[str, Any]:
    """The whole benchmark; ``database_url`` uses that (empty) database instead of creating one (the CI test)."""
    with contextlib.ExitStack() as stack:
        if database_url is None:
            database_url = stack.enter_context(fresh_database(admin_url))
        workdir = Path(tempfile.mkdtemp(prefix="steward-bench-load-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        return _run_in(config, database_url, workdir)
    raise AssertionError("unreachable")


def _run_in(config: Config, database_url: str, workdir: Path) -> dict[str, Any]:
    from modelsteward.settings import Settings

    started = time.monotonic()
    data_dir = workdir / "steward-data"
    settings = Settings(data_dir=data_dir, database_url=database_url, user="bench")
    say("fitting the models; registering and deploying through the SDK (metadata in PostgreSQL)")
    frame, models = build_models()
    setup = set_up_store(settings, frame, models)
    bodies = Bodies(frame, config.seed)
    server = Server(data_dir, database_url, config, workdir / "steward-up.log")
    say(f"starting `steward up --workers {config.workers} --auth required`")
    try:
        server.start()
        since = dt.datetime.now(dt.UTC)
        monitors = put_monitors(settings, config.monitor_schedule)
        say(
            f"ready in {server.startup_s:.1f} s; {config.concurrency} connections for {config.warmup:.0f} s warm-up "
            f"+ {config.duration:.0f} s measured"
        )
        cpu_before, driver_before = server.cpu_seconds(), _own_cpu()
        tally, seconds = run_traffic(server.url, setup["token"], bodies, config)
        server_cpu, driver_cpu = server.cpu_seconds() - cpu_before, _own_cpu() - driver_before
        metrics = scrape_metrics(server.url, setup["token"])
    finally:
        exit_code = server.stop()
    say(f"stopped (exit code {exit_code}); checking the prediction log against the acknowledgements")
    traffic = summarize_traffic(tally, seconds)
    traffic["server_cpu_s"], traffic["driver_cpu_s"] = server_cpu, driver_cpu
    log_check = check_log(settings.resolved_inference_url(), tally, metrics["shadows_dropped"])
    runs = monitor_runs(settings, monitors, since)
    problems = server.log_problems()
    result = {
        "config": dataclasses.asdict(config),
        "setup": {
            "deployments": setup["deployments"],
            "monitors": monitor_specs(config.monitor_schedule),
            "mix": {
                "deployments": list(DEPLOYMENTS),
                "protocols": list(PROTOCOLS),
                "batch_rows": dict(zip(map(str, BATCH_ROWS), BATCH_WEIGHTS, strict=True)),
            },
        },
        "server": {
            "command": " ".join(server.command).replace(str(workdir), "<tmp>"),
            "startup_s": server.startup_s,
            "exit_code": exit_code,
            "clean_exit": exit_code in (0, -signal.SIGTERM),
            "log_problem_lines": problems[:20],
            "metrics": metrics,
        },
        "traffic": traffic,
        "log_check": log_check,
        "monitors": runs,
        "elapsed_s": time.monotonic() - started,
    }
    result["verdict"] = verdict(result)
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def verdict(result: dict[str, Any]) -> dict[str, bool]:
    traffic = result["traffic"]
    return {
        "no_5xx": traffic["errors_5xx"] == 0,
        "no_transport_errors": not traffic["transport_errors"],
        "answers_well_formed": traffic["bad_answers"] == 0,
        "logged_equals_acknowledged": result["log_check"]["equal"],
        "shadows_complete": result["log_check"]["shadows_complete"],
        "monitors_ran": all(m["computed"] > 0 for m in result["monitors"].values()),
        "clean_shutdown": result["server"]["clean_exit"],
    }


FAILING = ("no_5xx", "no_transport_errors", "answers_well_formed", "logged_equals_acknowledged")


# -- reporting ---------------------------------------------------------------------------------------------


def print_summary(result: dict[str, Any]) -> None:
    t, check, lat = result["traffic"], result["log_check"], result["traffic"]["latency_ms"]
    lines = [
        "",
        f"load: {t['seconds']:.0f} s measured, {result['config']['concurrency']} connections, "
        f"`steward up --workers {result['config']['workers']}` on PostgreSQL",
        f"  throughput      {t['rps']:,.0f} requests/s, {t['predictions_per_s']:,.0f} predictions/s",
        f"  latency         p50 {fmt_ms(lat['p50'])}, p95 {fmt_ms(lat['p95'])}, p99 {fmt_ms(lat['p99'])}, "
        f"max {fmt_ms(lat['max'])}"
        if lat["p50"] is not None
        else "  latency         (no request measured)",
        f"  answers         {t['statuses']}; 4xx {t['errors_4xx']}, 5xx {t['errors_5xx']}, "
        f"transport errors {sum(t['transport_errors'].values())}, bad answers {t['bad_answers']}",
        f"  CPU             server {t['server_cpu_s']:.0f} s, driver {t['driver_cpu_s']:.0f} s "
        f"over {t['seconds'] + result['config']['warmup']:.0f} s on {os.cpu_count()} cores",
        f"  prediction log  {check['rows_logged']:,} answering rows logged, {check['rows_acknowledged']:,} "
        f"acknowledged: {'equal' if check['equal'] else 'DIFFERENT'}; shadows dropped {check['shadows_dropped']}, "
        f"shadow rows complete: {check['shadows_complete']}",
    ]
    for name, d in check["deployments"].items():
        lines.append(
            f"    {name:<13} {d.get('requests_acknowledged', 0):>8,} requests {d.get('rows_acknowledged', 0):>9,} rows "
            f"acknowledged, {d.get('rows_logged', 0):>9,} logged; arms {d['arms']}"
        )
    for name, m in result["monitors"].items():
        lines.append(
            f"  monitor         {name}: {m['runs']} runs {m['by_status']}, last read {m['last_rows']:,} rows"
            + (f"; breaches {m['breached']}" if m["breached"] else "")
        )
    if t["error_samples"]:
        lines.append("  first errors:")
        lines += [f"    {s}" for s in t["error_samples"][:5]]
    if result["server"]["log_problem_lines"]:
        lines.append("  server log problems:")
        lines += [f"    {s}" for s in result["server"]["log_problem_lines"][:5]]
    lines.append("  verdict         " + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in result["verdict"].items()))
    print("\n".join(lines), flush=True)


def render_section(result: dict[str, Any]) -> str:
    t, check, cfg, lat = result["traffic"], result["log_check"], result["config"], result["traffic"]["latency_ms"]
    m, v = result["machine"], result["versions"]
    timeline = t["timeline_rps"]
    code = result["code"]
    code_text = f"commit {code['commit']}{' with uncommitted changes' if code['dirty'] else ''}"
    rows = [
        "| deployment | arms | requests acknowledged | rows acknowledged | answering rows logged | "
        "mismatched requests | shadow rows |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d in check["deployments"].items():
        arms = ", ".join(f"{k}: {n:,}" for k, n in d["arms"].items())
        rows.append(
            f"| `{name}` | {arms} | {d.get('requests_acknowledged', 0):,} | {d.get('rows_acknowledged', 0):,} | "
            f"{d.get('rows_logged', 0):,} | {d.get('requests_mismatched', 0)} | {d.get('shadow_rows', 0):,} |"
        )
    monitors = "; ".join(
        f"`{name}` {mon['runs']} runs ({', '.join(f'{s} {n}' for s, n in mon['by_status'].items())}), "
        f"the last over {mon['last_rows']:,} rows"
        for name, mon in result["monitors"].items()
    )
    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (run {result['date']}, {result['elapsed_s']:.0f} s in all; "
        "`--quick` runs 30 s and writes no Markdown).",
        "",
        f"Machine: {m['os']} {m['arch']}, {m['cpu']}, {m['cores']} cores, shared by the server, PostgreSQL and the "
        f"load driver. Python {v['python']}; modelsteward {v['modelsteward']} ({code_text}); PostgreSQL "
        f"{result['postgres']}; httpx {v['httpx']}, uvicorn {v['uvicorn']}.",
        "",
        f"`steward up --workers {cfg['workers']} --auth required`, metadata in a fresh PostgreSQL database, three "
        "deployments logging every prediction: `risk-plain` (a logistic regression), `risk-ab` (the same champion "
        f"and a challenger version taking {CHALLENGER_SHARE:.0%} of the rows) and `fraud-shadow` (a 20-tree forest "
        "with a second forest as shadow), and two drift monitors (one with data-quality checks too) scheduled "
        f"every {cfg['monitor_schedule']} over the last hour of `risk-ab` and `fraud-shadow`, run by the server's "
        f"scheduler during the load. One asyncio httpx process keeps {cfg['concurrency']} connections busy (each "
        "sends its next request when the last is answered), every request with a service account's token and its "
        "own id, drawn at random: a deployment, the JSON route or Open Inference Protocol v2, and 1, 5 or 25 rows "
        f"(70/20/10 %). {cfg['warmup']:.0f} s of warm-up, then {t['seconds']:.0f} s measured.",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| throughput | {t['rps']:,.0f} requests/s, {t['predictions_per_s']:,.0f} predictions/s |",
        f"| throughput per {TIMELINE_BUCKET_S:.0f} s, min / max | "
        + (f"{min(timeline):,.0f} / {max(timeline):,.0f} requests/s |" if timeline else "n/a |"),
        f"| latency p50 / p95 / p99 | {fmt_ms(lat['p50'])} / {fmt_ms(lat['p95'])} / {fmt_ms(lat['p99'])} |",
        f"| latency max | {fmt_ms(lat['max'])} |",
        f"| requests measured | {t['requests_measured']:,} |",
        f"| 4xx / 5xx / transport errors | {t['errors_4xx']} / {t['errors_5xx']} / "
        f"{sum(t['transport_errors'].values())} |",
        f"| CPU seconds: server / driver | {t['server_cpu_s']:.0f} / {t['driver_cpu_s']:.0f} over "
        f"{t['seconds'] + cfg['warmup']:.0f} s |",
        f"| shadow requests dropped (queue full) | {check['shadows_dropped']} |",
        f"| prediction-log write errors | {result['server']['metrics']['log_write_errors']:.0f} |",
        f"| server start, SIGTERM exit code | {result['server']['startup_s']:.1f} s, {result['server']['exit_code']} |",
        "",
        f"**The prediction log against the acknowledgements** (warm-up included): "
        f"{check['rows_logged']:,} rows logged by the answering arms, {check['rows_acknowledged']:,} acknowledged: "
        f"{'equal' if check['equal'] else '**different**'}.",
        "",
        *rows,
        "",
        "After SIGTERM (each worker flushes its log as it stops), the log is read with DuckDB and joined with the "
        "driver's list of acknowledged requests on (deployment, request id). A 2xx answer acknowledges its rows "
        "under the prediction ids it returns (checked by the driver against the request id); those rows are split "
        "between champion and challenger, and each arm logs its own. So, request by request, the rows logged by the "
        "champion and the challenger with status ok must number the rows acknowledged, with distinct prediction "
        "ids, and no unacknowledged request may have any. A shadow logs a copy of each request under its own arm "
        "and never counts as an answer; the acknowledged requests without shadow rows must equal the shadows the "
        f"gateway dropped ({'so they do' if check['shadows_complete'] else '**they do not**'}).",
        "",
        f"**Monitors during the load:** {monitors}.",
        "",
        "Verdict: "
        + ", ".join(f"{k.replace('_', ' ')}: {'yes' if ok else '**no**'}" for k, ok in result["verdict"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _postgres_version(admin_url: str) -> str | None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW server_version")).scalar()).split()[0]
    except Exception:  # noqa: BLE001 - a figure for the report only
        return None
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s of load; writes load.scratch.json, no Markdown")
    parser.add_argument("--duration", type=float, help="measured seconds of load (default 600, --quick 30)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up traffic (default 10, --quick 5)")
    parser.add_argument("--concurrency", type=int, help="connections kept busy (default 48)")
    parser.add_argument("--workers", type=int, help="steward up --workers (default 2)")
    parser.add_argument("--monitor-schedule", help="how often the monitors run (default 30s, --quick 10s)")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL of the PostgreSQL server")
    parser.add_argument("--json", type=Path, help="where the raw results go")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="the BENCHMARKS.md to update")
    parser.add_argument("--no-markdown", action="store_true", help="write no Markdown")
    args = parser.parse_args(argv)

    base = QUICK if args.quick else FULL
    overrides = {
        "duration": args.duration,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "monitor_schedule": args.monitor_schedule,
    }
    config = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    default_run = not any(v is not None for v in overrides.values())
    json_path = args.json or RESULTS_DIR / ("load.scratch.json" if args.quick else "load.json")
    write_markdown = not (args.quick or args.no_markdown or not default_run)

    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))  # unwind: stop server, drop db
    try:
        result = run(config, admin_url=args.pg_url)
    except BenchError as e:
        say(f"error: {e}")
        return 2
    result = {
        "command": " ".join([".venv/bin/python bench/bench_load.py", *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "code": code_state(),
        "postgres": _postgres_version(args.pg_url),
        "versions": {
            "python": platform.python_version(),
            **{n: _version(n) for n in ("modelsteward", "httpx", "uvicorn", "scikit-learn", "duckdb", "psycopg")},
        },
        **result,
    }
    print_summary(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    say(f"wrote {json_path}")
    if write_markdown:
        replace_section(args.markdown, SECTION, render_section(result))
        say(f"wrote the section {SECTION!r} of {args.markdown}")
    failed = [k for k in FAILING if not result["verdict"][k]]
    if failed:
        say(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
