"""Property-based fuzzing of every operation in the server's own OpenAPI document (schemathesis): with the
admin's token, valid and invalid requests alike answer without a server error, and a refusal carries the
usual error body; without a token, every operation answers 401/403 (or 200 for the public ones), never 5xx."""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from modelsteward.api.app import create_server
from modelsteward.api.deps import PERMISSION_KEY
from modelsteward.settings import Settings

ADMIN = "bootstrap-admin-token-for-the-fuzzer"
AUTH = {"authorization": f"Bearer {ADMIN}"}
EXAMPLES = 12  # per operation and mode: enough to meet every body shape, bounded for CI (~1 min in all)
POLICY = """
inputs: {score: number}
outputs: {decision: string}
rules:
  - {id: decline, priority: 10, when: "score > 0.8", then: {decision: decline}}
default: {decision: approve}
"""
#: what a path parameter means when the fuzzer is pinned to things that exist (beside random values)
PINNED = {
    "version": "1",
    "alias": "staging",
    "kpi": "approval_rate",
    "scope": "risk",
    "content_hash": "0" * 64,
    "run_id": "1",
    "alert_id": "1",
    "job_id": "1",
    "token_id": "1",
}
NAMES_BY_PREFIX = [
    ("/api/v1/monitors/", "risk-drift"),
    ("/api/v1/channels/", "ops"),
    ("/api/v1/alert-rules/", "drift-rule"),
    ("/api/v1/users/", "fuzzed-user"),
    ("/api/v1/compliance/suites/", "basic"),
    ("/api/v1/lifecycles/", "no-such-lifecycle"),
    ("/", "risk"),  # models, deployments, /v2/models
]
#: changes that take the seeded things away go last, so the other operations meet them first
LAST = re.compile(r"^DELETE |/rollback$|/disable$|/roles/revoke$")
#: no operation is left out: none stops the server, and the admin's token is the server's bootstrap token,
#: which no route can revoke or disable


def _model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"income": rng.normal(50, 10, 120), "age": rng.normal(40, 9, 120)})
    y = (X["income"] + rng.normal(0, 5, 120) > 50).astype(int)
    return LogisticRegression().fit(X, y), X


class Fuzzed:
    def __init__(self, server: Any, schema: Any, X: pd.DataFrame) -> None:
        self.server = server
        self.schema = schema
        self.X = X

    def operations(self) -> list[Any]:
        found = [result.ok() for result in self.schema.get_all_operations()]
        return sorted(found, key=lambda op: bool(LAST.search(f"{op.method.upper()} {op.path}")))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    from schemathesis.python.asgi import shutdown_lifespans

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings_ = Settings(data_dir=tmp, auth="required", api_token=SecretStr(ADMIN), scheduler=False, tune_gc=False,
                         max_request_bytes=256 * 1024, max_upload_bytes=1024 * 1024)  # fmt: skip
    server = create_server(settings_)
    steward = server.state.steward
    model, X = _model()
    steward.register_model("risk", model, input_example=X.head(), training_data=X.assign(y=model.predict(X)),
                           business_unit="credit", capture_git=False)  # fmt: skip
    steward.set_alias("risk", "staging", 1)
    steward.deploy("risk", "risk/1")
    steward.register_model("policy", POLICY, kind="rules", capture_git=False)
    steward.deploy("policy", "policy/1")
    steward.put_monitor("risk-drift", {"target": {"deployment": "risk"}, "window": "1h", "checks": [{"drift": {}}]})
    steward.create_user("fuzzed-user")
    schema = schemathesis.openapi.from_asgi("/openapi.json", server)
    yield Fuzzed(server, schema, X)
    shutdown_lifespans()  # the ASGI transport keeps the app's lifespan running until asked
    steward.close()


def _pinned(path: str) -> dict[str, str]:
    names = [n for n in re.findall(r"\{(\w+)\}", path)]
    name = next(value for prefix, value in NAMES_BY_PREFIX if path.startswith(prefix))
    return {n: name if n == "name" else PINNED[n] for n in names}


def _strategy(operation: Any) -> Any:
    """Valid and invalid requests, on random names and on the seeded ones (the only way a fuzzer reaches
    the code behind a lookup that succeeds)."""
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    pinned = _pinned(operation.path)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if pinned:
        strategies += [operation.as_strategy(mode, path_parameters=pinned) for mode in modes]
    return st.one_of(strategies)


def _fuzz(operation: Any, headers: dict[str, str], judge: Any) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=_strategy(operation))
    def run(case: Any) -> None:
        try:
            response = case.call(headers=headers)
        except Exception as e:  # noqa: BLE001 - the app answered 500 and the transport re-raised its error
            judge(case, e)
        else:
            judge(case, response)

    run()


def _is_error_body(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}


def _describe(case: Any, response: Any) -> str:
    if isinstance(response, Exception):
        where = traceback.extract_tb(response.__traceback__)[-1]
        answer = f"500 {type(response).__name__}: {str(response)[:200]} at {where.filename}:{where.lineno}"
    else:
        answer = f"{response.status_code} {response.text[:300]}"
    return f"{case.operation.label}: {answer}\n    {case.as_curl_command()}"


def test_no_request_the_schema_describes_or_breaks_gets_a_server_error(fuzzed: Fuzzed) -> None:
    problems: list[str] = []
    seen: dict[str, set[int]] = {}

    def judge(case: Any, response: Any) -> None:
        if isinstance(response, Exception):
            problems.append(_describe(case, response))
            return
        seen.setdefault(case.operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:
            problems.append(_describe(case, response))
            return
        if 400 <= response.status_code < 500 and not _is_error_body(response):
            problems.append("not the error body: " + _describe(case, response))

    started = time.perf_counter()
    operations = fuzzed.operations()
    assert len(operations) > 80
    for operation in operations:
        _fuzz(operation, AUTH, judge)
    elapsed = time.perf_counter() - started
    assert not problems, f"{len(problems)} bad answers:\n" + "\n".join(sorted(set(problems)))
    reached = {label for label, statuses in seen.items() if any(s < 300 for s in statuses)}
    assert len(reached) > len(operations) // 2, sorted(set(seen) - reached)  # not all refused at the door
    assert elapsed < 120, elapsed
    with schemathesis.python.asgi.get_client(fuzzed.server) as client:
        assert client.get("/api/v1/health", headers=AUTH).status_code == 200


def test_without_a_token_every_operation_answers_401_403_or_its_public_answer(fuzzed: Fuzzed) -> None:
    problems: list[str] = []
    document = fuzzed.schema.raw_schema["paths"]

    def judge(case: Any, response: Any) -> None:
        if isinstance(response, Exception):
            problems.append(_describe(case, response))
            return
        public = document[case.operation.path][case.operation.method.lower()].get(PERMISSION_KEY) == "public"
        if response.status_code >= 500 and not (case.operation.path == "/v2/health/ready"):
            problems.append(_describe(case, response))
        elif not public and response.status_code not in (401, 403):
            problems.append(_describe(case, response))

    for operation in fuzzed.operations():
        _fuzz(operation, {}, judge)
    assert not problems, "\n".join(sorted(set(problems)))


BIG = "9" * 25  # past a 64-bit integer
#: what the fuzzer found (each was a 500), kept as plain requests so that they stay fixed whatever it draws
FOUND = [
    ("GET", f"/api/v1/models?offset={BIG}", None, "offset"),
    ("GET", f"/api/v1/models/risk/versions?offset={BIG}", None, "offset"),
    ("GET", f"/api/v1/versions?offset={BIG}", None, "offset"),
    ("GET", f"/api/v1/audit/export?after={BIG}", None, "after"),
    ("GET", f"/api/v1/compliance/runs/{BIG}", None, "run_id"),
    ("GET", f"/api/v1/lifecycle/runs/{BIG}", None, "run_id"),
    ("POST", f"/api/v1/lifecycle/runs/{BIG}/cancel", None, "run_id"),
    ("GET", f"/api/v1/jobs/{BIG}", None, "job_id"),
    ("POST", f"/api/v1/alerts/{BIG}/acknowledge", None, "alert_id"),
    ("POST", f"/api/v1/alerts/{BIG}/resolve", None, "alert_id"),
    ("GET", f"/api/v1/deliveries?alert_id={BIG}", None, "alert_id"),
    ("DELETE", f"/api/v1/tokens/{BIG}", None, "token_id"),
    ("PUT", "/api/v1/models/risk/aliases/staging", {"version": int(BIG)}, "version"),
    ("GET", f"/api/v1/models/risk/comments?version={BIG}", None, "version"),
    ("POST", "/api/v1/models/risk/comments", {"text": "x", "version": int(BIG)}, "version"),
    ("POST", "/api/v1/deployments/risk/predict", {"dataframe_records": []}, "rows"),
    ("POST", "/api/v1/deployments/policy/predict", {"instances": []}, "rows"),
    ("POST", "/v2/models/risk/infer", {"inputs": [{"name": "income", "shape": [0], "datatype": "FP64", "data": []},
                                                  {"name": "age", "shape": [0], "datatype": "FP64", "data": []}]},
     "rows"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "field"), FOUND, ids=[f"{m} {u[:60]}" for m, u, _, _ in FOUND])
def test_what_the_fuzzer_found_answers_422_naming_the_field(
    fuzzed: Fuzzed, method: str, url: str, body: Any, field: str
) -> None:
    steward = fuzzed.server.state.steward
    for name in ("risk", "policy"):  # the fuzzer may have undeployed them
        steward.deploy(name, f"{name}/1")
    with schemathesis.python.asgi.get_client(fuzzed.server) as client:
        response = client.request(method, url, json=body, headers=AUTH)
    assert response.status_code == 422 and _is_error_body(response), response.text
    assert response.json()["error"]["details"]["field"] == field, response.text
