"""The text files of a model bundle: serve.py, the Dockerfile and the README, from the version they serve."""

from __future__ import annotations

import json
import re
from typing import Any

from modelsteward.domain.records import ModelVersion
from modelsteward.errors import InvalidArgument

DEFAULT_PORT = 8080
_EXTENSIONS = {"skops": "skops", "pickle": "pkl", "cloudpickle": "pkl", "yaml": "yaml", "onnx": "onnx"}


def artifact_extension(fmt: str) -> str:
    """``skops`` -> ``skops``, ``pickle`` -> ``pkl``, ``yaml`` -> ``yaml``; other formats as a safe name."""
    return _EXTENSIONS.get(fmt) or re.sub(r"[^A-Za-z0-9]+", "-", fmt).strip("-").lower() or "bin"


def python_tag(version: ModelVersion) -> str:
    """``3.11`` for a version registered on Python 3.11.7: the base image's tag."""
    match = re.match(r"(\d+)\.(\d+)", version.requirements.python)
    if match is None:
        raise InvalidArgument(
            f"{version.ref} records Python {version.requirements.python!r}, not a version number",
            details={"model_version": version.ref},
        )
    return f"{match.group(1)}.{match.group(2)}"


SERVE_PY = '''"""Serve the model in this bundle: python serve.py [--host 0.0.0.0] [--port 8080]

Set STEWARD_LOG_DIR to keep every prediction in a Parquet prediction log there.
"""

import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent
# The bundled copy of modelsteward comes first, whatever else is installed.
sys.path.insert(0, str(BUNDLE))

from modelsteward.api.bundle_app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--bundle", str(BUNDLE), *sys.argv[1:]]))
'''


def dockerfile(version: ModelVersion) -> str:
    probe = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{DEFAULT_PORT}/v2/health/live', timeout=4)"
    )
    return f"""# {version.ref} ({version.kind}), packaged by Model Steward: serves it without the catalog.
FROM python:{python_tag(version)}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r requirements.txt
COPY . /app
RUN useradd --create-home --uid 10001 steward
USER steward
EXPOSE {DEFAULT_PORT}
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD {json.dumps(["python", "-c", probe])}
CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "{DEFAULT_PORT}"]
"""


# -- the README's examples ---------------------------------------------------------------------------------

_PLACEHOLDERS = {"integer": 0, "number": 0.0, "string": "text", "boolean": False, "datetime": "2024-01-01T00:00:00"}


def example_row(version: ModelVersion) -> dict[str, Any]:
    """The first row of the version's input example (placeholders by type when it has none)."""
    row = (version.input_example or [{}])[0]
    return {c.name: row.get(c.name, _PLACEHOLDERS[c.type]) for c in version.signature.inputs}


def _v2_example(version: ModelVersion, *, binary_outputs: bool = False) -> dict[str, Any]:
    from modelsteward.serving.protocols.v2_wire import DATATYPE_OF_COLUMN

    row = example_row(version)
    doc: dict[str, Any] = {
        "id": "example-1",
        "inputs": [
            {"name": c.name, "shape": [1], "datatype": DATATYPE_OF_COLUMN[c.type], "data": [row[c.name]]}
            for c in version.signature.inputs
        ],
    }
    if binary_outputs:
        doc["parameters"] = {"binary_data_output": True}
    return doc


def _shell_quote(doc: Any) -> str:
    return "'" + json.dumps(doc).replace("'", "'\\''") + "'"


def readme(version: ModelVersion) -> str:
    name, port = version.name, DEFAULT_PORT
    base = f"http://localhost:{port}"
    image = re.sub(r"[^a-z0-9._-]+", "-", f"{name}-{version.version}".lower())
    json_body = {"id": "example-1", "dataframe_records": [example_row(version)]}
    inputs = ", ".join(f"`{c.name}` ({c.type})" for c in version.signature.inputs)
    outputs = ", ".join(f"`{c.name}` ({c.type})" for c in version.signature.outputs) or "as the model returns them"
    packages = ", ".join(f"{k} {v}" for k, v in version.requirements.packages.items()) or "none recorded"
    return f"""# {version.ref}: a Model Steward bundle

This directory serves **{version.ref}** ({version.kind} model, artifact sha256 `{version.artifact.sha256}`)
on its own: no catalog, no database, no network access to a registry. It speaks the same protocols as the
Model Steward gateway, so its answers equal the gateway's for the same rows.

- inputs: {inputs}
- outputs: {outputs}
- registered {version.created_at:%Y-%m-%d %H:%M} UTC by {version.created_by or "unknown"}, on Python
  {version.requirements.python} ({version.requirements.platform}) with {packages}

| path | what |
| --- | --- |
| `model/artifact.{artifact_extension(version.artifact.format)}` | the artifact, byte for byte as registered |
| `model/model.json` | the version's record: signature, requirements, sha256, provenance |
| `modelsteward/` | the Model Steward source that loads and serves it |
| `requirements.txt` | pinned dependencies |
| `serve.py` | the server: `python serve.py [--host 0.0.0.0] [--port {port}]` |
| `Dockerfile` | a `python:{python_tag(version)}-slim` image running as a non-root user |

At start the server checks the artifact's sha256 against `model/model.json` and refuses to start if they
differ.

## Run it

With Docker:

```sh
docker build -t {image} .
docker run -p {port}:{port} {image}
```

Or in any Python {python_tag(version)} environment:

```sh
pip install -r requirements.txt && python serve.py --port {port}
```

To keep every prediction (a Parquet dataset, one partition per day, readable with DuckDB or pandas), set
`STEWARD_LOG_DIR`, e.g. `docker run -p {port}:{port} -v "$PWD/logs:/logs" -e STEWARD_LOG_DIR=/logs {image}`
(the directory must be writable by uid 10001). Rows are flushed every second and on shutdown (SIGTERM).

## Call it

Open Inference Protocol v2 (KServe, Triton, MLServer clients), JSON:

```sh
curl -s -X POST {base}/v2/models/{name}/infer -H 'Content-Type: application/json' \\
  -d {_shell_quote(_v2_example(version))}
```

Open Inference Protocol v2 with the binary tensor extension (outputs as raw little-endian tensors after a JSON
header whose length is in the `Inference-Header-Content-Length` response header; inputs may be sent the same
way, with that request header):

```sh
curl -s -X POST {base}/v2/models/{name}/infer -H 'Content-Type: application/json' -D headers.txt \\
  -o response.bin -d {_shell_quote(_v2_example(version, binary_outputs=True))}
```

Plain JSON (`dataframe_records`, `dataframe_split`, `instances` or `inputs`):

```sh
curl -s -X POST {base}/api/v1/deployments/{name}/predict -H 'Content-Type: application/json' \\
  -d {_shell_quote(json_body)}
```

Every answer names the version in the `x-steward-model-version` header and carries one prediction id per
row. Metadata and health: `GET /v2`, `GET /v2/models/{name}`, `GET /v2/models/{name}/ready`,
`GET /v2/health/live`, `GET /v2/health/ready`, and `GET /bundle` for what this bundle holds.
"""
