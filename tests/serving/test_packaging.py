"""Model bundles: ``steward package`` writes one, and its serve.py answers like the gateway, without the catalog."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelsteward
from modelsteward import Steward
from modelsteward.cli import commands_package  # noqa: F401 - registers `steward package` (main.py imports it too)
from modelsteward.cli.main import app
from modelsteward.domain.records import ModelVersion
from modelsteward.errors import AlreadyExists, IntegrityError
from modelsteward.serving.bundle_runtime import read_manifest
from modelsteward.serving.packaging import PACKAGE_DIR, write_bundle
from modelsteward.serving.prediction_log import query

runner = CliRunner()

POLICY = textwrap.dedent(
    """\
    kind: rules
    name: policy
    inputs:
      score: number
      months: integer
      region: string
    outputs:
      decision: string
    rules:
      - id: low-score
        when: "score < 0.2"
        then: {decision: accept}
      - id: thin-file
        when: "months < 6"
        then: {decision: refer}
      - id: north
        when: "region == 'north'"
        then: {decision: review}
    default: {decision: reject}
    """
)


@dataclass
class Catalog:
    data_dir: Path
    credit: ModelVersion
    policy: ModelVersion
    credit_rows: pd.DataFrame
    policy_rows: pd.DataFrame


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, credit_data: tuple[pd.DataFrame, pd.Series]) -> Catalog:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, target = credit_data
    pipeline = make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["income", "debt_to_income", "age"]),
            (OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ),
        LogisticRegression(max_iter=500),
    ).fit(frame, target)
    root = tmp_path_factory.mktemp("packaging")
    policy_file = root / "policy.yaml"
    policy_file.write_text(POLICY)
    policy_rows = pd.DataFrame(
        {
            "score": [0.1, 0.5, 0.5, 0.9, 0.35],
            "months": [24, 3, 36, 48, 12],
            "region": ["south", "east", "north", "west", "north"],
        }
    )
    with Steward(data_dir=root / "data") as st:
        credit = st.register_model("credit-risk", pipeline, input_example=frame.head(3), capture_git=False)
        policy = st.register_model("policy", policy_file, input_example=policy_rows.head(2), capture_git=False)
    return Catalog(root / "data", credit, policy, frame.iloc[:25].reset_index(drop=True), policy_rows)


def predict(catalog: Catalog, ref: str, rows: pd.DataFrame) -> pd.DataFrame:
    with Steward(data_dir=catalog.data_dir) as st:
        return st.predict(ref, rows)


def package(*args: str) -> Any:
    return runner.invoke(app, ["package", *args], catch_exceptions=False)


# -- the running bundle ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    bundle: Path
    url: str
    process: subprocess.Popen
    stderr: Path

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


def server_environment(log_dir: Path | None = None) -> dict[str, str]:
    # No PYTHONPATH: the bundle must import its own copy of modelsteward.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("STEWARD_")}
    if log_dir is not None:
        env["STEWARD_LOG_DIR"] = str(log_dir)
        env["STEWARD_LOG_FLUSH_INTERVAL"] = "60"  # nothing is written before shutdown: SIGTERM must flush
    return env


def start(bundle: Path, stderr: Path, *, log_dir: Path | None = None) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=bundle,
        env=server_environment(log_dir),
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w"),
    )
    served = Served(bundle, f"http://127.0.0.1:{port}", process, stderr)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve.py exited with {process.returncode}: {stderr.read_text()}")
        try:
            if httpx.get(f"{served.url}/v2/health/ready", timeout=1).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"serve.py did not become ready: {stderr.read_text()}")


@pytest.fixture(scope="module")
def credit_bundle(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "credit-risk"
    result = package("credit-risk", "--out", str(out), "--data-dir", str(catalog.data_dir))
    assert result.exit_code == 0, result.output
    assert f"packaged {catalog.credit.ref} (sklearn) -> {out}" in result.output
    return out


@pytest.fixture(scope="module")
def credit_server(credit_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(credit_bundle, tmp_path_factory.mktemp("credit-server") / "stderr.txt")
    yield served
    if served.process.poll() is None:
        served.stop()


# -- v2 requests and responses -----------------------------------------------------------------------------

DATATYPE = {"integer": "INT64", "number": "FP64", "string": "BYTES", "boolean": "BOOL"}
DTYPE = {"INT64": "<i8", "FP64": "<f8", "BOOL": "?"}


def tensor_bytes(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
    return np.asarray(values, dtype=DTYPE[datatype]).tobytes()


def v2_request(version: ModelVersion, rows: pd.DataFrame, *, binary: bool) -> tuple[bytes, dict[str, str]]:
    inputs, buffers = [], []
    for column in version.signature.inputs:
        datatype = DATATYPE[column.type]
        values = rows[column.name].tolist()
        tensor: dict[str, Any] = {"name": column.name, "shape": [len(rows)], "datatype": datatype}
        if binary:
            buffers.append(tensor_bytes(datatype, values))
            tensor["parameters"] = {"binary_data_size": len(buffers[-1])}
        else:
            tensor["data"] = values
        inputs.append(tensor)
    doc: dict[str, Any] = {"id": "req-1", "inputs": inputs}
    if not binary:
        return json.dumps(doc).encode(), {"content-type": "application/json"}
    doc["parameters"] = {"binary_data_output": True}
    header = json.dumps(doc).encode()
    return header + b"".join(buffers), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(header)),
    }


def v2_outputs(response: httpx.Response) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The response document and each output's values, reading binary data like tritonclient does."""
    body = response.content
    length = int(response.headers.get("inference-header-content-length", len(body)))
    doc = json.loads(body[:length])
    offset, columns = length, {}
    for out in doc["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            columns[out["name"]] = out["data"]
            continue
        raw = body[offset : offset + size]
        offset += size
        if out["datatype"] == "BYTES":
            values, pos = [], 0
            while pos < len(raw):
                (n,) = struct.unpack_from("<I", raw, pos)
                values.append(raw[pos + 4 : pos + 4 + n].decode())
                pos += 4 + n
            columns[out["name"]] = values
        else:
            columns[out["name"]] = np.frombuffer(raw, dtype=DTYPE[out["datatype"]]).tolist()
    return doc, columns


def as_lists(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {str(c): [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in frame[c]] for c in frame}


def plain_json(rows: pd.DataFrame) -> dict[str, Any]:
    split = json.loads(rows.to_json(orient="split", index=False))
    return {"id": "req-2", "dataframe_split": {"columns": split["columns"], "data": split["data"]}}


def plain_outputs(body: dict[str, Any]) -> dict[str, list[Any]]:
    return {c: [p[c] for p in body["predictions"]] for c in body["columns"]}


def check_answers(served: Served, version: ModelVersion, rows: pd.DataFrame, expected: pd.DataFrame) -> None:
    """v2 JSON, v2 binary and plain JSON answers equal ``Steward.predict`` on the same rows."""
    want = as_lists(expected)
    ids = [f"req-1-{i}" for i in range(len(rows))]
    for binary in (False, True):
        body, headers = v2_request(version, rows, binary=binary)
        response = httpx.post(f"{served.url}/v2/models/{version.name}/infer", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-steward-model-version"] == version.ref
        doc, got = v2_outputs(response)
        assert got == want, f"binary={binary}"
        assert doc["model_version"] == version.ref and doc["id"] == "req-1"
        assert doc["parameters"]["prediction_ids"] == ids
        assert ("inference-header-content-length" in response.headers) is binary

    response = httpx.post(f"{served.url}/api/v1/deployments/{version.name}/predict", json=plain_json(rows))
    assert response.status_code == 200, response.text
    assert response.headers["x-steward-model-version"] == version.ref
    body = response.json()
    assert plain_outputs(body) == want
    assert body["model_version"] == version.ref
    assert body["prediction_ids"] == [f"req-2-{i}" for i in range(len(rows))]


# -- the bundle's files ------------------------------------------------------------------------------------


def test_the_bundle_holds_the_artifact_as_registered_and_the_versions_record(
    catalog: Catalog, credit_bundle: Path
) -> None:
    version = catalog.credit
    for path in ("model/artifact.skops", "model/model.json", "requirements.txt", "serve.py", "Dockerfile"):
        assert (credit_bundle / path).is_file(), path
    assert (credit_bundle / "README.md").is_file()
    artifact = (credit_bundle / "model/artifact.skops").read_bytes()
    assert hashlib.sha256(artifact).hexdigest() == version.artifact.sha256 and len(artifact) == version.artifact.size

    manifest = json.loads((credit_bundle / "model/model.json").read_text())
    assert manifest["name"] == "credit-risk" and manifest["version"] == version.version
    assert manifest["ref"] == version.ref and manifest["kind"] == "sklearn"
    assert manifest["artifact"] == {"file": "artifact.skops", **version.artifact.model_dump(mode="json")}
    assert manifest["signature"] == version.signature.model_dump(mode="json")
    assert manifest["requirements"] == version.requirements.model_dump(mode="json")
    assert manifest["created_by"] == version.created_by
    assert pd.Timestamp(manifest["created_at"]) == pd.Timestamp(version.created_at)
    assert manifest["modelsteward_version"] == modelsteward.__version__
    assert read_manifest(credit_bundle)[0] == version.model_copy(update={"aliases": []})


def test_the_bundle_carries_the_modelsteward_source_without_caches(credit_bundle: Path) -> None:
    source = credit_bundle / "modelsteward"
    assert (source / "__init__.py").is_file() and (source / "api" / "bundle_app.py").is_file()
    assert (source / "serving" / "packaging.py").is_file() and (source / "py.typed").is_file()
    assert list(source.rglob("*.yaml")), "package data (YAML definitions) is copied"
    assert not list(source.rglob("__pycache__")) and not list(source.rglob("*.pyc"))
    installed = {p.relative_to(PACKAGE_DIR) for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts}
    assert {p.relative_to(source) for p in source.rglob("*.py")} == installed


def test_requirements_pin_the_captured_packages_and_the_servers_dependencies(
    catalog: Catalog, credit_bundle: Path
) -> None:
    from importlib import metadata

    lines = (credit_bundle / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines) and all("==" in line for line in lines)
    assert list(pins) == sorted(pins, key=str.lower)
    assert "modelsteward" not in pins  # carried as source
    for name, version in catalog.credit.requirements.packages.items():
        if name != "modelsteward":
            assert pins[name] == version
    for name in ("fastapi", "uvicorn", "pandas", "pyarrow", "orjson", "pydantic"):
        assert pins[name] == metadata.version(name)
    assert "scikit-learn" in pins and "skops" in pins
    assert "pytest" not in pins and "onnx" not in pins and "psycopg" not in pins  # extras stay out


def test_the_dockerfile_builds_a_non_root_image_of_the_registered_python(catalog: Catalog, credit_bundle: Path) -> None:
    lines = [
        line.strip()
        for line in (credit_bundle / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    instructions = [line.split()[0] for line in lines]
    major_minor = ".".join(catalog.credit.requirements.python.split(".")[:2])
    assert lines[0] == f"FROM python:{major_minor}-slim"

    def position(prefix: str) -> int:
        found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
        assert found, f"no {prefix!r} in the Dockerfile"
        return found[0]

    order = [
        position("FROM "),
        position("COPY requirements.txt"),
        position("RUN pip install --no-cache-dir -r requirements.txt"),
        position("COPY . "),
        position("USER "),
        position("EXPOSE 8080"),
        position("HEALTHCHECK "),
        position("CMD "),
    ]
    assert order == sorted(order) and instructions[-1] == "CMD"
    assert lines[position("USER ")].split()[1] not in ("root", "0")
    healthcheck = lines[position("HEALTHCHECK ")]
    assert "/v2/health/live" in healthcheck and "python" in healthcheck and "curl" not in healthcheck
    assert json.loads(lines[-1].removeprefix("CMD ")) == ["python", "serve.py", "--host", "0.0.0.0", "--port", "8080"]


def test_the_readme_shows_how_to_build_run_and_call_it(catalog: Catalog, credit_bundle: Path) -> None:
    readme = (credit_bundle / "README.md").read_text()
    assert "docker build -t credit-risk-1 ." in readme and "docker run -p 8080:8080 credit-risk-1" in readme
    assert "pip install -r requirements.txt && python serve.py" in readme
    first = catalog.credit.input_example[0]
    for path in ("/v2/models/credit-risk/infer", "/api/v1/deployments/credit-risk/predict"):
        assert f"curl -s -X POST http://localhost:8080{path}" in readme
    assert json.dumps(first["region"]) in readme and "binary_data_output" in readme


# -- the bundle served -------------------------------------------------------------------------------------


def test_the_bundle_runs_its_own_copy_of_modelsteward(credit_bundle: Path, credit_server: Served) -> None:
    info = httpx.get(f"{credit_server.url}/bundle").json()
    assert Path(info["modelsteward_path"]).is_relative_to(credit_bundle.resolve())
    manifest = json.loads((credit_bundle / "model/model.json").read_text())
    assert httpx.get(f"{credit_server.url}/v2").json()["version"] == manifest["modelsteward_version"]
    assert info["model_version"] == manifest["ref"] and info["sha256"] == manifest["artifact"]["sha256"]


def test_a_served_pipeline_answers_every_protocol_like_the_gateway(catalog: Catalog, credit_server: Served) -> None:
    expected = predict(catalog, catalog.credit.ref, catalog.credit_rows)
    check_answers(credit_server, catalog.credit, catalog.credit_rows, expected)
    # One row: the prediction id is the request id, as at the gateway; no id: one is made up.
    one = httpx.post(
        f"{credit_server.url}/api/v1/deployments/credit-risk/predict",
        json={"instances": catalog.credit_rows.head(1).to_dict("records")},
    ).json()
    assert one["prediction_ids"] == [one["id"]] and len(one["id"]) == 32


def test_metadata_and_health_answer_for_the_model(catalog: Catalog, credit_server: Served) -> None:
    url = credit_server.url
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{url}/v2/models/credit-risk/ready").json() == {"name": "credit-risk", "ready": True}
    meta = httpx.get(f"{url}/v2/models/credit-risk").json()
    assert meta["name"] == "credit-risk" and meta["versions"] == [catalog.credit.ref]
    assert [i["name"] for i in meta["inputs"]] == ["income", "debt_to_income", "age", "region"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]}["region"] == "BYTES"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_bad_input_is_a_422_with_the_error_body(catalog: Catalog, credit_server: Served) -> None:
    url = f"{credit_server.url}/api/v1/deployments/credit-risk/predict"
    rows = catalog.credit_rows.head(2).to_dict("records")
    rows[1]["income"] = "plenty"
    error = error_of(httpx.post(url, json={"instances": rows}), 422)
    assert error["code"] == "schema_mismatch" and error["details"]["column"] == "income"
    missing = error_of(httpx.post(url, json={"instances": [{"income": 1.0}]}), 422)
    assert missing["code"] == "schema_mismatch"
    error = error_of(httpx.post(f"{credit_server.url}/v2/models/credit-risk/infer", content=b"{not json"), 422)
    assert error["code"] == "invalid_argument" and error["details"]["field"] == "body"
    empty = error_of(httpx.post(url, json={"instances": []}), 422)  # as the gateway: nothing to predict
    assert empty["details"]["field"] == "rows"


def test_another_name_is_a_404_with_the_error_body(credit_server: Served) -> None:
    for path in ("/v2/models/other/infer", "/api/v1/deployments/other/predict"):
        error = error_of(httpx.post(f"{credit_server.url}{path}", json={"instances": [{}]}), 404)
        assert error["code"] == "not_found" and "other" in error["message"] and "credit-risk" in error["message"]
    assert error_of(httpx.get(f"{credit_server.url}/v2/models/other"), 404)["code"] == "not_found"
    assert error_of(httpx.get(f"{credit_server.url}/v2/models/other/ready"), 404)["code"] == "not_found"


def test_a_rules_model_served_from_a_bundle_logs_every_prediction_until_sigterm(
    catalog: Catalog, tmp_path: Path
) -> None:
    with Steward(data_dir=catalog.data_dir) as st:
        version, data = st.artifact_bytes("policy")
    bundle = write_bundle(version, data, tmp_path / "policy")
    assert (bundle / "model/artifact.yaml").read_bytes() == POLICY.encode()
    lines = (bundle / "requirements.txt").read_text().splitlines()
    assert all(
        f"{name}=={pin}" in lines for name, pin in version.requirements.packages.items() if name != "modelsteward"
    )

    log_dir = tmp_path / "logs"
    served = start(bundle, tmp_path / "stderr.txt", log_dir=log_dir)
    try:
        expected = predict(catalog, version.ref, catalog.policy_rows)
        assert expected["decision"].tolist() == ["accept", "refer", "review", "reject", "review"]
        check_answers(served, version, catalog.policy_rows, expected)
    finally:
        code = served.stop()
    # uvicorn shuts down gracefully (lifespan end: the log is flushed), then re-raises SIGTERM: exit 143 in a shell.
    assert code in (0, -signal.SIGTERM), served.stderr.read_text()
    assert "Traceback" not in served.stderr.read_text()

    logged = query(log_dir, deployment="policy", order_by="prediction_id")
    n = len(catalog.policy_rows)
    assert len(logged) == 3 * n  # v2 JSON, v2 binary and plain JSON
    assert set(logged["ref"]) == {version.ref} and set(logged["status"]) == {"ok"}
    assert set(logged["arm"]) == {"champion"} and set(logged["model"]) == {"policy"}
    plain = logged[logged["request_id"] == "req-2"].reset_index(drop=True)
    assert plain["prediction_id"].tolist() == [f"req-2-{i}" for i in range(n)]
    assert plain["out_decision"].tolist() == expected["decision"].tolist()
    assert plain["in_months"].tolist() == catalog.policy_rows["months"].tolist()


def test_a_tampered_artifact_refuses_to_start(catalog: Catalog, tmp_path: Path) -> None:
    with Steward(data_dir=catalog.data_dir) as st:
        version, data = st.artifact_bytes(catalog.credit.ref)
    bundle = write_bundle(version, data, tmp_path / "tampered")
    artifact = bundle / "model/artifact.skops"
    tampered = bytearray(artifact.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    artifact.write_bytes(bytes(tampered))
    result = subprocess.run(
        [sys.executable, "serve.py", "--port", str(free_port())],
        cwd=bundle,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert version.ref in result.stderr and "sha256" in result.stderr and "Traceback" not in result.stderr


# -- refusals ----------------------------------------------------------------------------------------------


def test_packaging_a_missing_ref_exits_1_with_a_message(catalog: Catalog, tmp_path: Path) -> None:
    result = package("no-such-model", "--out", str(tmp_path / "out"), "--data-dir", str(catalog.data_dir))
    assert result.exit_code == 1
    assert "no model named 'no-such-model'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    result = package("credit-risk/99", "--out", str(tmp_path / "out"), "--data-dir", str(catalog.data_dir))
    assert result.exit_code == 1 and "99" in result.output


def test_a_non_empty_directory_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = package("policy", "--out", str(out), "--data-dir", str(catalog.data_dir))
    assert result.exit_code == 1 and "not empty" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with Steward(data_dir=catalog.data_dir) as st:
        version, data = st.artifact_bytes("policy")
    with pytest.raises(AlreadyExists):
        write_bundle(version, data, out)
    with pytest.raises(IntegrityError, match=version.ref):
        write_bundle(version, data + b"x", tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_bundle(version, data, empty) / "serve.py").is_file()


def test_packaging_through_a_server_downloads_the_hash_checked_artifact(
    catalog: Catalog, live_server: Any, tmp_path: Path
) -> None:
    with Steward(url=live_server.url) as st:
        registered = st.register_model("policy", catalog.data_dir.parent / "policy.yaml", capture_git=False)
        version, data = st.artifact_bytes("policy")
    assert version == registered and hashlib.sha256(data).hexdigest() == registered.artifact.sha256
    result = package("policy/1", "--out", str(tmp_path / "remote"), "--url", live_server.url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "remote/model/artifact.yaml").read_bytes() == POLICY.encode()
