"""The life-cycle engine end to end on both bodies of the facade: definitions, gates, approvals with
separation of duties, actions on aliases and deployments, and the trail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from modelsteward import Conflict, Forbidden, InvalidArgument, InvalidDefinition, Steward
from modelsteward.settings import Settings
from tests.conftest import LiveServer

DEFINITION = """\
name: credit-standard
description: Northwind's standard life cycle for credit models
stages:
  - name: development
  - name: validation
  - name: production
    single: true
    replaced_to: retired
  - name: retired
parameters:
  min_auc: 0.75
transitions:
  - name: submit
    from: development
    to: validation
    trigger: {event: version_registered}
    gates:
      - metric: {metric: auc, min: "${min_auc}"}
      - champion: {metric: auc, min_delta: 0.0}
    actions:
      - deploy: {deployment: credit, role: shadow}
  - name: promote
    from: validation
    to: production
    approvals:
      - {role: validator}
      - {role: approver}
    actions:
      - promote: {deployment: credit}
  - name: retire
    from: production
    to: retired
    actions:
      - remove_alias: {alias: production}
models:
  credit-risk: {}
"""


@pytest.fixture(params=["embedded", "remote"])
def people(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The data scientist who registers, a validator, an approver and an admin, each their own facade."""
    names = ("dana", "victor", "april", "admin")
    if request.param == "embedded":
        root = Steward(data_dir=tmp_path / "data")
        yield {name: root.acting_as(name) for name in names}
        root.close()
        return
    with LiveServer(Settings(data_dir=tmp_path / "server-data", user="server")) as server:
        clients = {name: Steward(url=server.url, actor=name) for name in names}
        yield clients
        for c in clients.values():
            c.close()


def _register(st: Any, X: Any, y: Any, auc: float) -> int:
    X = X[["income", "debt_to_income", "age"]]
    model = LogisticRegression(max_iter=200).fit(X, y)
    return st.register_model(
        "credit-risk", model, input_example=X.head(), training_data=X, metrics={"auc": auc}
    ).version


def test_a_version_moves_through_gates_approvals_and_actions(people: dict[str, Any], credit_data: Any) -> None:
    X, y = credit_data
    dana, victor, april, admin = people["dana"], people["victor"], people["april"], people["admin"]
    v1 = _register(dana, X, y, 0.80)  # before the model is governed: it gets a stage when the definition lands
    admin.set_alias("credit-risk", "production", v1)
    admin.deploy("credit", champion="credit-risk@production")
    lifecycle = admin.apply_lifecycle(DEFINITION)
    assert lifecycle.revision == 1 and lifecycle.definition.initial_stage == "development"
    assert lifecycle.models == ["credit-risk"]
    assert {p.version: p.stage for p in admin.lifecycle_status("credit-risk").positions} == {v1: "production"}

    # a new version enters development and its submission starts at once (trigger: version_registered)
    v2 = _register(dana, X, y, 0.82)
    status = admin.lifecycle_status("credit-risk")
    assert {p.version: p.stage for p in status.positions} == {v1: "production", v2: "validation"}
    submitted = status.runs[0]
    assert submitted.status == "done" and submitted.trigger == "event:version_registered"
    assert [g.passed for g in submitted.gates] == [True, True]
    assert admin.get_deployment("credit").spec.shadows == [f"credit-risk/{v2}"]

    run = admin.advance(f"credit-risk/{v2}", "production")
    assert run.status == "waiting_approval"

    with pytest.raises(Forbidden, match="separation of duties"):
        dana.approve(f"credit-risk/{v2}", role="validator", comment="looks good to me")
    with pytest.raises(Forbidden, match="does not hold the role validator"):
        victor.approve(f"credit-risk/{v2}", role="validator")
    admin.grant_role("victor", "validator", model="credit-risk")
    admin.grant_role("april", "approver")
    admin.grant_role("victor", "approver")
    assert victor.approve(f"credit-risk/{v2}", role="validator", comment="validated").status == "waiting_approval"
    with pytest.raises(Forbidden, match="already signed"):
        victor.approve(f"credit-risk/{v2}", role="approver")
    done = april.approve("credit-risk", role="approver", comment="committee ok")
    assert done.status == "done"
    assert [a.accepted for a in done.approvals] == [False, False, True, False, True]
    assert [s.name for s in done.steps] == ["action[0]:promote"] and done.steps[0].status == "done"

    assert admin.get_version("credit-risk@production").version == v2
    spec = admin.get_deployment("credit").spec
    assert spec.champion == "credit-risk@production" and spec.shadows == []
    assert {p.version: p.stage for p in admin.lifecycle_status("credit-risk").positions} == {
        v1: "retired",  # production holds one version: the old champion moved on
        v2: "production",
    }
    actions = [e.action for e in admin.list_events(model="credit-risk", limit=200)]
    for expected in ("lifecycle.requested", "lifecycle.gates_passed", "lifecycle.approval_refused",
                     "lifecycle.approved", "lifecycle.advanced", "role.granted"):  # fmt: skip
        assert expected in actions


def test_a_failing_gate_stops_the_move_with_its_evidence(people: dict[str, Any], credit_data: Any) -> None:
    X, y = credit_data
    admin = people["admin"]
    v1 = _register(people["dana"], X, y, 0.80)
    admin.set_alias("credit-risk", "production", v1)
    admin.deploy("credit", champion="credit-risk@production")
    admin.apply_lifecycle(DEFINITION)
    v2 = _register(people["dana"], X, y, 0.70)  # below min_auc and below the champion
    run = admin.lifecycle_status("credit-risk").runs[0]
    assert run.version == v2 and run.status == "failed"
    metric, champion = run.gates
    assert not metric.passed and metric.value == 0.70 and "required >= 0.75" in metric.reason
    assert not champion.passed and champion.evidence["champion_version"] == v1
    assert {p.version: p.stage for p in admin.lifecycle_status("credit-risk").positions}[v2] == "development"
    assert admin.get_deployment("credit").spec.shadows == []

    check = admin.check_gates(f"credit-risk/{v2}", "validation")
    assert not check.passed and check.transition == "submit" and check.from_stage == "development"
    # the model's own threshold overrides the definition's
    admin.assign_lifecycle("credit-risk", "credit-standard", parameters={"min_auc": 0.65})
    assert [g.passed for g in admin.check_gates(f"credit-risk/{v2}", "validation").gates] == [True, False]


def test_a_rejection_ends_the_run_and_moves_nothing(people: dict[str, Any], credit_data: Any) -> None:
    X, y = credit_data
    admin = people["admin"]
    v1 = _register(people["dana"], X, y, 0.80)
    admin.apply_lifecycle(DEFINITION.replace("      - deploy: {deployment: credit, role: shadow}\n", ""))
    admin.grant_role("victor", "validator")
    admin.deploy("credit", champion=f"credit-risk/{v1}")
    assert admin.advance("credit-risk", "validation").status == "done"  # submit: gates pass, no approvals
    waiting = admin.advance("credit-risk", "production")
    assert waiting.status == "waiting_approval"
    assert admin.advance(f"credit-risk/{v1}", "production").id == waiting.id  # asked twice: the same run
    rejected = people["victor"].reject(f"credit-risk/{v1}", role="validator", comment="fairness finding")
    assert rejected.status == "rejected" and "fairness finding" in (rejected.error or "")
    assert "lifecycle.rejected" in [e.action for e in admin.list_events(model="credit-risk", limit=50)]
    assert {p.version: p.stage for p in admin.lifecycle_status("credit-risk").positions}[v1] == "validation"
    with pytest.raises(Conflict, match="waiting for approval"):
        people["victor"].approve(f"credit-risk/{v1}", role="validator")
    with pytest.raises(InvalidArgument, match="no transition from there to 'retired'"):
        admin.advance(f"credit-risk/{v1}", "retired")
    diagram = admin.lifecycle_diagram("credit-standard", model="credit-risk")
    assert 'state "validation (v1)" as s_validation' in diagram and "class s_validation current" in diagram


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("    to: validation\n", "    to: review\n"),
            "line 15: transitions[0].to: a transition to nowhere: no stage 'review'",
        ),
        (("    from: validation\n", "    from: staging\n"), "line 23: transitions[1].from[0]: unknown stage 'staging'"),
        (('min: "${min_auc}"', 'min: "${min_gini}"'), "parameter 'min_gini' is not defined"),
        (
            ("      - promote: {deployment: credit}\n", "      - launch: {deployment: credit}\n"),
            "line 29: transitions[1].actions[0]: unknown action 'launch'",
        ),
        (
            ('      - metric: {metric: auc, min: "${min_auc}"}\n', "      - fairness: {}\n"),
            "line 18: transitions[0].gates[0]: unknown gate 'fairness'",
        ),
    ],
)
def test_bad_definitions_are_refused_with_the_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = DEFINITION.replace(*change)
    assert text != DEFINITION
    with Steward(data_dir=tmp_path) as st, pytest.raises(InvalidDefinition, match=re.escape(message)):
        st.apply_lifecycle(text)


def test_a_cycle_of_automatic_transitions_is_refused(tmp_path: Path) -> None:
    text = """\
name: loop
stages: [{name: a}, {name: b}]
transitions:
  - {from: a, to: b, trigger: {event: entered}}
  - {from: b, to: a, trigger: {event: entered}}
"""
    with (
        Steward(data_dir=tmp_path) as st,
        pytest.raises(InvalidDefinition, match="line 4: .*a cycle of automatic transitions: a->b -> b->a"),
    ):
        st.apply_lifecycle(text)
