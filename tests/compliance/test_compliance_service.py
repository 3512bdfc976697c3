"""Compliance suites run on versions, embedded and remote: data from the lineage checked by fingerprint, each
kind of test judged with its figures, the run kept with the version and in the audit trail, bad suites refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fairlearn.metrics import equalized_odds_difference

from modelsteward import Steward
from modelsteward.errors import InvalidDefinition, NotFound
from tests.compliance.credit_fixture import FEATURES, GB_PARAMS, LR_PARAMS, SUITE, TARGET, Credit, register


def test_a_suite_runs_on_a_version_and_its_results_stay_with_it(steward: Any, credit: Credit, tmp_path: Path) -> None:
    st = steward
    register(st, credit, LR_PARAMS)
    v2 = register(st, credit, GB_PARAMS)
    st.set_alias("credit-risk", "production", 2)
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(SUITE, encoding="utf-8")
    stored = st.put_compliance_suite(suite_file)
    assert [t.label for t in stored.suite.tests] == ["fair lending", "held-out performance", "drivers", "reproducible"]
    assert [s.name for s in st.list_compliance_suites()] == ["credit-risk-validation"]

    run = st.run_compliance("credit-risk@production", "credit-risk-validation")
    assert run.ref == "credit-risk/2" and run.suite == "credit-risk-validation"
    assert run.data is not None and run.data.rows == len(credit.test)
    assert run.data.content_hash == next(d.content_hash for d in v2.datasets if d.role == "test")
    by_name = {r.name: r for r in run.results}

    # fairness: the figure equals fairlearn's on the same decisions
    model = st.load_model("credit-risk/2")
    approved = (model.predict(credit.test[FEATURES])["proba_1"] <= 0.35).astype(int)
    expected = equalized_odds_difference(1 - credit.test[TARGET], approved, sensitive_features=credit.test["age_group"])
    eod = next(
        c for c in by_name["fair lending"].checks if c.metric == "equalized_odds_difference" and c.over == "age_group"
    )
    assert eod.value == pytest.approx(expected)
    assert eod.passed is (expected <= 0.1)
    # performance: the champion is this version, so only the bound is judged
    perf = by_name["held-out performance"]
    assert perf.status == "pass" and perf.figures["metrics"]["roc_auc"] == pytest.approx(v2.metrics["auc"], abs=1e-4)
    # explainability: importances for every input, stored with the version
    drivers = by_name["drivers"]
    assert drivers.status == "pass" and {f["feature"] for f in drivers.figures["features"]} == set(FEATURES)
    assert st.feature_importance("credit-risk/2").figures["features"] == drivers.figures["features"]
    # reproducibility: the recorded entry point on the recorded training data gives the same figures
    assert by_name["reproducible"].status == "pass", by_name["reproducible"].summary
    assert by_name["reproducible"].figures["training_rows"] == len(credit.train)

    assert run.status == ("pass" if all(r.status == "pass" for r in run.results) else "fail")
    assert [r.id for r in st.compliance_runs("credit-risk/2")] == [run.id]
    assert st.compliance_runs("credit-risk/1") == []
    assert st.get_compliance_run(run.id).results == run.results
    events = [e for e in st.list_events(model="credit-risk") if e.action == "compliance.run"]
    assert events[0].version == 2 and events[0].details["run"] == run.id and events[0].details["status"] == run.status


def test_the_challenger_is_measured_against_the_champion_on_the_same_data(steward: Any, credit: Credit) -> None:
    st = steward
    register(st, credit, GB_PARAMS)
    register(st, credit, LR_PARAMS)
    st.set_alias("credit-risk", "production", 1)
    suite = {"name": "vs-champion", "target": TARGET, "tests": [{"performance": {
        "score": "proba_1", "champion": {"alias": "production", "metric": "roc_auc", "max_drop": 0.0}}}]}  # fmt: skip
    run = st.run_compliance("credit-risk/2", suite)
    result = run.results[0]
    mine, theirs = result.figures["metrics"]["roc_auc"], result.figures["champion"]["metrics"]["roc_auc"]
    assert result.figures["champion"]["version"] == 1
    assert result.status == ("pass" if mine >= theirs else "fail")
    assert result.checks[0].bound == "drop <= 0"


def test_held_out_data_can_be_given_with_the_run(steward: Any, credit: Credit) -> None:
    st = steward
    register(st, credit, LR_PARAMS)
    suite = {"name": "given", "data": None, "target": TARGET, "tests": [{"performance": {"min": {"accuracy": 0.5}}}]}
    run = st.run_compliance("credit-risk/1", suite, data=credit.test.head(500))
    assert run.data is not None and run.data.rows == 500 and run.data.source == "data given with the run"
    assert run.status == "pass"


def test_changed_lineage_data_is_an_error_result_not_a_silent_pass(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    moved = tmp_path / "test.parquet"
    credit.test.to_parquet(moved, index=False)
    from tests.compliance.credit_fixture import fit

    model = fit(credit, LR_PARAMS)
    st.register_model("credit-risk", model, kind="sklearn", input_example=credit.train[FEATURES].head(3),
                      datasets={"test": str(moved)}, capture_git=False)  # fmt: skip
    credit.test.head(100).to_parquet(moved, index=False)  # edited after registration
    suite = {"name": "s", "target": TARGET, "tests": [{"performance": {"min": {"accuracy": 0.5}}}]}
    with pytest.raises(Exception, match="changed since it was registered"):
        st.run_compliance("credit-risk/1", suite)
    st.close()


def test_a_refit_that_does_not_reproduce_fails_with_its_figures(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    register(st, credit, GB_PARAMS)
    other = {"entry_point": "tests.compliance.credit_fixture:another_recipe", "metrics": ["roc_auc"], "tolerance": 1e-4}
    suite = {"name": "s", "target": TARGET, "tests": [{"reproducibility": other}]}
    result = st.run_compliance("credit-risk/1", suite).results[0]
    assert result.status == "fail" and "roc_auc refit vs recorded: differs by" in result.summary
    assert result.figures["refit"]["roc_auc"] != result.figures["recorded"]["roc_auc"]
    missing = {"name": "s2", "target": TARGET, "tests": [{"reproducibility": {"entry_point": "nowhere.at_all:train"}}]}
    error = st.run_compliance("credit-risk/1", missing)
    assert error.status == "error" and "cannot import the entry point nowhere.at_all:train" in error.results[0].summary
    st.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: s\ntarget: y\ntests:\n  - fairnes: {}\n", "unknown test 'fairnes'"),
        ("name: s\ntests:\n  - performance: {min: {roc_auc: 0.7}}\n", "needs the ground truth"),
        ("name: s\ntarget: y\ntests:\n  - performance: {}\n", "must check something"),
        ("name: s\ndata: ../x.txt\ntarget: y\ntests:\n  - performance: {min: {a: 1}}\n", "neither a data-set role"),
        (
            "name: s\ntarget: y\ntests:\n  - name: a\n    performance: {min: {a: 1}}\n  - name: a\n"
            "    performance: {min: {a: 1}}\n",
            "two tests are named 'a'",
        ),
    ],
)
def test_bad_suites_are_refused_naming_the_field_and_line(tmp_path: Path, text: str, message: str) -> None:
    st = Steward(tmp_path / "data")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidDefinition, match=message) as caught:
        st.put_compliance_suite(path)
    assert "bad.yaml" in caught.value.message
    with pytest.raises(NotFound, match="no compliance suite named 'nope'"):
        st.run_compliance("credit-risk/1", "nope")
    st.close()


def test_fairness_needs_protected_attributes_and_their_columns(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    register(st, credit, LR_PARAMS)
    suite = {"name": "s", "target": TARGET, "tests": [{"fairness": {"sensitive": ["religion"]}}]}
    result = st.run_compliance("credit-risk/1", suite, data=credit.test).results[0]
    assert result.status == "error" and "no sensitive column 'religion'" in result.summary
    st.close()


def test_an_explanation_of_a_deployment_adds_up_to_its_answer(steward: Any, credit: Credit) -> None:
    st = steward
    register(st, credit, LR_PARAMS)
    st.deploy("scoring", "credit-risk/1")
    rows = credit.test[FEATURES].head(2)
    found = st.explain("scoring", rows)
    assert len(found) == 2
    answer = st.load_model("credit-risk/1").predict(rows)
    for e in found:
        assert {c.feature for c in e.contributions} == set(FEATURES)
        total = e.base_value + sum(c.contribution for c in e.contributions)
        assert total == pytest.approx(e.prediction, abs=1e-3)
        assert any(abs(float(answer[col].iloc[e.row]) - e.prediction) < 1e-6 for col in answer.columns
                   if col.startswith("proba_"))  # fmt: skip


def test_data_given_as_records_or_a_file(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    register(st, credit, LR_PARAMS)
    suite = {"name": "s", "data": None, "target": TARGET, "tests": [{"performance": {"min": {"accuracy": 0.5}}}]}
    path = tmp_path / "holdout.csv"
    credit.test.head(300).to_csv(path, index=False)
    from_file = st.run_compliance("credit-risk/1", suite, data=str(path))
    from_records = st.run_compliance("credit-risk/1", suite, data=pd.read_csv(path).to_dict(orient="records"))
    assert from_file.results[0].figures == from_records.results[0].figures
    st.close()
