"""The auditor's report rendered as an offline HTML page and as a PDF, from one hand-built Report."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest

from modelsteward.domain.report import (
    Chart,
    Facts,
    Marker,
    Report,
    Requirement,
    Section,
    Series,
    Table,
    Text,
)
from modelsteward.governance.report_render import chart_rows, render_html, render_pdf, verdict

AUC = [0.812, 0.809, 0.815, 0.801, None, 0.795, 0.788, 0.779]
DAYS = [f"2026-02-{d:02d}T00:00:00Z" for d in range(1, 9)]


def make_report() -> Report:
    """A credit-risk model's report: a card, datasets, a failing fairness test, monitoring with a marker, a mapping."""
    card = Facts(
        items=[
            ("model", "credit-risk"),
            ("version", "3"),
            ("owner", "risk-analytics@bank.example"),
            ("intended use", "Probability of default for retail loan applications up to EUR 50,000."),
            ("limitations", "Not validated for SME lending or applicants with no credit history."),
            ("code", "git@git.bank.example:risk/credit.git @ 4f2a9c1 (train.py)"),
        ],
        caption="Model card",
    )
    training = Table(
        columns=["dataset", "role", "rows", "fingerprint", "missing income"],
        rows=[
            ["loans-2025Q3", "training", "182,311", "sha256:9b1f0c7e2d", "0.4%"],
            ["loans-2025Q4-holdout", "validation", "41,076", "sha256:0aa3e51c88", "0.6%"],
        ],
        caption="Training data",
    )
    compliance = Table(
        columns=["test", "metric", "value", "threshold", "result"],
        rows=[
            ["performance gate", "AUC", "0.812", ">= 0.75", "pass"],
            ["fairness: sex", "disparate impact ratio", "0.71", ">= 0.80", "fail"],
            ["stability", "PSI (income)", "0.04", "<= 0.10", "pass"],
        ],
        statuses=["pass", "fail", "pass"],
        caption="Compliance tests",
    )
    auc = Chart(
        title="AUC over time",
        kind="line",
        x_label="day",
        y_label="AUC",
        series=[Series(name="AUC (production)", x=list(DAYS), y=list(AUC))],
        markers=[Marker(x="2026-02-04T00:00:00Z", label="alias production -> 3")],
        threshold=0.75,
    )
    ratios = Chart(
        title="Selection rate by group",
        kind="bar",
        y_label="approval rate",
        series=[
            Series(name="training", x=["female", "male"], y=[0.41, 0.52]),
            Series(name="production", x=["female", "male"], y=[0.37, 0.52]),
        ],
        threshold=0.8,
    )
    sections = [
        Section(id="model-card", title="Model card", blocks=[card]),
        Section(id="training-data", title="Training data", blocks=[training]),
        Section(
            id="compliance",
            title="Compliance tests",
            status="fail",
            blocks=[
                compliance,
                ratios,
                Text(text="Fairness <script>alert('x')</script> & the four-fifths rule failed.", status="fail"),
            ],
        ),
        Section(
            id="monitoring",
            title="Ongoing monitoring",
            blocks=[auc, Table(columns=["alert", "raised at", "severity"], rows=[], empty="no alerts raised")],
        ),
        Section(id="audit-trail", title="Audit trail verification", status="pass", blocks=[Text(text="Chain intact.")]),
    ]
    mapping = [
        Requirement(framework="SR 11-7", requirement="Conceptual soundness", sections=["model-card", "training-data"]),
        Requirement(framework="SR 11-7", requirement="Ongoing monitoring", sections=["monitoring"]),
        Requirement(framework="SR 11-7", requirement="Outcomes analysis", sections=["compliance", "monitoring"]),
        Requirement(
            framework="EU AI Act Annex IV",
            requirement="2(d) data requirements and datasheets",
            sections=["training-data"],
        ),
        Requirement(
            framework="EU AI Act Annex IV", requirement="3 monitoring, functioning and control", sections=["monitoring"]
        ),
    ]
    return Report(
        title="Model risk report",
        subject="credit-risk/3",
        asked="credit-risk@production as of 2026-02-08",
        as_of=datetime(2026, 2, 8, tzinfo=UTC),
        generated_at=datetime(2026, 2, 9, 10, 30, tzinfo=UTC),
        generated_by="auditor@bank.example",
        summary=[("version", "credit-risk/3"), ("compliance", "fail (1 of 3 tests)"), ("audit trail", "verified")],
        sections=sections,
        mapping=mapping,
    )


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf(report: Report) -> bytes:
    return render_pdf(report)


# -- HTML -------------------------------------------------------------------------------------------------------------


def test_html_has_every_section_with_its_anchor_and_a_contents_link(page: str, report: Report) -> None:
    for section in report.sections:
        assert f'<section id="{section.id}"' in page
        assert section.title in page
        assert f'href="#{section.id}"' in page
    assert page.index('id="report-summary"') < page.index('id="report-mapping"') < page.index('id="model-card"')


def test_html_mapping_links_only_to_sections_that_exist(page: str, report: Report) -> None:
    mapping = page[page.index('id="report-mapping"') : page.index("</section>", page.index('id="report-mapping"'))]
    links = re.findall(r'href="#([^"]+)"', mapping)
    anchors = set(re.findall(r'\sid="([^"]+)"', page))
    assert links and set(links) <= anchors
    assert {i for r in report.mapping for i in r.sections} == set(links)
    for requirement in report.mapping:
        assert requirement.requirement in mapping
    assert "SR 11-7" in mapping and "EU AI Act Annex IV" in mapping


def test_html_escapes_user_text(page: str) -> None:
    assert "<script>alert(" not in page
    assert "Fairness &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; the four-fifths rule failed." in page


def test_html_loads_nothing_from_the_network(page: str) -> None:
    assert not re.search(r"""src\s*=\s*["']?\s*(https?:)?//""", page, flags=re.IGNORECASE)
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?https?://""", page, flags=re.IGNORECASE)
    assert page.count("Plotly.newPlot") == 2
    assert len(re.findall(r"\* plotly\.js v\d", page)) == 1  # the bundle's banner: inlined once, for both charts


def test_html_chart_figures_are_in_the_page(page: str) -> None:
    plots = re.findall(r'Plotly\.newPlot\(\s*"report-plot-\d+",\s*(\[.*?\]),\s*\{', page, flags=re.DOTALL)
    traces = [trace for plot in plots for trace in json.loads(plot)]
    auc = next(t for t in traces if t["name"] == "AUC (production)")
    assert auc["y"] == AUC
    assert auc["x"][0] == "2026-02-01T00:00:00"
    bars = [t for t in traces if t["type"] == "bar"]
    assert [t["y"] for t in bars] == [[0.41, 0.52], [0.37, 0.52]]
    assert '"type":"date"' in page
    assert "alias production -&gt; 3" in page  # the marker, labelled in the figure and listed under it
    assert "0.788" in page.split("AUC over time: the figures")[1]  # the figures table reads without scripts


def test_html_escapes_text_handed_to_plotly(report: Report) -> None:
    chart = Chart(
        title="<b>AUC</b>",
        series=[Series(name="</script><script>alert(1)</script>", x=["a"], y=[1.0])],
        markers=[Marker(x="a", label="<i>m</i>")],
    )
    page = render_html(report.model_copy(update={"sections": [Section(id="c", title="C", blocks=[chart])]}))
    assert "<script>alert(1)" not in page
    figure = json.loads(
        re.search(r'Plotly\.newPlot\(\s*"report-plot-1",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', page, re.S)[2]
    )
    assert figure["title"]["text"] == "&lt;b&gt;AUC&lt;/b&gt;"  # plotly.js reads text as HTML: shown literally
    assert figure["annotations"][0]["text"] == "&lt;i&gt;m&lt;/i&gt;"


def test_html_marks_the_failing_row_and_the_verdicts(page: str) -> None:
    row = re.search(r'<tr class="row-fail">(.*?)</tr>', page).group(1)
    assert "fairness: sex" in row and 'aria-label="fail"' in row
    assert page.count('<tr class="row-pass">') == 2
    assert '<span class="badge badge-fail">fail (1 of 3 tests)</span>' in page
    assert '<span class="badge badge-pass">verified</span>' in page
    assert re.search(r'id="compliance-h">Compliance tests<span class="badge badge-fail">FAIL</span>', page)
    assert '<p class="note note-fail" role="note">' in page


def test_html_empty_table_says_so(page: str) -> None:
    assert '<td class="empty" colspan="3">no alerts raised</td>' in page


def test_html_is_semantic_and_printable(page: str) -> None:
    for tag in ("<header>", "<nav ", "<main>", "<figure", "<figcaption>", '<th scope="col">', '<th scope="row">'):
        assert tag in page
    assert "@media print" in page and "break-before:page" in page


def test_html_without_charts_does_not_need_plotly(report: Report) -> None:
    bare = report.model_copy(update={"sections": report.sections[:2]})
    page = render_html(bare)
    assert "Plotly" not in page and len(page) < 50_000


def test_chart_figures_table_aligns_series_on_x() -> None:
    chart = Chart(
        title="t",
        series=[
            Series(name="a", x=["2026-01-02", "2026-01-01"], y=[2.0, 1.0]),
            Series(name="b", x=["2026-01-02"], y=[5.0]),
        ],
    )
    assert chart_rows(chart) == (["date", "a", "b"], [["2026-01-01", "1", "—"], ["2026-01-02", "2", "5"]])


@pytest.mark.parametrize(
    ("value", "status"),
    [("pass", "pass"), ("Failed: 2 tests", "fail"), ("verified", "pass"), ("credit-risk/3", "none"), ("", "none")],
)
def test_summary_verdicts_are_read_from_the_first_word(value: str, status: str) -> None:
    assert verdict(value) == status


# -- PDF --------------------------------------------------------------------------------------------------------------


def _pdf_text(pdf: bytes) -> tuple[str, list[str]]:
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text, [entry.title for entry in reader.outline]


def test_pdf_is_a_pdf(pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF")


def test_pdf_holds_every_section_the_subject_and_the_failing_row(pdf: bytes, report: Report) -> None:
    text, _ = _pdf_text(pdf)
    flat = " ".join(text.split())
    for section in report.sections:
        assert section.title in flat
    assert "credit-risk/3" in flat
    assert "fairness: sex" in flat and "FAIL" in flat
    assert "page 1 of" in flat
    assert "no alerts raised" in flat
    assert "<script>alert('x')</script> & the four-fifths rule" in flat  # shown as text, not eaten as markup
    assert "Conceptual soundness" in flat and "EU AI Act Annex IV" in flat


def test_pdf_outline_has_an_entry_per_section(pdf: bytes, report: Report) -> None:
    _, outline = _pdf_text(pdf)
    assert outline == ["Summary", "Requirements mapping", *(s.title for s in report.sections)]


def test_pdf_page_numbers_count_all_pages(pdf: bytes) -> None:
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    total = len(reader.pages)
    assert f"page {total} of {total}" in reader.pages[-1].extract_text()
    assert total == 1 + 5  # the title page (summary, mapping), then a page per section
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4
