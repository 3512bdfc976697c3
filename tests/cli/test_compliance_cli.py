"""``steward compliance apply|run|results|show`` and ``steward explain``: a finding exits 1 for CI, bad input is a
message and exit 1; and the compliance routes answer bad requests with the error body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelsteward import Steward
from modelsteward.cli.main import app as cli
from tests.compliance.conftest import credit  # noqa: F401 - the session's credit data set
from tests.compliance.credit_fixture import FEATURES, LR_PARAMS, TARGET, Credit, register

SUITE = f"""\
name: quick
target: {TARGET}
tests:
  - name: auc floor
    performance: {{score: proba_1, min: {{roc_auc: 0.6}}}}
  - name: impossible
    performance: {{score: proba_1, min: {{roc_auc: 0.999}}}}
"""


@pytest.fixture
def store(credit: Credit, tmp_path: Path) -> Path:  # noqa: F811
    with Steward(tmp_path / "data") as st:
        register(st, credit, LR_PARAMS)
        st.deploy("scoring", "credit-risk/1")
    return tmp_path


def test_a_failing_run_exits_1_and_prints_the_finding(store: Path, credit: Credit) -> None:  # noqa: F811
    runner = CliRunner()
    data = ["--data-dir", str(store / "data")]
    suite = store / "quick.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    applied = runner.invoke(cli, ["compliance", "apply", str(suite), *data])
    assert applied.exit_code == 0 and "suite quick stored: 2 test(s)" in applied.output

    ran = runner.invoke(cli, ["compliance", "run", "credit-risk/1", "--suite", "quick", *data], terminal_width=200)
    assert ran.exit_code == 1, ran.output
    assert "run 1: suite quick on credit-risk/1" in ran.output and "fail" in ran.output
    assert "required >= 0.999" in ran.output

    listed = runner.invoke(cli, ["compliance", "results", "credit-risk", "--json", *data])
    runs = json.loads(listed.output)
    assert [r["status"] for r in runs] == ["fail"] and runs[0]["results"][0]["status"] == "pass"
    shown = runner.invoke(cli, ["compliance", "show", "1", "--json", *data])
    assert json.loads(shown.output)["id"] == 1

    rows = store / "rows.csv"
    credit.test[FEATURES].head(2).to_csv(rows, index=False)
    explained = runner.invoke(cli, ["explain", "scoring", "--input", str(rows), "--json", *data])
    assert explained.exit_code == 0, explained.output
    assert len(json.loads(explained.output)) == 2


def test_bad_input_is_a_message_and_exit_1(store: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(store / "data")]
    bad = store / "bad.yaml"
    bad.write_text("name: quick\ntests:\n  - perfomance: {}\n", encoding="utf-8")
    result = runner.invoke(cli, ["compliance", "apply", str(bad), *data])
    assert result.exit_code == 1 and "unknown test 'perfomance'" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["compliance", "run", "credit-risk/9", "--suite", "quick", *data])
    assert result.exit_code == 1 and "Traceback" not in result.output
    result = runner.invoke(cli, ["audit", "report", "credit-risk/1", "--out", str(store / "r.html"), "--as-of",
                                 "last tuesday", *data])  # fmt: skip
    assert result.exit_code == 1 and "not an ISO date" in result.output


def test_the_routes_answer_bad_requests_with_the_error_body(store: Path, credit: Credit) -> None:  # noqa: F811
    from modelsteward.api.app import create_app
    from modelsteward.settings import Settings

    app = create_app(Settings(data_dir=store / "data"))
    with TestClient(app) as client:
        wrong = client.put("/api/v1/compliance/suites/other", json={"definition": SUITE})
        assert wrong.status_code == 422 and wrong.json()["error"]["details"]["field"] == "name"
        stored = client.put("/api/v1/compliance/suites/quick", json={"definition": SUITE})
        assert stored.status_code == 200 and stored.json()["name"] == "quick"
        broken = client.put("/api/v1/compliance/suites/x", json={"definition": {"tests": [{"fairness": {"x": 1}}]}})
        assert broken.status_code == 422 and "fairness" in broken.json()["error"]["message"]
        rows = credit.test.head(300).to_dict(orient="records")
        ran = client.post("/api/v1/compliance/runs", json={"ref": "credit-risk/1", "suite": "quick",
                                                           "data": {"instances": rows}})  # fmt: skip
        assert ran.status_code == 201 and ran.json()["data"]["rows"] == 300
        assert client.get("/api/v1/compliance/runs", params={"ref": "credit-risk"}).json()[0]["id"] == ran.json()["id"]
        none = client.get("/api/v1/models/credit-risk/versions/1/importance")
        assert none.status_code == 404 and "explainability test" in none.json()["error"]["message"]
        many = client.post("/api/v1/deployments/scoring/explain", json={"instances": rows[:101]})
        assert many.status_code == 422 and many.json()["error"]["details"]["field"] == "instances"
        unknown = client.post("/api/v1/deployments/nowhere/explain", json={"instances": rows[:1]})
        assert unknown.status_code == 404
    app.state.steward.close()
