"""Model debt: each flag from plain facts, and the catalog's report through the facade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelsteward import LocalSteward
from modelsteward.governance.debt import DebtFacts, assess
from modelsteward.settings import Settings

NOW = datetime(2026, 11, 27, tzinfo=UTC)
LIMITS = {"now": NOW, "max_age": timedelta(days=180), "stale_after": timedelta(days=2)}


def test_each_kind_of_debt_and_its_weight() -> None:
    healthy = DebtFacts("ok", owner="ann", production_version=2, production_since=NOW - timedelta(days=10),
                        monitors=["ok-drift"], last_result_at=NOW - timedelta(hours=3))  # fmt: skip
    assert assess(healthy, **LIMITS).score == 0
    neglected = DebtFacts("old", owner=None, production_version=1, production_since=NOW - timedelta(days=400))
    debt = assess(neglected, **LIMITS)
    assert [f.code for f in debt.flags] == ["unmonitored", "overdue_retraining", "no_owner"]
    assert debt.score == 3 + 2 + 1 and "400 days" in debt.flags[1].message
    troubled = DebtFacts("t", owner="bo", production_version=3, production_since=NOW, monitors=["t-drift"],
                         last_result_at=NOW - timedelta(days=5), open_alerts=["t-drift: breached"],
                         failed_run="promote", overdue_runs=["promote"],
                         compliance_findings=["fair-lending fail (fairness, run 4)"])  # fmt: skip
    flags = assess(troubled, **LIMITS).flags
    assert [f.code for f in flags] == [
        "stale_monitoring", "open_alert", "failing_gates", "compliance_findings", "overdue_review"]  # fmt: skip
    assert flags[3].message == "version 3 in production: fair-lending fail (fairness, run 4)" and flags[3].weight == 2
    draft = DebtFacts("draft", owner="cy", production_version=None, production_since=None)
    assert assess(draft, **LIMITS).score == 0  # nothing in production: nothing to watch yet


def test_the_catalog_report_ranks_the_worst_first(tmp_path: Path, numeric_model: Any) -> None:
    model, X = numeric_model
    with LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=0.05), actor="ann") as st:
        for name, owner in (("watched", "ann"), ("unwatched", None), ("draft", "ann")):
            st.register_model(name, model, input_example=X.head(), training_data=X, owner=owner)
        st.set_alias("watched", "production", 1)
        st.set_alias("unwatched", "production", 1)
        st.deploy("watched", "watched@production")
        st.put_monitor("watched-drift", {"target": {"deployment": "watched"}, "checks": [{"drift": {}}]})
        st.run_monitor("watched-drift")
        report = st.model_debt()
        assert [(d.model, d.score) for d in report.models] == [("unwatched", 4), ("draft", 0), ("watched", 0)]
        assert report.total == 4 and report.with_debt == 1
        assert [f.code for f in st.model_debt("unwatched").models[0].flags] == ["unmonitored", "no_owner"]
