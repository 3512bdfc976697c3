"""The load benchmark, short: ``steward up --workers 2`` on PostgreSQL under mixed traffic for a few seconds
answers every request, logs exactly what it acknowledged, and runs its monitors meanwhile. No timing asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))  # the benches import their siblings (workload.py) by name

import bench_load  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_two_workers_on_postgres_log_every_acknowledged_prediction(clean_postgres: str) -> None:
    config = bench_load.Config(duration=12.0, warmup=3.0, concurrency=16, monitor_schedule="4s")
    result = bench_load.run(config, database_url=clean_postgres)

    traffic, check = result["traffic"], result["log_check"]
    assert traffic["acknowledged_requests"] > 0
    assert traffic["errors_5xx"] == 0, traffic["error_samples"]
    assert traffic["transport_errors"] == {}, traffic["error_samples"]
    assert traffic["errors_4xx"] == 0 and traffic["bad_answers"] == 0, traffic["error_samples"]
    assert check["equal"], check
    assert check["rows_logged"] == check["rows_acknowledged"] == traffic["acknowledged_rows"]
    assert check["shadows_complete"], check
    assert set(check["deployments"]) == set(bench_load.DEPLOYMENTS)
    assert check["deployments"]["risk-ab"]["arms"].get("challenger ok", 0) > 0  # the A/B split served both arms
    assert all(m["computed"] >= 1 for m in result["monitors"].values()), result["monitors"]
    assert result["server"]["clean_exit"], result["server"]
