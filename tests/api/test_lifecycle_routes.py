"""Life-cycle routes: YAML and JSON definitions, errors with lines, refusals as 403, the diagram."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from modelsteward.api.app import create_app
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.settings import Settings

DEFINITION = """\
name: simple
stages: [{name: draft}, {name: live}]
transitions:
  - name: publish
    from: draft
    to: live
    approvals: [{role: approver}]
    actions: [{set_alias: {alias: production}}]
models: [risk]
"""


@pytest.fixture
def client(tmp_path: Path, numeric_model):
    app = create_app(Settings(data_dir=tmp_path))
    model, X = numeric_model
    manifest, data = to_manifest(prepare_registration("risk", model, input_example=X.head(), metrics={"auc": 0.8}))
    with TestClient(app) as c:
        created = c.post(
            "/api/v1/models/risk/versions",
            files={"artifact": ("artifact", data, "application/octet-stream")},
            data={"manifest": json.dumps(manifest)},
            headers={"x-steward-actor": "dana"},
        )
        assert created.status_code == 201, created.text
        yield c
    app.state.steward.close()


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_a_version_is_published_through_the_api(client: TestClient) -> None:
    applied = client.post("/api/v1/lifecycles", json={"yaml": DEFINITION})
    assert applied.status_code == 200, applied.text
    assert applied.json()["models"] == ["risk"] and applied.json()["definition"]["transitions"][0]["from"] == ["draft"]
    run = client.post("/api/v1/lifecycle/advance", json={"ref": "risk/1", "to": "live"}).json()
    assert run["status"] == "waiting_approval"
    inbox = client.get("/api/v1/lifecycle/runs", params={"status": "waiting_approval"}).json()
    assert [r["id"] for r in inbox] == [run["id"]]

    as_author = client.post("/api/v1/lifecycle/approve", json={"ref": "risk/1", "role": "approver"},
                            headers={"x-steward-actor": "dana"})  # fmt: skip
    assert as_author.status_code == 403 and _error(as_author)["code"] == "forbidden"
    assert "separation of duties" in _error(as_author)["message"]
    grant = client.post("/api/v1/roles", json={"principal": "cc", "role": "approver"})
    assert grant.status_code == 200 and grant.json()["scope"] == "global"
    done = client.post("/api/v1/lifecycle/approve", json={"ref": "risk/1", "role": "approver", "comment": "ok"},
                       headers={"x-steward-actor": "cc"})  # fmt: skip
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert client.get("/api/v1/resolve", params={"ref": "risk@production"}).json()["version"] == 1
    status = client.get("/api/v1/models/risk/lifecycle").json()
    assert [(p["version"], p["stage"]) for p in status["positions"]] == [(1, "live")]
    diagram = client.get("/api/v1/lifecycles/simple/diagram", params={"model": "risk"})
    assert diagram.headers["content-type"].startswith("text/plain")
    assert diagram.text.startswith("stateDiagram-v2") and 'state "live (v1)" as s_live' in diagram.text


def test_bad_definitions_and_requests_get_clear_errors(client: TestClient) -> None:
    bad = client.post("/api/v1/lifecycles", json={"yaml": DEFINITION.replace("to: live", "to: gone")})
    assert bad.status_code == 422
    error = _error(bad)
    assert error["code"] == "invalid_definition" and error["details"]["line"] == 6
    assert "a transition to nowhere" in error["message"]
    neither = client.post("/api/v1/lifecycles", json={})
    assert neither.status_code == 422 and _error(neither)["details"]["field"] == "definition"
    unknown_role = client.post("/api/v1/roles", json={"principal": "x", "role": "overlord"})
    assert unknown_role.status_code == 422 and "role" in json.dumps(_error(unknown_role)["details"])
    assert client.post("/api/v1/lifecycles", json={"yaml": DEFINITION}).status_code == 200
    no_stage = client.post("/api/v1/lifecycle/advance", json={"ref": "risk/1", "to": "heaven"})
    assert no_stage.status_code == 422 and "has no stage 'heaven'" in _error(no_stage)["message"]
    nothing_waits = client.post("/api/v1/lifecycle/approve", json={"ref": "risk/1", "role": "approver"})
    assert nothing_waits.status_code == 409 and _error(nothing_waits)["code"] == "conflict"
    missing = client.get("/api/v1/lifecycle/runs/999")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"
