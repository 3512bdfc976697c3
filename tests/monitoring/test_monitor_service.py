"""Monitors end to end on an embedded steward: drift, quality, performance, kind monitors, KPIs, alerts."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelsteward import InvalidArgument, InvalidDefinition, LocalSteward, NotFound
from modelsteward.settings import Settings


def applicants(n: int, seed: int, *, income_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000 * (1 + income_shift), 10_000, n),
            "debt_to_income": rng.uniform(0.05, 0.7, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )


@pytest.fixture
def st(tmp_path: Path):
    steward = LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=0.05, user="analyst"))
    train = applicants(4000, 0)
    target = (train["debt_to_income"] + np.random.default_rng(1).normal(0, 0.1, len(train)) > 0.4).astype(int)
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = make_pipeline(
        ColumnTransformer(
            [
                ("n", StandardScaler(), ["income", "debt_to_income"]),
                ("c", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ]
        ),
        LogisticRegression(),
    ).fit(train, target)
    v = steward.register_model("risk", model, input_example=train.head(), training_data=train)
    steward.set_alias("risk", "production", v.version)
    steward.deploy("risk", "risk@production")
    steward.model, steward.train = model, train  # type: ignore[attr-defined]
    yield steward
    steward.close()


def serve(st: LocalSteward, frame: pd.DataFrame, batch: int = 50) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(frame), batch):
        ids += st.serve("risk", frame.iloc[start : start + batch]).prediction_ids
    st.stop_serving()  # flush the log so the monitor reads everything
    return ids


DRIFT = {"target": {"deployment": "risk"}, "window": "1h", "checks": [{"drift": {}}], "min_rows": 100}


def test_drift_is_detected_against_the_training_profile(st: LocalSteward) -> None:
    serve(st, applicants(1500, 7, income_shift=0.3))
    st.put_monitor("risk-drift", DRIFT)
    result = st.run_monitor("risk-drift")
    assert result.status == "breach", result
    assert "income" in result.figures["drift"]["drifted"]
    assert "debt_to_income" not in result.figures["drift"]["drifted"]
    assert {b.column for b in result.breaches} == {"income"}
    assert st.monitor_results("risk-drift")[0].run_id == result.run_id
    assert st.list_events(limit=1)[0].action == "monitor.run"


def test_unchanged_traffic_passes_and_thin_windows_never_alarm(st: LocalSteward) -> None:
    st.put_monitor("risk-drift", DRIFT)
    empty = st.run_monitor("risk-drift")
    assert empty.status == "not_enough_data" and empty.breaches == []
    serve(st, applicants(1500, 8))
    assert st.run_monitor("risk-drift").status == "ok"
    later = st.run_monitor("risk-drift", at=datetime.now(UTC) + timedelta(hours=5))
    assert later.status == "not_enough_data"  # the traffic is outside that window


def test_quality_flags_out_of_range_and_unseen_values(st: LocalSteward) -> None:
    bad = applicants(600, 9)
    bad.loc[:120, "income"] = 10_000_000.0
    bad.loc[:90, "region"] = "atlantis"
    serve(st, bad)
    st.put_monitor("risk-quality", {**DRIFT, "checks": [{"quality": {}}]})
    result = st.run_monitor("risk-quality")
    assert result.status == "breach"
    breached = {(b.metric, b.column) for b in result.breaches}
    assert any(column == "income" for _, column in breached)
    assert any(column == "region" for _, column in breached)


def test_performance_once_ground_truth_arrives(st: LocalSteward) -> None:
    frame = applicants(800, 10)
    ids = serve(st, frame)
    monitor = {**DRIFT, "checks": [{"performance": {"metric": "accuracy", "threshold": 0.99, "score": "proba_1"}}]}
    st.put_monitor("risk-perf", monitor)
    assert st.run_monitor("risk-perf").figures["performance"]["status"] == "not_enough_data"
    noise = np.random.default_rng(5).normal(0, 0.15, len(frame))
    truth = (frame["debt_to_income"] + noise > 0.4).astype(int).tolist()  # the world is noisier than the model
    st.send_feedback("risk", [{"prediction_id": i, "actual": a} for i, a in zip(ids, truth, strict=True)])
    st.stop_serving()
    result = st.run_monitor("risk-perf")
    figures = result.figures["performance"]
    assert figures["labelled"] == len(frame)
    expected = float((st.model.predict(frame) == np.asarray(truth)).mean())  # type: ignore[attr-defined]
    assert figures["values"]["accuracy"] == pytest.approx(expected)
    assert result.status == "breach"  # accuracy is below the 0.99 bar


def test_performance_per_segment_finds_the_region_where_the_model_fails(st: LocalSteward) -> None:
    frame = applicants(1200, 11)
    ids = serve(st, frame)
    predicted = st.model.predict(frame)  # type: ignore[attr-defined]
    south = (frame["region"] == "south").to_numpy()
    flip = south & (np.random.default_rng(3).uniform(size=len(frame)) < 0.4)  # the south defaults differently
    truth = np.where(flip, 1 - predicted, predicted)
    st.send_feedback("risk", [{"prediction_id": i, "actual": int(a)} for i, a in zip(ids, truth, strict=True)])
    st.stop_serving()
    check = {"metric": "accuracy", "threshold": 0.8, "score": "proba_1", "segment_by": "region", "min_segment_rows": 50}
    st.put_monitor("risk-perf", {**DRIFT, "checks": [{"performance": check}]})
    result = st.run_monitor("risk-perf")
    segments = {row["region"]: row for row in result.figures["performance"]["segments"]}
    assert set(segments) == {"north", "south", "east", "west"}
    expected = float((predicted[south] == truth[south]).mean())
    assert segments["south"]["accuracy"] == pytest.approx(expected) and segments["north"]["accuracy"] == 1.0
    assert segments["south"]["n"] == int(south.sum())
    assert [b.segment for b in result.breaches] == ["region=south"]  # the whole window still passes 0.8
    st.put_monitor("risk-perf", {**DRIFT, "checks": [{"performance": {**check, "segment_by": "branch"}}]})
    failed = st.run_monitor("risk-perf")
    assert failed.status == "error" and "branch" in (failed.error or "")


def test_estimated_performance_from_probabilities(st: LocalSteward) -> None:
    serve(st, applicants(800, 11))
    st.put_monitor(
        "risk-cbpe", {**DRIFT, "checks": [{"estimated_performance": {"metric": "accuracy", "threshold": 0.5}}]}
    )
    result = st.run_monitor("risk-cbpe")
    assert result.status == "ok"
    assert 0.5 < result.figures["estimated_performance"]["metrics"]["accuracy"]["value"] <= 1
    assert result.figures["estimated_performance"]["realized"] is None  # no ground truth yet


def test_the_estimate_is_checked_against_the_labels_once_they_arrive(st: LocalSteward) -> None:
    frame = applicants(2000, 12)
    ids = serve(st, frame)
    proba = st.model.predict_proba(frame)[:, 1]  # type: ignore[attr-defined]
    truth = (np.random.default_rng(4).uniform(size=len(frame)) < proba).astype(int)  # labels as calibrated as the model
    half = len(ids) // 2
    st.send_feedback(
        "risk", [{"prediction_id": i, "actual": int(a)} for i, a in zip(ids[:half], truth[:half], strict=True)]
    )
    st.stop_serving()
    st.put_monitor("risk-cbpe", {**DRIFT, "checks": [{"estimated_performance": {"threshold": 0.5}}]})
    realized = st.run_monitor("risk-cbpe").figures["estimated_performance"]["realized"]
    assert realized["labelled"] == half and realized["status"] == "ok"
    accuracy = next(row for row in realized["rows"] if row["metric"] == "accuracy")
    predicted = st.model.predict(frame)[:half]  # type: ignore[attr-defined]
    assert accuracy["realized"] == pytest.approx(float((predicted == truth[:half]).mean()))
    assert accuracy["within_band"] is True and abs(accuracy["error"]) < 0.05


def test_bad_monitors_are_refused_clearly(st: LocalSteward) -> None:
    with pytest.raises(NotFound, match="no deployment named 'ghost'"):
        st.put_monitor("m", {**DRIFT, "target": {"deployment": "ghost"}})
    with pytest.raises(InvalidArgument, match="window"):
        st.put_monitor("m", {**DRIFT, "window": "soon"})
    with pytest.raises(InvalidDefinition, match="line 3"):
        st.put_monitor("m", "target: {deployment: risk}\nwindow: 1h\nchecks: [{drift: {}, quality: {}}]\n")
    serve(st, applicants(300, 12))
    st.put_monitor("m", {**DRIFT, "checks": [{"drift": {"columns": ["incme"]}}]})
    result = st.run_monitor("m")
    assert result.status == "error" and "incme" in (result.error or "")


def test_kpis_arms_and_change(st: LocalSteward) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rng = np.random.default_rng(3)
    points = []
    for day in range(40):
        level = 0.62 if day < 20 else 0.56
        points.append(
            {
                "kpi": "approval_rate",
                "scope": "risk",
                "ts": start + timedelta(days=day),
                "value": level + rng.normal(0, 0.01),
            }
        )
        for arm, lift in (("risk/1", 0.0), ("risk/2", 0.05)):
            points.append(
                {
                    "kpi": "profit",
                    "scope": "risk",
                    "arm": arm,
                    "ts": start + timedelta(days=day),
                    "value": 10 + lift * 40 + rng.normal(0, 1),
                }
            )
    assert st.record_kpis(points) == 120
    change = st.kpi_change("approval_rate", "risk", change_at=start + timedelta(days=20))
    assert change["status"] == "ok" and change["comparison"]["significant"]
    assert change["change_point"]["near_change"] is True
    arms = st.compare_kpi_arms("profit", "risk")
    assert arms["significant"] and arms["difference"] > 0
    with pytest.raises(InvalidArgument, match="exactly two"):
        st.compare_kpi_arms("approval_rate", "risk")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the handler's protocol
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_breach_reaches_a_webhook_and_a_pass_resolves_it(st: LocalSteward) -> None:
    from modelsteward.alerts import Dispatcher

    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        st.put_channel({"name": "ops", "type": "webhook", "url": f"http://127.0.0.1:{server.server_port}/hook"})
        st.put_monitor("risk-drift", {**DRIFT, "window": "2s"})  # short, so the healthy traffic below is alone
        st.put_alert_rule({"name": "drift", "monitor": "risk-drift", "severity": "critical", "channels": ["ops"]})
        serve(st, applicants(1500, 13, income_shift=0.3))
        st.run_monitor("risk-drift")
        st.run_monitor("risk-drift")  # still breaching: deduplicated, no second notice
        firing = st.list_alerts(status="firing")
        assert len(firing) == 1 and firing[0].occurrences == 2
        Dispatcher(st.db).run_once()
        assert [r["event"] for r in _Receiver.received] == ["alert.fired"]
        assert _Receiver.received[0]["severity"] == "critical"
        time.sleep(2.1)
        serve(st, applicants(1500, 14))  # healthy traffic, alone in the next window
        st.run_monitor("risk-drift")
        Dispatcher(st.db).run_once()
        assert [r["event"] for r in _Receiver.received] == ["alert.fired", "alert.resolved"]
        assert st.list_alerts(status="firing") == []
    finally:
        server.shutdown()


POLICY = """
inputs: {score: number}
outputs: {decision: string}
rules:
  - {id: decline, priority: 10, when: "score > 0.8", then: {decision: decline}}
  - {id: refer, priority: 5, when: "score > 0.5", then: {decision: refer}}
default: {decision: approve}
"""


def test_rule_hit_rates_flag_a_rule_that_fires_far_more_often(tmp_path: Path) -> None:
    st = LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=0.05))
    st.register_model("policy", POLICY, kind="rules")
    st.deploy("policy", "policy/1")
    rng = np.random.default_rng(0)
    for _ in range(20):
        st.serve("policy", pd.DataFrame({"score": rng.uniform(0, 0.9, 50)}))  # decline ~11%
    time.sleep(2.1)
    for _ in range(20):
        st.serve("policy", pd.DataFrame({"score": rng.uniform(0.6, 1.0, 50)}))  # decline 50%
    st.stop_serving()
    st.put_monitor(
        "policy-rules",
        {
            "target": {"deployment": "policy"},
            "window": "2s",
            "min_rows": 100,
            "reference": {"window": "10s", "offset": "2s"},
            "checks": [{"rule_hit_rate": {"max_ratio": 3.0}}],
        },
    )
    result = st.run_monitor("policy-rules")
    assert result.status == "breach", result.figures
    assert any(b.column == "decline" for b in result.breaches) or any(b.column == "approve" for b in result.breaches)
    st.close()


def test_a_monitor_sees_every_row_this_process_acknowledged_before_the_log_flushes(tmp_path: Path) -> None:
    st = LocalSteward(settings=Settings(data_dir=tmp_path, log_flush_interval=60))
    try:
        train = applicants(2000, 0)
        model = LogisticRegression().fit(train[["income", "debt_to_income"]], train["debt_to_income"] > 0.4)
        st.register_model("risk", model, input_example=train[["income", "debt_to_income"]].head(),
                          training_data=train[["income", "debt_to_income"]])  # fmt: skip
        st.deploy("risk", "risk/1")
        st.serve("risk", applicants(300, 3)[["income", "debt_to_income"]])  # the writer waits 60 s to flush
        st.put_monitor("risk-drift", DRIFT)
        result = st.run_monitor("risk-drift")
        assert result.rows == 300 and result.status == "ok", result
    finally:
        st.close()
