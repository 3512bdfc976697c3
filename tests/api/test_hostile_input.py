"""Hostile input over HTTP: path traversal, oversized and endless bodies, SQL injection through filters,
and tokens that must never reach a log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modelsteward.api.app import create_app, create_server
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.domain.refs import ModelRef, check_name
from modelsteward.errors import InvalidArgument
from modelsteward.local_steward import LocalSteward
from modelsteward.settings import Settings

TRAVERSALS = ["..", "../evil", "../../etc/passwd", "/etc/passwd", "a/../../evil", "..\\evil", "C:\\evil", "evil\x00",
              "%2e%2e", ".hidden", "-rf", "a" * 129]  # fmt: skip
INJECTIONS = ["' OR '1'='1", "'; DROP TABLE registered_models; --", '" OR ""="', "alpha' --", "%' OR 1=1 --",
              "1; SELECT * FROM api_tokens", "') UNION SELECT secret_hash FROM api_tokens --", "\\", "_"]  # fmt: skip


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("name", TRAVERSALS)
def test_names_that_would_be_paths_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        check_name(name)
    with pytest.raises(InvalidArgument):
        ModelRef.parse(f"{name}/1")


def test_path_traversal_never_leaves_the_data_directory(tmp_path: Path, numeric_model: Any) -> None:
    model, X = numeric_model
    data = tmp_path / "data"
    app = create_app(Settings(data_dir=data, scheduler=False, tune_gc=False))
    manifest, artifact = to_manifest(prepare_registration("risk", model, input_example=X.head(), capture_git=False))
    rows = X.head(1).to_dict(orient="records")
    with TestClient(app) as client:
        ok = client.post("/api/v1/models/risk/versions", data={"manifest": json.dumps(manifest)},
                         files={"artifact": ("../../../evil.bin", artifact, "application/octet-stream")})  # fmt: skip
        assert ok.status_code == 201, ok.text  # the upload's file name is never used: artifacts go by sha256
        assert client.put("/api/v1/deployments/risk", json={"champion": "risk/1"}).status_code == 200
        before = _files_under(tmp_path)
        for name in TRAVERSALS:
            quoted = quote(name, safe="")
            drift = {"checks": [{"drift": {}}]}
            feedback = {"feedback": [{"prediction_id": "p", "actual": 1}]}
            channel = {"name": name, "type": "webhook", "url": "http://127.0.0.1:9/"}
            kpis = {"file": (f"{name}.csv", b"kpi,scope,ts,value\n", "text/csv")}
            attempts = [
                client.post(f"/api/v1/models/{quoted}/versions", data={"manifest": json.dumps(manifest)},
                            files={"artifact": ("a", artifact, "application/octet-stream")}),
                client.put(f"/api/v1/deployments/{quoted}", json={"champion": "risk/1"}),
                client.put(f"/api/v1/monitors/{quoted}", json={"target": {"deployment": "risk"}, **drift}),
                client.put("/api/v1/monitors/m", json={"target": {"deployment": name}, **drift}),
                client.post(f"/api/v1/deployments/{quoted}/predict", json={"instances": rows}),
                client.post(f"/api/v1/deployments/{quoted}/feedback", json=feedback),
                client.post("/api/v1/kpis/upload", files=kpis),
                client.put(f"/api/v1/channels/{quoted}", json=channel),
            ]  # fmt: skip
            for response in attempts:
                assert response.status_code in (404, 405, 409, 422), (name, response.request.url, response.text)
        hostile_dataset = {**manifest, "datasets": [{"role": "training", "name": "../../../../tmp/evil",
                                                      "sha256": "0" * 64, "rows": 1, "columns": []}]}  # fmt: skip
        client.post("/api/v1/models/risk/versions", data={"manifest": json.dumps(hostile_dataset)},
                    files={"artifact": ("a", artifact, "application/octet-stream")})  # fmt: skip
        for _ in range(3):
            client.post("/api/v1/deployments/risk/predict", json={"instances": rows})
        app.state.steward.flush_logs()
    created = _files_under(tmp_path) - before
    assert all(path.is_relative_to(data) for path in created), created
    everything = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in everything if "evil" in n or n == "passwd"], everything
    partitions = {p.name for p in (data / "inference").iterdir()}
    assert partitions == {"deployment=risk"}
    app.state.steward.close()


def test_a_bundle_names_its_files_itself_whatever_the_manifest_says(tmp_path: Path, numeric_model: Any) -> None:
    from modelsteward.serving.bundle_files import artifact_extension
    from modelsteward.serving.packaging import write_bundle

    for fmt in ("../../evil", "/etc/passwd", "..", "a/b\\c", ""):
        extension = artifact_extension(fmt)
        assert "/" not in extension and "\\" not in extension and ".." not in extension, fmt
    model, X = numeric_model
    st = LocalSteward(tmp_path / "data")
    version = st.register_model("risk", model, input_example=X.head(), capture_git=False)
    hostile = version.model_copy(update={"artifact": version.artifact.model_copy(update={"format": "../../../evil"})})
    out = tmp_path / "bundle"
    write_bundle(hostile, st.artifact_bytes("risk/1")[1], out)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not list(tmp_path.glob("evil*")) and not list((tmp_path / "data").rglob("*evil*"))
    st.close()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, max_request_bytes=2_000, max_upload_bytes=5_000, scheduler=False,
                        tune_gc=False)  # fmt: skip
    server = create_server(settings)
    with TestClient(server) as client:
        yield client
    server.state.steward.close()


def _chunks(total: int, size: int = 500) -> Iterator[bytes]:
    yield b'{"champion": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


def test_oversized_bodies_get_413_with_or_without_a_content_length(limited: TestClient) -> None:
    declared = limited.put("/api/v1/deployments/d", content=b"x" * 3_000, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and _error(declared)["details"] == {"limit": 2_000}
    chunked = limited.put(
        "/api/v1/deployments/d", content=_chunks(10_000), headers={"content-type": "application/json"}
    )
    assert "content-length" not in chunked.request.headers  # sent chunked: only counting can catch it
    assert chunked.status_code == 413 and _error(chunked)["code"] == "payload_too_large"
    for path in ("/api/v1/deployments/d/predict", "/v2/models/d/infer", "/api/v1/deployments/d/feedback"):
        response = limited.post(path, content=_chunks(10_000), headers={"content-type": "application/json"})
        assert response.status_code == 413, (path, response.text)

    def multipart(size: int) -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="artifact"; filename="a"\r\n\r\n'
        for _ in range(size // 1000):
            yield b"x" * 1000
        yield b"\r\n--b--\r\n"

    upload = limited.post("/api/v1/models/m/versions", content=multipart(20_000),
                          headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert upload.status_code == 413 and _error(upload)["code"] == "payload_too_large"
    small = limited.put("/api/v1/deployments/d", content=_chunks(1_000), headers={"content-type": "application/json"})
    assert small.status_code != 413  # under the limit, chunked bodies pass
    assert limited.get("/api/v1/models").status_code == 200


def test_sql_injection_through_filters_finds_nothing_and_drops_nothing(tmp_path: Path, numeric_model: Any) -> None:
    model, X = numeric_model
    st = LocalSteward(tmp_path)
    st.register_model("alpha", model, input_example=X.head(), owner="ann", business_unit="credit",
                      tags={"team": "risk"}, description="scores 100% of applications", capture_git=False)  # fmt: skip
    st.register_model("beta", model, input_example=X.head(), owner="bob", capture_git=False)
    app = create_app(Settings(data_dir=tmp_path, scheduler=False, tune_gc=False), steward=st)
    with TestClient(app) as client:

        def total(**params: Any) -> int:
            response = client.get("/api/v1/models", params=params)
            assert response.status_code == 200, (params, response.text)
            return response.json()["total"]

        for bad in INJECTIONS:
            for field in ("kind", "owner", "business_unit", "risk_tier", "q"):
                assert total(**{field: bad}) == 0, (field, bad)
            assert total(tag=f"team={bad}") == 0 and total(tag=f"{bad}=risk") == 0, bad
            assert st.search_models(owner=bad, query=bad).total == 0
            for path, params in [
                ("/api/v1/events", {"model": bad}),
                ("/api/v1/lifecycle/runs", {"model": bad, "status": bad}),
                ("/api/v1/jobs", {"model": bad}),
                ("/api/v1/roles", {"principal": bad}),
                ("/api/v1/tokens", {"principal": bad}),
            ]:
                response = client.get(path, params=params)
                assert response.status_code in (200, 422) and response.json() in ([], response.json()), (path, bad)
                assert response.status_code == 422 or response.json() == [], (path, bad, response.text)
            for path in (f"/api/v1/kpis/k/{bad}", f"/api/v1/models/{bad}", "/api/v1/resolve"):
                response = client.get(path.replace("/", "/", 3), params={"ref": bad} if "resolve" in path else None)
                assert response.status_code < 500, (path, bad, response.text)
        assert total(q="100%") == 1 and total(q="%") == 1  # wildcards are searched for, not obeyed
        assert total(q="ALP") == 1 and total(owner="ann") == 1 and total(tag="team=risk") == 1 and total() == 2
    with st.db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        assert {"registered_models", "model_versions", "events", "api_tokens"} <= tables
        assert conn.execute(sa.text("SELECT count(*) FROM registered_models")).scalar() == 2
    assert st.verify_audit().ok
    st.close()


def test_a_token_never_reaches_a_log(tmp_path: Path, numeric_model: Any, caplog: pytest.LogCaptureFixture,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    model, X = numeric_model
    admin_secret = "bootstrap-secret-never-logged-1234"
    settings = Settings(data_dir=tmp_path, auth="required", api_token=SecretStr(admin_secret), scheduler=False,
                        tune_gc=False, database_url=f"sqlite:///{tmp_path / 'steward.db'}")  # fmt: skip
    server = create_server(settings)
    st = server.state.steward
    st.register_model("risk", model, input_example=X.head(), capture_git=False)
    st.deploy("risk", "risk/1")
    st.create_user("app", kind="service")
    token = st.create_token("app").token
    st.grant_role("app", "operator")
    secret = token.split("_", 2)[2]
    rows = X.head(1).to_dict(orient="records")
    caplog.set_level(logging.DEBUG)
    names = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore", "fastapi", "starlette",
                 "modelsteward", "sqlalchemy.engine")  # fmt: skip
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with TestClient(server, raise_server_exceptions=False) as client:
            for auth in (token, admin_secret, token[:-3] + "zzz", secret, f"stw_999_{secret}"):
                headers = {"authorization": f"Bearer {auth}"}
                client.get("/api/v1/models", headers=headers)
                client.post("/api/v1/deployments/risk/predict", json={"instances": rows}, headers=headers)
                client.post("/v2/models/risk/infer", json={"inputs": "bad"}, headers=headers)
                client.put("/api/v1/deployments/risk", json={"champion": "nope/9"}, headers=headers)
                client.get("/api/v1/audit/export", headers=headers)  # the app's token: 403, audited
                client.post("/api/v1/users", json={"name": "x"}, headers=headers)
                client.get("/api/v1/models/risk", headers={"authorization": auth})  # no scheme
            revoked = st.list_tokens("app")[0].id
            st.revoke_token(revoked)
            client.get("/api/v1/models", headers={"authorization": f"Bearer {token}"})
        events = "".join(st.audit_lines())
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    captured = capsys.readouterr()
    logged = caplog.text + " ".join(repr(r.args) for r in caplog.records) + captured.out + captured.err
    assert len(caplog.records) > 10  # the test did capture the logs
    for leaked in (secret, admin_secret, secret[:16]):
        assert leaked not in logged
        assert leaked not in events  # nor in the audit trail
    assert admin_secret not in repr(settings) and admin_secret not in str(settings)
    assert admin_secret not in repr(st) and "SecretStr('**********')" in repr(settings)
    with_password = Settings(database_url="postgresql+psycopg://steward:pg-pass-42@db/steward")
    assert "pg-pass-42" not in repr(with_password) and "pg-pass-42" not in str(with_password)
    st.close()


def test_a_suite_on_a_checked_server_reads_files_under_its_data_directory_only(
    tmp_path: Path, numeric_model: Any
) -> None:
    model, X = numeric_model
    admin = "admin-token-for-the-suite-paths"
    app = create_app(Settings(data_dir=tmp_path / "data", auth="required", api_token=SecretStr(admin),
                              scheduler=False, tune_gc=False))  # fmt: skip
    steward: LocalSteward = app.state.steward
    steward.register_model("risk", model, input_example=X.head(), capture_git=False)
    outside = tmp_path / "secret.csv"
    X.assign(y=1).to_csv(outside, index=False)
    inside = tmp_path / "data" / "holdout.csv"
    X.assign(y=1).to_csv(inside, index=False)
    headers = {"authorization": f"Bearer {admin}"}

    def suite(data: str) -> dict[str, Any]:
        return {"data": data, "target": "y", "tests": [{"performance": {"min": {"accuracy": 0.0}}}]}

    with TestClient(app) as client:
        for path in (str(outside), "../secret.csv", f"{tmp_path}/data/../secret.csv"):
            stored = client.put("/api/v1/compliance/suites/s", json={"definition": suite(path)}, headers=headers)
            assert stored.status_code == 403 and _error(stored)["details"]["field"] == "data", (path, stored.text)
            ran = client.post("/api/v1/compliance/runs", json={"ref": "risk/1", "suite": {"name": "s", **suite(path)}},
                              headers=headers)  # fmt: skip
            assert ran.status_code == 403 and "outside the server's data directory" in _error(ran)["message"]
        body = {"ref": "risk/1", "suite": {"name": "s", **suite(str(inside))}}
        ok = client.post("/api/v1/compliance/runs", json=body, headers=headers)
        assert ok.status_code == 201, ok.text
    steward.close()
