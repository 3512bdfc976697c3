"""`steward lifecycle`, `approve`, `reject`, `roles` and `jobs` on an embedded data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelsteward.cli.main import app
from modelsteward.local_steward import LocalSteward
from modelsteward.settings import Settings

runner = CliRunner()

DEFINITION = """\
name: gated
stages: [{name: candidate}, {name: production}]
parameters: {min_auc: 0.75}
transitions:
  - name: promote
    from: candidate
    to: production
    gates:
      - metric: {metric: auc, min: "${min_auc}"}
    approvals: [{role: validator}]
    actions: [{set_alias: {alias: production}}]
models: [risk]
"""


@pytest.fixture
def data_dir(tmp_path: Path, numeric_model: Any) -> str:
    model, X = numeric_model
    with LocalSteward(settings=Settings(data_dir=tmp_path), actor="dana") as st:
        st.register_model("risk", model, input_example=X.head(), metrics={"auc": 0.7})
    (tmp_path / "lifecycle.yaml").write_text(DEFINITION)
    return str(tmp_path)


def steward(data_dir: str, *args: str, user: str = "admin") -> Any:
    return runner.invoke(app, [*args, "--data-dir", data_dir], env={"STEWARD_USER": user})


def test_gates_fail_in_ci_then_pass_with_an_override_and_approval(data_dir: str) -> None:
    definition = str(Path(data_dir) / "lifecycle.yaml")
    applied = steward(data_dir, "lifecycle", "apply", definition)
    assert applied.exit_code == 0, applied.output
    assert "life cycle gated revision 1" in applied.output and "models: risk" in applied.output

    gate = steward(data_dir, "lifecycle", "gate", "risk/1", "--to", "production")
    assert gate.exit_code == 1 and "FAIL" in gate.output and "auc = 0.7, required >= 0.75" in gate.output
    refused = steward(data_dir, "lifecycle", "advance", "risk/1", "--to", "production")
    assert refused.exit_code == 1 and "failed" in refused.output

    assigned = steward(data_dir, "lifecycle", "assign", "risk", "--lifecycle", "gated", "--set", "min_auc=0.65")
    assert assigned.exit_code == 0 and "min_auc=0.65" in assigned.output
    assert steward(data_dir, "lifecycle", "gate", "risk", "--to", "production").exit_code == 0
    waiting = steward(data_dir, "lifecycle", "advance", "risk", "--to", "production")
    assert waiting.exit_code == 0 and "waiting for approval" in waiting.output

    author = steward(data_dir, "approve", "risk/1", "--role", "validator", user="dana")
    assert author.exit_code == 1 and "separation of duties" in author.output
    assert steward(data_dir, "roles", "grant", "val", "validator", "--model", "risk").exit_code == 0
    roles = steward(data_dir, "roles", "list", "--json")
    assert [(g["principal"], g["scope"]) for g in json.loads(roles.output)] == [("val", "model:risk")]
    approved = steward(data_dir, "approve", "risk/1", "--role", "validator", "--comment", "fine", user="val")
    assert approved.exit_code == 0 and "done" in approved.output and "signed  val as validator" in approved.output

    status = steward(data_dir, "lifecycle", "status", "risk")
    assert status.exit_code == 0 and "production  v1" in status.output and "promote" in status.output
    runs = json.loads(steward(data_dir, "lifecycle", "runs", "--json").output)
    assert [r["status"] for r in runs] == ["done", "failed"]
    diagram = steward(data_dir, "lifecycle", "diagram", "gated", "--model", "risk")
    assert diagram.output.startswith("stateDiagram-v2") and "class s_production current" in diagram.output
    jobs = steward(data_dir, "jobs", "list")
    assert jobs.exit_code == 0 and "jobs" in jobs.output


def test_mistakes_get_one_line_and_exit_1(data_dir: str) -> None:
    bad = Path(data_dir) / "bad.yaml"
    bad.write_text(DEFINITION.replace("to: production", "to: heaven"))
    result = steward(data_dir, "lifecycle", "apply", str(bad))
    assert result.exit_code == 1 and "line 7" in result.output and "a transition to nowhere" in result.output
    assert "Traceback" not in result.output
    missing = steward(data_dir, "lifecycle", "apply", str(Path(data_dir) / "nope.yaml"))
    assert missing.exit_code == 1 and "no such file" in missing.output
    ungoverned = steward(data_dir, "lifecycle", "advance", "risk", "--to", "production")
    assert ungoverned.exit_code == 1 and "not under a life cycle" in ungoverned.output
    role = steward(data_dir, "roles", "grant", "x", "overlord")
    assert role.exit_code == 1 and "unknown role 'overlord'" in role.output
