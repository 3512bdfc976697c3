"""The auditor's report: every section, the SR 11-7 / Annex IV mapping, a point-in-time question answered with the
version that held the alias then, and the same report through the API and the CLI as JSON, HTML and PDF."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from modelsteward import NotFound, Steward
from modelsteward.governance.report_render import render_html, render_pdf
from tests.compliance.conftest import credit  # noqa: F401 - the session's credit data set
from tests.compliance.credit_fixture import GB_PARAMS, LR_PARAMS, SUITE, Credit, register

SECTIONS = ["model-card", "version", "training-data", "performance", "compliance", "approvals", "deployments",
            "monitoring", "audit-trail"]  # fmt: skip


@pytest.fixture(scope="module")
def history(credit: Credit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    """credit-risk/1 in production, then (after ``between``) credit-risk/2, with a suite run on version 2."""
    tmp_path = tmp_path_factory.mktemp("history")
    st = Steward(tmp_path / "data", actor="dana")
    register(st, credit, LR_PARAMS, owner="head-of-retail-credit", risk_tier="high",
             description="Probability of default within 90 days")  # fmt: skip
    st.set_alias("credit-risk", "production", 1)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    register(st, credit, GB_PARAMS)
    st.set_alias("credit-risk", "production", 2)
    st.put_compliance_suite(SUITE)
    run = st.run_compliance("credit-risk/2", "credit-risk-validation")
    yield {"st": st, "between": between, "run": run, "dir": tmp_path}
    st.close()


def test_the_report_has_every_section_and_maps_them_to_sr_11_7_and_annex_iv(history: dict[str, Any]) -> None:
    st, run = history["st"], history["run"]
    report = st.audit_report("credit-risk@production")
    assert report.subject == "credit-risk/2"
    assert [s.id for s in report.sections] == SECTIONS
    frameworks = {r.framework for r in report.mapping}
    assert frameworks == {"SR 11-7", "EU AI Act Annex IV"}
    assert all(set(r.sections) <= set(SECTIONS) for r in report.mapping)
    assert any("Outcomes analysis" in r.requirement for r in report.mapping)
    assert any(r.requirement.startswith("2(d)") and r.sections == ["training-data"] for r in report.mapping)

    card = dict(report.section("model-card").blocks[0].items)
    assert card["Owner"] == "head-of-retail-credit" and card["Risk tier"] == "high"
    assert card["Protected attributes"] == "gender, age_group"
    training = report.section("training-data")
    assert any(getattr(b, "caption", "").startswith("Training data statistics (2,800 rows)") for b in training.blocks)
    compliance = report.section("compliance")
    tables = [b for b in compliance.blocks if b.type == "table"]
    assert tables[0].rows[0][0] == str(run.id) and tables[0].rows[0][-1] == run.status
    assert compliance.status == ("pass" if run.status == "pass" else "fail" if run.status == "fail" else "warn")
    assert any(b.type == "chart" and "by age_group" in b.title for b in compliance.blocks)  # fairness per group
    audit = report.section("audit-trail")
    assert audit.status == "pass" and "verified" in dict(report.summary)["Audit trail"]
    history_table = report.section("deployments").blocks[0]
    assert [row[2:] for row in history_table.rows] == [["production", "n/a", "1"], ["production", "1", "2"]]


def test_a_point_in_time_question_gets_the_version_that_held_the_alias_then(history: dict[str, Any]) -> None:
    st, between = history["st"], history["between"]
    then = st.audit_report("credit-risk@production", as_of=between)
    assert then.subject == "credit-risk/1"
    assert then.section("compliance").status == "warn"  # version 1 was never tested
    moves = then.section("deployments").blocks[0].rows
    assert len(moves) == 1  # the later move to version 2 is not in a report of the past
    assert all("compliance" not in row[3] for row in then.section("audit-trail").blocks[1].rows)
    with pytest.raises(NotFound, match="named no version"):
        st.audit_report("credit-risk@production", as_of=between - timedelta(days=1))
    with pytest.raises(NotFound, match="after"):
        st.audit_report("credit-risk/2", as_of=between)


def test_the_report_renders_as_html_and_pdf_with_its_sections(history: dict[str, Any]) -> None:
    from pypdf import PdfReader

    report = history["st"].audit_report("credit-risk@production")
    page = render_html(report)
    for section in report.sections:
        assert f'id="{section.id}"' in page and section.title in page
    assert "SR 11-7" in page and "Annex IV" in page
    pdf = render_pdf(report)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert pdf.startswith(b"%PDF") and "credit-risk/2" in text and "Compliance tests" in text


def test_the_api_and_the_cli_give_the_report(history: dict[str, Any]) -> None:
    from modelsteward.api.app import create_app
    from modelsteward.cli.main import app as cli

    st, folder = history["st"], history["dir"]
    app = create_app(steward=st)
    with TestClient(app) as client:
        as_json = client.get("/api/v1/audit/report", params={"ref": "credit-risk@production"})
        assert as_json.status_code == 200 and as_json.json()["subject"] == "credit-risk/2"
        when = history["between"].isoformat()
        past = client.get("/api/v1/audit/report", params={"ref": "credit-risk@production", "as_of": when})
        assert past.json()["subject"] == "credit-risk/1"
        page = client.get("/api/v1/audit/report", params={"ref": "credit-risk/2", "format": "html"})
        assert page.headers["content-type"].startswith("text/html") and 'id="compliance"' in page.text
        assert 'filename="credit-risk-v2-report.html"' in page.headers["content-disposition"]
        pdf = client.get("/api/v1/audit/report", params={"ref": "credit-risk/2", "format": "pdf"})
        assert pdf.content.startswith(b"%PDF")
        missing = client.get("/api/v1/audit/report", params={"ref": "nope@production"})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    runner = CliRunner()
    out = folder / "report.pdf"
    result = runner.invoke(cli, ["audit", "report", "credit-risk@production", "--out", str(out),
                                 "--data-dir", str(folder / "data")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF") and "credit-risk/2" in result.output
    day = history["between"].strftime("%Y-%m-%dT%H:%M:%S.%f")
    result = runner.invoke(cli, ["audit", "report", "credit-risk@production", "--out", str(folder / "r.html"),
                                 "--as-of", day, "--data-dir", str(folder / "data")])  # fmt: skip
    assert result.exit_code == 0 and "credit-risk/1" in result.output
    bad = runner.invoke(cli, ["audit", "report", "credit-risk/2", "--out", str(folder / "r.docx"),
                              "--data-dir", str(folder / "data")])  # fmt: skip
    assert bad.exit_code == 1 and "write the report as .html, .pdf or .json" in bad.output
