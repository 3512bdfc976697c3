"""Preparing a registration where the model lives: serialize, describe, fingerprint, capture.

This runs in the caller's process for both bodies of the facade: embedded, it feeds the catalog
directly; remote, its result is uploaded, so training data never leaves the data scientist's machine
(only its fingerprint does).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelsteward.catalog.environment import capture, module_roots
from modelsteward.catalog.source import capture_source
from modelsteward.domain.records import DatasetFingerprint, ModelUpdate, Requirements, Signature, Source
from modelsteward.domain.refs import check_name
from modelsteward.errors import InvalidArgument, InvalidArtifact, StewardError
from modelsteward.kinds.base import ModelKind, SavedModel
from modelsteward.kinds.registry import get_kind, infer_kind
from modelsteward.stats.fingerprint import fingerprint
from modelsteward.stats.schema import conform, infer_columns, to_frame

EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class DatasetInput:
    role: str
    name: str
    uri: str | None
    fingerprint: DatasetFingerprint


@dataclass(frozen=True)
class Registration:
    """Everything the catalog needs to record a version, already checked and serialized."""

    name: str
    kind: str
    saved: SavedModel
    signature: Signature
    requirements: Requirements
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    version_tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    model_update: ModelUpdate = field(default_factory=ModelUpdate)
    datasets: list[DatasetInput] = field(default_factory=list)
    source: Source | None = None
    input_example: list[dict[str, Any]] | None = None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"no such file: {path}", details={"field": "path", "value": str(path)})
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:
        raise InvalidArgument(f"cannot read {path}: {e}", details={"field": "path", "value": str(path)}) from e
    raise InvalidArgument(
        f"unsupported file type {suffix or '(none)'} for {path.name}: use .csv or .parquet",
        details={"field": "path", "value": str(path)},
    )


def _as_frame(data: Any, field_name: str) -> tuple[pd.DataFrame, str | None]:
    if isinstance(data, (str, Path)):
        return read_table(data), str(Path(data).resolve())
    try:
        return to_frame(data), None
    except InvalidArgument as e:
        raise InvalidArgument(f"{field_name}: {e.message}", details={"field": field_name}) from e


def check_metrics(metrics: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidArgument(
                f"metric {key!r} must be a number, got {type(value).__name__}",
                details={"field": f"metrics.{key}"},
            )
        if not math.isfinite(float(value)):
            raise InvalidArgument(f"metric {key!r} must be finite, got {value}", details={"field": f"metrics.{key}"})
        out[str(key)] = float(value)
    return out


def jsonable(value: Any) -> Any:
    """Parameters and examples as plain JSON values (NumPy scalars, timestamps and NaN handled)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def example_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # pandas' JSON writer turns NaN into null and timestamps into ISO strings, in C.
    head = frame.head(EXAMPLE_ROWS)
    return json.loads(head.to_json(orient="records", date_format="iso"))


def resolve_kind(model: Any, kind: str | None) -> ModelKind:
    if kind is None:
        return infer_kind(model)
    if not isinstance(kind, str):
        raise InvalidArgument("kind must be a string such as 'sklearn' or 'rules'", details={"field": "kind"})
    return get_kind(kind)


def describe(kind: ModelKind, native: Any, example: pd.DataFrame | None, owner: str) -> Signature:
    """The full signature: inputs from the kind, outputs from running the model on the example."""
    signature = kind.signature(native, example)
    if example is None:
        return signature
    frame = conform(example, signature, owner=owner, allow_extra=True)
    try:
        output = kind.predict(native, frame)
    except StewardError:
        raise
    except Exception as e:  # noqa: BLE001 - a model that cannot predict on its own example is refused
        raise InvalidArgument(
            f"{owner} fails on its input example: {type(e).__name__}: {e}", details={"field": "input_example"}
        ) from e
    outputs = signature.outputs or infer_columns(output.reset_index(drop=True))
    return Signature(inputs=signature.inputs, outputs=outputs)


def prepare_registration(
    name: str,
    model: Any,
    *,
    kind: str | None = None,
    input_example: Any = None,
    training_data: Any = None,
    datasets: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    version_tags: dict[str, Any] | None = None,
    description: str = "",
    model_update: ModelUpdate | None = None,
    capture_git: bool = True,
) -> Registration:
    """Check and serialize a model for registration; nothing is stored yet."""
    check_name(name)
    model_kind = resolve_kind(model, kind)
    saved = model_kind.save(model)
    # Round-trip now, so a version that cannot load is never recorded (unless the kind vouches for it).
    native = saved.native if saved.native is not None else model_kind.load(saved)

    example: pd.DataFrame | None = None
    if input_example is not None:
        example, _ = _as_frame(input_example, "input_example")
    named_data: list[tuple[str, Any]] = []
    if training_data is not None:
        named_data.append(("training", training_data))
    for role, data in (datasets or {}).items():
        named_data.append((role, data))
    dataset_inputs: list[DatasetInput] = []
    for role, data in named_data:
        if role not in ("training", "validation", "test", "reference", "other"):
            raise InvalidArgument(
                f"unknown data set role {role!r}: use training, validation, test, reference or other",
                details={"field": "datasets"},
            )
        frame, uri = _as_frame(data, f"{role}_data")
        if example is None and role == "training":
            example = frame.head(EXAMPLE_ROWS)
        label = Path(uri).name if uri else f"{name}-{role}"
        dataset_inputs.append(DatasetInput(role=role, name=label, uri=uri, fingerprint=fingerprint(frame)))

    signature = describe(model_kind, native, example, owner=name)
    if example is not None:
        used = [c for c in signature.input_names if c in example.columns]
        input_example_records = example_records(example[used])
    else:
        input_example_records = None
    return Registration(
        name=name,
        kind=model_kind.name,
        saved=saved,
        signature=signature,
        requirements=capture(model_kind.packages, module_roots(model)),
        metrics=check_metrics(metrics),
        params=jsonable(dict(params or {})),
        version_tags={str(k): str(v) for k, v in (version_tags or {}).items()},
        description=description or "",
        model_update=model_update or ModelUpdate(),
        datasets=dataset_inputs,
        source=capture_source() if capture_git else None,
        input_example=input_example_records,
    )


class RegistrationManifest(BaseModel):
    """A registration as JSON, sent next to the artifact bytes when registering over HTTP."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    format: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    artifact_metadata: dict[str, Any] = Field(default_factory=dict)
    signature: Signature
    requirements: Requirements
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    version_tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""
    model_update: ModelUpdate = Field(default_factory=ModelUpdate)
    datasets: list[DatasetManifest] = Field(default_factory=list)
    source: Source | None = None
    input_example: list[dict[str, Any]] | None = None


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["training", "validation", "test", "reference", "other"]
    name: str = Field(min_length=1, max_length=256)
    uri: str | None = None
    fingerprint: DatasetFingerprint


RegistrationManifest.model_rebuild()


def to_manifest(registration: Registration) -> tuple[dict[str, Any], bytes]:
    """The JSON manifest and the artifact bytes of a prepared registration."""
    manifest = RegistrationManifest(
        kind=registration.kind,
        format=registration.saved.format,
        sha256=hashlib.sha256(registration.saved.data).hexdigest(),
        artifact_metadata=registration.saved.metadata,
        signature=registration.signature,
        requirements=registration.requirements,
        metrics=registration.metrics,
        params=registration.params,
        version_tags=registration.version_tags,
        description=registration.description,
        model_update=registration.model_update,
        datasets=[
            DatasetManifest(role=d.role, name=d.name, uri=d.uri, fingerprint=d.fingerprint)  # type: ignore[arg-type]
            for d in registration.datasets
        ],
        source=registration.source,
        input_example=registration.input_example,
    )
    return manifest.model_dump(mode="json"), registration.saved.data


def from_manifest(name: str, manifest: dict[str, Any] | str | bytes, data: bytes) -> Registration:
    """Rebuild a registration from an upload; the bytes must hash to the manifest's sha256."""
    try:
        if isinstance(manifest, (str, bytes)):
            parsed = RegistrationManifest.model_validate_json(manifest)
        else:
            parsed = RegistrationManifest.model_validate(manifest)
    except ValidationError as e:
        first = e.errors()[0]
        field_name = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise InvalidArgument(
            f"invalid registration manifest: {field_name}: {first['msg']}",
            details={"field": f"manifest.{field_name}"},
        ) from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != parsed.sha256:
        raise InvalidArtifact(
            f"the uploaded artifact hashes to {actual[:12]}... but the manifest says {parsed.sha256[:12]}...; "
            "it was damaged in transit",
            details={"field": "artifact", "expected_sha256": parsed.sha256, "actual_sha256": actual},
        )
    check_name(name)
    return Registration(
        name=name,
        kind=parsed.kind,
        saved=SavedModel(data=data, format=parsed.format, metadata=parsed.artifact_metadata),
        signature=parsed.signature,
        requirements=parsed.requirements,
        metrics=check_metrics(parsed.metrics),
        params=parsed.params,
        version_tags=parsed.version_tags,
        description=parsed.description,
        model_update=parsed.model_update,
        datasets=[
            DatasetInput(role=d.role, name=d.name, uri=d.uri, fingerprint=d.fingerprint) for d in parsed.datasets
        ],
        source=parsed.source,
        input_example=parsed.input_example,
    )
