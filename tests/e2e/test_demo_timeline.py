"""The demo's 60 days: the downturn makes the drift monitor fire on day 33 and the alert reaches the
operations webhook; the approval-rate KPI shows the shift with evidence."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelsteward import LocalSteward
from modelsteward.demo.seed import seed_demo
from modelsteward.demo.timeline import ALERT_DAY, DOWNTURN_DAY, MONITOR
from modelsteward.settings import Settings

pytestmark = pytest.mark.slow


def test_the_downturn_fires_the_monitor_and_the_alert_reaches_the_inbox(tmp_path: Path) -> None:
    from modelsteward.alerts import Dispatcher
    from modelsteward.api.app import create_app

    settings = Settings(data_dir=tmp_path, demo=True, scheduler=False)
    app = create_app(settings)
    st: LocalSteward = app.state.steward
    with TestClient(app) as client:
        summary = seed_demo(st, inbox_url="http://testserver/demo/inbox")
        assert f"day {ALERT_DAY}: breach" in summary and "day 28 monitor: ok" in summary
        results = st.monitor_results(MONITOR)
        assert [r.status for r in results] == ["breach", "ok"]
        assert {b.column for b in results[0].breaches} >= {"income", "debt_to_income"}
        firing = st.list_alerts(status="firing")
        assert len(firing) == 1 and firing[0].severity == "critical"

        # The dispatcher sends the pending notification to the server's own demo inbox.
        import httpx

        transport = httpx.MockTransport(
            lambda request: httpx.Response(
                client.post("/demo/inbox", content=request.content, headers=dict(request.headers)).status_code
            )
        )
        from modelsteward.alerts.channels import WebhookSender

        sender = WebhookSender(httpx.Client(transport=transport))
        # the alert, and the life cycle's notice that it retrains the model (test_demo_lifecycle.py)
        assert Dispatcher(st.db, senders={"webhook": sender}).run_once() == 2
        inbox = client.get("/demo/inbox").json()
        fired = [m for m in inbox if m["payload"]["rule"] == "credit-risk-drift"]
        assert len(fired) == 1 and fired[0]["event"] == "alert.fired"

        start = results[0].window_end - timedelta(days=ALERT_DAY)
        downturn = start + timedelta(days=DOWNTURN_DAY, hours=12)  # the first day of the downturn's traffic
        change = st.kpi_change("approval_rate", "credit-decision", change_at=downturn)
        assert change["comparison"]["significant"] and change["comparison"]["difference"] < 0
        # 150 applications a day make the daily rate noisy: the change point lands within a few days
        assert abs(change["change_point"]["distance_seconds"]) <= 3 * 86_400, change["answer"]
        assert st.kpi_series("default_rate_90d", "credit-decision")
