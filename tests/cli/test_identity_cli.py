"""`steward users` and `steward tokens` on an embedded data directory, and `steward up --auth required`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelsteward.cli.main import app

runner = CliRunner()


def steward(data_dir: Path, *args: str) -> object:
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)])


def test_users_and_tokens(tmp_path: Path) -> None:
    made = steward(tmp_path, "users", "create", "ci-bot", "--service", "--display-name", "the CI pipeline")
    assert made.exit_code == 0 and "service ci-bot created" in made.output
    token = runner.invoke(app, ["tokens", "create", "ci-bot", "--name", "ci", "--expires", "30d",
                                "--data-dir", str(tmp_path)])  # fmt: skip
    assert token.exit_code == 0
    secret = token.stdout.strip().splitlines()[-1]
    assert secret.startswith("stw_")
    listed = json.loads(steward(tmp_path, "tokens", "list", "--json").output)
    assert [(t["principal"], t["name"]) for t in listed] == [("ci-bot", "ci")] and "token" not in listed[0]
    assert secret not in steward(tmp_path, "tokens", "list").output
    assert steward(tmp_path, "tokens", "revoke", str(listed[0]["id"])).exit_code == 0
    assert json.loads(steward(tmp_path, "tokens", "list", "--json").output)[0]["revoked_at"] is not None
    twice = steward(tmp_path, "users", "create", "ci-bot")
    assert twice.exit_code == 1 and "already exists" in twice.output
    nobody = steward(tmp_path, "tokens", "create", "ghost")
    assert nobody.exit_code == 1 and "no user or service account named 'ghost'" in nobody.output


def test_a_server_that_demands_tokens_refuses_to_start_without_any(tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--auth", "required", "--port", "8799", "--data-dir", str(tmp_path)],
                           env={"STEWARD_API_TOKEN": None})  # fmt: skip
    assert result.exit_code == 1 and "there is none yet" in result.output
