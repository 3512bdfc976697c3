"""BI access: DuckDB views over the logs and the monitoring store, and CSV/Parquet export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from modelsteward.domain.monitoring import Breach, MonitorResult
from modelsteward.errors import InvalidArgument
from modelsteward.local_steward import LocalSteward
from modelsteward.monitoring.export import (
    RESULT_COLUMNS,
    VIEWS,
    export,
    figure_rows,
    results_frame,
    run_sql,
    sql_connection,
    write_frame,
)
from modelsteward.settings import Settings

SERVED, LABELLED = 240, 90
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def settings_for(root: Path) -> Settings:
    # explicit URLs: module-scoped fixtures run before the per-test clean-up of STEWARD_* variables
    return Settings(data_dir=root, database_url=None, inference_url=None, feedback_url=None, log_flush_interval=0.05)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, numeric_model: Any) -> Settings:
    """A store that served SERVED drifted rows, got ground truth for LABELLED of them, ran a monitor and has KPIs."""
    model, X = numeric_model
    settings = settings_for(tmp_path_factory.mktemp("export"))
    with LocalSteward(settings=settings, actor="tester") as st:
        st.register_model("risk", model, input_example=X.head(), training_data=X)
        st.deploy("risk", "risk/1")
        current = X.sample(SERVED, replace=True, random_state=3).reset_index(drop=True)
        current["income"] += 2 * X["income"].std()
        ids = [p for start in (0, 120) for p in st.serve("risk", current.iloc[start : start + 120]).prediction_ids]
        st.send_feedback("risk", [{"prediction_id": p, "actual": 1} for p in ids[:LABELLED]])
        st.stop_serving()
        st.put_monitor("risk-drift", {"target": {"deployment": "risk"}, "window": "1h", "checks": [{"drift": {}}]})
        st.run_monitor("risk-drift", at=datetime.now(UTC) + timedelta(minutes=1))
        st.record_kpis([{"kpi": "approval_rate", "scope": "risk", "ts": NOW, "value": 0.61, "arm": "risk/1"}])
    return settings


def test_the_views_count_what_was_served_labelled_monitored_and_recorded(settings: Settings) -> None:
    con = sql_connection(settings)
    try:
        counts = {view: con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] for view in VIEWS}
        joined = con.execute("SELECT * FROM predictions_with_feedback").df()
        breaches = con.execute("SELECT * FROM monitor_results WHERE breached").df()
        kpi = con.execute("SELECT kpi, scope, arm, ts, value FROM kpis").fetchall()
    finally:
        con.close()
    assert counts["predictions"] == SERVED and counts["feedback"] == LABELLED
    assert counts["predictions_with_feedback"] == LABELLED and counts["kpis"] == 1
    assert {"in_income", "out_proba_1", "actual", "feedback_ts"} <= set(joined.columns)
    assert (joined["actual"] == 1).all()
    assert list(breaches["column_name"]) == ["income"] and list(breaches["monitor"]) == ["risk-drift"]
    assert breaches["value"].iloc[0] > breaches["threshold"].iloc[0] == 0.1
    assert breaches["status"].iloc[0] == "breach" and breaches["check_kind"].iloc[0] == "drift"
    assert kpi == [("approval_rate", "risk", "risk/1", NOW, 0.61)]


def test_views_and_queries_export_to_csv_and_parquet(settings: Settings, tmp_path: Path) -> None:
    assert export(settings, "predictions", tmp_path / "p.parquet") == SERVED
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == SERVED
    sql = "SELECT monitor, metric, column_name, value, breached FROM monitor_results ORDER BY value DESC;"
    assert export(settings, sql, tmp_path / "out" / "results.csv") == 4  # share_drifted and three columns
    frame = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(frame.columns) == ["monitor", "metric", "column_name", "value", "breached"]
    assert frame["breached"].tolist() == [True, False, False, False]  # income's wasserstein first
    assert run_sql(settings, "monitor_results")["run_id"].nunique() == 1


@pytest.mark.parametrize(
    ("target", "out", "message"),
    [
        ("predictions", "p.xlsx", "name the file .csv or .parquet"),
        ("SELECT nothing FROM predictions", "p.csv", "the query failed"),
        ("SELECT * FROM nowhere", "p.csv", "the views are predictions, feedback"),
        ("  ;", "p.csv", "give a view name or a SELECT statement"),
    ],
)
def test_bad_requests_are_refused_clearly(
    settings: Settings, tmp_path: Path, target: str, out: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        export(settings, target, tmp_path / out)


def test_an_empty_store_has_every_view_typed_and_empty(tmp_path: Path) -> None:
    con = sql_connection(settings_for(tmp_path / "empty"))
    try:
        for view in VIEWS:
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
        types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE monitor_results)").fetchall())
    finally:
        con.close()
    assert types["value"] == "DOUBLE" and types["breached"] == "BOOLEAN" and types["monitor"] == "VARCHAR"
    assert types["window_end"] == "TIMESTAMP WITH TIME ZONE"


def _result(figures: dict[str, Any], breaches: list[Breach], status: str = "breach") -> MonitorResult:
    return MonitorResult(
        monitor="m",
        run_id=7,
        status=status,  # type: ignore[arg-type]
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        rows=100,
        figures=figures,
        breaches=breaches,
        started_at=NOW,
        finished_at=NOW,
    )


def test_every_kind_of_figure_flattens_to_rows() -> None:
    figures = {
        "quality": {
            "status": "ok",
            "passed": False,
            "rows": [{"check": "null_rate", "column": "age", "value": 0.2, "threshold": 0.05, "passed": False}],
        },
        "performance": {"status": "ok", "labelled": 80, "positive": 1, "values": {"roc_auc": 0.7, "f1": None}},
        "estimated_performance": {"status": "ok", "threshold": 0.5, "metrics": {"accuracy": {"value": 0.8}}},
        "rule_hit_rate": {
            "status": "ok",
            "rules": [{"rule": "r1", "current_share": 0.3, "reference_share": 0.05, "flag": "up"}],
        },
    }
    breaches = [
        Breach(check="quality", metric="null_rate", value=0.2, threshold=0.05, column="age"),
        Breach(check="performance", metric="roc_auc", value=0.7, threshold=0.75),
        Breach(check="rule_hit_rate", metric="share_up", value=0.3, threshold=0.05, column="r1"),
        Breach(check="optimization", metric="infeasible_rate", value=0.2, threshold=0.05),
    ]
    rows = {(r["check_kind"], r["metric"], r["column_name"]): r for r in figure_rows(_result(figures, breaches))}
    assert set(rows) == {
        ("quality", "null_rate", "age"),
        ("performance", "labelled", None),
        ("performance", "roc_auc", None),
        ("performance", "f1", None),
        ("estimated_performance", "accuracy", None),
        ("rule_hit_rate", "share_up", "r1"),
        ("optimization", "infeasible_rate", None),  # a breach no figure carries still gets its row
    }
    assert (
        rows["performance", "roc_auc", None]["threshold"] == 0.75 and rows["performance", "roc_auc", None]["breached"]
    )
    assert not rows["performance", "labelled", None]["breached"] and rows["performance", "f1", None]["value"] is None
    assert all(r["run_id"] == 7 and r["window_end"] == NOW for r in rows.values())


def test_a_run_without_figures_is_one_row_and_frames_keep_their_types(tmp_path: Path) -> None:
    empty = _result({"reason": "12 answered predictions in the window"}, [], status="not_enough_data")
    assert [(r["status"], r["metric"], r["breached"]) for r in figure_rows(empty)] == [("not_enough_data", None, False)]
    frame = results_frame([])
    assert list(frame.columns) == list(RESULT_COLUMNS) and len(frame) == 0
    con = duckdb.connect()
    con.register("r", results_frame([empty]))
    assert con.execute("SELECT typeof(breached), typeof(value), typeof(window_end) FROM r").fetchone() == (
        "BOOLEAN",
        "DOUBLE",
        "TIMESTAMP WITH TIME ZONE",
    )
    assert write_frame(results_frame([empty]), tmp_path / "r.parquet") == 1
    assert pd.read_parquet(tmp_path / "r.parquet")["status"].tolist() == ["not_enough_data"]
