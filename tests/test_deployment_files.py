"""The deployment recipe (deploy/Dockerfile, deploy/kubernetes/*.yaml) stays consistent with the code.

Nothing here builds the image or talks to a cluster: the files are parsed and checked against the
settings and the routes the application actually has.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelsteward.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NAMESPACE = "modelsteward"
STEWARD_IMAGE = re.compile(r"^[\w.\-/:]*modelsteward:[\w.\-]+$")
POSTGRES_IMAGE = re.compile(r"^postgres:[\w.\-]+$")
PLACEHOLDER = "CHANGE-ME"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append((path.name, document))
    return found


DOCUMENTS = _documents()


def _of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCUMENTS if doc["kind"] in kinds]


def _workloads() -> list[dict[str, Any]]:
    return _of_kind("Deployment", "StatefulSet")


def _containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for workload in _workloads():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            yield workload["metadata"]["name"], container


def _steward_containers() -> list[tuple[str, dict[str, Any]]]:
    return [(name, c) for name, c in _containers() if STEWARD_IMAGE.match(c["image"])]


def _probe_paths(container: dict[str, Any]) -> list[str]:
    """The HTTP paths a container's probes hit, from httpGet or from a URL in an exec command."""
    paths = []
    for key in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(key)
        if not probe:
            continue
        if "httpGet" in probe:
            paths.append(probe["httpGet"]["path"])
        elif "exec" in probe:
            command = " ".join(probe["exec"]["command"])
            paths.extend(re.findall(r"http://127\.0\.0\.1:\d+(/[\w/.\-]*)", command))
    return paths


def _settings_fields() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            logical.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def _exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


@pytest.fixture(scope="module")
def app_paths(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from modelsteward.api.app import create_app

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("steward"), scheduler=False))
    try:
        # FastAPI keeps included routers as wrappers without a path: their routes show in the OpenAPI document
        direct = {route.path for route in app.routes if hasattr(route, "path")}
        return direct | set(app.openapi()["paths"])
    finally:
        app.state.steward.close()


def test_every_document_names_its_api_version_kind_and_name() -> None:
    assert {name for name, _ in DOCUMENTS} >= {
        "namespace.yaml", "postgres.yaml", "secret.example.yaml", "configmap.yaml",
        "gateway.yaml", "scheduler.yaml", "ingress.yaml", "hpa.yaml",
    }  # fmt: skip
    for file, document in DOCUMENTS:
        assert document.get("apiVersion"), file
        assert document.get("kind"), file
        assert document.get("metadata", {}).get("name"), file


def test_everything_lives_in_one_namespace() -> None:
    namespaces = _of_kind("Namespace")
    assert [ns["metadata"]["name"] for ns in namespaces] == [NAMESPACE]
    for file, document in DOCUMENTS:
        if document["kind"] != "Namespace":
            assert document["metadata"].get("namespace") == NAMESPACE, f"{file}: {document['metadata']['name']}"


def test_every_container_runs_the_steward_image_or_postgres() -> None:
    steward_images = {c["image"] for _, c in _steward_containers()}
    assert len(steward_images) == 1, steward_images
    for workload, container in _containers():
        assert STEWARD_IMAGE.match(container["image"]) or POSTGRES_IMAGE.match(container["image"]), workload
    assert {name for name, _ in _steward_containers()} == {"steward-gateway", "steward-scheduler"}


def test_every_steward_variable_set_is_a_setting() -> None:
    fields = _settings_fields()
    names = set()
    for configmap in _of_kind("ConfigMap"):
        names |= set(configmap.get("data", {}))
    for secret in _of_kind("Secret"):
        names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for _, container in _containers():
        names |= {env["name"] for env in container.get("env", [])}
    steward = {name for name in names if name.upper().startswith("STEWARD_")}
    assert {"STEWARD_DATABASE_URL", "STEWARD_API_TOKEN", "STEWARD_SCHEDULER", "STEWARD_ARTIFACT_URL"} <= steward
    unknown = {name for name in steward if name.upper().removeprefix("STEWARD_") not in fields}
    assert not unknown, f"not fields of Settings: {sorted(unknown)}"


def test_only_the_scheduler_runs_scheduled_work() -> None:
    def scheduler_flag(workload: str) -> str:
        container = dict(_steward_containers())[workload]
        return {env["name"]: env.get("value") for env in container["env"]}["STEWARD_SCHEDULER"]

    assert scheduler_flag("steward-gateway") == "false"
    assert scheduler_flag("steward-scheduler") == "true"
    scheduler = next(w for w in _workloads() if w["metadata"]["name"] == "steward-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    scheduler_labels = scheduler["spec"]["template"]["metadata"]["labels"]
    for service in _of_kind("Service"):  # it serves no public traffic
        assert not set(service["spec"]["selector"].items()) <= set(scheduler_labels.items())


def test_secret_references_and_values_are_placeholders() -> None:
    (secret,) = _of_kind("Secret")
    values = secret["stringData"]
    assert "data" not in secret
    for key in ("POSTGRES_PASSWORD", "STEWARD_API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert values[key] == PLACEHOLDER, key
    assert f":{PLACEHOLDER}@" in values["STEWARD_DATABASE_URL"]  # the password part of the URL
    keys = set(values)
    for workload, container in _containers():
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys, (workload, env["name"])


def test_probes_hit_routes_the_app_has(app_paths: set[str]) -> None:
    for workload, container in _steward_containers():
        paths = _probe_paths(container)
        assert {"livenessProbe", "readinessProbe"} <= set(container), workload
        assert paths, workload
        for path in paths:
            assert path in app_paths, f"{workload}: {path}"
    gateway = dict(_steward_containers())["steward-gateway"]
    assert "/v2/health/ready" in _probe_paths(gateway)
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_the_gateway_runs_unprivileged_on_a_read_only_root() -> None:
    gateway = next(w for w in _workloads() if w["metadata"]["name"] == "steward-gateway")
    pod = gateway["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert mounts["/tmp"] in empty_dirs
    assert container["args"][:1] == ["--host"] and "--workers" in container["args"]


def test_services_select_pods_that_exist() -> None:
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in _workloads()]
    for service in _of_kind("Service"):
        selector = set(service["spec"]["selector"].items())
        assert any(selector <= set(labels.items()) for labels in pod_labels), service["metadata"]["name"]
    for workload in _workloads():
        selector = set(workload["spec"]["selector"]["matchLabels"].items())
        assert selector <= set(workload["spec"]["template"]["metadata"]["labels"].items())


def test_ingress_and_autoscaler_point_at_what_exists(app_paths: set[str]) -> None:
    services = {s["metadata"]["name"] for s in _of_kind("Service")}
    (ingress,) = _of_kind("Ingress")
    assert ingress["spec"]["tls"]
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert {p["backend"]["service"]["name"] for p in paths} <= services
    assert {"/ui", "/api"} <= {p["path"] for p in paths}
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    deployments = {d["metadata"]["name"] for d in _of_kind("Deployment")}
    assert hpa["spec"]["scaleTargetRef"]["name"] == "steward-gateway" in deployments


def test_the_dockerfile_serves_on_the_services_target_port(app_paths: set[str]) -> None:
    instructions = _dockerfile_instructions()
    froms = [args for op, args in instructions if op == "FROM"]
    assert len(froms) >= 2 and all(image.startswith("python:3.11-slim") for image in froms)  # multi-stage
    (entrypoint,) = [_exec_form(args) for op, args in instructions if op == "ENTRYPOINT"]
    (cmd,) = [_exec_form(args) for op, args in instructions if op == "CMD"]
    command = entrypoint + cmd
    assert command[:2] == ["steward", "up"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert f"EXPOSE {port}" in [f"{op} {args}" for op, args in instructions]
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (gateway_service,) = [s for s in _of_kind("Service") if s["metadata"]["name"] == "steward-gateway"]
    assert [p["targetPort"] for p in gateway_service["spec"]["ports"]] == [port]
    for _, container in _steward_containers():
        assert container["args"][container["args"].index("--port") + 1] == str(port)
        assert [p["containerPort"] for p in container["ports"]] == [port]
    (healthcheck,) = [args for op, args in instructions if op == "HEALTHCHECK"]
    hit = re.findall(rf"http://127\.0\.0\.1:{port}(/[\w/.\-]*)", healthcheck)
    assert hit and hit[0] in app_paths
    installs = " ".join(args for op, args in instructions if op == "RUN")
    assert "[postgres,sklearn,reports]" in installs
