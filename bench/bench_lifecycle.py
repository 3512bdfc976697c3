"""The life-cycle engine at scale: one scheduler round over 1,000 models with 5 monitors each, and the
gateway's latency while such a round runs inside the server; into BENCHMARKS.md.

    .venv/bin/python bench/bench_lifecycle.py            # full run (1,000 models): a few minutes
    .venv/bin/python bench/bench_lifecycle.py --quick    # 100 models; writes no Markdown

There is no peer: MLflow, Evidently, KServe and Seldon have no life-cycle engine to compare with, so the
figures stand against the issue's aim (a round in under 10 s) and against the gateway's own idle latency.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from workload import replace_section  # noqa: E402 - bench/ is on the path when a script runs

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Life-cycle engine"
MONITORS = ("drift", "quality", "performance", "estimated", "kpi")

DEFINITION = """\
name: fleet
description: one life cycle for every model of the fleet
stages:
  - name: candidate
  - name: production
  - name: review
parameters:
  min_auc: 0.6
transitions:
  - name: watch
    from: production
    to: review
    trigger: {event: monitor_breach, monitor: "{model}-drift"}
    gates:
      - metric: {metric: auc, min: "${min_auc}"}
      - provenance: {require: [training_data, environment, signature]}
      - monitor: {monitor: "{model}-quality", allow: [ok, not_enough_data]}
      - monitor: {monitor: "{model}-performance", allow: [ok, not_enough_data]}
      - monitor: {monitor: "{model}-estimated", allow: [ok, not_enough_data]}
      - monitor: {monitor: "{model}-kpi", allow: [ok, not_enough_data]}
  - name: back
    from: review
    to: production
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the fleet ------------------------------------------------------------------------------------------


def build_fleet(data_dir: Path, models: int) -> dict[str, float]:
    """Register the models, their 5 monitors each, and put them all under one life cycle."""
    from sklearn.linear_model import LogisticRegression

    from modelsteward import LocalSteward
    from modelsteward.settings import Settings

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(50_000, 10_000, 200), "dti": rng.uniform(0, 1, 200)})
    fitted = LogisticRegression().fit(X, X["dti"] > 0.5)
    timings = {}
    with LocalSteward(settings=Settings(data_dir=data_dir, scheduler=False), actor="builder") as st:
        started = time.perf_counter()
        names = [f"m{i:04d}" for i in range(models)]
        for name in names:
            st.register_model(name, fitted, input_example=X.head(), training_data=X, metrics={"auc": 0.8})
            st.set_alias(name, "production", 1)
        timings["register_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for name in names:
            for kind in MONITORS:
                st.put_monitor(f"{name}-{kind}", {"target": {"model": name}, "window": "1d",
                                                  "checks": [{"drift": {}}]})  # fmt: skip
        timings["monitors_s"] = time.perf_counter() - started
        started = time.perf_counter()
        st.apply_lifecycle(DEFINITION + "models: [" + ", ".join(names) + "]\n")
        timings["apply_s"] = time.perf_counter() - started
        st.lifecycle_tick()  # the engine's bookmark: the round below sees only what follows
        st.deploy("score", "m0000@production")
    return timings


def record_results(data_dir: Path, models: int, at: datetime) -> float:
    """What a monitoring round leaves behind: a result per monitor (5 per model), every drift monitor
    in breach (the worst case: every model's transition fires and evaluates its gates)."""
    from modelsteward import LocalSteward
    from modelsteward.domain.monitoring import Breach, MonitorResult
    from modelsteward.settings import Settings

    started = time.perf_counter()
    with LocalSteward(settings=Settings(data_dir=data_dir, scheduler=False), actor="monitors") as st:
        for i in range(models):
            for kind in MONITORS:
                breach = kind == "drift"
                window = (at - timedelta(days=1), at)
                breaches = [Breach(check="drift", metric="share_drifted", value=0.4, threshold=0.0)] if breach else []
                result = MonitorResult(
                    monitor=f"m{i:04d}-{kind}", status="breach" if breach else "ok", window_start=window[0],
                    window_end=window[1], rows=1000, figures={}, breaches=breaches, started_at=at, finished_at=at,
                )  # fmt: skip
                st.monitors.record_result(result, actor="monitors")
    return time.perf_counter() - started


def stages(data_dir: Path) -> dict[str, int]:
    import sqlalchemy as sa

    from modelsteward.settings import Settings
    from modelsteward.store.database import Database
    from modelsteward.store.tables import lifecycle_positions

    db = Database(Settings(data_dir=data_dir).resolved_database_url())
    try:
        with db.read() as conn:
            rows = conn.execute(
                sa.select(lifecycle_positions.c.stage, sa.func.count()).group_by(lifecycle_positions.c.stage)
            )
            return {r[0]: int(r[1]) for r in rows}
    finally:
        db.dispose()


# -- 1. one round, in process ----------------------------------------------------------------------------


def measure_round(models: int, tmp: Path) -> dict[str, Any]:
    from modelsteward import LocalSteward
    from modelsteward.settings import Settings

    data_dir = tmp / "round"
    setup = build_fleet(data_dir, models)
    setup["results_s"] = record_results(data_dir, models, datetime.now(UTC))
    with LocalSteward(settings=Settings(data_dir=data_dir, scheduler=False), actor="scheduler") as st:
        started = time.perf_counter()
        done = st.lifecycle_tick()
        seconds = time.perf_counter() - started
        runs = st.lifecycle_runs(limit=models * 2)
    moved = stages(data_dir)
    assert moved.get("review") == models, moved  # every model's transition ran through its 6 gates
    assert all(len(r.gates) == 6 for r in runs if r.transition == "watch"), "a run skipped its gates"
    return {"models": models, "monitors": models * len(MONITORS), "events": done["events"], "runs": done["started"],
            "gates": 6 * done["started"], "seconds": seconds, "setup": setup, "stages": moved}  # fmt: skip


# -- 2. the gateway during a round ------------------------------------------------------------------------


def latencies(url: str, seconds: float, body: bytes) -> list[float]:
    import httpx

    out: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = client.post("/api/v1/deployments/score/predict", content=body,
                            headers={"content-type": "application/json"})  # fmt: skip
            out.append(time.perf_counter() - t0)
            if r.status_code != 200:
                raise SystemExit(f"the gateway answered {r.status_code}: {r.text[:300]}")
    return out


def summarize(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"requests": len(ms), "p50_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * (len(ms) - 1))],
            "max_ms": ms[-1]}  # fmt: skip


def measure_gateway(models: int, tmp: Path) -> dict[str, Any]:
    """``steward up`` with its scheduler on the fleet's store; requests timed while idle, then while
    the scheduler's round reacts to the fleet's monitor results."""
    data_dir = tmp / "server"
    build_fleet(data_dir, models)
    port = free_port()
    log = (tmp / "server.log").open("wb")
    env = {**os.environ, "STEWARD_DATA_DIR": str(data_dir)}
    steward = str(Path(sys.executable).with_name("steward"))
    server = subprocess.Popen([steward, "up", "--port", str(port)], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    body = json.dumps({"instances": [{"income": 52_000.0, "dti": 0.31}]}).encode()
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not come up: " + (tmp / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        latencies(url, 2.0, body)  # warm-up
        idle = latencies(url, 5.0, body)
        record_results(data_dir, models, datetime.now(UTC))  # the monitors' round, in another process
        started = time.perf_counter()
        during: list[float] = []
        while stages(data_dir).get("review", 0) < models:
            during += latencies(url, 0.5, body)
            if time.perf_counter() - started > 300:
                raise SystemExit(f"the server's round did not finish in 300 s: {stages(data_dir)}")
        round_s = time.perf_counter() - started
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()
    return {"idle": summarize(idle), "during_round": summarize(during), "round_in_server_s": round_s}


# -- report ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"os": f"{platform.system()} {platform.release()}", "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "modelsteward": metadata.version("modelsteward"),
            "load_average": list(os.getloadavg())}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    r, g, m = result["round"], result["gateway"], result["machine"]
    aim = "met" if r["seconds"] < 10 else "missed"
    idle, busy = g["idle"], g["during_round"]

    def lat(x: dict[str, float]) -> str:
        return f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} / {x['max_ms']:.1f} ms ({x['requests']:,} requests)"

    work = f"{r['events']:,} monitor results read, {r['runs']:,} transitions started, {r['gates']:,} gates evaluated"
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python bench/bench_lifecycle.py` (run {result['date']}, "
        f"{result['elapsed_s']:.0f} s in all).",
        "",
        f"Machine: {m['os']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, modelsteward {m['modelsteward']}, "
        "SQLite store. No peer: MLflow, Evidently, KServe and Seldon have no life-cycle engine.",
        "",
        "| What | Figure |",
        "| --- | ---: |",
        f"| One scheduler round: {work}, {r['runs']:,} versions moved | **{r['seconds']:.2f} s** (aim < 10 s: {aim}) |",
        "| The same round inside `steward up` (scheduler thread), to the last version moved | "
        f"{g['round_in_server_s']:.2f} s |",
        f"| Gateway, 1-row JSON predict, idle: p50 / p99 / max | {lat(idle)} |",
        f"| Gateway during the round: p50 / p99 / max | {lat(busy)} |",
        "",
        f"Workload: {r['models']:,} models (each a registered scikit-learn version with an `auc` metric and its "
        f"training-data fingerprint, in stage production), {r['monitors']:,} monitors (5 per model: "
        "`{model}-drift`, `-quality`, `-performance`, `-estimated`, `-kpi`), one life-cycle definition applied to "
        "all of them whose `watch` transition fires on its model's drift breach and checks 6 gates (a metric "
        "threshold, provenance, and the latest result of the 4 other monitors). The round follows a monitoring "
        "round in which every monitor stored a result and every drift monitor breached (the worst case: every "
        "model moves). Setup, not timed in the round: registering the models "
        f"{r['setup']['register_s']:.1f} s, creating the monitors {r['setup']['monitors_s']:.1f} s, applying the "
        f"definition to {r['models']:,} models {r['setup']['apply_s']:.1f} s, storing the results "
        f"{r['setup']['results_s']:.1f} s.",
        "",
        "- **Round**: `LocalSteward.lifecycle_tick()` once, in process: reads the monitor results since its "
        "bookmark, starts each triggered transition (a run per version), evaluates its gates against the store, "
        "moves the version and records every step as audit events.",
        "- **Gateway during a round**: `steward up --workers 1` on the same store with its scheduler; a client "
        "times sequential 1-row `POST /api/v1/deployments/score/predict` requests while idle, then while the "
        "server's scheduler thread processes the round (another process stores the monitor results), until the "
        "last version has moved.",
        "",
        "Raw figures: `bench/results/lifecycle.json`.",
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    replace_section(MARKDOWN, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description="The life-cycle engine at scale.")
    parser.add_argument("--quick", action="store_true", help="100 models; no Markdown")
    parser.add_argument("--models", type=int, help="how many models (default 1,000; --quick 100)")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()
    models = args.models or (100 if args.quick else 1000)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="steward-bench-lifecycle-") as folder:
        tmp = Path(folder)
        say(f"one round over {models} models ...")
        round_ = measure_round(models, tmp)
        say(f"  {round_['seconds']:.2f} s for {round_['runs']} transitions and {round_['gates']} gates")
        say("the gateway during a round inside steward up ...")
        gateway = measure_gateway(models, tmp)
        idle, busy = gateway["idle"]["p99_ms"], gateway["during_round"]["p99_ms"]
        say(f"  idle p99 {idle:.2f} ms, during the round p99 {busy:.2f} ms")
    result = {
        "benchmark": "lifecycle",
        "date": datetime.now(UTC).date().isoformat(),
        "quick": args.quick,
        "elapsed_s": time.perf_counter() - started,
        "machine": machine(),
        "round": round_,
        "gateway": gateway,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    name = "lifecycle.scratch.json" if (args.quick or args.models) else "lifecycle.json"
    (RESULTS_DIR / name).write_text(json.dumps(result, indent=1) + "\n")
    text = render(result)
    print(text)
    if not (args.quick or args.models or args.no_markdown):
        write_section(text)
        say(f"wrote the section '{SECTION}' of {MARKDOWN}")


if __name__ == "__main__":
    main()
