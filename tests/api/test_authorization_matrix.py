"""Every route x every role: a route declares its permission, and the server refuses (403, audited)
exactly when the policy says so. Generated from the app's routes, so no new route escapes it."""

from __future__ import annotations

import json
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
from modelsteward.api.deps import PERMISSION_KEY
from modelsteward.catalog.registration import prepare_registration, to_manifest
from modelsteward.domain.lifecycle import ROLES
from modelsteward.governance.permissions import PERMISSIONS
from modelsteward.settings import Settings

ADMIN = "bootstrap-admin-token-for-the-matrix"
NOBODY = "no-grant"  # authenticates, holds no role
#: routes anyone who may reach the server may call (no role); a new public route must be added here
PUBLIC = {
    ("GET", "/"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/info"),
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/ui/static/{name}"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/login/oidc"),
    ("GET", "/ui/login/callback"),
}
#: Starlette's own documentation routes (not APIRoutes): public too
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

#: form fields of the dashboard's actions (beside the CSRF token)
UI_FORMS: dict[tuple[str, str], dict[str, str]] = {}
UI_FORMS.update({  # the model page's actions
    ("POST", "/ui/models/{name}/alias"): {"alias": "staging", "version": "1"},
    ("POST", "/ui/models/{name}/rollback"): {"deployment": "risk"},
    ("POST", "/ui/models/{name}/traffic"): {"deployment": "risk", "ref": "risk/1", "weight": "0.5"},
    ("POST", "/ui/models/{name}/advance"): {"version": "1", "to": "staging"},
    ("POST", "/ui/models/{name}/comments"): {"text": "from the matrix"},
})  # fmt: skip
UI_FORMS.update({  # the approvals inbox (no run waits on risk/1: an allowed role meets a 409)
    ("POST", "/ui/approvals/approve"): {"ref": "risk/1", "role": "validator", "comment": "from the matrix"},
    ("POST", "/ui/approvals/reject"): {"ref": "risk/1", "role": "validator", "comment": "from the matrix"},
})  # fmt: skip

PATH_VALUES = {
    "version": "1",
    "alias": "staging",
    "token_id": "999999",
    "run_id": "999999",
    "alert_id": "999999",
    "job_id": "999999",
    "content_hash": "0" * 64,
    "kpi": "approval_rate",
    "scope": "risk",
}
NAMES_BY_PREFIX = [  # what {name} means under each prefix: seeded things, or ones that do not exist
    ("/api/v1/monitors/", "risk-drift"),
    ("/api/v1/lifecycles/", "no-such-lifecycle"),
    ("/api/v1/channels/", "ops"),
    ("/api/v1/alert-rules/", "drift-rule"),
    ("/api/v1/users/", "no-such-user"),
    ("/", "risk"),  # models, deployments, /v2/models
]


def _model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = pd.DataFrame({"income": rng.normal(50, 10, 200), "age": rng.normal(40, 9, 200)})
    y = (X["income"] + rng.normal(0, 5, 200) > 50).astype(int)
    return LogisticRegression().fit(X, y), X


class Matrix:
    def __init__(self, client: TestClient, steward: Any, X: pd.DataFrame, upload: tuple[dict[str, Any], bytes]):
        self.client = client
        self.steward = steward
        self.X = X
        self.manifest, self.artifact = upload
        self.tokens: dict[str, str] = {}

    def headers(self, who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[who]}"}

    def principal(self, name: str, *grants: tuple[str, dict[str, str]]) -> dict[str, str]:
        self.steward.create_user(name)
        self.tokens[name] = self.steward.create_token(name).token
        for role, scope in grants:
            self.steward.grant_role(name, role, **scope)
        return self.headers(name)

    def upload(self, name: str, headers: dict[str, str], **model_fields: Any) -> Any:
        manifest = {**self.manifest, "model_update": {**self.manifest.get("model_update", {}), **model_fields}}
        return self.client.post(
            f"/api/v1/models/{name}/versions",
            data={"manifest": json.dumps(manifest)},
            files={"artifact": ("artifact", self.artifact, "application/octet-stream")},
            headers=headers,
        )


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    tmp = tmp_path_factory.mktemp("matrix")
    settings = Settings(data_dir=tmp, auth="required", api_token=SecretStr(ADMIN), scheduler=False, tune_gc=False)
    server = create_server(settings)
    steward = server.state.steward
    model, X = _model()
    steward.register_model("risk", model, input_example=X.head(), business_unit="credit", capture_git=False)
    steward.deploy("risk", "risk/1")
    steward.put_monitor("risk-drift", {"target": {"deployment": "risk"}, "window": "1h", "checks": [{"drift": {}}]})
    manifest, data = to_manifest(prepare_registration("risk", model, input_example=X.head(), capture_git=False))
    with TestClient(server) as client:
        m = Matrix(client, steward, X, (manifest, data))
        for role in ROLES:
            m.principal(f"as-{role}", (role, {}))
        m.principal(NOBODY)
        yield m
    steward.close()


def _flat(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every route with its full path: FastAPI (0.16x) keeps included routers as branches in ``app.routes``."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _flat(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + getattr(route, "path", ""), route


def _routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    return [
        (method, path, route)
        for path, route in _flat(app.routes)
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def _declared(route: APIRoute) -> str | None:
    return (route.openapi_extra or {}).get(PERMISSION_KEY)


def _fill(path: str) -> str:
    name = next(value for prefix, value in NAMES_BY_PREFIX if path.startswith(prefix))
    return re.sub(r"\{(\w+)\}", lambda m: name if m.group(1) == "name" else PATH_VALUES[m.group(1)], path)


def _request(m: Matrix, method: str, path: str, headers: dict[str, str]) -> Any:
    """A well-formed request for the route, so that only the permission decides between 403 and the rest.
    The dashboard's pages (/ui) take the token from the session cookie and their forms a CSRF token."""
    url = _fill(path)
    if path.startswith("/ui"):
        token = headers["authorization"].removeprefix("Bearer ")
        m.client.cookies.clear()
        m.client.cookies.set("steward_session", token)
        m.client.cookies.set("steward_csrf", "matrix")
        form = {"csrf": "matrix", **UI_FORMS.get((method, path), {})}
        response = m.client.request(method, url, data=form if method == "POST" else None, follow_redirects=False)
        m.client.cookies.clear()
        return response
    rows = m.X.head(2).to_dict(orient="records")
    bodies: dict[tuple[str, str], Any] = {
        ("PATCH", "/api/v1/models/{name}"): {"description": "from the matrix"},
        ("PUT", "/api/v1/models/{name}/aliases/{alias}"): {"version": 1},
        ("POST", "/api/v1/models/{name}/predict"): {"instances": rows},
        ("PUT", "/api/v1/deployments/{name}"): {"champion": "risk/1"},
        ("PUT", "/api/v1/deployments/{name}/traffic"): {"challengers": {}},
        ("POST", "/api/v1/deployments/{name}/predict"): {"instances": rows},
        ("POST", "/api/v1/deployments/{name}/feedback"): {"feedback": [{"prediction_id": "p-1", "actual": 1}]},
        ("POST", "/v2/models/{name}/infer"): {
            "inputs": [{"name": c, "shape": [2], "datatype": "FP64", "data": m.X[c].head(2).tolist()} for c in m.X]
        },
        ("PUT", "/api/v1/monitors/{name}"): {
            "target": {"deployment": "risk"},
            "window": "1h",
            "checks": [{"drift": {}}],
        },
        ("POST", "/api/v1/kpis"): {
            "points": [{"kpi": "approval_rate", "scope": "risk", "ts": "2026-01-01T00:00:00Z", "value": 0.5}]
        },  # fmt: skip
        ("PUT", "/api/v1/channels/{name}"): {"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"},
        ("PUT", "/api/v1/alert-rules/{name}"): {"name": "drift-rule", "monitor": "risk-drift"},
        ("POST", "/api/v1/lifecycles"): {"yaml": "name: matrix\n"},
        ("PUT", "/api/v1/models/{name}/lifecycle"): {"lifecycle": "no-such-lifecycle"},
        ("POST", "/api/v1/lifecycle/advance"): {"ref": "risk/1", "to": "staging"},
        ("POST", "/api/v1/lifecycle/gates"): {"ref": "risk/1", "to": "staging"},
        ("POST", "/api/v1/lifecycle/approve"): {"ref": "risk/1", "role": "approver"},
        ("POST", "/api/v1/lifecycle/reject"): {"ref": "risk/1", "role": "approver"},
        ("POST", "/api/v1/roles"): {"principal": "no-such-user", "role": "viewer"},
        ("POST", "/api/v1/roles/revoke"): {"principal": "no-such-user", "role": "auditor"},
        ("POST", "/api/v1/users"): {"name": "made-by-the-matrix"},
        ("POST", "/api/v1/tokens"): {"principal": "no-such-user"},
        ("PUT", "/api/v1/compliance/suites/{name}"): {
            "definition": {"target": "y", "tests": [{"performance": {"min": {"accuracy": 0.5}}}]}
        },
        ("POST", "/api/v1/compliance/runs"): {"ref": "risk/1", "suite": "no-such-suite"},
        ("POST", "/api/v1/deployments/{name}/explain"): {"instances": rows},
        ("POST", "/api/v1/models/{name}/comments"): {"text": "from the matrix"},
    }
    params = {"ref": "risk/1"} if path in ("/api/v1/resolve", "/api/v1/audit/report") else None
    if (method, path) == ("POST", "/api/v1/models/{name}/versions"):
        return m.upload("risk", headers)
    if (method, path) == ("POST", "/api/v1/kpis/upload"):
        csv = b"kpi,scope,ts,value\napproval_rate,risk,2026-01-01T00:00:00Z,0.5\n"
        return m.client.post(url, files={"file": ("kpis.csv", csv, "text/csv")}, headers=headers)
    body = bodies.get((method, path))
    return m.client.request(method, url, json=body, params=params, headers=headers, follow_redirects=False)


def test_every_route_declares_a_permission_or_is_listed_public(matrix: Matrix) -> None:
    app = matrix.client.app.app  # type: ignore[attr-defined]  # FastInference wraps the FastAPI app
    undeclared, unknown, public = [], [], set()
    for method, path, route in _routes(app):
        declared = _declared(route)
        if declared is None:
            undeclared.append(f"{method} {path}")
        elif declared == "public":
            public.add((method, path))
        elif declared not in PERMISSIONS:
            unknown.append(f"{method} {path}: {declared}")
    assert len(_routes(app)) > 80  # all of them, included routers too
    assert not undeclared, f"routes without a declared permission (use needs(...)): {undeclared}"
    assert not unknown
    assert public == PUBLIC, "a route became public (or stopped being): list it in PUBLIC on purpose"
    others = {path for path, r in _flat(app.routes) if not isinstance(r, APIRoute)}
    assert others <= DOCS, f"routes outside FastAPI's routing escape the matrix: {others - DOCS}"
    schema = matrix.client.get("/openapi.json").json()
    assert schema["paths"]["/api/v1/models/{name}/versions"]["post"][PERMISSION_KEY] == "model.register"


def test_each_role_is_refused_exactly_where_the_policy_says(matrix: Matrix) -> None:
    app = matrix.client.app.app  # type: ignore[attr-defined]
    principals = [f"as-{role}" for role in ROLES] + [NOBODY]
    problems = []
    # changes that take things away (undeploy, delete a monitor, rollback) go last: other routes meet the seeded things
    ordered = sorted(_routes(app), key=lambda r: r[0] == "DELETE" or r[1].endswith(("/rollback", "/disable")))
    for method, path, route in ordered:
        declared = _declared(route)
        for who in principals:
            role = who.removeprefix("as-")
            allowed = declared == "public" or role in PERMISSIONS[str(declared)].roles
            response = _request(matrix, method, path, matrix.headers(who))
            status = response.status_code
            if allowed and status in (401, 403):
                problems.append(f"{who} {method} {path}: {status} {response.text[:200]}")
            elif allowed and status >= 500:
                problems.append(f"{who} {method} {path}: {status} {response.text[:200]}")
            elif not allowed:
                if path.startswith("/ui"):  # a page: the refusal is an HTML page that says why
                    error = {"code": "forbidden", "message": response.text} if status == 403 else {}
                else:
                    error = response.json().get("error", {}) if status == 403 else {}
                if status != 403 or error.get("code") != "forbidden" or f"lacks {declared}" not in error["message"]:
                    problems.append(
                        f"{who} {method} {path}: expected 403 for {declared}, got {status} {response.text[:200]}"
                    )
    assert not problems, "\n".join(problems)

    denied = [e for e in matrix.steward.list_events(limit=1000) if e.action == "access.denied"]
    assert {e.actor for e in denied} >= {NOBODY, "as-viewer"}
    one = next(e for e in denied if e.actor == NOBODY and e.details["path"] == "/api/v1/models/risk/versions")
    assert one.details["method"] == "POST" and one.details["permission"] == "model.register"
    assert one.model == "risk" and one.details["roles"] == ["data_scientist", "admin"]
    assert matrix.steward.verify_audit().ok


def test_a_refusal_names_who_what_where_and_the_roles_that_would_do(matrix: Matrix) -> None:
    refused = matrix.client.put(
        "/api/v1/deployments/risk", json={"champion": "risk/1"}, headers=matrix.headers("as-data_scientist")
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden",
        "message": "as-data_scientist lacks deployment.manage on model:risk: needs one of operator, admin",
        "details": {"principal": "as-data_scientist", "permission": "deployment.manage", "target": "model:risk",
                    "roles": ["operator", "admin"], "models": ["risk"]},
    }  # fmt: skip
    nowhere = matrix.client.get("/api/v1/models/no-such-model", headers=matrix.headers(NOBODY))
    assert nowhere.status_code == 403  # the permission is checked before anything is looked up
    assert matrix.client.get("/api/v1/models/no-such-model", headers=matrix.headers("as-viewer")).status_code == 404
    assert matrix.client.get("/api/v1/models", headers={"authorization": "Bearer stw_1_" + "x" * 30}).status_code == 401


def test_grants_are_scoped_to_a_model_a_business_unit_or_everything(matrix: Matrix) -> None:
    m = matrix
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert m.upload("alpha", admin, business_unit="credit").status_code == 201
    assert m.upload("beta", admin, business_unit="retail").status_code == 201

    on_alpha = m.principal("ds-alpha", ("data_scientist", {"model": "alpha"}))
    assert m.upload("alpha", on_alpha).status_code == 201
    refused = m.upload("beta", on_alpha)
    assert (
        refused.status_code == 403
        and "ds-alpha lacks model.register on model:beta" in refused.json()["error"]["message"]
    )
    assert m.upload("gamma", on_alpha).status_code == 403  # a new model needs a global or a unit grant
    assert m.client.get("/api/v1/models/alpha", headers=on_alpha).status_code == 200
    assert m.client.get("/api/v1/models/beta", headers=on_alpha).status_code == 403
    assert m.client.get("/api/v1/models", headers=on_alpha).status_code == 200  # listing: a grant anywhere

    on_credit = m.principal("ds-credit", ("data_scientist", {"business_unit": "credit"}))
    assert m.client.patch("/api/v1/models/alpha", json={"description": "x"}, headers=on_credit).status_code == 200
    assert m.client.patch("/api/v1/models/beta", json={"description": "x"}, headers=on_credit).status_code == 403
    moved = m.client.patch("/api/v1/models/alpha", json={"business_unit": "retail"}, headers=on_credit)
    assert moved.status_code == 403  # moving a model to another unit needs a grant there too
    assert m.upload("credit-new", on_credit, business_unit="credit").status_code == 201
    assert m.upload("retail-new", on_credit, business_unit="retail").status_code == 403
    assert m.upload("unitless-new", on_credit).status_code == 403

    everywhere = m.principal("ds-global", ("data_scientist", {}))
    for name in ("alpha", "beta", "delta"):
        assert m.upload(name, everywhere).status_code == 201, name

    operator = m.principal("ops-alpha", ("operator", {"model": "alpha"}))
    assert (
        m.client.put("/api/v1/deployments/alpha-svc", json={"champion": "alpha/1"}, headers=operator).status_code == 200
    )
    refused = m.client.put("/api/v1/deployments/alpha-svc", json={"champion": "beta/1"}, headers=operator)
    assert refused.status_code == 403  # the new route set names a model outside the grant
    assert m.client.put("/api/v1/deployments/risk", json={"champion": "alpha/1"}, headers=operator).status_code == 403


def test_a_revoked_grant_stops_working_at_once_in_this_process(matrix: Matrix) -> None:
    m = matrix
    admin = {"authorization": f"Bearer {ADMIN}"}
    viewer = m.principal("briefly", ("viewer", {}))
    assert m.client.get("/api/v1/models/risk", headers=viewer).status_code == 200
    grant = {"principal": "briefly", "role": "viewer"}
    assert m.client.post("/api/v1/roles/revoke", json=grant, headers=admin).status_code == 204
    assert m.client.get("/api/v1/models/risk", headers=viewer).status_code == 403
    assert m.client.post("/api/v1/roles", json=grant, headers=admin).status_code == 200
    assert m.client.get("/api/v1/models/risk", headers=viewer).status_code == 200
    own = m.client.get("/api/v1/roles", params={"principal": "briefly"}, headers=viewer)
    assert own.status_code == 200 and [g["role"] for g in own.json()] == ["viewer"]  # one's own grants
    assert m.client.get("/api/v1/roles", headers=viewer).status_code == 403  # everyone's: identity.read


def test_the_serving_path_checks_without_querying_the_database(tmp_path: Path) -> None:
    import sqlalchemy as sa

    settings = Settings(
        data_dir=tmp_path, auth="required", api_token=SecretStr(ADMIN), scheduler=False, tune_gc=False,
        route_refresh_interval=60,
    )  # fmt: skip
    server = create_server(settings)
    steward = server.state.steward
    model, X = _model()
    steward.register_model("risk", model, input_example=X.head(), business_unit="credit", capture_git=False)
    steward.deploy("risk", "risk/1")
    steward.create_user("app", kind="service")
    token = steward.create_token("app").token
    steward.grant_role("app", "operator", business_unit="credit")
    headers = {"authorization": f"Bearer {token}"}
    body = {"instances": X.head(1).to_dict(orient="records")}
    queries: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        queries.append(statement)

    with TestClient(server) as client:
        assert client.post("/api/v1/deployments/risk/predict", json=body, headers=headers).status_code == 200
        sa.event.listen(steward.db.engine, "before_cursor_execute", record)
        for _ in range(20):
            assert client.post("/api/v1/deployments/risk/predict", json=body, headers=headers).status_code == 200
        sa.event.remove(steward.db.engine, "before_cursor_execute", record)
    assert queries == []  # token, grants and business unit come from memory (cached ~5 s)
    steward.close()
