"""The REST API: routes over the facade, the error body, uploads, auth and limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modelsteward.api.app import create_app
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.settings import Settings


@pytest.fixture
def client(tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path))
    with TestClient(app) as c:
        yield c
    app.state.steward.close()


def _upload(client: TestClient, name: str, model, example, **headers) -> object:
    manifest, data = to_manifest(prepare_registration(name, model, input_example=example, metrics={"auc": 0.8}))
    return client.post(
        f"/api/v1/models/{name}/versions",
        files={"artifact": ("artifact", data, "application/octet-stream")},
        data={"manifest": json.dumps(manifest)},
        headers=headers,
    )


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_register_alias_resolve_and_predict(client: TestClient, numeric_model) -> None:
    model, X = numeric_model
    created = _upload(client, "credit-risk", model, X.head())
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert client.put("/api/v1/models/credit-risk/aliases/production", json={"version": 1}).status_code == 200
    resolved = client.get("/api/v1/resolve", params={"ref": "credit-risk@production"}).json()
    assert resolved["version"] == 1 and resolved["aliases"] == ["production"]

    rows = X.head(3).to_dict(orient="records")
    answer = client.post("/api/v1/models/credit-risk/predict", params={"alias": "production"}, json={"instances": rows})
    assert answer.status_code == 200
    assert answer.headers["x-steward-model-version"] == "credit-risk/1"
    body = answer.json()
    assert body["model_version"] == "credit-risk/1"
    assert [p["prediction"] for p in body["predictions"]] == model.predict(X.head(3)).tolist()

    split = {"dataframe_split": {"columns": list(X.columns), "data": X.head(3).values.tolist()}}
    assert client.post("/api/v1/models/credit-risk/predict", json=split).json()["predictions"] == body["predictions"]

    page = client.get("/api/v1/models", params={"q": "credit"}).json()
    assert page["total"] == 1 and page["items"][0]["aliases"] == {"production": 1}
    assert client.get("/api/v1/models/credit-risk/versions").json()["total"] == 1
    artifact = client.get("/api/v1/models/credit-risk/versions/1/artifact")
    assert artifact.headers["x-steward-sha256"] == resolved["artifact"]["sha256"]
    assert client.get("/docs").status_code == 200
    assert "/api/v1/models" in client.get("/openapi.json").json()["paths"]


def test_errors_use_one_body_and_name_the_field(client: TestClient, numeric_model) -> None:
    model, X = numeric_model
    _upload(client, "m", model, X.head())
    missing = client.get("/api/v1/models/ghost")
    assert missing.status_code == 404 and _error(missing)["code"] == "not_found"

    bad_alias = client.put("/api/v1/models/m/aliases/production", json={"version": 9})
    assert bad_alias.status_code == 404 and "no version 9" in _error(bad_alias)["message"]

    bad_type = client.put("/api/v1/models/m/aliases/production", json={"version": "two"})
    assert bad_type.status_code == 422 and _error(bad_type)["details"]["field"] == "version"

    bad_name = client.get("/api/v1/resolve", params={"ref": "no good"})
    assert bad_name.status_code == 422 and _error(bad_name)["code"] == "invalid_argument"

    mismatch = client.post("/api/v1/models/m/predict", json={"instances": [{"income": 1.0}]})
    assert mismatch.status_code == 422
    assert _error(mismatch)["code"] == "schema_mismatch" and _error(mismatch)["details"]["column"] == "debt_to_income"

    no_shape = client.post("/api/v1/models/m/predict", json={"rows": []})
    assert no_shape.status_code == 422 and "instances" in _error(no_shape)["message"]

    not_json = client.post("/api/v1/models/m/predict", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and _error(not_json)["code"] == "invalid_argument"

    assert _error(client.get("/api/v1/no-such-route"))["code"] == "not_found"
    assert client.delete("/api/v1/models/m").status_code == 405


def test_uploads_are_checked(client: TestClient, numeric_model) -> None:
    model, X = numeric_model
    manifest, data = to_manifest(prepare_registration("m", model, input_example=X.head()))
    damaged = client.post(
        "/api/v1/models/m/versions",
        files={"artifact": ("artifact", data[:-10], "application/octet-stream")},
        data={"manifest": json.dumps(manifest)},
    )
    assert damaged.status_code == 422 and _error(damaged)["code"] == "invalid_artifact"

    wrong_kind = dict(manifest, kind="onnx")
    refused = client.post(
        "/api/v1/models/m/versions",
        files={"artifact": ("artifact", data, "application/octet-stream")},
        data={"manifest": json.dumps(wrong_kind)},
    )
    assert refused.status_code == 422 and _error(refused)["code"] == "invalid_artifact"

    bad_manifest = client.post(
        "/api/v1/models/m/versions",
        files={"artifact": ("artifact", data, "application/octet-stream")},
        data={"manifest": json.dumps({**manifest, "metrics": {"auc": "high"}})},
    )
    assert bad_manifest.status_code == 422 and "metrics" in _error(bad_manifest)["details"]["field"]
    assert client.get("/api/v1/models").json()["total"] == 0  # nothing half-registered


def test_token_protects_changes(tmp_path: Path, numeric_model) -> None:
    model, X = numeric_model
    app = create_app(Settings(data_dir=tmp_path, api_token=SecretStr("s3cret")))
    with TestClient(app) as client:
        refused = _upload(client, "m", model, X.head())
        assert refused.status_code == 401 and _error(refused)["code"] == "unauthenticated"
        wrong = _upload(client, "m", model, X.head(), authorization="Bearer nope")
        assert wrong.status_code == 401
        ok = _upload(client, "m", model, X.head(), authorization="Bearer s3cret")
        assert ok.status_code == 201 and ok.json()["created_by"] == "token:admin"
        assert client.get("/api/v1/models/m").status_code == 200  # reading needs no token: a viewer's reads
        refused = client.get("/api/v1/audit/verify")  # but not more than a viewer's
        assert refused.status_code == 403 and "reader lacks audit.read" in _error(refused)["message"]
        assert client.get("/api/v1/audit/verify", headers={"authorization": "Bearer s3cret"}).status_code == 200
    app.state.steward.close()


def test_oversized_bodies_are_refused_before_reading(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, max_request_bytes=1000))
    with TestClient(app) as client:
        response = client.post("/api/v1/models/m/predict", json={"instances": [{"x": "y" * 2000}]})
        assert response.status_code == 413 and _error(response)["code"] == "payload_too_large"
    app.state.steward.close()


def test_health_reports_an_unreachable_database(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    with TestClient(app) as client:
        assert client.get("/api/v1/health").json() == {"status": "ok", "database": "ok"}
        app.state.steward.db.engine.dispose()
        app.state.steward.db.engine = __import__("sqlalchemy").create_engine(
            "postgresql+psycopg://x@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
        )
        down = client.get("/api/v1/health")
        assert down.status_code == 503 and _error(down)["code"] == "unavailable"
