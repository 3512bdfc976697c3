"""Tokens and authentication: who may call a server that demands a token, and what a bad token gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modelsteward.api.app import create_app
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.settings import Settings

ADMIN = "bootstrap-admin-token-for-tests"


@pytest.fixture
def server(tmp_path: Path, numeric_model: Any):
    """A server that demands a token on every request, with the bootstrap admin token set."""
    app = create_app(Settings(data_dir=tmp_path, auth="required", api_token=SecretStr(ADMIN)))
    model, X = numeric_model
    with TestClient(app) as client:
        admin = {"authorization": f"Bearer {ADMIN}"}
        manifest, data = to_manifest(prepare_registration("risk", model, input_example=X.head()))
        created = client.post("/api/v1/models/risk/versions", headers=admin, data={"manifest": json.dumps(manifest)},
                              files={"artifact": ("artifact", data, "application/octet-stream")})  # fmt: skip
        assert created.status_code == 201, created.text
        assert client.put("/api/v1/deployments/risk", json={"champion": "risk/1"}, headers=admin).status_code == 200
        yield app, client, X
    app.state.steward.close()


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_tokens_are_shown_once_stored_hashed_and_name_their_user(server: Any) -> None:
    app, client, X = server
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert client.post("/api/v1/users", json={"name": "vera"}, headers=admin).status_code == 201
    made = client.post("/api/v1/tokens", json={"principal": "vera", "name": "laptop"}, headers=admin)
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("stw_") and made.json()["expires_at"] is not None
    listed = client.get("/api/v1/tokens", headers=admin).json()
    assert "token" not in listed[0] and listed[0]["principal"] == "vera"
    with app.state.steward.db.read() as conn:
        stored = conn.execute(sa.text("SELECT secret_hash FROM api_tokens")).scalar()
    assert token.split("_", 2)[2] not in stored and len(stored) == 64  # only a SHA-256 of the secret

    as_vera = {"authorization": f"Bearer {token}"}
    refused = client.get("/api/v1/models", headers=as_vera)  # a token alone grants nothing: roles do
    assert refused.status_code == 403 and _error(refused)["code"] == "forbidden"
    grant = {"principal": "vera", "role": "data_scientist"}
    assert client.post("/api/v1/roles", json=grant, headers=admin).status_code == 200
    assert client.get("/api/v1/models", headers=as_vera).status_code == 200
    rows = X.head(2).to_dict(orient="records")
    assert client.post("/api/v1/deployments/risk/predict", json={"instances": rows}, headers=as_vera).status_code == 200
    client.put("/api/v1/models/risk/aliases/staging", json={"version": 1}, headers=as_vera)
    events = client.get("/api/v1/events", headers=admin).json()
    assert next(e for e in events if e["action"] == "alias.set")["actor"] == "vera"  # the token names who did it
    used = client.get("/api/v1/tokens", params={"principal": "vera"}, headers=admin).json()[0]
    assert used["last_used_at"] is not None


def test_missing_forged_expired_and_revoked_tokens_get_401(server: Any) -> None:
    app, client, X = server
    admin = {"authorization": f"Bearer {ADMIN}"}
    client.post("/api/v1/users", json={"name": "svc", "kind": "service"}, headers=admin)
    token = client.post("/api/v1/tokens", json={"principal": "svc"}, headers=admin).json()
    rows = X.head(1).to_dict(orient="records")

    def status(headers: dict[str, str], path: str = "/api/v1/models") -> tuple[int, str]:
        response = client.get(path, headers=headers)
        return response.status_code, _error(response)["message"] if response.status_code >= 400 else ""

    assert status({})[0] == 401 and "requires a token" in status({})[1]
    missing = client.post("/api/v1/deployments/risk/predict", json={"instances": rows})
    assert missing.status_code == 401 and _error(missing)["code"] == "unauthenticated"
    assert client.get("/v2/health/live").status_code == 200  # probes stay open
    forged = token["token"][:-4] + "AAAA"
    assert status({"authorization": f"Bearer {forged}"}) == (401, "the token is not valid")
    assert status({"authorization": "Bearer not-even-a-token"}) == (401, "the token is not valid")
    assert forged not in json.dumps(client.get("/api/v1/models", headers={"authorization": f"Bearer {forged}"}).json())

    assert client.delete(f"/api/v1/tokens/{token['id']}", headers=admin).status_code == 204
    assert status({"authorization": f"Bearer {token['token']}"}) == (401, "the token was revoked")

    later = client.post("/api/v1/tokens", json={"principal": "svc", "expires_in": "1h"}, headers=admin).json()
    app.state.steward.identities.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    code, message = status({"authorization": f"Bearer {later['token']}"})
    assert code == 401 and message.startswith("the token expired on")


def test_only_admins_manage_users_tokens_and_roles(server: Any) -> None:
    _app, client, _X = server
    admin = {"authorization": f"Bearer {ADMIN}"}
    client.post("/api/v1/users", json={"name": "dana"}, headers=admin)
    made = client.post("/api/v1/tokens", json={"principal": "dana"}, headers=admin).json()
    dana = {"authorization": f"Bearer {made['token']}"}
    for method, path, body in [
        ("post", "/api/v1/users", {"name": "eve"}),
        ("post", "/api/v1/tokens", {"principal": "dana"}),
        ("post", "/api/v1/roles", {"principal": "dana", "role": "approver"}),
    ]:
        refused = getattr(client, method)(path, json=body, headers=dana)
        assert refused.status_code == 403 and _error(refused)["code"] == "forbidden", path
    assert client.post("/api/v1/roles", json={"principal": "dana", "role": "admin"}, headers=admin).status_code == 200
    assert client.post("/api/v1/users", json={"name": "eve"}, headers=dana).status_code == 201  # now an admin
    assert client.post("/api/v1/users", json={"name": "eve"}, headers=admin).status_code == 409


def test_auth_is_required_by_default_off_loopback(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).auth_required is False
    assert Settings(data_dir=tmp_path, host="0.0.0.0").auth_required is True
    assert Settings(data_dir=tmp_path, host="10.1.2.3", auth="off").auth_required is False
    assert Settings(data_dir=tmp_path, auth="required").auth_required is True


def test_the_inference_fast_path_demands_the_token_too(tmp_path: Path, numeric_model: Any) -> None:
    from modelsteward.api.app import create_server

    model, X = numeric_model
    settings = Settings(data_dir=tmp_path, auth="required", api_token=SecretStr(ADMIN), tune_gc=False)
    server = create_server(settings)
    steward = server.state.steward
    steward.register_model("risk", model, input_example=X.head())
    steward.deploy("risk", "risk/1")
    steward.create_user("app", kind="service")
    token = steward.create_token("app").token
    steward.create_user("nobody", kind="service")
    roleless = steward.create_token("nobody").token
    steward.grant_role("app", "operator", model="risk")
    body = {"instances": X.head(1).to_dict(orient="records")}
    with TestClient(server) as client:
        refused = client.post("/api/v1/deployments/risk/predict", json=body)
        assert refused.status_code == 401 and _error(refused)["code"] == "unauthenticated"
        forged = client.post(
            "/v2/models/risk/infer", json={"inputs": []}, headers={"authorization": "Bearer stw_1_x" * 3}
        )
        assert forged.status_code == 401
        served = client.post(
            "/api/v1/deployments/risk/predict", json=body, headers={"authorization": f"Bearer {token}"}
        )
        assert served.status_code == 200 and served.headers["x-steward-model-version"] == "risk/1"
        denied = client.post(
            "/v2/models/risk/infer", json={"inputs": []}, headers={"authorization": f"Bearer {roleless}"}
        )
        assert denied.status_code == 403 and _error(denied)["code"] == "forbidden"
        assert "nobody lacks inference.predict on model:risk" in _error(denied)["message"]
    assert steward.list_events(limit=1)[0].action == "access.denied"
    steward.close()


def test_the_probes_need_no_token_and_metrics_any_valid_one(server: Any) -> None:
    app, client, X = server
    for probe in ("/api/v1/health", "/v2/health/live", "/v2/health/ready"):
        assert client.get(probe).status_code == 200, probe  # a kubelet has no token to send
    assert client.get("/metrics").status_code == 401
    client.post("/api/v1/users", json={"name": "prometheus", "kind": "service"},
                headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    token = client.post("/api/v1/tokens", json={"principal": "prometheus"},
                        headers={"authorization": f"Bearer {ADMIN}"}).json()["token"]  # fmt: skip
    scraped = client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert scraped.status_code == 200 and "steward_" in scraped.text  # any valid token, no role needed
