"""Model bundles: one version, its artifact, a copy of modelsteward and a server, to run anywhere without the catalog.

``write_bundle`` lays out a directory that a container build, a virtualenv or an edge device can run as is::

    model/artifact.<ext>   the artifact bytes exactly as registered
    model/model.json       the version as the catalog knew it (signature, requirements, sha256, ...)
    modelsteward/          a copy of this package's source, so no package index needs to have it
    requirements.txt       pinned: the version's captured packages plus what the bundled server needs
    serve.py               ``python serve.py [--host H] [--port P]``
    Dockerfile, README.md, .dockerignore

``open_bundle`` reads one back, refusing an artifact whose sha256 differs from model.json, and
``BundleServer`` answers requests for it the way the gateway answers a deployment of one champion.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.domain.records import ModelVersion, Signature
from modelsteward.errors import (
    AlreadyExists,
    IntegrityError,
    InvalidArgument,
    MissingDependency,
    ModelFailure,
    NotFound,
)

if TYPE_CHECKING:
    import pandas as pd

    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.gateway import PredictionSink, Served

BUNDLE_FORMAT = 1
MANIFEST = "model/model.json"
DEFAULT_PORT = 8080
PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The source of the running modelsteward, copied into every bundle (this module is modelsteward/serving/...)."""

# The file extension of each artifact format the built-in kinds write; other formats keep their own name.
_EXTENSIONS = {"skops": "skops", "pickle": "pkl", "cloudpickle": "pkl", "yaml": "yaml", "onnx": "onnx"}
_EXTENSIONS["mlflow-zip"] = "zip"
# What of the package source goes into a bundle: code and package data, never caches or editor files.
_SOURCE_SUFFIXES = frozenset(
    {".py", ".pyi", ".typed", ".yaml", ".yml", ".json", ".toml", ".mako", ".sql", ".html", ".css", ".js", ".svg"}
)
# Catalog state that changes after packaging; a bundle is a snapshot of the immutable version only.
_NOT_BUNDLED = {"aliases"}


# -- writing ---------------------------------------------------------------------------------------------


def check_out_dir(out: Path) -> None:
    """Refuse a target that exists and is not an empty directory (before any download is wasted on it)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AlreadyExists(
            f"{out} exists and is not a directory; give a new or empty directory", details={"path": str(out)}
        )
    if out.is_dir() and any(out.iterdir()):
        raise AlreadyExists(
            f"{out} is not empty; give a new or empty directory for the bundle", details={"path": str(out)}
        )


def write_bundle(version: ModelVersion, artifact: bytes, out: Path) -> Path:
    """Write a self-contained bundle of ``version`` into ``out`` (new or empty) and return its path.

    ``artifact`` must be the version's registered bytes (their sha256 is checked). Pure file writing:
    no catalog access, so any face can fetch the version and bytes its own way.

    >>> version, data = st.artifact_bytes("credit-risk@production")   # doctest: +SKIP
    >>> write_bundle(version, data, Path("bundle"))                    # doctest: +SKIP
    """
    out = Path(out)
    actual = hashlib.sha256(artifact).hexdigest()
    if actual != version.artifact.sha256 or len(artifact) != version.artifact.size:
        raise IntegrityError(
            f"the artifact given for {version.ref} has sha256 {actual[:12]}... ({len(artifact)} bytes) but "
            f"{version.artifact.sha256[:12]}... ({version.artifact.size} bytes) was registered",
            details={"model_version": version.ref},
        )
    check_out_dir(out)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_contents(version, artifact, out)
    except BaseException:
        # Leave no half-written bundle behind, but never remove what was there before.
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for child in out.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return out


def _write_contents(version: ModelVersion, artifact: bytes, out: Path) -> None:
    file_name = f"artifact.{artifact_extension(version.artifact.format)}"
    (out / "model").mkdir()
    (out / "model" / file_name).write_bytes(artifact)
    copy_package_source(out / "modelsteward")
    manifest = bundle_manifest(version, file_name, modelsteward_version=source_version(out / "modelsteward"))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    (out / "requirements.txt").write_text("\n".join(bundle_requirements(version)) + "\n", encoding="utf-8")
    (out / "serve.py").write_text(SERVE_PY, encoding="utf-8")
    (out / "Dockerfile").write_text(dockerfile(version), encoding="utf-8")
    (out / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\nlogs/\n", encoding="utf-8")
    (out / "README.md").write_text(readme(version), encoding="utf-8")


def artifact_extension(fmt: str) -> str:
    """``skops`` -> ``skops``, ``pickle`` -> ``pkl``, ``yaml`` -> ``yaml``; other formats as a safe name."""
    return _EXTENSIONS.get(fmt) or re.sub(r"[^A-Za-z0-9]+", "-", fmt).strip("-").lower() or "bin"


def bundle_manifest(version: ModelVersion, file_name: str, *, modelsteward_version: str) -> dict[str, Any]:
    """model.json: the version's immutable record, the artifact file's name and the packaging modelsteward."""
    record = version.model_dump(mode="json", exclude=_NOT_BUNDLED)
    artifact = record.pop("artifact")
    head = {
        "bundle_format": BUNDLE_FORMAT,
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "kind": version.kind,
        "artifact": {"file": file_name, **artifact},
        "modelsteward_version": modelsteward_version,
    }
    return {**head, **{k: v for k, v in record.items() if k not in head}}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


def runtime_requirements() -> list[str]:
    """What the bundled modelsteward needs to serve: its non-extra dependencies, pinned to the installed versions."""
    try:
        declared = metadata.requires("modelsteward") or []
    except metadata.PackageNotFoundError as e:
        raise MissingDependency(
            "modelsteward is not installed as a distribution, so its dependencies are unknown; "
            "package from an installed modelsteward (pip install modelsteward)"
        ) from e
    pinned = []
    for spec in declared:
        requirement, _, marker = spec.partition(";")
        if "extra" in marker:
            continue
        match = _REQUIREMENT.match(requirement)
        if match is None:
            continue
        name, extras = match.group(1), match.group(2) or ""
        try:
            line = f"{name}{extras}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            line = requirement.strip()  # declared but absent here: keep the declared range
        pinned.append(f"{line}; {marker.strip()}" if marker.strip() else line)
    return pinned


def bundle_requirements(version: ModelVersion) -> list[str]:
    """requirements.txt's lines: the version's captured packages (they win: the model was built with them),
    then the server's runtime dependencies, one line per distribution, sorted. modelsteward itself is not
    listed: the bundle carries its source."""
    lines: dict[str, str] = {}
    for name, pinned in sorted(version.requirements.packages.items()):
        if _normalized(name) != "modelsteward":
            lines[_normalized(name)] = f"{name}=={pinned}"
    for line in runtime_requirements():
        match = _REQUIREMENT.match(line)
        assert match is not None
        lines.setdefault(_normalized(match.group(1)), line)
    return [lines[key] for key in sorted(lines)]


def source_version(package_dir: Path) -> str:
    """The ``__version__`` a copy of the modelsteward source declares: what the bundled server will report."""
    match = re.search(r"^__version__ = [\"']([^\"']+)[\"']", (package_dir / "__init__.py").read_text("utf-8"), re.M)
    if match is None:
        raise InvalidArgument(f"{package_dir / '__init__.py'} declares no __version__")
    return match.group(1)


def copy_package_source(target: Path) -> int:
    """Copy the running modelsteward package's code and package data into ``target``; returns the file count."""
    source = PACKAGE_DIR
    copied = 0
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__" and not d.startswith("."))
        relative = Path(directory).relative_to(source)
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix not in _SOURCE_SUFFIXES:
                continue
            destination = target / relative / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(directory) / name, destination)
            copied += 1
    return copied


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


# -- reading and serving -----------------------------------------------------------------------------------


def read_manifest(bundle_dir: Path) -> tuple[ModelVersion, Path, dict[str, Any]]:
    """The version recorded in a bundle, the path of its artifact and the raw model.json."""
    path = Path(bundle_dir) / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(
            f"{bundle_dir} is not a model bundle: it has no {MANIFEST}", details={"path": str(path)}
        ) from None
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}", details={"path": str(path)}) from e
    if not isinstance(doc, dict) or doc.get("bundle_format") != BUNDLE_FORMAT:
        raise InvalidArgument(
            f"{path} is not a bundle this modelsteward reads (bundle_format {BUNDLE_FORMAT} expected)",
            details={"path": str(path)},
        )
    artifact = dict(doc["artifact"])
    file_name = artifact.pop("file")
    record = {key: doc[key] for key in ModelVersion.model_fields if key in doc and key != "artifact"}
    version = ModelVersion.model_validate({**record, "artifact": artifact})
    if Path(file_name).name != file_name:
        raise InvalidArgument(f"{path}: the artifact file must sit beside model.json", details={"path": str(path)})
    return version, path.parent / file_name, doc


def open_bundle(bundle_dir: Path) -> LoadedModel:
    """Load a bundle's model, after checking its artifact against the sha256 and size in model.json."""
    from modelsteward.kinds.base import SavedModel
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.kinds.registry import get_kind

    version, artifact_path, _ = read_manifest(bundle_dir)
    try:
        data = artifact_path.read_bytes()
    except OSError as e:
        raise NotFound(
            f"the artifact of {version.ref} is missing from the bundle: {e}", details={"model_version": version.ref}
        ) from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != version.artifact.sha256 or len(data) != version.artifact.size:
        raise IntegrityError(
            f"the artifact of {version.ref} ({artifact_path}) has sha256 {actual[:12]}... but model.json records "
            f"{version.artifact.sha256[:12]}...; refusing to serve a model that is not the one registered",
            details={"model_version": version.ref, "path": str(artifact_path)},
        )
    kind = get_kind(version.kind)
    native = kind.load(SavedModel(data=data, format=version.artifact.format, metadata=version.artifact.metadata))
    return LoadedModel(kind, native, version)


@dataclass
class BundleServer:
    """Answers requests for one loaded model as the gateway answers a deployment whose only arm is its
    champion: same prediction ids, same ``Served`` answer, same prediction-log rows (deployment = model name)."""

    model: LoadedModel
    sink: PredictionSink | None = None
    deployment: str = field(default="")

    def __post_init__(self) -> None:
        from modelsteward.serving import gateway  # noqa: F401 - imported now, not on the first request

        self.deployment = self.deployment or self.model.version.name

    @property
    def signature(self) -> Signature:
        return self.model.signature

    def serve(
        self, frame: pd.DataFrame, *, request_id: str | None = None, checked_against: Signature | None = None
    ) -> Served:
        """Predict on ``frame``; ``checked_against`` is the signature the decoder already conformed it to."""
        from modelsteward.serving.gateway import Served

        model = self.model
        request_id = request_id or uuid.uuid4().hex
        n = len(frame)
        ids = [request_id] if n == 1 else [f"{request_id}-{i}" for i in range(n)]
        if checked_against is not None and (model.signature is checked_against or model.signature == checked_against):
            names = checked_against.input_names
            prepared = frame if list(frame.columns) == names else frame[names]
        else:
            prepared = model.prepare(frame, allow_extra=True)
        started = time.perf_counter()
        try:
            outputs = model.kind.predict(model.native, prepared)
        except Exception as e:  # noqa: BLE001 - a failing model answers 500, the server stays up
            self._log(prepared, None, request_id, ids, started, error=f"{type(e).__name__}: {e}")
            raise ModelFailure(
                f"{model.ref} failed on this request: {type(e).__name__}: {e}",
                details={"deployment": self.deployment, "model_version": model.ref, "prediction_ids": ids},
            ) from e
        self._log(prepared, outputs, request_id, ids, started)
        return Served(
            deployment=self.deployment,
            request_id=request_id,
            prediction_ids=ids,
            outputs=outputs,
            versions=[model.ref],
            arms=["champion"],
        )

    def _log(
        self,
        inputs: pd.DataFrame,
        outputs: pd.DataFrame | None,
        request_id: str,
        ids: list[str],
        started: float,
        *,
        error: str | None = None,
    ) -> None:
        if self.sink is None:
            return
        from modelsteward.serving.prediction_log import PredictionBatch

        version = self.model.version
        self.sink.append(
            self.deployment,
            PredictionBatch(
                ts=datetime.now(UTC),
                request_id=request_id,
                arm="champion",
                model=version.name,
                version=version.version,
                ref=version.ref,
                latency_ms=(time.perf_counter() - started) * 1000,
                status="error" if error else "ok",
                error=error,
                prediction_ids=ids,
                inputs={str(c): inputs[c].to_numpy() for c in inputs.columns},
                outputs={} if outputs is None else {str(c): outputs[c].to_numpy() for c in outputs.columns},
            ),
        )
