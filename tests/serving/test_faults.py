"""Faults while serving: the artifact store goes away under a running gateway, and comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from modelsteward import Steward
from modelsteward.api.app import create_server
from modelsteward.errors import IntegrityError, StoreUnavailable
from modelsteward.settings import Settings


def _rows(X) -> dict:
    return {"dataframe_records": X.head(3).to_dict(orient="records")}


def _predict(client: TestClient, deployment: str, X):
    return client.post(f"/api/v1/deployments/{deployment}/predict", json=_rows(X))


def _eventually(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        response = check()
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_an_unreadable_artifact_store_keeps_loaded_models_serving_and_fails_fresh_loads_clearly(
    tmp_path: Path, numeric_model
) -> None:
    model, X = numeric_model
    data_dir = tmp_path / "data"
    app = create_server(Settings(data_dir=data_dir, route_refresh_interval=0.05, log_flush_interval=0.1))
    st = app.state.steward
    st.register_model("risk", model, input_example=X.head())
    # A second version with other bytes: nothing in the gateway has loaded it yet.
    other = LogisticRegression(C=0.01, max_iter=500).fit(X, model.predict(X))
    st.register_model("risk", other, input_example=X.head())
    st.deploy("risk", "risk/1")

    with TestClient(app) as client:
        served = _predict(client, "risk", X)
        assert served.status_code == 200, served.text
        assert served.json()["model_version"] == "risk/1"

        artifacts = data_dir / "artifacts"
        hidden = data_dir / "artifacts.away"
        artifacts.rename(hidden)
        try:
            # The loaded deployment keeps answering, also after a catalog change rebuilds the routes.
            client.put("/api/v1/deployments/risk-next", json={"champion": "risk/2"}).raise_for_status()
            for _ in range(5):
                again = _predict(client, "risk", X)
                assert again.status_code == 200, again.text
                assert again.json()["predictions"] == served.json()["predictions"]

            # Every fresh load of the unloaded version fails with the version and the artifact named.
            fresh = Steward(data_dir=data_dir)
            try:
                with pytest.raises((IntegrityError, StoreUnavailable), match=r"artifact of risk/2"):
                    fresh.load_model("risk/2")
            finally:
                fresh.close()
            for response in (
                client.post("/api/v1/models/risk/predict?version=2", json=_rows(X)),
                client.get("/api/v1/models/risk/versions/2/artifact"),
                _predict(client, "risk-next", X),
            ):
                assert 400 <= response.status_code < 600 and response.status_code != 500, response.text
                error = response.json()["error"]
                assert error["code"] in ("integrity_error", "unavailable"), error
                assert "artifact of risk/2" in error["message"], error
        finally:
            hidden.rename(artifacts)

        # The store is back: fresh loads work, and the deployment that could not be built now serves.
        fresh = Steward(data_dir=data_dir)
        try:
            assert fresh.load_model("risk/2").ref == "risk/2"
        finally:
            fresh.close()
        recovered = _eventually(lambda: _predict(client, "risk-next", X))
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["model_version"] == "risk/2"
