"""``steward deploy``, ``deployments ...``, ``rollback`` and ``undeploy`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelsteward import Steward
from modelsteward.cli.main import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, numeric_model) -> str:
    model, X = numeric_model
    st = Steward(data_dir=tmp_path)
    for _ in range(3):
        st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", 1)
    st.set_alias("risk", "challenger", 2)
    st.close()
    return str(tmp_path)


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_deploy_step_a_canary_and_roll_back(data_dir: str) -> None:
    d = ("--data-dir", data_dir)
    result = run(
        "deploy",
        "risk",
        "--champion",
        "risk@production",
        "--challenger",
        "risk@challenger=5%",
        "--shadow",
        "risk/3",
        "--sticky-key",
        "customer_id",
        *d,
    )
    assert result.exit_code == 0, result.output
    assert "risk/2" in result.output and "5%" in result.output
    assert run("deployments", "traffic", "risk", "risk@challenger=0.25", *d).exit_code == 0
    shown = json.loads(run("deployments", "show", "risk", "--json", *d).output)
    assert shown["revision"] == 2 and shown["spec"]["challengers"] == {"risk@challenger": 0.25}
    assert {a["role"]: a["version"] for a in shown["arms"]} == {
        "challenger": "risk/2",
        "champion": "risk/1",
        "shadow": "risk/3",
    }
    assert run("rollback", "risk", *d).exit_code == 0
    history = json.loads(run("deployments", "history", "risk", "--json", *d).output)
    assert [h["action"] for h in history] == ["rollback", "traffic", "deploy"]
    assert history[0]["spec"]["challengers"] == {"risk@challenger": 0.05}
    listed = json.loads(run("deployments", "list", "--json", *d).output)
    assert [x["name"] for x in listed] == ["risk"]
    assert "retired" in run("undeploy", "risk", *d).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "risk", "--champion", "risk@ghost"], "no alias 'ghost'"),
        (["deploy", "risk", "--champion", "risk/1", "--challenger", "risk/2"], "must look like REF=SHARE"),
        (["deploy", "risk", "--champion", "risk/1", "--challenger", "risk/2=lots"], "is not a share"),
        (["deploy", "risk", "--champion", "risk/1", "--challenger", "risk/2=1.5"], "must be in (0, 1]"),
        (["deploy", "risk"], "exactly one of champion"),
        (["rollback", "ghost"], "no deployment named 'ghost'"),
        (["deploy", "risk", "--pipeline", "missing.yaml"], "no such file"),
    ],
)
def test_errors_are_clear(data_dir: str, args: list[str], message: str) -> None:
    result = run(*args, "--data-dir", data_dir)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
