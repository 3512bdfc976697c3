"""Running a model bundle: read model.json, check the artifact's sha256, and answer requests like the gateway."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.domain.records import ModelVersion, Signature
from modelsteward.errors import IntegrityError, InvalidArgument, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.serving.gateway import PredictionSink, Served

BUNDLE_FORMAT = 1
MANIFEST = "model/model.json"


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
        from modelsteward.serving.gateway import Arm, Served, prediction_ids, require_rows, run_arm

        require_rows(len(frame))
        model = self.model
        request_id = request_id or uuid.uuid4().hex
        ids = prediction_ids(request_id, len(frame))
        outputs = run_arm(
            self.deployment,
            Arm("champion", model.ref, model),
            frame,
            request_id=request_id,
            ids=ids,
            checked=checked_against,
            sink=self.sink,
        )
        return Served(
            deployment=self.deployment,
            request_id=request_id,
            prediction_ids=ids,
            outputs=outputs,
            versions=[model.ref],
            arms=["champion"],
        )
