"""Malformed and oversized bodies on every route that reads one (uploads, inference, definitions, ...): each
gets a 4xx with the usual error body naming the field, never a 500, and the server keeps serving afterwards.
The routes come from the app itself, so a new one is covered without touching this file."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from modelsteward.api.app import create_server
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.settings import Settings

ADMIN = "bootstrap-admin-token-for-malformed-bodies"
AUTH = {"authorization": f"Bearer {ADMIN}"}
MAX_REQUEST = 300_000  # room for 100k levels of [[...]] (200 kB) under the limit, so the parser meets them
MAX_UPLOAD = 600_000
INFERENCE = {
    ("POST", "/api/v1/deployments/{name}/predict"),
    ("POST", "/v2/models/{name}/infer"),
    ("POST", "/api/v1/models/{name}/predict"),
    ("POST", "/api/v1/deployments/{name}/explain"),
    ("POST", "/api/v1/deployments/{name}/feedback"),
}
UPLOADS = {("POST", "/api/v1/models/{name}/versions"), ("POST", "/api/v1/kpis/upload")}
PATH_VALUES = {"alias": "staging", "run_id": "1", "alert_id": "1", "version": "1"}
NAMES_BY_PREFIX = [
    ("/api/v1/monitors/", "risk-drift"),
    ("/api/v1/channels/", "ops"),
    ("/api/v1/alert-rules/", "drift-rule"),
    ("/api/v1/compliance/suites/", "basic"),
    ("/", "risk"),
]
POLICY = """
inputs: {score: number}
outputs: {decision: string}
rules:
  - {id: decline, priority: 10, when: "score > 0.8", then: {decision: decline}}
default: {decision: approve}
"""
_garbage = random.Random(8)
GARBAGE = bytes(_garbage.randrange(256) for _ in range(2_000))
NESTED = b"[" * 100_000 + b"]" * 100_000
NUMBERS = b'{"value": NaN, "version": Infinity, "weight": -Infinity, "n": 1e999, "big": ' + b"9" * 5_000 + b"}"
JSON = {"content-type": "application/json"}
#: (case, body, headers); each gets a 4xx (400/415/422) on every route that reads a body
MALFORMED: list[tuple[str, bytes, dict[str, str]]] = [
    ("invalid JSON", b'{"instances": [{"income": 1,}', JSON),
    ("a JSON list", b"[1, 2, 3]", JSON),
    ("a JSON number", b"42", JSON),
    ("a JSON string", b'"text"', JSON),
    ("JSON null", b"null", JSON),
    ("100k levels of nesting", NESTED, JSON),
    ("huge numbers, NaN and Infinity", NUMBERS, JSON),
    ("text with a text content type", b"predict this, please", {"content-type": "text/plain"}),
    ("a form with a form content type", b"a=1&b=2", {"content-type": "application/x-www-form-urlencoded"}),
    ("binary garbage as JSON", GARBAGE, JSON),
    ("binary garbage as octets", GARBAGE, {"content-type": "application/octet-stream"}),
    ("invalid UTF-8", b'{"name": "\xff\xfe"}', JSON),
    ("an empty body", b"", JSON),
]
#: on a route whose body is optional, no body (or null) is the default: the request goes on to its lookup
EMPTY = {"an empty body", "JSON null"}


def _model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = pd.DataFrame({"income": rng.normal(50, 10, 120), "age": rng.normal(40, 9, 120)})
    y = (X["income"] + rng.normal(0, 5, 120) > 50).astype(int)
    return LogisticRegression().fit(X, y), X


class Served:
    def __init__(self, client: TestClient, X: pd.DataFrame, upload: tuple[dict[str, Any], bytes]) -> None:
        self.client = client
        self.X = X
        self.manifest, self.artifact = upload

    def predictions_work(self) -> None:
        rows = self.X.head(3).to_dict(orient="records")
        ok = self.client.post("/api/v1/deployments/risk/predict", json={"instances": rows}, headers=AUTH)
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3, ok.text
        tensors = [{"name": c, "shape": [3], "datatype": "FP64", "data": self.X[c].head(3).tolist()} for c in self.X]
        v2 = self.client.post("/v2/models/risk/infer", json={"inputs": tensors}, headers=AUTH)
        assert v2.status_code == 200, v2.text
        rules = self.client.post("/api/v1/deployments/policy/predict", json={"instances": [{"score": 0.9}]},
                                 headers=AUTH)  # fmt: skip
        assert rules.status_code == 200 and rules.json()["predictions"][0]["decision"] == "decline", rules.text
        assert self.client.get("/api/v1/health").status_code == 200


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("malformed")
    settings = Settings(data_dir=tmp, auth="required", api_token=SecretStr(ADMIN), scheduler=False, tune_gc=False,
                        max_request_bytes=MAX_REQUEST, max_upload_bytes=MAX_UPLOAD)  # fmt: skip
    server = create_server(settings)
    steward = server.state.steward
    model, X = _model()
    steward.register_model("risk", model, input_example=X.head(), capture_git=False)
    steward.set_alias("risk", "staging", 1)
    steward.deploy("risk", "risk/1")
    steward.register_model("policy", POLICY, kind="rules", capture_git=False)
    steward.deploy("policy", "policy/1")
    steward.put_monitor("risk-drift", {"target": {"deployment": "risk"}, "window": "1h", "checks": [{"drift": {}}]})
    upload = to_manifest(prepare_registration("risk", model, input_example=X.head(), capture_git=False))
    with TestClient(server, raise_server_exceptions=False) as client:
        yield Served(client, X, upload)
    steward.close()


def _flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + getattr(route, "path", ""), route


def _body_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """Every API route that reads a body: a FastAPI body parameter, or a raw body its OpenAPI entry describes."""
    found = []
    for path, route in _flat(app.routes):
        if not isinstance(route, APIRoute) or not path.startswith(("/api/", "/v2/")):
            continue
        reads_body = route.body_field is not None or "requestBody" in (route.openapi_extra or {})
        for method in sorted(route.methods & {"POST", "PUT", "PATCH"}):
            if reads_body:
                found.append((method, path, route))
    return found


def _optional_body(route: APIRoute) -> bool:
    return route.body_field is not None and not route.body_field.field_info.is_required()


def _multipart(route: APIRoute) -> bool:
    return route.body_field is not None and getattr(route.body_field.field_info, "media_type", "").startswith(
        "multipart/"
    )


def _url(path: str) -> str:
    name = next(value for prefix, value in NAMES_BY_PREFIX if path.startswith(prefix))
    return re.sub(r"\{(\w+)\}", lambda m: name if m.group(1) == "name" else PATH_VALUES[m.group(1)], path)


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def _names_the_field(error: dict[str, Any]) -> bool:
    """A refusal says where: the body's field, or the signature's column for a value that does not fit it."""
    return bool(error["details"].get("field") or error["details"].get("column"))


def _chunks(total: int, multipart: bool, size: int = 50_000) -> Iterator[bytes]:
    if multipart:
        yield b'--b\r\nContent-Disposition: form-data; name="artifact"; filename="a"\r\n\r\n'
    else:
        yield b'{"instances": [{"income": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b"\r\n--b--\r\n" if multipart else b'"}]}'


@pytest.fixture(scope="module")
def routes(served: Served) -> list[tuple[str, str, APIRoute]]:
    found = _body_routes(served.client.app.app)  # type: ignore[attr-defined]  # FastInference wraps the app
    keys = {(method, path) for method, path, _ in found}
    assert len(found) > 25 and INFERENCE <= keys and UPLOADS <= keys, sorted(keys)
    return found


def test_every_body_route_refuses_malformed_bodies_with_a_4xx_naming_the_field(
    served: Served, routes: list[tuple[str, str, APIRoute]]
) -> None:
    problems = []
    for method, path, route in routes:
        for case, body, headers in MALFORMED:
            response = served.client.request(method, _url(path), content=body, headers={**AUTH, **headers})
            status = response.status_code
            if case in EMPTY and _optional_body(route) and status < 500:
                assert status < 400 or _error(response), response.text  # 404 or 409 of the lookup, say
                continue
            if status not in (400, 415, 422):
                problems.append(f"{method} {path} <- {case}: {status} {response.text[:200]}")
                continue
            error = _error(response)
            if not _names_the_field(error):
                problems.append(f"{method} {path} <- {case}: names no field: {error}")
    assert not problems, f"{len(problems)} bad answers:\n" + "\n".join(problems)
    served.predictions_work()


def test_oversized_bodies_get_413_with_or_without_a_content_length(
    served: Served, routes: list[tuple[str, str, APIRoute]]
) -> None:
    problems = []
    for method, path, route in routes:
        limit = MAX_UPLOAD if (method, path) in UPLOADS else MAX_REQUEST
        url = _url(path)
        multipart = _multipart(route)
        headers = {**AUTH, "content-type": "multipart/form-data; boundary=b" if multipart else "application/json"}
        declared = served.client.request(method, url, content=b"x" * (limit + 1), headers=headers)
        chunked = served.client.request(method, url, content=_chunks(2 * limit, multipart), headers=headers)
        assert "content-length" not in chunked.request.headers  # only counting the bytes can catch it
        for how, response in (("with a Content-Length", declared), ("chunked", chunked)):
            if response.status_code != 413 or _error(response)["code"] != "payload_too_large":
                problems.append(f"{method} {path} {how}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)
    served.predictions_work()


def test_uploads_refuse_truncated_and_broken_multipart_forms(
    served: Served, routes: list[tuple[str, str, APIRoute]]
) -> None:
    uploads = [(method, path) for method, path, route in routes if _multipart(route)]
    assert set(uploads) == UPLOADS  # a new upload route is listed here on purpose
    manifest = json.dumps(served.manifest).encode()
    whole = (
        b'--b\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n' + manifest + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="artifact"; filename="a"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + served.artifact + b"\r\n--b--\r\n"
    )  # fmt: skip
    broken = {
        "truncated in a part": whole[: len(whole) // 2],
        "truncated in the headers": whole[:40],
        "without the closing boundary": whole[: -len(b"--b--\r\n")],
        "another boundary than declared": whole.replace(b"--b", b"--c"),
        "no parts": b"--b--\r\n",
        "garbage": GARBAGE,
    }
    problems = []
    for method, path in uploads:
        for case, body in broken.items():
            for content_type in ("multipart/form-data; boundary=b", "multipart/form-data"):
                headers = {**AUTH, "content-type": content_type}
                response = served.client.request(method, _url(path), content=body, headers=headers)
                if response.status_code not in (400, 422) or not _names_the_field(_error(response)):
                    problems.append(f"{method} {path} <- {case} ({content_type}): {response.status_code} "
                                    f"{response.text[:200]}")  # fmt: skip
    assert not problems, "\n".join(problems)
    complete = served.client.post("/api/v1/models/risk/versions", content=whole,
                                  headers={**AUTH, "content-type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert complete.status_code == 201, complete.text  # the same form, whole, registers
    served.predictions_work()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 400])
def test_numbers_json_cannot_carry_are_refused_on_the_inference_routes_and_kpis(served: Served, literal: str) -> None:
    rows = '{"instances": [{"income": @, "age": 40}]}'
    tensors = (
        '{"inputs": [{"name": "income", "shape": [1], "datatype": "FP64", "data": [@]}, '
        '{"name": "age", "shape": [1], "datatype": "FP64", "data": [40]}]}'
    )
    attempts = {
        "/api/v1/deployments/risk/predict": rows,
        "/api/v1/models/risk/predict": rows,
        "/api/v1/deployments/risk/explain": rows,
        "/v2/models/risk/infer": tensors,
        "/api/v1/deployments/risk/feedback": '{"feedback": [{"prediction_id": "p-1", "actual": @}]}',
        "/api/v1/deployments/policy/predict": '{"instances": [{"score": @}]}',
        "/api/v1/kpis": '{"points": [{"kpi": "approval_rate", "scope": "risk", "ts": "2026-01-01", "value": @}]}',
    }
    for url, template in attempts.items():
        body = template.replace("@", literal).encode()
        response = served.client.post(url, content=body, headers={**AUTH, **JSON})
        assert response.status_code in (400, 422), (url, response.status_code, response.text[:300])
        assert _names_the_field(_error(response)), (url, response.text[:300])
    served.predictions_work()
