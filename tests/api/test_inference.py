"""The inference endpoints over HTTP: v2 (JSON and binary), plain JSON, feedback, metadata, /metrics."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from modelsteward.api.app import create_server
from modelsteward.settings import Settings


@pytest.fixture
def client(tmp_path: Path, numeric_model):
    model, X = numeric_model
    app = create_server(Settings(data_dir=tmp_path, route_refresh_interval=0.05, log_flush_interval=0.1))
    st = app.state.steward
    v = st.register_model("risk", model, input_example=X.head())
    st.set_alias("risk", "production", v.version)
    st.deploy("risk", "risk@production")
    with TestClient(app) as c:
        c.model, c.X, c.st = model, X, st
        yield c


def _error(response) -> dict:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def _v2_columns(X: pd.DataFrame) -> dict:
    types = {"income": "FP64", "debt_to_income": "FP64", "age": "INT64"}
    return {
        "id": "req-7",
        "inputs": [
            {"name": c, "shape": [len(X)], "datatype": types[c], "data": X[c].tolist()}
            for c in ["income", "debt_to_income", "age"]
        ],
    }


def test_v2_per_column_tensors(client: TestClient) -> None:
    rows = client.X.head(3)
    response = client.post("/v2/models/risk/infer", json=_v2_columns(rows))
    assert response.status_code == 200, response.text
    assert response.headers["x-steward-model-version"] == "risk/1"
    body = response.json()
    assert body["model_name"] == "risk" and body["id"] == "req-7"
    assert body["parameters"]["prediction_ids"] == ["req-7-0", "req-7-1", "req-7-2"]
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["prediction"]["data"] == client.model.predict(rows).tolist()
    np.testing.assert_allclose(outputs["proba_1"]["data"], client.model.predict_proba(rows)[:, 1])


def test_v2_one_matrix_in_signature_order(client: TestClient) -> None:
    rows = client.X.head(4)
    request = {
        "inputs": [{"name": "input-0", "shape": [4, 3], "datatype": "FP32", "data": rows.to_numpy().ravel().tolist()}]
    }
    outputs = {o["name"]: o for o in client.post("/v2/models/risk/infer", json=request).json()["outputs"]}
    assert outputs["prediction"]["data"] == client.model.predict(rows.astype("float32").astype(float)).tolist()


def test_v2_binary_extension(client: TestClient) -> None:
    rows = client.X.head(2)
    header = {
        "inputs": [
            {"name": "income", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "debt_to_income", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "age", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
        ],
        "parameters": {"binary_data_output": True},
    }
    head = orjson.dumps(header)
    raw = (
        rows["income"].to_numpy("<f8").tobytes()
        + rows["debt_to_income"].to_numpy("<f8").tobytes()
        + rows["age"].to_numpy("<i8").tobytes()
    )
    response = client.post(
        "/v2/models/risk/infer",
        content=head + raw,
        headers={"inference-header-content-length": str(len(head)), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    meta = orjson.loads(response.content[:length])
    offset, values = length, {}
    for output in meta["outputs"]:
        size = output["parameters"]["binary_data_size"]
        dtype = {"INT64": "<i8", "FP64": "<f8"}[output["datatype"]]
        values[output["name"]] = np.frombuffer(response.content[offset : offset + size], dtype=dtype)
        offset += size
    assert values["prediction"].tolist() == client.model.predict(rows).tolist()
    assert struct.calcsize("<q") == 8


def test_json_predict_names_version_and_ids(client: TestClient) -> None:
    rows = client.X.head(2)
    response = client.post(
        "/api/v1/deployments/risk/predict",
        json={"id": "j1", "instances": rows.assign(applicant_id=[10, 11]).to_dict(orient="records")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "risk/1" and response.headers["x-steward-model-version"] == "risk/1"
    assert body["prediction_ids"] == ["j1-0", "j1-1"]
    assert [p["prediction"] for p in body["predictions"]] == client.model.predict(rows).tolist()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v2/models/risk/infer",
            {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
            "debt_to_income",
        ),
        (
            "/v2/models/risk/infer",
            {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]},
            None,
        ),
        ("/v2/models/risk/infer", "wrong-shape", "inputs[2].shape"),
        ("/v2/models/risk/infer", "wrong-datatype", "inputs[2].datatype"),
        (
            "/api/v1/deployments/risk/predict",
            {"instances": [{"income": "rich", "debt_to_income": 0.1, "age": 3}]},
            None,
        ),
        ("/api/v1/deployments/risk/predict", {"rows": []}, "body"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, path: str, body, field: str | None) -> None:
    if isinstance(body, str):
        valid = _v2_columns(client.X.head(1))
        age = valid["inputs"][2]
        age.update({"shape": [2]} if body == "wrong-shape" else {"datatype": "COMPLEX"})
        body = valid
    response = client.post(path, json=body)
    assert response.status_code in (400, 422), response.text
    error = _error(response)
    if field is not None:
        assert field in (error["details"].get("field"), error["details"].get("column")), error


def test_malformed_json_and_unknown_deployment(client: TestClient) -> None:
    bad = client.post("/v2/models/risk/infer", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and _error(bad)["details"]["field"] == "body"
    missing = client.post("/api/v1/deployments/ghost/predict", json={"instances": [{"x": 1}]})
    assert missing.status_code == 404 and "ghost" in _error(missing)["message"]


def test_metadata_health_and_metrics(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2/models/risk").json()
    assert meta["name"] == "risk" and [i["name"] for i in meta["inputs"]] == ["income", "debt_to_income", "age"]
    assert client.get("/v2/models/risk/ready").json() == {"name": "risk", "ready": True}
    assert client.get("/v2/models/ghost/ready").status_code == 404
    assert client.get("/v2").json()["name"] == "modelsteward"
    client.post("/v2/models/risk/infer", json=_v2_columns(client.X.head(1)))
    client.post("/v2/models/risk/infer", json={"inputs": []})
    text = client.get("/metrics").text
    assert (
        'steward_predictions_requests_total{arm="champion",deployment="risk",status="ok",version="risk/1"} 1.0' in text
    )
    assert 'steward_request_latency_seconds_count{deployment="risk",protocol="v2",status="200"} 1.0' in text
    assert 'steward_request_latency_seconds_count{deployment="risk",protocol="v2",status="422"} 1.0' in text
    assert "steward_prediction_log_queue_rows" in text


def test_feedback_and_management_routes(client: TestClient) -> None:
    body = client.post(
        "/api/v1/deployments/risk/predict", json={"id": "f", "instances": client.X.head(2).to_dict("records")}
    ).json()
    fb = client.post(
        "/api/v1/deployments/risk/feedback",
        json={"feedback": [{"prediction_id": pid, "actual": 1} for pid in body["prediction_ids"]]},
    )
    assert fb.json() == {"deployment": "risk", "accepted": 2}
    bad = client.post("/api/v1/deployments/risk/feedback", json={"feedback": [{"actual": 1}]})
    assert bad.status_code == 422 and _error(bad)["details"]["field"] == "feedback.0.prediction_id"
    deployed = client.put("/api/v1/deployments/risk", json={"champion": "risk/1", "shadows": []})
    assert deployed.status_code == 200 and deployed.json()["revision"] == 2
    assert client.post("/api/v1/deployments/risk/rollback").json()["spec"]["champion"] == "risk@production"
    assert [h["action"] for h in client.get("/api/v1/deployments/risk/history").json()] == [
        "rollback",
        "deploy",
        "deploy",
    ]
    wrong = client.put("/api/v1/deployments/risk/traffic", json={"challengers": {"risk/1": 1.5}})
    assert wrong.status_code == 422 and _error(wrong)["code"] == "invalid_argument"
