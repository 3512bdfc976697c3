"""A compliance suite as a life-cycle gate: it runs the stored suite when the version has no recent run, and a
failing test stops the move with the finding as evidence; a suite that does not exist is refused at apply time."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsteward import InvalidDefinition, Steward
from tests.compliance.credit_fixture import GB_PARAMS, LR_PARAMS, TARGET, Credit, register

LIFECYCLE = """\
name: validated
stages:
  - name: development
  - name: production
    single: true
    replaced_to: retired
  - name: retired
transitions:
  - name: promote
    from: development
    to: production
    gates:
      - compliance: {suite: "{model}-checks", max_age: 30d}
    actions:
      - set_alias: {alias: production}
models:
  credit-risk: {}
"""


def _suite(min_auc: float) -> dict[str, object]:
    return {"name": "credit-risk-checks", "target": TARGET,
            "tests": [{"name": "auc", "performance": {"score": "proba_1", "min": {"roc_auc": min_auc}}}]}  # fmt: skip


def test_the_gate_runs_the_suite_and_stops_a_failing_version(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    register(st, credit, LR_PARAMS)
    register(st, credit, GB_PARAMS)
    st.put_compliance_suite(_suite(min_auc=0.99))  # nobody reaches it
    st.apply_lifecycle(LIFECYCLE)

    check = st.check_gates("credit-risk/1", "production")
    gate = check.gates[0]
    assert gate.gate == "compliance credit-risk-checks" and not gate.passed
    assert "roc_auc" in gate.reason and "required >= 0.99" in gate.reason
    runs = st.compliance_runs("credit-risk/1")
    assert len(runs) == 1 and runs[0].actor == "lifecycle" and gate.evidence["run"] == runs[0].id
    failed = st.advance("credit-risk/1", "production")
    assert failed.status == "failed" and st.list_aliases("credit-risk") == []
    assert len(st.compliance_runs("credit-risk/1")) == 1  # a recent run is reused, not repeated

    st.put_compliance_suite(_suite(min_auc=0.7))
    passed = st.run_compliance("credit-risk/2", "credit-risk-checks")
    assert passed.status == "pass"
    done = st.advance("credit-risk/2", "production")
    assert done.status == "done" and done.gates[0].passed and done.gates[0].evidence["run"] == passed.id
    assert st.get_version("credit-risk@production").version == 2
    st.close()


def test_a_gate_on_a_suite_that_does_not_exist_is_refused_at_apply_time(credit: Credit, tmp_path: Path) -> None:
    st = Steward(tmp_path / "data")
    register(st, credit, LR_PARAMS)
    with pytest.raises(InvalidDefinition, match="no compliance suite named 'credit-risk-checks'") as caught:
        st.apply_lifecycle(LIFECYCLE)
    assert caught.value.details["field"] == "transitions[0].gates[0].compliance.suite"
    st.close()
