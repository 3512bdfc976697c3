"""Serving: Model Steward's gateway against MLflow's scoring server and the model in process; into BENCHMARKS.md.

    .venv/bin/python bench/bench_serving.py                 # full run, about 10 minutes; writes BENCHMARKS.md
    .venv/bin/python bench/bench_serving.py --quick         # about 70 s; writes bench/results/serving.scratch.json
    .venv/bin/python bench/bench_serving.py --profile-only  # py-spy on our server under load: our hot spots

The sides, one after the other, in one run on the same machine, each server with one worker process:

(a) in process: ``model.predict(df)`` on the same rows, per call (the floor);
(r) a reference: bench/serving_floor_app.py, a bare Starlette app under the same uvicorn (v2 JSON -> NumPy ->
    ``predict_proba`` -> JSON), to show what the HTTP stack and the model cost without our code;
(b) the gateway: ``steward up --workers 1`` as a subprocess in its own session, serving four deployments
    (each model with logging on, and again with ``log_predictions=False``), called over Open Inference
    Protocol v2 (``/v2/models/{name}/infer``) and the JSON deployment API (``/api/v1/deployments/{name}/predict``);
(c) MLflow: ``mlflow models serve --env-manager local --workers 1`` from the MLflow virtualenv that
    bench_registry.py creates (bench/.peers/mlflow), called on ``/invocations`` with ``dataframe_split``.

Every server case is a check request, a warm-up, then a fixed duration at concurrency 1 (sequential requests) and
at concurrency 8. The load generator is wrk (C; Debian package ``wrk``) driven by a Lua script, or a threaded
``http.client`` driver when wrk is missing. After the gateway stops (SIGTERM, so it flushes its log), the rows of
its prediction log must equal the predictions the driver got a 200 for. See bench/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import dataclasses
import datetime as dt
import gc
import http.client
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_registry import (
    PEER_DIR,
    PeerUnavailable,
    _run_step,
    _show,
    code_state,
    ensure_peer,
    fmt_ms,
    machine,
    peer_python,
)
from workload import (
    FOREST_PARAMS,
    N_FEATURES,
    RESULT_MARKER,
    TINY_PARAMS,
    Workload,
    build_workload,
    group_cpu_seconds,
    percentile,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PROFILES_DIR = RESULTS_DIR / "profiles"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Serving gateway"
PEER_SCRIPT = BENCH_DIR / "peers" / "mlflow_serving.py"
WORKLOAD_FILE = BENCH_DIR / "workload.py"
PYSPY_DIR = BENCH_DIR / ".peers" / "py-spy"
STEWARD = Path(sys.executable).parent / "steward"
PEER_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONDONTWRITEBYTECODE": "1"}
WRK_INSTALL = "install it with `apt-get install -y wrk` (Debian/Ubuntu; `brew install wrk` on macOS)"
READY_TIMEOUT_S = 180.0
HIGH_CONCURRENCY = 8

MODELS = {
    "tiny": "LogisticRegression",
    "forest": "RandomForest (100 trees, depth 8)",
}


@dataclasses.dataclass(frozen=True)
class Side:
    key: str
    label: str
    server: str  # "inproc", "floor" (bench/serving_floor_app.py), "ours" or "mlflow"
    path: str = ""  # the URL path, {model} replaced
    body: str = ""  # which request body (see request_bodies)
    deployment: str = ""  # our deployment, {model} replaced
    logs: bool = False  # whether the deployment writes the prediction log


SIDES = [
    Side("inproc", "in process: `model.predict(df)`", "inproc"),
    Side("inproc-proba", "in process: `predict_proba` on a NumPy matrix", "inproc"),
    Side(
        "floor-app",
        "reference: bare Starlette app, v2 → NumPy → `predict_proba`",
        "floor",
        "/v2/models/{model}/infer",
        "v2",
    ),
    Side("ours-v2", "gateway: v2, a tensor per column", "ours", "/v2/models/{model}/infer", "v2", "{model}", True),
    Side(
        "ours-v2-nolog",
        "gateway: v2, a tensor per column, log off",
        "ours",
        "/v2/models/{model}-nolog/infer",
        "v2",
        "{model}-nolog",
    ),
    Side(
        "ours-v2-tensor",
        "gateway: v2, one [n, 20] FP64 tensor",
        "ours",
        "/v2/models/{model}/infer",
        "v2_tensor",
        "{model}",
        True,
    ),
    Side(
        "ours-json",
        "gateway: JSON `instances`",
        "ours",
        "/api/v1/deployments/{model}/predict",
        "instances",
        "{model}",
        True,
    ),
    Side("mlflow", "MLflow: `/invocations`, `dataframe_split`", "mlflow", "/invocations", "dataframe_split"),
]
SIDE = {s.key: s for s in SIDES}


@dataclasses.dataclass(frozen=True)
class Plan:
    duration: float  # seconds per measurement
    warmup: float  # seconds of untimed load (concurrency 8) before each server case
    floor_seconds: float  # seconds of in-process calls per case
    models: tuple[str, ...]
    rows: tuple[int, ...]
    sides: tuple[str, ...]
    concurrency: tuple[int, ...] = (1, HIGH_CONCURRENCY)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FULL = Plan(
    duration=10.0,
    warmup=2.0,
    floor_seconds=3.0,
    models=("tiny", "forest"),
    rows=(1, 100),
    sides=tuple(s.key for s in SIDES),
)
QUICK = Plan(
    duration=1.5,
    warmup=0.5,
    floor_seconds=1.0,
    models=("tiny", "forest"),
    rows=(1,),
    sides=("inproc", "inproc-proba", "floor-app", "ours-v2", "ours-v2-nolog", "ours-json", "mlflow"),
)


class BenchError(RuntimeError):
    """A server or the load generator misbehaved: the figures would mean nothing."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- cleaning up: servers and load generators never outlive the benchmark ---------------------------------

_LIVE_SERVERS: set[Server] = set()
_LIVE_PROCS: set[subprocess.Popen[bytes]] = set()


def _cleanup() -> None:
    for proc in list(_LIVE_PROCS):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        _LIVE_PROCS.discard(proc)
    for server in list(_LIVE_SERVERS):
        with contextlib.suppress(Exception):
            server.stop(timeout=10)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally, then atexit runs


atexit.register(_cleanup)


# -- HTTP helpers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_call(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """A server started in its own session (process group), waited for, measured and stopped by group."""

    def __init__(
        self,
        name: str,
        command: Callable[[int], list[str]],
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        ready: str,
    ) -> None:
        self.name, self.command_for, self.cwd, self.env = name, command, cwd, env
        self.log_path, self.ready = log_path, ready
        self.port = 0
        self.command: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.startup_s: float | None = None
        self.exit_code: int | None = None

    def start(self, attempts: int = 3) -> None:
        """Start on a free port and wait until ``ready`` answers 200; another port if this one was taken."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except BenchError:
                clash = "address already in use" in self.tail().lower()
                self.stop(timeout=5)
                if not clash or attempt == attempts - 1:
                    raise
                say(f"  port {self.port} was taken meanwhile; {self.name} tries another")

    def _start_once(self) -> None:
        self.port = free_port()
        self.command = self.command_for(self.port)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _LIVE_SERVERS.add(self)
        deadline = started + READY_TIMEOUT_S
        while True:
            code = self.proc.poll()
            if code is not None:
                raise BenchError(
                    f"{self.name} exited with code {code} before answering GET {self.ready}.\n"
                    f"Command: {' '.join(self.command)}\nLast lines of its log ({self.log_path}):\n{self.tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_call(self.port, "GET", self.ready, timeout=2)
                if status == 200:
                    self.startup_s = time.monotonic() - started
                    return
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not answer GET {self.ready} on port {self.port} within {READY_TIMEOUT_S:.0f} s.\n"
                    f"Command: {' '.join(self.command)}\nLast lines of its log ({self.log_path}):\n{self.tail()}"
                )
            time.sleep(0.1)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU of every live process of the server's group."""
        if self.proc is None:
            return 0.0
        return group_cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM to the group (graceful: our gateway flushes its log), SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"warning: {self.name} ignored SIGTERM for {timeout:.0f} s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.exit_code = self.proc.wait()
        end = time.monotonic() + 5
        while True:  # the rest of the group (MLflow's CLI starts uvicorn as a child)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > end:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                break
            time.sleep(0.05)
        _LIVE_SERVERS.discard(self)
        self.proc = None
        if self._log is not None:
            self._log.close()
        return self.exit_code


# -- load generators ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Load:
    """What one fixed-duration run at one concurrency saw."""

    concurrency: int
    seconds: float  # from the first request sent to the last answer received
    ok: int  # answers with status 200
    failed: int  # other answers
    socket_errors: int
    latencies_ms: list[float]
    error_sample: str | None = None
    server_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ms = sorted(self.latencies_ms)
        answered = self.ok + self.failed
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 4),
            "requests_ok": self.ok,
            "failed": self.failed,
            "socket_errors": self.socket_errors,
            "rps": self.ok / self.seconds if self.seconds > 0 else 0.0,
            "p50_ms": percentile(ms, 50),
            "p90_ms": percentile(ms, 90),
            "p99_ms": percentile(ms, 99),
            "mean_ms": sum(ms) / len(ms),
            "max_ms": ms[-1],
            "server_cpu_ms_per_request": 1000 * self.server_cpu_s / answered if answered else None,
            "server_cores_busy": self.server_cpu_s / self.seconds if self.seconds > 0 else None,
            "driver_cpu_ms_per_request": 1000 * self.driver_cpu_s / answered if answered else None,
        }


# Each wrk thread owns one connection, times its own requests (CLOCK_MONOTONIC through LuaJIT's FFI) and
# stops itself after the first answer past the deadline: no request is in flight when wrk stops, so the
# server served exactly the requests answered (wrk alone drops the ones in flight at the end, which the
# server still serves and logs). The driver then interrupts wrk's main thread, which otherwise sleeps on.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } steward_bench_timespec;
int clock_gettime(int clk_id, steward_bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("steward_bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local count = 0
function setup(thread)
  count = count + 1
  thread:set("id", count)
end

local req, deadline, outdir
local t0, first, last = 0, 0, 0
local answers, ok, bad = 0, 0, 0
local lat = {}
local sample = nil
local stopped = false

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = args[4]
  deadline = tonumber(args[2])
  outdir = args[3]
  req = wrk.format()
end

function request()
  t0 = now_us()
  return req
end

function response(status, headers, body)
  local t1 = now_us()
  answers = answers + 1
  lat[answers] = t1 - t0
  if answers == 1 then first = t0 end
  last = t1
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == nil then sample = status .. " " .. body end
  end
  if t1 >= deadline and not stopped then
    stopped = true
    local name = outdir .. "/thread-" .. id
    if sample ~= nil then
      local e = assert(io.open(name .. ".err", "w"))
      e:write(sample)
      e:close()
    end
    local f = assert(io.open(name .. ".tmp", "w"))
    f:write(string.format("%d %d %d %d %d\n", answers, ok, bad, first, last))
    f:write(table.concat(lat, "\n"), "\n")
    f:close()
    assert(os.rename(name .. ".tmp", name .. ".txt"))
    wrk.thread:stop()
  end
end
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class WrkDriver:
    """wrk with one connection per thread (``-t C -c C``), keep-alive, the body prebuilt once."""

    name = "wrk"

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.script = workdir / "steward-bench.lua"
        self.script.write_text(WRK_SCRIPT)
        out = subprocess.run([executable, "-v"], capture_output=True, text=True, check=False)
        self.version = (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"
        self._runs = 0

    def describe(self) -> str:
        return (
            f"{self.version.split(' Copyright')[0]}: C, one event-loop thread per connection, keep-alive, the "
            "request built once; latencies timed per request in its Lua script (CLOCK_MONOTONIC)"
        )

    def run(self, port: int, path: str, body: bytes, concurrency: int, duration: float) -> Load:
        self._runs += 1
        run_dir = self.workdir / f"run-{self._runs:04d}"
        out = run_dir / "threads"
        out.mkdir(parents=True)
        body_path = run_dir / "body.json"
        body_path.write_bytes(body)
        output = run_dir / "wrk.out"
        started_us = time.monotonic_ns() // 1000
        deadline_us = started_us + int(duration * 1e6)
        command = [
            self.executable,
            f"--threads={concurrency}",
            f"--connections={concurrency}",
            f"--duration={math.ceil(duration) + 60}s",  # an upper bound: each thread stops itself at the deadline
            "--timeout=30s",
            f"--script={self.script}",
            f"http://127.0.0.1:{port}{path}",
            "--",
            str(body_path),
            str(deadline_us),
            str(out),
            "application/json",
        ]
        cpu_before = _children_cpu()
        with open(output, "wb") as sink:
            proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        _LIVE_PROCS.add(proc)
        try:
            limit = time.monotonic() + duration + 30
            while len(list(out.glob("thread-*.txt"))) < concurrency:
                if proc.poll() is not None:
                    raise BenchError(f"wrk exited (code {proc.returncode}) early:\n{_indent(output)}")
                if time.monotonic() > limit:
                    raise BenchError(
                        f"wrk threads got no answer within 30 s after the end of the run on {path}:\n{_indent(output)}"
                    )
                time.sleep(0.01)
            # Every thread has stopped: wake wrk's main thread (asleep for --duration) with SIGINT.
            for _ in range(100):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                time.sleep(0.05)
            else:
                proc.kill()
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            _LIVE_PROCS.discard(proc)
        driver_cpu = _children_cpu() - cpu_before
        latencies: list[float] = []
        ok = failed = 0
        first, last = [], []
        for part in sorted(out.glob("thread-*.txt")):
            head, *lines = part.read_text().split("\n")
            answers, n_ok, n_bad, t_first, t_last = (int(x) for x in head.split())
            ok += n_ok
            failed += n_bad
            first.append(t_first)
            last.append(t_last)
            latencies += [int(x) / 1000 for x in lines if x]
            if len(lines) - 1 != answers:
                raise BenchError(f"wrk's script wrote {len(lines) - 1} latencies for {answers} answers ({part})")
        text = output.read_text(errors="replace")
        socket_errors = 0
        found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if found:
            socket_errors = sum(int(g) for g in found.groups())
        samples = [p.read_text(errors="replace") for p in sorted(out.glob("thread-*.err"))]
        load = Load(
            concurrency=concurrency,
            seconds=(max(last) - min(first)) / 1e6,
            ok=ok,
            failed=failed,
            socket_errors=socket_errors,
            latencies_ms=latencies,
            error_sample=samples[0][:500] if samples else None,
            driver_cpu_s=driver_cpu,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
        return load


class PythonDriver:
    """The fallback: one thread per connection, ``http.client`` keep-alive; it shares the GIL and the cores."""

    name = "python-threads"
    version = f"http.client, Python {platform.python_version()}"

    def describe(self) -> str:
        return (
            "threaded `http.client` keep-alive driver (wrk was not available): one Python thread per connection "
            "in the benchmark's process, sharing the machine's cores with the server, so the server figures are "
            "lower bounds"
        )

    def run(self, port: int, path: str, body: bytes, concurrency: int, duration: float) -> Load:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        deadline = time.perf_counter() + duration
        states = [
            {"lat": [], "ok": 0, "bad": 0, "errors": 0, "first": None, "last": 0.0, "sample": None}
            for _ in range(concurrency)
        ]

        def work(state: dict[str, Any]) -> None:
            conn: http.client.HTTPConnection | None = None
            while True:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException):
                    state["errors"] += 1
                    conn.close()
                    conn = None
                    if time.perf_counter() >= deadline:
                        break
                    continue
                t1 = time.perf_counter()
                state["lat"].append((t1 - t0) * 1000)
                if state["first"] is None:
                    state["first"] = t0
                state["last"] = t1
                if response.status == 200:
                    state["ok"] += 1
                else:
                    state["bad"] += 1
                    if state["sample"] is None:
                        state["sample"] = f"{response.status} {data[:500].decode(errors='replace')}"
                if t1 >= deadline:
                    break
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=work, args=(s,), daemon=True) for s in states]
        cpu_before = time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        firsts = [s["first"] for s in states if s["first"] is not None]
        if not firsts:
            raise BenchError(f"no answer at all from port {port} on {path}")
        samples = [s["sample"] for s in states if s["sample"]]
        return Load(
            concurrency=concurrency,
            seconds=max(s["last"] for s in states) - min(firsts),
            ok=sum(s["ok"] for s in states),
            failed=sum(s["bad"] for s in states),
            socket_errors=sum(s["errors"] for s in states),
            latencies_ms=[x for s in states for x in s["lat"]],
            error_sample=samples[0] if samples else None,
            driver_cpu_s=time.process_time() - cpu_before,
        )


Driver = WrkDriver | PythonDriver


def _indent(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "    (no output)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def pick_driver(choice: str, workdir: Path) -> Driver:
    wrk = shutil.which("wrk")
    if choice == "python":
        return PythonDriver()
    if wrk is None:
        if choice == "wrk":
            raise SystemExit(f"error: wrk is not installed: {WRK_INSTALL}; or run with --driver python")
        say(
            f"wrk is not installed: {WRK_INSTALL}. Falling back to a threaded http.client driver, which shares "
            "the CPU with the server (its figures are lower bounds)."
        )
        return PythonDriver()
    return WrkDriver(wrk, workdir)


# -- the workload ------------------------------------------------------------------------------------------


def request_bodies(frame: Any) -> dict[str, bytes]:
    """The same rows in each protocol's layout (floats written with repr, so they round-trip exactly)."""
    columns = [str(c) for c in frame.columns]
    values = frame.to_numpy(dtype=float)
    n, k = values.shape
    v2 = {
        "inputs": [
            {"name": c, "shape": [n], "datatype": "FP64", "data": values[:, j].tolist()} for j, c in enumerate(columns)
        ]
    }
    v2_tensor = {"inputs": [{"name": "input-0", "shape": [n, k], "datatype": "FP64", "data": values.ravel().tolist()}]}
    rows = values.tolist()
    return {
        "v2": json.dumps(v2).encode(),
        "v2_tensor": json.dumps(v2_tensor).encode(),
        "instances": json.dumps({"instances": [dict(zip(columns, r, strict=True)) for r in rows]}).encode(),
        "dataframe_split": json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode(),
    }


def labels_in(side: Side, payload: dict[str, Any]) -> list[Any]:
    """The predicted labels in a side's answer."""
    if side.body.startswith("v2"):
        return next(o["data"] for o in payload["outputs"] if o["name"] == "prediction")
    if side.key == "ours-json":
        return [p["prediction"] for p in payload["predictions"]]
    return list(payload["predictions"])


class Tally:
    """The predictions each of our deployments should have logged: the rows of every 200 answer."""

    def __init__(self) -> None:
        self.rows: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()

    def add(self, deployment: str, requests: int, rows: int) -> None:
        self.requests[deployment] += requests
        self.rows[deployment] += requests * rows


# -- measuring ---------------------------------------------------------------------------------------------


def time_in_process(fn: Callable[[], object], seconds: float) -> dict[str, Any]:
    """Per-call latencies of ``fn`` for about ``seconds`` after 20 untimed calls; the GC stays on."""
    for _ in range(20):
        fn()
    gc.collect()
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        fn()
        stop = time.perf_counter()
        samples.append((stop - start) * 1000)
        if stop >= end and len(samples) >= 50:
            break
    ms = sorted(samples)
    return {
        "calls": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms),
        "max_ms": ms[-1],
    }


def run_floor(plan: Plan, wl: Workload) -> list[dict[str, Any]]:
    results = []
    for model_key in plan.models:
        model = model_of(wl, model_key)
        for rows in plan.rows:
            frame = frame_of(wl, rows)
            for key in ("inproc", "inproc-proba"):
                if key not in plan.sides:
                    continue
                if key == "inproc":

                    def fn(model: Any = model, frame: Any = frame) -> object:
                        return model.predict(frame)
                else:
                    matrix = frame.to_numpy(dtype=float)

                    def fn(model: Any = model, matrix: Any = matrix) -> object:
                        return model.predict_proba(matrix)

                say(f"  [in process] {model_key}, {rows} row(s): {SIDE[key].label}")
                with warnings.catch_warnings():
                    # Fitted on a DataFrame, the estimator warns when given an array; the columns are in order.
                    warnings.filterwarnings("ignore", message="X does not have valid feature names")
                    per_call = time_in_process(fn, plan.floor_seconds)
                results.append({"model": model_key, "rows": rows, "side": key, "per_call": per_call})
    return results


def model_of(wl: Workload, key: str) -> Any:
    return wl.forest if key == "forest" else wl.tiny


def frame_of(wl: Workload, rows: int) -> Any:
    return wl.X.iloc[:rows]


def merge(loads: list[Load]) -> Load:
    """Several runs at one concurrency as one: their times, answers and latencies added up."""
    samples = [x.error_sample for x in loads if x.error_sample]
    return Load(
        concurrency=loads[0].concurrency,
        seconds=sum(x.seconds for x in loads),
        ok=sum(x.ok for x in loads),
        failed=sum(x.failed for x in loads),
        socket_errors=sum(x.socket_errors for x in loads),
        latencies_ms=[v for x in loads for v in x.latencies_ms],
        error_sample=samples[0] if samples else None,
        server_cpu_s=sum(x.server_cpu_s for x in loads),
        driver_cpu_s=sum(x.driver_cpu_s for x in loads),
    )


def measure_server(
    server: Server,
    driver: Driver,
    sides: list[Side],
    model_key: str,
    rows: int,
    bodies: dict[str, bytes],
    plan: Plan,
    tally: Tally | None,
) -> list[dict[str, Any]]:
    """A warm-up per side, then ``plan.duration`` seconds per side and concurrency; every 200 is tallied.

    With several sides on one server, each concurrency is measured in two halves, in the order A B C .. C B A,
    so that a slow drift of the machine (or of the server: its log grows) weighs on every side alike.
    """

    def one(side: Side, concurrency: int, seconds: float) -> Load:
        path = side.path.format(model=model_key)
        cpu_before = server.cpu_seconds()
        load = driver.run(server.port, path, bodies[side.body], concurrency, seconds)
        load.server_cpu_s = server.cpu_seconds() - cpu_before
        if tally is not None and side.logs:
            tally.add(side.deployment.format(model=model_key), load.ok, rows)
        if load.failed:
            raise BenchError(
                f"{server.name} answered {load.failed} request(s) on {path} with an error, e.g. {load.error_sample}\n"
                f"Last lines of its log:\n{server.tail()}"
            )
        if load.socket_errors:
            say(f"  warning: {load.socket_errors} socket error(s) on {path} at concurrency {concurrency}")
        return load

    names = ", ".join(side.key for side in sides)
    halves = 2 if len(sides) > 1 else 1
    say(
        f"  [{names}] {model_key}, {rows} row(s): warm-up {plan.warmup:g} s each, then {plan.duration:g} s "
        f"per side and concurrency" + (" (in two halves, A..Z Z..A)" if halves == 2 else "")
    )
    results = {side.key: {"model": model_key, "rows": rows, "side": side.key} for side in sides}
    for side in sides:
        warm = one(side, HIGH_CONCURRENCY, plan.warmup)
        results[side.key]["warmup"] = {"seconds": round(warm.seconds, 3), "requests_ok": warm.ok}
    for concurrency in plan.concurrency:
        loads: dict[str, list[Load]] = {side.key: [] for side in sides}
        order = sides + sides[::-1] if halves == 2 else sides
        for side in order:
            loads[side.key].append(one(side, concurrency, plan.duration / halves))
        for side in sides:
            summary = merge(loads[side.key]).summary()
            summary["parts"] = len(loads[side.key])
            results[side.key][f"c{concurrency}"] = summary
            say(
                f"      {side.key} c={concurrency}: {summary['rps']:,.0f} req/s, p50 {summary['p50_ms']:.2f} ms, "
                f"p99 {summary['p99_ms']:.2f} ms, server CPU {summary['server_cpu_ms_per_request']:.2f} ms/req"
            )
    return [results[side.key] for side in sides]


def check_answer(
    server: Server, side: Side, model_key: str, rows: int, body: bytes, wl: Workload, tally: Tally | None
) -> None:
    """One request first: a 200 with the labels ``model.predict`` gives on the same rows."""
    path = side.path.format(model=model_key)
    status, data = http_call(server.port, "POST", path, body)
    if status != 200:
        raise BenchError(
            f"{server.name}: POST {path} answered {status}: {data[:500]!r}\nLast lines of its log:\n{server.tail()}"
        )
    if tally is not None and side.logs:
        tally.add(side.deployment.format(model=model_key), 1, rows)
    expected = model_of(wl, model_key).predict(frame_of(wl, rows)).tolist()
    got = labels_in(side, json.loads(data))
    if got != expected:
        raise BenchError(f"{server.name}: POST {path} predicted {got[:5]}..., the model in process {expected[:5]}...")


def clean_env() -> dict[str, str]:
    """This environment without virtualenv or Model Steward settings that would point a server elsewhere."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PROMETHEUS_MULTIPROC_DIR")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("STEWARD_")}


# -- the reference app ---------------------------------------------------------------------------------------


def run_floor_app(plan: Plan, wl: Workload, driver: Driver, workdir: Path) -> list[dict[str, Any]]:
    """bench/serving_floor_app.py under the same uvicorn, one worker: what the stack costs without our code."""
    import pickle

    results = []
    side = SIDE["floor-app"]
    for model_key in plan.models:
        model_path = workdir / f"floor-{model_key}.pkl"
        model_path.write_bytes(pickle.dumps(model_of(wl, model_key)))
        env = clean_env()
        env["STEWARD_BENCH_MODEL"] = str(model_path)
        server = Server(
            f"the reference app ({model_key})",
            lambda port: [
                sys.executable,
                "-m",
                "uvicorn",
                "serving_floor_app:app",
                "--app-dir",
                str(BENCH_DIR),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=workdir,
            env=env,
            log_path=workdir / f"floor-app-{model_key}.log",
            ready="/v2/health/ready",
        )
        say(f"reference: bare Starlette app serving {model_key} (uvicorn, one worker)")
        try:
            server.start()
            for rows in plan.rows:
                bodies = request_bodies(frame_of(wl, rows))
                check_answer(server, side, model_key, rows, bodies[side.body], wl, None)
                results += measure_server(server, driver, [side], model_key, rows, bodies, plan, None)
        finally:
            server.stop()
    return results


# -- our side ---------------------------------------------------------------------------------------------


def snapshot_code(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the modelsteward package as it is now, for our server to import.

    Other people edit the working tree while the benchmark runs; the server imports this copy (through
    PYTHONPATH, ahead of the editable install), so every figure of a run comes from one version of the code,
    the one the returned code state describes (commit, uncommitted changes, digest of the copied sources).
    """
    import hashlib

    import modelsteward

    package = Path(modelsteward.__file__).resolve().parent
    state = code_state()  # commit and dirty flag now; the digest is replaced by the copy's
    root = workdir / "code"
    shutil.copytree(package, root / "modelsteward", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((root / "modelsteward").rglob("*.py")):
        digest.update(str(path.relative_to(root / "modelsteward")).encode() + b"\0" + path.read_bytes() + b"\0")
    state["source_sha256"] = digest.hexdigest()[:16]
    state["snapshot"] = True
    env = clean_env()
    env["PYTHONPATH"] = str(root)
    found = subprocess.run(
        [sys.executable, "-c", "import modelsteward; print(modelsteward.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if not found.stdout.strip().startswith(str(root)):
        raise BenchError(f"the server would not import the snapshot of modelsteward: {found.stdout}{found.stderr}")
    return root, state


# -- our side (cont.) ----------------------------------------------------------------------------------------------


def register_ours(data_dir: Path, wl: Workload, models: tuple[str, ...]) -> dict[str, Any]:
    """Each model registered, aliased ``production`` and deployed twice: logging on, and off."""
    from modelsteward import Steward

    st = Steward(data_dir=data_dir)
    try:
        deployed = {}
        for key in models:
            version = st.register_model(key, model_of(wl, key), input_example=wl.X.head())
            st.set_alias(key, "production", version.version)
            st.deploy(key, f"{key}@production")
            st.deploy(f"{key}-nolog", f"{key}@production", log_predictions=False)
            deployed[key] = {"version": version.ref, "log_on": key, "log_off": f"{key}-nolog"}
    finally:
        st.close()
    return deployed


def start_ours(
    workdir: Path, wl: Workload, models: tuple[str, ...]
) -> tuple[Server, Path, dict[str, Any], dict[str, Any]]:
    """Register and deploy, then start ``steward up`` on a snapshot of the code; returns its code state too."""
    from modelsteward.settings import Settings

    code_root, code = snapshot_code(workdir)
    data_dir = workdir / "steward-data"
    deployed = register_ours(data_dir, wl, models)
    env = clean_env()
    env["PYTHONPATH"] = str(code_root)
    server = Server(
        "steward up",
        lambda port: [str(STEWARD), "up", "--data-dir", str(data_dir), "--port", str(port), "--workers", "1"],
        cwd=workdir,
        env=env,
        log_path=workdir / "steward-up.log",
        ready="/v2/health/ready",
    )
    server.start()
    inference = Path(Settings(data_dir=data_dir).resolved_inference_url())
    return server, inference, deployed, code


def run_ours(plan: Plan, wl: Workload, driver: Driver, workdir: Path) -> dict[str, Any]:
    from modelsteward.serving.prediction_log import count

    say("Model Steward: registering, deploying, starting `steward up --workers 1`")
    tally = Tally()
    results = []
    server, inference, deployed, code = start_ours(workdir, wl, plan.models)
    startup = server.startup_s
    try:
        for model_key in plan.models:
            for rows in plan.rows:
                bodies = request_bodies(frame_of(wl, rows))
                sides = [side for side in SIDES if side.server == "ours" and side.key in plan.sides]
                for side in sides:
                    check_answer(server, side, model_key, rows, bodies[side.body], wl, tally)
                results += measure_server(server, driver, sides, model_key, rows, bodies, plan, tally)
    finally:
        exit_code = server.stop()  # SIGTERM: the gateway closes and its prediction log flushes
    if exit_code not in (0, -signal.SIGTERM):  # uvicorn re-raises SIGTERM after its graceful shutdown
        say(f"warning: steward up exited with code {exit_code} on SIGTERM; last lines of its log:\n{server.tail()}")
    checks = []
    for model_key in plan.models:
        for deployment in (model_key, f"{model_key}-nolog"):
            logged = count(str(inference), deployment)
            expected = tally.rows[deployment]
            checks.append(
                {
                    "deployment": deployment,
                    "log_predictions": not deployment.endswith("-nolog"),
                    "requests_ok": tally.requests[deployment],
                    "expected_rows": expected,
                    "log_rows": logged,
                    "equal": logged == expected,
                }
            )
    return {
        "results": results,
        "log_check": checks,
        "startup_s": startup,
        "exit_code": exit_code,
        "code": code,
        "deployed": deployed,
        "versions": {
            "python": platform.python_version(),
            **{
                name: _version(name)
                for name in (
                    "modelsteward",
                    "scikit-learn",
                    "pandas",
                    "numpy",
                    "fastapi",
                    "starlette",
                    "uvicorn",
                    "orjson",
                    "pyarrow",
                    "uvloop",
                    "httptools",
                )
            },
        },
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- MLflow's side -----------------------------------------------------------------------------------------


def run_mlflow(plan: Plan, wl: Workload, driver: Driver, python: Path, workdir: Path) -> dict[str, Any]:
    peer_dir = workdir / "mlflow"
    peer_dir.mkdir()
    for source in (PEER_SCRIPT, WORKLOAD_FILE):
        shutil.copy(source, peer_dir / source.name)
    env = clean_env()
    env.update(PEER_ENV)
    say("MLflow: logging the same models (mlflow.sklearn, explicit pip requirements, SQLite tracking store)")
    done = subprocess.run(
        [str(python), str(peer_dir / PEER_SCRIPT.name), "--workdir", str(peer_dir / "stores")],
        cwd=peer_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not found:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise BenchError(f"the MLflow peer failed to log the models (exit {done.returncode}):\n{tail}")
    peer = json.loads(found[-1].removeprefix(RESULT_MARKER))
    if abs(peer["facts"]["forest_auc"] - wl.forest_auc) > 1e-12 or abs(peer["facts"]["tiny_auc"] - wl.tiny_auc) > 1e-12:
        raise BenchError("MLflow's side fitted different models than ours (AUCs differ)")
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # MLflow runs `uvicorn` from PATH
    env["MLFLOW_TRACKING_URI"] = peer["tracking_uri"]
    mlflow_cli = python.parent / "mlflow"
    results = []
    startups = {}
    for model_key in plan.models:
        uri = peer["models"][model_key]
        server = Server(
            f"mlflow models serve ({uri})",
            lambda port, uri=uri: [
                str(mlflow_cli),
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "--workers",
                "1",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=peer_dir,
            env=env,
            log_path=workdir / f"mlflow-serve-{model_key}.log",
            ready="/ping",
        )
        say(f"MLflow: starting `mlflow models serve -m {uri} --env-manager local --workers 1`")
        try:
            server.start()
            startups[model_key] = server.startup_s
            for rows in plan.rows:
                bodies = request_bodies(frame_of(wl, rows))
                check_answer(server, SIDE["mlflow"], model_key, rows, bodies["dataframe_split"], wl, None)
                results += measure_server(server, driver, [SIDE["mlflow"]], model_key, rows, bodies, plan, None)
        finally:
            server.stop()
    return {
        "results": results,
        "startup_s": startups,
        "models": peer["models"],
        "explicit_requirements": peer["explicit_requirements"],
        "versions": peer["versions"],
    }


# -- profiling (--profile) ---------------------------------------------------------------------------------

IDLE_LEAVES = ("Condition.wait", "Event.wait", "EpollSelector.select", "SimpleQueue.get", "Queue.get", "sleep")


def ensure_pyspy(rebuild: bool = False) -> Path:
    """py-spy from PATH, or from its own virtualenv in bench/.peers/py-spy (created on first use)."""
    found = shutil.which("py-spy")
    if found and not rebuild:
        return Path(found)
    exe = PYSPY_DIR / "bin" / "py-spy"
    if exe.exists() and not rebuild:
        return exe
    say(f"installing py-spy into its own virtualenv, {_show(PYSPY_DIR)} (once)")
    if not (PYSPY_DIR / "bin" / "python").exists():
        _run_step([sys.executable, "-m", "venv", str(PYSPY_DIR)], f"python -m venv {PYSPY_DIR}", 300)
    _run_step(
        [str(PYSPY_DIR / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "py-spy"],
        "pip install py-spy",
        600,
    )
    return exe


def _frame_key(frame: str) -> tuple[str, str]:
    """('Gateway._predict', 'modelsteward/serving/gateway.py:292') from py-spy's 'func (path:line)'."""
    match = re.match(r"(.*) \((.*)\)$", frame)
    if not match:
        return frame, ""
    func, where = match.groups()
    where = re.sub(r".*/site-packages/", "", where)
    where = re.sub(r".*/lib/python3\.\d+/", "", where)
    if "/modelsteward/" in where:
        where = "modelsteward/" + where.split("/modelsteward/", 1)[1]
    return func, where


WRAPPERS = ("modelsteward/cli/", "modelsteward/api/app.py")  # frames around every request: not hot spots


def _package(where: str) -> str:
    """'asyncio' for 'asyncio/selector_events.py:1057', 'h11' for 'h11/_util.py:87'."""
    head = where.split("/", 1)[0] if "/" in where else where.split(".py", 1)[0]
    return head or "?"


def analyze_profile(raw: Path, top: int = 12) -> dict[str, Any]:
    """Shares of the server's busy samples (idle waits dropped).

    - ``parts``: request handling, the log writer thread, the route refresh thread, the rest (event loop, h11);
    - ``ours_functions``: our functions by inclusive time (the CLI and app wrappers around everything left out);
    - ``ours_deepest``: each sample charged to the deepest line of our code on its stack (the line that called
      into pandas, scikit-learn, ... or ran itself), with the callees that line spent it in: where to look;
    - ``own_any``: functions of any package by own time.
    """
    functions: collections.Counter[str] = collections.Counter()
    deepest: collections.Counter[str] = collections.Counter()
    callees: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    own: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    busy = truncated = 0
    for line in raw.read_text().splitlines():
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        n = int(n_text)
        frames = [_frame_key(f) for f in stack.split(";")]
        if frames[-1][0] in IDLE_LEAVES:
            continue
        if frames[0][0] not in ("<module>", "Thread._bootstrap"):
            truncated += n  # py-spy could not read the whole stack
            continue
        busy += n
        names = {f for f, _ in frames}
        if "RequestResponseCycle.run_asgi" in names:
            parts["request handling (the ASGI app, from uvicorn's run_asgi down)"] += n
        elif "DatasetWriter._loop" in names:
            parts["prediction log writer thread"] += n
        elif "Gateway._refresh_loop" in names:
            parts["route refresh thread"] += n
        else:
            parts["event loop, h11 parsing and writing, other"] += n
        own[f"{frames[-1][0]} ({frames[-1][1]})"] += n
        seen: set[str] = set()
        last = None
        for i, (func, where) in enumerate(frames):
            if not where.startswith("modelsteward/") or where.startswith(WRAPPERS):
                continue
            name = f"{func} ({where.rsplit(':', 1)[0]})"
            if name not in seen:
                seen.add(name)
                functions[name] += n
            last = i
        if last is None:
            key = "(outside our code: the event loop, uvicorn, h11, Starlette/FastAPI)"
            deepest[key] += n
            callees[key][_package(frames[-1][1]) + " (own time)"] += n
            continue
        func, where = frames[last]
        key = f"{where} {func}"
        deepest[key] += n
        callee = frames[last + 1] if last + 1 < len(frames) else None
        callees[key][f"{callee[0]} ({callee[1]})" if callee else "(own)"] += n
    if not busy:
        return {"busy_samples": 0}

    def share(counter: collections.Counter[str], k: int) -> list[list[Any]]:
        return [[round(v / busy, 4), key] for key, v in counter.most_common(k)]

    return {
        "busy_samples": busy,
        "truncated_samples": truncated,
        "parts": share(parts, 10),
        "ours_functions": share(functions, top),
        "ours_deepest": [
            [round(v / busy, 4), key, share(callees.get(key, collections.Counter()), 6 if key.startswith("(") else 3)]
            for key, v in deepest.most_common(top)
        ],
        "own_any": share(own, top),
    }


def profile_gateway(plan: Plan, wl: Workload, driver: Driver, workdir: Path, seconds: float) -> dict[str, Any]:
    """Our server under load at concurrency 8, sampled by py-spy (100 Hz); hot spots printed.

    py-spy pauses the server for each sample (its non-blocking mode loses many stacks here), which slows it a
    little; the shares, not the speed, are the point.
    """
    pyspy = ensure_pyspy()
    PROFILES_DIR.mkdir(parents=True, exist_ok=True)
    cases = [(m, r) for m in plan.models for r in plan.rows]
    (workdir / "profile").mkdir()
    server, _inference, _deployed, code = start_ours(workdir / "profile", wl, plan.models)
    report: dict[str, Any] = {"tool": f"py-spy ({pyspy})", "seconds": seconds, "code": code, "cases": {}}
    try:
        for model_key, rows in cases:
            side = SIDE["ours-v2"]
            body = request_bodies(frame_of(wl, rows))[side.body]
            path = side.path.format(model=model_key)
            driver.run(server.port, path, body, HIGH_CONCURRENCY, plan.warmup)
            raw = PROFILES_DIR / f"serving-{model_key}-{rows}row.txt"
            assert server.proc is not None
            spy = subprocess.Popen(
                [
                    str(pyspy),
                    "record",
                    "--pid",
                    str(server.proc.pid),
                    "--duration",
                    str(math.ceil(seconds)),
                    "--rate",
                    "100",
                    "--format",
                    "raw",
                    "--full-filenames",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            _LIVE_PROCS.add(spy)
            try:
                load = driver.run(server.port, path, body, HIGH_CONCURRENCY, math.ceil(seconds) + 1)
                out, _ = spy.communicate(timeout=60)
            finally:
                if spy.poll() is None:
                    spy.kill()
                _LIVE_PROCS.discard(spy)
            if spy.returncode != 0 or not raw.exists():
                raise BenchError(f"py-spy failed (exit {spy.returncode}): {out.decode(errors='replace')[-1500:]}")
            analysis = analyze_profile(raw)
            analysis["rps_while_sampled"] = load.ok / load.seconds
            analysis["raw"] = _show(raw)
            report["cases"][f"{model_key}, {rows} row(s)"] = analysis
            print_profile(f"{MODELS[model_key]}, {rows} row(s), v2 per column, c={HIGH_CONCURRENCY}", analysis)
    finally:
        server.stop()
    summary = PROFILES_DIR / "serving-profile.json"
    summary.write_text(json.dumps(report, indent=2) + "\n")
    say(f"wrote {_show(summary)}")
    return report


def print_profile(title: str, analysis: dict[str, Any]) -> None:
    print(
        f"\nProfile: {title}: {analysis['busy_samples']} busy samples ({analysis['truncated_samples']} truncated "
        f"left out), {analysis['rps_while_sampled']:,.0f} req/s while sampled; raw stacks in {analysis['raw']}"
    )
    print("  where the busy samples are:")
    for share, name in analysis["parts"]:
        print(f"    {share:6.1%}  {name}")
    print("  our functions, inclusive:")
    for share, name in analysis["ours_functions"]:
        print(f"    {share:6.1%}  {name}")
    print("  the deepest line of our code on the stack (and what it called):")
    for share, name, below in analysis["ours_deepest"]:
        print(f"    {share:6.1%}  {name}")
        for sub, callee in below:
            print(f"              {sub:6.1%}  -> {callee}")
    print("  own time, any code:")
    for share, name in analysis["own_any"]:
        print(f"    {share:6.1%}  {name}")


# -- the report --------------------------------------------------------------------------------------------


def find(results: list[dict[str, Any]], model: str, rows: int, side: str) -> dict[str, Any] | None:
    for r in results:
        if r["model"] == model and r["rows"] == rows and r["side"] == side:
            return r
    return None


def derive(results: list[dict[str, Any]], log_check: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The issue's four figures, each against its aim."""
    overhead, vs_mlflow, logging_cost = [], [], []
    for model in plan.models:
        floor, proba, ours = (find(results, model, 1, k) for k in ("inproc", "inproc-proba", "ours-v2"))
        if 1 in plan.rows and floor and ours and "c1" in ours:
            gateway = ours["c1"]["p50_ms"]
            entry = {
                "model": model,
                "gateway_p50_ms": gateway,
                "predict_p50_ms": floor["per_call"]["p50_ms"],
                "overhead_ms": gateway - floor["per_call"]["p50_ms"],
                "aim_ms": 1.0,
            }
            if proba:
                entry["proba_numpy_p50_ms"] = proba["per_call"]["p50_ms"]
                entry["overhead_over_proba_numpy_ms"] = gateway - proba["per_call"]["p50_ms"]
            reference = find(results, model, 1, "floor-app")
            if reference and "c1" in reference:
                entry["reference_app_p50_ms"] = reference["c1"]["p50_ms"]
            entry["met"] = entry["overhead_ms"] <= 1.0
            overhead.append(entry)
        for rows in plan.rows:
            ours = find(results, model, rows, "ours-v2")
            theirs = find(results, model, rows, "mlflow")
            off = find(results, model, rows, "ours-v2-nolog")
            key = f"c{HIGH_CONCURRENCY}"
            if ours and theirs and key in ours and key in theirs:
                ratio = ours[key]["rps"] / theirs[key]["rps"]
                entry = {
                    "model": model,
                    "rows": rows,
                    "gateway_rps": ours[key]["rps"],
                    "mlflow_rps": theirs[key]["rps"],
                    "ratio": ratio,
                    "aim": 10.0,
                    "met": ratio >= 10.0,
                }
                reference = find(results, model, rows, "floor-app")
                if reference and key in reference:
                    entry["reference_app_rps"] = reference[key]["rps"]
                    entry["reference_app_ratio"] = reference[key]["rps"] / theirs[key]["rps"]
                vs_mlflow.append(entry)
            if ours and off and key in ours and key in off:
                cost = 1 - ours[key]["rps"] / off[key]["rps"]
                logging_cost.append(
                    {
                        "model": model,
                        "rows": rows,
                        "rps_log_on": ours[key]["rps"],
                        "rps_log_off": off[key]["rps"],
                        "cost": cost,
                        "aim": 0.10,
                        "met": cost <= 0.10,
                    }
                )
    return {
        "overhead_1row_p50": overhead,
        "rps_vs_mlflow": vs_mlflow,
        "logging_cost": logging_cost,
        "log_rows": {"checks": log_check, "met": bool(log_check) and all(c["equal"] for c in log_check)},
    }


def fmt_rps(rps: float) -> str:
    return f"{rps:,.0f}"


def table_rows(results: list[dict[str, Any]], plan: Plan) -> list[list[str]]:
    rows = []
    for model in plan.models:
        for n in plan.rows:
            for side in SIDES:
                r = find(results, model, n, side.key)
                if r is None:
                    continue
                cells = [MODELS[model], str(n), side.label]
                if "per_call" in r:
                    p = r["per_call"]
                    cells += [fmt_ms(p["p50_ms"]), fmt_ms(p["p99_ms"]), "—", "—", "—", "—"]
                else:
                    c1, c8 = r.get("c1"), r.get(f"c{HIGH_CONCURRENCY}")
                    cells += [fmt_ms(c1["p50_ms"]), fmt_ms(c1["p99_ms"])] if c1 else ["—", "—"]
                    if c8:
                        cpu = c8["server_cpu_ms_per_request"]
                        cells += [fmt_rps(c8["rps"]), fmt_ms(c8["p50_ms"]), fmt_ms(c8["p99_ms"]), fmt_ms(cpu)]
                    else:
                        cells += ["—"] * 4
                rows.append(cells)
    return rows


HEADERS = [
    "Model",
    "Rows",
    "Side",
    "c=1 p50",
    "c=1 p99",
    f"c={HIGH_CONCURRENCY} req/s",
    f"c={HIGH_CONCURRENCY} p50",
    f"c={HIGH_CONCURRENCY} p99",
    f"server CPU/request (c={HIGH_CONCURRENCY})",
]


def print_table(rows: list[list[str]], driver: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Serving: in process vs Model Steward's gateway vs MLflow (one worker each; load: {driver})")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i in (0, 2) else "right")
    from rich.markup import escape

    for cells in rows:
        table.add_row(*(escape(c) for c in cells))
    Console(width=200).print(table)


def derived_lines(derived: dict[str, Any]) -> list[str]:
    def verdict(met: bool) -> str:
        return "**met**" if met else "**missed**"

    lines = [
        "1. **Gateway overhead over the model in process, 1 row, p50** (gateway c=1 p50 minus `predict` p50; "
        "aim at most 1 ms):"
    ]
    for e in derived["overhead_1row_p50"]:
        text = (
            f"   - {MODELS[e['model']]}: {fmt_ms(e['gateway_p50_ms'])} - {fmt_ms(e['predict_p50_ms'])} = "
            f"**{fmt_ms(e['overhead_ms'])}**: {verdict(e['met'])}"
        )
        if not e["met"]:
            text += f" by {fmt_ms(e['overhead_ms'] - 1.0)} ({e['overhead_ms']:.1f}x the budget)"
        if "overhead_over_proba_numpy_ms" in e:
            text += (
                f". Over the model alone (`predict_proba` on a NumPy matrix, no DataFrame checks: "
                f"{fmt_ms(e['proba_numpy_p50_ms'])}) the gateway adds {fmt_ms(e['overhead_over_proba_numpy_ms'])}"
            )
        if "reference_app_p50_ms" in e:
            text += (
                f". The bare Starlette reference answers the same request in {fmt_ms(e['reference_app_p50_ms'])} "
                "at p50, HTTP included"
            )
        lines.append(text + ".")
    lines.append(
        f"2. **Gateway requests/s over MLflow's at concurrency {HIGH_CONCURRENCY}** (v2 per column vs "
        "`/invocations`; aim at least 10x):"
    )
    if not derived["rps_vs_mlflow"]:
        lines.append("   - not measured (MLflow skipped).")
    for e in derived["rps_vs_mlflow"]:
        text = (
            f"   - {MODELS[e['model']]}, {e['rows']} row(s): {fmt_rps(e['gateway_rps'])} vs "
            f"{fmt_rps(e['mlflow_rps'])} req/s = **{e['ratio']:.1f}x**: {verdict(e['met'])}"
        )
        if not e["met"]:
            text += f" (short by {10 / e['ratio']:.1f}x)"
        if "reference_app_rps" in e:
            text += (
                f"; the bare Starlette reference: {fmt_rps(e['reference_app_rps'])} req/s = "
                f"{e['reference_app_ratio']:.1f}x MLflow's"
            )
        lines.append(text + ".")
    lines.append(
        f"3. **Cost of the prediction log** (requests/s at concurrency {HIGH_CONCURRENCY}, logging on vs the "
        "same model deployed with `log_predictions=False`; aim at most 10% lower):"
    )
    for e in derived["logging_cost"]:
        change = f"{e['cost']:.1%} fewer" if e["cost"] >= 0 else f"{-e['cost']:.1%} more (noise)"
        text = (
            f"   - {MODELS[e['model']]}, {e['rows']} row(s): {fmt_rps(e['rps_log_on'])} req/s with the log vs "
            f"{fmt_rps(e['rps_log_off'])} without = **{change}**: {verdict(e['met'])}"
        )
        if not e["met"]:
            text += f" by {(e['cost'] - 0.10) * 100:.1f} points"
        lines.append(text + ".")
    checks = derived["log_rows"]["checks"]
    lines.append(
        "4. **Every answered prediction is in the log** (rows counted with "
        "`modelsteward.serving.prediction_log.count` after SIGTERM, against the driver's 200 answers x rows, "
        "warm-ups and the check request included): " + verdict(derived["log_rows"]["met"]) + "."
    )
    for c in checks:
        state = "equal" if c["equal"] else f"**differ by {c['log_rows'] - c['expected_rows']:+,}**"
        lines.append(
            f"   - `{c['deployment']}` (logging {'on' if c['log_predictions'] else 'off'}): "
            f"{c['log_rows']:,} rows in the log, {c['requests_ok']:,} answers, {c['expected_rows']:,} predictions "
            f"answered: {state}."
        )
    return lines


def render_section(result: dict[str, Any], rows: list[list[str]]) -> str:
    m, plan, ours, peer = result["machine"], Plan(**_plan_args(result["plan"])), result["ours"], result["mlflow"]
    ov, pv = ours["versions"], (peer["versions"] if peer else {})

    def loop_of(v: dict[str, Any]) -> str:
        parts = [
            f"uvloop {v['uvloop']}" if v.get("uvloop") else "the asyncio loop",
            f"httptools {v['httptools']}" if v.get("httptools") else "h11",
        ]
        return " + ".join(parts)

    lines = [
        SECTION,
        "",
        f"Command: `{result['command']}` (run {result['date']}, {result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {m['os']} {m['arch']}, {m['cpu']}, {m['cores']} cores, shared by the server, the load "
        f"generator and this script. Python {ov['python']}; modelsteward {ov['modelsteward']} "
        f"({_code_text(result['code'])}); scikit-learn {ov['scikit-learn']}, pandas {ov['pandas']}, "
        f"NumPy {ov['numpy']} on both sides; our server: FastAPI {ov['fastapi']}, uvicorn {ov['uvicorn']} "
        f"({loop_of(ov)}), orjson {ov['orjson']}; "
        + (
            f"MLflow {pv['mlflow']} in its own virtualenv (FastAPI {pv['fastapi']}, uvicorn {pv['uvicorn']}, "
            f"{loop_of(pv)}). "
            if peer
            else "MLflow not run. "
        )
        + f"Load generator: {result['driver']['description']}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| --- | ---: | --- | " + " | ".join(["---:"] * (len(HEADERS) - 3)) + " |",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    lines += [
        "",
        f"Each server figure covers {plan.duration:g} s of load at one concurrency, after a {plan.warmup:g} s "
        f"warm-up at concurrency {HIGH_CONCURRENCY} per case; c=1 sends requests one after the other on one "
        f"keep-alive connection, c={HIGH_CONCURRENCY} keeps {HIGH_CONCURRENCY} connections busy. The four "
        "gateway variants of a case are measured in two halves each, interleaved (A B C D, then D C B A), so "
        "that a drift of the machine or of the server weighs on all of them alike. Latency is measured by the "
        "load generator per request (send to last byte of the answer); req/s counts 200 answers over the time "
        "from the first request sent to the last answer; *server CPU/request* is the server process group's "
        f"user + system CPU time during the c={HIGH_CONCURRENCY} runs divided by their requests. In-process "
        f"rows: per call, for {plan.floor_seconds:g} s after 20 untimed calls, garbage collector on. "
        "Run to run, on this shared 2-core virtual machine, our figures moved by up to about 10% (most for the "
        "forest) and MLflow's concurrency-8 figures by up to about 25% (its LogisticRegression, 1 row: 148 to "
        "210 req/s over ten runs of the same day), so smaller differences are noise.",
        "",
        "Derived figures (the issue's aims):",
        "",
        *derived_lines(result["derived"]),
        "",
        "What each side does:",
        "",
        "- **Same models, same rows.** Both sides fit the same estimators from `bench/workload.py` "
        f"(`make_classification`, 5,000 x {N_FEATURES}, seed 0; `LogisticRegression({_kwargs(TINY_PARAMS)})`, "
        f"`RandomForestClassifier({_kwargs(FOREST_PARAMS)})`, same AUCs checked) and send the first 1 or 100 "
        "rows of the training frame; before timing, one request per case must return the labels "
        "`model.predict` gives in process.",
        "- **In process:** `model.predict(df)` on the same pandas rows, in this script's process (the floor the "
        "issue names); and `model.predict_proba(matrix)` on the same rows as a NumPy matrix, the model without "
        "scikit-learn's DataFrame checks (which cost more than the model itself for a few rows), which is "
        "what a server can get down to.",
        "- **Model Steward:** `steward up --data-dir <tmp> --port <free> --workers 1` (uvicorn, one process, "
        "default log level, so uvicorn's access log is on as MLflow's), started in its own session after "
        "`Steward(data_dir=tmp)`: `register_model(name, model, input_example=X.head())`, `set_alias(name, "
        '"production", v)`, `deploy(name, f"{name}@production")` and `deploy(f"{name}-nolog", ..., '
        "log_predictions=False)`. Requests: `POST /v2/models/{deployment}/infer` with one FP64 tensor per "
        "column (the main rows), or one `[n, 20]` FP64 tensor; and `POST /api/v1/deployments/{deployment}/predict` "
        'with `{"instances": [{column: value, ...}]}`. The answer carries the label and both class probabilities, '
        "the version that answered and a prediction id per row; with logging on, each request's inputs and "
        "outputs are appended to the prediction log (Parquet, written by a background thread every second).",
        "- **MLflow:** the same models logged with `mlflow.sklearn.log_model` (explicit pip requirements, "
        "signature, input example) and registered on a SQLite tracking store in a temporary folder; "
        "`mlflow models serve -m models:/<name>/1 --env-manager local --workers 1` (uvicorn with MLflow's "
        "FastAPI scoring app, one server per model, one after the other); requests: `POST /invocations` with "
        '`{"dataframe_split": {"columns": [...], "data": [[...]]}}`; the answer is `{"predictions": [labels]}` '
        "(MLflow's pyfunc calls `predict` only, and logs nothing). Its app runs each prediction in a thread "
        "(`asyncio.to_thread`) under a timeout middleware; at concurrency 8 those threads contend for the GIL, "
        "which is why its CPU per request is higher at c=8 than at c=1.",
        "- **Reference (not a product):** `bench/serving_floor_app.py`, a bare Starlette app under the same "
        "uvicorn, one worker, default log level, serving the same pickled estimator: `orjson.loads` of the v2 "
        "body, one NumPy column per tensor stacked into a matrix, `predict_proba` on the matrix (the label is the "
        "class of the highest probability), an `orjson` answer; no signature check, no routing, no ids, no log. "
        "It shows what the HTTP stack and the model cost on this machine without our code.",
        "- **One at a time:** the in-process floor first, then the reference app, our server, MLflow's servers; "
        "only one server runs at a time, each with one worker process.",
        f"- **Server stacks, as each installation brings them:** our server and the reference app run uvicorn "
        f"with {loop_of(ov)} (the project's virtualenv); MLflow's uvicorn runs with {loop_of(pv)} (its own "
        "virtualenv, `pip install mlflow`)."
        if peer
        else f"- **Server stack:** our server and the reference app run uvicorn with {loop_of(ov)}.",
        "- **The code measured:** the server imports a copy of `modelsteward/` taken when it starts (through "
        "`PYTHONPATH`), so concurrent edits of the working tree cannot mix into a run; the commit and the digest "
        "above describe that copy.",
        f"- **Load generator:** {result['driver']['description']}. Each of its threads stops after its first "
        "answer past the deadline, so no request is in flight when it stops and the log check is exact.",
        "",
        f"Raw figures: `{result['json']}`.",
    ]
    return "\n".join(lines) + "\n"


def _plan_args(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def _kwargs(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _code_text(code: dict[str, Any]) -> str:
    text = f"commit {code['commit'] or 'unknown'}"
    if code["dirty"]:
        text += " with uncommitted changes"
    text += f", sources sha256 {code['source_sha256']}"
    return text


def write_markdown(path: Path, section: str) -> None:
    """Replace our section of ``path`` (up to the next ``## `` heading), keeping every other one."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        rest = "" if end == -1 else "\n" + text[end + 1 :]
        text = text[:start] + section + rest
    path.write_text(text)


# -- main --------------------------------------------------------------------------------------------------


def cpu_busy_share(seconds: float = 1.0) -> float | None:
    """The share of all cores busy over ``seconds`` (from /proc/stat), or None where there is no /proc."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="steward-bench-serving-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def render_saved(path: Path, markdown: Path | None) -> int:
    """The table and the Markdown section again, from raw results saved by an earlier run."""
    result = json.loads(path.read_text())
    plan = Plan(**_plan_args(result["plan"]))
    rows = table_rows(result["results"], plan)
    print_table(rows, result["driver"]["name"])
    print("\n".join(derived_lines(result["derived"])).replace("**", ""))
    if markdown is not None:
        write_markdown(markdown, render_section(result, rows))
        say(f"wrote the section {SECTION!r} of {markdown} from {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serving: in process vs Model Steward's gateway vs MLflow.")
    parser.add_argument("--quick", action="store_true", help="1-row requests, 1.5 s runs (about 70 s); no Markdown")
    parser.add_argument("--skip-peer", action="store_true", help="no MLflow (no virtualenv needed); no Markdown")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10, --quick 1.5)")
    parser.add_argument(
        "--driver", choices=("auto", "wrk", "python"), default="auto", help="load generator (default: wrk if found)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, sample our server under load with py-spy and print its hot spots",
    )
    parser.add_argument("--profile-only", action="store_true", help="only the --profile part (no benchmark)")
    parser.add_argument("--peer-dir", type=Path, default=PEER_DIR, help="the MLflow virtualenv (bench/.peers/mlflow)")
    parser.add_argument("--rebuild-peer", action="store_true", help="recreate the MLflow virtualenv first")
    parser.add_argument("--json", type=Path, help="raw results (default bench/results/serving[.scratch].json)")
    parser.add_argument("--markdown", type=Path, help="update this file's section (default BENCHMARKS.md, full runs)")
    parser.add_argument("--no-markdown", action="store_true", help="never write Markdown")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: print the table of saved raw results and rewrite their Markdown section",
    )
    args = parser.parse_args(argv)
    if args.render:
        return render_saved(args.render, None if args.no_markdown else (args.markdown or MARKDOWN))
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)

    plan = QUICK if args.quick else FULL
    if args.duration:
        plan = dataclasses.replace(plan, duration=args.duration)
    skip_peer = args.skip_peer or args.profile_only
    complete = not args.quick and not skip_peer and not args.duration and not args.profile_only
    started = time.perf_counter()
    if not STEWARD.exists():
        raise SystemExit(f"error: {STEWARD} not found: run this script with the project's virtualenv python")

    python = None
    if not skip_peer:
        try:
            python = ensure_peer(args.peer_dir.resolve(), rebuild=args.rebuild_peer)
        except PeerUnavailable as e:
            say(
                f"error: cannot set up the MLflow peer virtualenv ({_show(args.peer_dir)}).\n{e}\n\n"
                "It needs PyPI (pip install mlflow). Run with --skip-peer to measure Model Steward alone."
            )
            return 2
        assert python == peer_python(args.peer_dir.resolve())

    with scratch_folder() as workdir:
        driver = pick_driver(args.driver, workdir)
        say(f"load generator: {driver.describe()}")
        load_before = list(os.getloadavg())
        busy = cpu_busy_share()
        if busy is not None and busy > 0.2:
            say(f"warning: other processes keep {busy:.0%} of the CPU busy before the run; figures may suffer")
        say("building the workload (same data and estimators on both sides)")
        wl = build_workload()
        if args.profile_only:
            profile_gateway(plan, wl, driver, workdir, seconds=max(plan.duration, 10))
            return 0
        try:
            say("in process (the floor):")
            floor = run_floor(plan, wl)
            if "floor-app" in plan.sides:
                floor += run_floor_app(plan, wl, driver, workdir)
            ours = run_ours(plan, wl, driver, workdir)
            peer = run_mlflow(plan, wl, driver, python, workdir) if python is not None else None
        except BenchError as e:
            say(f"error: {e}")
            return 1
        results = floor + ours["results"] + (peer["results"] if peer else [])
        command = ".venv/bin/python bench/bench_serving.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:])
        )
        result: dict[str, Any] = {
            "benchmark": "serving",
            "command": command,
            "date": dt.date.today().isoformat(),
            "elapsed_s": time.perf_counter() - started,
            "quick": args.quick,
            "machine": {
                **machine(),
                "cpu_busy_before": busy,
                "loadavg_before": load_before,
                "loadavg_after": list(os.getloadavg()),
            },
            "plan": plan.to_dict(),
            "code": ours["code"],
            "driver": {"name": driver.name, "version": driver.version, "description": driver.describe()},
            "ours": {k: v for k, v in ours.items() if k != "results"},
            "mlflow": {k: v for k, v in peer.items() if k != "results"} if peer else None,
            "results": results,
            "derived": derive(results, ours["log_check"], plan),
        }
        rows = table_rows(results, plan)
        print_table(rows, driver.name)
        print("\n".join(derived_lines(result["derived"])).replace("**", ""))
        json_path = (args.json or RESULTS_DIR / ("serving.json" if complete else "serving.scratch.json")).resolve()
        result["json"] = _show(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        say(f"wrote {json_path}")
        markdown = None if args.no_markdown else (args.markdown or (MARKDOWN if complete else None))
        if markdown is not None:
            write_markdown(markdown, render_section(result, rows))
            say(f"wrote the section {SECTION!r} of {markdown}")
        if args.profile:
            result["profile"] = profile_gateway(plan, wl, driver, workdir, seconds=max(plan.duration, 10))
            json_path.write_text(json.dumps(result, indent=2) + "\n")
        failed_log = not result["derived"]["log_rows"]["met"]
    if failed_log:
        say("error: the prediction log does not hold every answered prediction (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
