"""The command line: each command over the facade, clear errors with exit code 1, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from typer.testing import CliRunner

from modelsteward.cli.main import app

runner = CliRunner()


def steward(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def files(tmp_path: Path, numeric_model) -> dict[str, Path]:
    model, X = numeric_model
    (tmp_path / "model.skops").write_bytes(sio.dumps(model))
    X.head(5).to_csv(tmp_path / "example.csv", index=False)
    X.to_parquet(tmp_path / "train.parquet")
    X.assign(applicant_id=range(len(X))).to_csv(tmp_path / "batch.csv", index=False)
    return {
        "model": tmp_path / "model.skops",
        "example": tmp_path / "example.csv",
        "train": tmp_path / "train.parquet",
        "batch": tmp_path / "batch.csv",
        "data": tmp_path / "data",
    }


def test_register_list_show_alias_predict(files: dict[str, Path], numeric_model) -> None:
    model, X = numeric_model
    d = str(files["data"])
    result = steward(
        "models",
        "register",
        "credit-risk",
        str(files["model"]),
        "--input-example",
        str(files["example"]),
        "--training-data",
        str(files["train"]),
        "--metric",
        "auc=0.81",
        "--param",
        "C=1.0",
        "--tag",
        "team=risk",
        "--owner",
        "ann",
        "--kpi",
        "approval_rate",
        "--data-dir",
        d,
    )
    assert result.exit_code == 0, result.output
    assert "registered credit-risk/1" in result.output

    assert steward("models", "alias", "credit-risk", "production", "1", "--data-dir", d).exit_code == 0
    listing = steward("models", "list", "--json", "--data-dir", d)
    models = json.loads(listing.output)
    assert models[0]["name"] == "credit-risk" and models[0]["aliases"] == {"production": 1}

    shown = steward("models", "show", "credit-risk@production", "--data-dir", d)
    assert shown.exit_code == 0 and "credit-risk/1" in shown.output and "debt_to_income" in shown.output
    detail = json.loads(steward("models", "show", "credit-risk/1", "--json", "--data-dir", d).output)
    assert detail["metrics"] == {"auc": 0.81} and detail["params"] == {"C": 1.0}
    assert detail["lineage"]["upstream"][0]["relation"] == "training_data"

    out = files["data"].parent / "scored.parquet"
    scored = steward(
        "predict",
        "credit-risk@production",
        "--input",
        str(files["batch"]),
        "--output",
        str(out),
        "--chunk-size",
        "100",
        "--data-dir",
        d,
    )
    assert scored.exit_code == 0, scored.output
    frame = pd.read_parquet(out)
    assert len(frame) == len(X) and "applicant_id" in frame.columns
    assert frame["prediction"].tolist() == model.predict(X).tolist()


def test_register_a_rules_file_and_a_python_object(tmp_path: Path) -> None:
    d = str(tmp_path / "data")
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "inputs: {score: number}\noutputs: {decision: string}\n"
        "rules:\n  - id: high\n    when: score > 0.5\n    then: {decision: decline}\n"
        "default: {decision: approve}\n"
    )
    assert steward("models", "register", "policy", str(rules), "--data-dir", d).exit_code == 0
    code = tmp_path / "algo.py"
    code.write_text(
        "class Double:\n    input_schema = {'x': 'number'}\n    def predict(self, df):\n        return df['x'] * 2\n"
    )
    result = steward("models", "register", "double", f"{code}:Double", "--data-dir", d)
    assert result.exit_code == 0, result.output
    kinds = {m["name"]: m["kind"] for m in json.loads(steward("models", "list", "--json", "--data-dir", d).output)}
    assert kinds == {"double": "python", "policy": "rules"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "ghost"], "no model named 'ghost'"),
        (["models", "show", "bad name"], "invalid model reference"),
        (["models", "register", "m", "missing.skops"], "no such file"),
        (["models", "alias", "m", "production"], "give a VERSION"),
        (["models", "list", "--tag", "oops"], "must look like key=value"),
        (["predict", "m", "--input", "x.csv", "--output", "y.txt"], "no model named 'm'"),
    ],
)
def test_errors_are_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_console_script_exits_1_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelsteward.cli",
            "models",
            "alias",
            "m",
            "prod",
            "1",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no model named 'm'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unreachable_server_is_a_clear_error() -> None:
    result = runner.invoke(app, ["models", "list", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 1 and "cannot reach the Model Steward server" in result.output


def test_up_refuses_public_binding_without_a_token(tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "STEWARD_API_TOKEN" in result.output


def test_unreachable_database_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STEWARD_DATABASE_URL", "postgresql+psycopg://steward:hunter2@127.0.0.1:1/steward")
    result = runner.invoke(app, ["models", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "metadata database" in result.output and "unreachable" in result.output
    assert "hunter2" not in result.output  # the password never reaches the terminal


def test_corrupt_and_wrong_kind_files_are_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    result = runner.invoke(
        app, ["models", "register", "m", str(corrupt), "--kind", "onnx", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    rules = tmp_path / "policy.yaml"
    rules.write_text("rules:\n  - id: a\n    when: x > 1\n    then: {d: yes}\n")
    result = runner.invoke(app, ["models", "register", "m", str(rules), "--kind", "onnx", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    listing = runner.invoke(app, ["models", "list", "--json", "--data-dir", str(tmp_path)])
    assert json.loads(listing.output) == []  # nothing half-registered
