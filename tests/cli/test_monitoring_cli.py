"""`steward monitor`, `alerts`, `channels`, `kpi` and `sql` on an embedded data directory with served traffic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelsteward.cli.main import app
from modelsteward.local_steward import LocalSteward
from modelsteward.settings import Settings

runner = CliRunner()
SERVED = 300

MONITOR_YAML = """\
target:
  deployment: risk
window: 1h
checks:
  - drift: {}
min_rows: 50
description: input drift against the training data
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, numeric_model: Any) -> str:
    """A store with one deployment that served SERVED rows whose income drifted by two standard deviations."""
    model, X = numeric_model
    root = tmp_path_factory.mktemp("monitoring-cli")
    # explicit URLs: a module-scoped fixture runs before the per-test clean-up of STEWARD_* variables
    settings = Settings(
        data_dir=root, database_url=None, inference_url=None, feedback_url=None, log_flush_interval=0.05
    )
    st = LocalSteward(settings=settings, actor="tester")
    st.register_model("risk", model, input_example=X.head(), training_data=X, kpis=["approval_rate"])
    st.deploy("risk", "risk/1")
    current = X.sample(SERVED, replace=True, random_state=1).reset_index(drop=True)
    current["income"] += 2 * X["income"].std()
    for start in range(0, SERVED, 100):
        st.serve("risk", current.iloc[start : start + 100])
    st.close()
    return str(root)


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_monitor_from_yaml_runs_reports_exports_and_is_deleted(data_dir: str, tmp_path: Path) -> None:
    d = ("--data-dir", data_dir)
    spec = write(tmp_path, "monitor.yaml", MONITOR_YAML)
    created = run("monitor", "create", "drift-cli", "--spec", spec, *d)
    assert created.exit_code == 0, created.output
    assert "drift-cli" in created.output and "deployment risk" in created.output
    assert "drift-cli" in [m["name"] for m in json.loads(run("monitor", "list", "--json", *d).output)]
    shown = json.loads(run("monitor", "show", "drift-cli", "--json", *d).output)
    assert shown["spec"]["window"] == "1h" and shown["spec"]["min_rows"] == 50
    assert "deployment: risk" in run("monitor", "show", "drift-cli", *d).output

    ran = run("monitor", "run", "drift-cli", *d)
    assert ran.exit_code == 0, ran.output  # a breach is news, not a failure of the command
    assert "BREACH" in ran.output and "300 row(s)" in ran.output
    assert "income" in ran.output and "wasserstein" in ran.output

    results = json.loads(run("monitor", "results", "drift-cli", "--limit", "5", "--json", *d).output)
    assert [r["status"] for r in results] == ["breach"]
    assert "BREACH" in run("monitor", "results", "drift-cli", *d).output

    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        out = tmp_path / f"results{suffix}"
        exported = run("monitor", "export", "drift-cli", "--out", str(out), *d)
        assert exported.exit_code == 0, exported.output
        frame = read(out)
        breached = frame[frame["breached"].astype(bool)]
        assert list(breached["column_name"]) == ["income"] and set(frame["run_id"]) == {results[0]["run_id"]}

    report = tmp_path / "reports" / "drift.html"
    written = run("monitor", "report", "drift-cli", "--out", str(report), "--runs", "5", *d)
    assert written.exit_code == 0, written.output
    page = report.read_text(encoding="utf-8")
    assert "drift-cli" in page and "<table>" in page and "Distributions of the drifted columns" in page

    assert run("monitor", "delete", "drift-cli", *d).exit_code == 0
    gone = run("monitor", "show", "drift-cli", *d)
    assert gone.exit_code == 1 and "no monitor named 'drift-cli'" in gone.output


def test_a_breach_fires_an_alert_that_is_acknowledged_and_resolved(data_dir: str, tmp_path: Path) -> None:
    d = ("--data-dir", data_dir)
    assert (
        run("monitor", "create", "drift-alerts", "--spec", write(tmp_path, "m.yaml", MONITOR_YAML), *d).exit_code == 0
    )
    channel = write(tmp_path, "channel.yaml", "name: ops\ntype: webhook\nurl: http://127.0.0.1:9/hook\n")
    added = run("channels", "add", "--spec", channel, *d)
    assert added.exit_code == 0, added.output
    assert [c["name"] for c in json.loads(run("channels", "list", "--json", *d).output)] == ["ops"]
    assert "http://127.0.0.1:9/hook" in run("channels", "list", *d).output
    rule = write(tmp_path, "rule.yaml", "monitor: drift-alerts\nseverity: critical\nchannels: [ops]\n")
    saved = run("alerts", "rule", "drift-alerts-rule", "--spec", rule, *d)
    assert saved.exit_code == 0, saved.output
    rules = json.loads(run("alerts", "rules", "--json", *d).output)
    assert [(r["rule"]["name"], r["rule"]["severity"]) for r in rules] == [("drift-alerts-rule", "critical")]
    assert "monitor drift-alerts" in run("alerts", "rules", *d).output

    assert run("monitor", "run", "drift-alerts", *d).exit_code == 0
    firing = json.loads(run("alerts", "list", "--status", "firing", "--json", *d).output)
    assert [a["rule"] for a in firing] == ["drift-alerts-rule"]
    alert_id = str(firing[0]["id"])
    assert "firing" in run("alerts", "list", *d).output
    deliveries = json.loads(run("alerts", "deliveries", "--alert", alert_id, "--json", *d).output)
    assert [(x["channel"], x["event"]) for x in deliveries] == [("ops", "fire")]
    assert "acknowledged" in run("alerts", "ack", alert_id, *d).output
    assert "resolved" in run("alerts", "resolve", alert_id, *d).output
    assert json.loads(run("alerts", "list", "--status", "resolved", "--json", *d).output)[0]["id"] == int(alert_id)


def test_kpis_are_recorded_uploaded_shown_and_compared(data_dir: str, tmp_path: Path) -> None:
    d = ("--data-dir", data_dir)
    recorded = run("kpi", "record", "conversion", "risk", "0.4", "--ts", "2026-01-01T00:00", "--arm", "risk/1", *d)
    assert recorded.exit_code == 0, recorded.output
    days = pd.date_range("2026-01-02", periods=40, freq="D", tz="UTC")
    table = pd.DataFrame(
        {
            "kpi": "conversion",
            "scope": "risk",
            "ts": days,
            "value": [0.4 + 0.1 * (i >= 20) + 0.01 * (i % 3) for i in range(40)],
            "arm": ["risk/1" if i % 2 else "risk/2" for i in range(40)],
        }
    )
    table.to_parquet(tmp_path / "kpis.parquet")
    uploaded = run("kpi", "upload", str(tmp_path / "kpis.parquet"), *d)
    assert uploaded.exit_code == 0 and "40 KPI point(s)" in uploaded.output
    series = json.loads(run("kpi", "show", "conversion", "risk", "--json", *d).output)
    assert len(series) == 41 and series[0]["source"] == "cli"
    assert "conversion@risk: 41 point(s)" in run("kpi", "show", "conversion", "risk", *d).output
    arms = run("kpi", "arms", "conversion", "risk", *d)
    assert arms.exit_code == 0 and "risk/2" in arms.output and "p-value" in arms.output
    change = run("kpi", "change", "conversion", "risk", "--at", "2026-01-22", *d)
    assert change.exit_code == 0, change.output
    assert "conversion rose by" in change.output and "before (n=21)" in change.output
    as_json = json.loads(run("kpi", "change", "conversion", "risk", "--at", "2026-01-22", "--json", *d).output)
    assert as_json["comparison"]["significant"] is True and as_json["answer"].startswith("conversion rose")


def test_sql_reads_the_views_and_writes_files(data_dir: str, tmp_path: Path) -> None:
    d = ("--data-dir", data_dir)
    counted = json.loads(run("sql", "SELECT count(*) AS n FROM predictions", "--json", *d).output)
    assert counted == [{"n": SERVED}]
    printed = run("sql", "SELECT deployment, count(*) AS n FROM predictions GROUP BY ALL", *d)
    assert printed.exit_code == 0 and "risk" in printed.output and str(SERVED) in printed.output
    out = tmp_path / "predictions.parquet"
    written = run("sql", "predictions", "--out", str(out), *d)
    assert written.exit_code == 0 and f"{SERVED} row(s)" in written.output
    assert len(pd.read_parquet(out)) == SERVED
    kpis = tmp_path / "kpis.csv"
    assert run("sql", "SELECT * FROM kpis", "--out", str(kpis), *d).exit_code == 0
    assert list(pd.read_csv(kpis).columns) == ["kpi", "scope", "arm", "ts", "value"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "create", "m", "--spec", "missing.yaml"], "no such file"),
        (["monitor", "create", "m", "--spec", "{bad}"], "line 3"),
        (["monitor", "run", "ghost"], "no monitor named 'ghost'"),
        (["monitor", "run", "ghost", "--at", "yesterday"], "is not an ISO time"),
        (["monitor", "export", "ghost", "--out", "results.xlsx"], "name the file .csv or .parquet"),
        (["alerts", "ack", "999"], "999"),
        (["alerts", "rule", "r", "--spec", "{rule}"], "names the rule 'other'"),
        (["channels", "add", "--spec", "{channel}"], "needs a url"),
        (["kpi", "upload", "{kpis}"], "missing: kpi, scope"),
        (["kpi", "arms", "nothing", "risk"], "comparing arms needs exactly two"),
        (["sql", "SELECT * FROM nowhere"], "the views are predictions"),
    ],
)
def test_errors_are_one_line_and_exit_1(data_dir: str, tmp_path: Path, args: list[str], message: str) -> None:
    files = {
        "{bad}": write(tmp_path, "bad.yaml", "target:\n  deployment: risk\nchecks: []\n"),
        "{rule}": write(tmp_path, "rule.yaml", "name: other\nmonitor: m\n"),
        "{channel}": write(tmp_path, "channel.yaml", "name: ops\ntype: slack\n"),
        "{kpis}": write(tmp_path, "kpis.csv", "ts,value\n2026-01-01,1\n"),
    }
    result = run(*[files.get(a, a) for a in args], "--data-dir", data_dir)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2  # the message, wrapped at most once


def test_sql_says_it_needs_a_data_directory() -> None:
    result = run("sql", "SELECT 1", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "give --data-dir" in result.output
