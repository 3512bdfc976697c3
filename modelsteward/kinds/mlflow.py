"""The ``mlflow`` kind: an MLflow model directory, stored as a deterministic zip and run through pyfunc."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.errors import InvalidArgument, InvalidArtifact, SchemaMismatch, require
from modelsteward.kinds.base import SavedModel, outputs_to_frame
from modelsteward.stats.schema import infer_columns

FORMAT = "mlflow-zip"
CACHE_DIR_NAME = "modelsteward-mlflow"

# MLflow column type -> portable column type.
_TYPES: dict[str, ColumnType] = {
    "double": "number",
    "float": "number",
    "long": "integer",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "datetime": "datetime",
}
# Every entry gets the same timestamp and mode, so the zip depends only on names and contents.
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = (stat.S_IFREG | 0o644) << 16
# Loading a model with code_paths byte-compiles its code in place; that must not change the artifact.
_SKIPPED_DIRS = {"__pycache__"}
_DRIVE = re.compile(r"^[A-Za-z]:")


def _quiet_telemetry() -> None:
    # MLflow 3 reports usage from any process that imports it. Loading a governed model must not
    # phone home; a user who wants it can still set the variable to "false" before we get here.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class MlflowKind:
    """Holds a model saved by MLflow (``mlflow.<flavour>.save_model`` or a downloaded run artifact):
    give the path of the directory that contains its ``MLmodel`` file.

    The directory is stored as a zip whose bytes depend only on the files' names and contents, so
    the same model registered twice has the same sha256. It is loaded through ``mlflow.pyfunc``,
    from a cache directory named by that sha256 (under the system temp directory) that later loads
    of the same artifact reuse. The signature is MLflow's when the model has one, else it is
    inferred from the input example. Outputs are not declared: pyfunc does not say their names.
    """

    name: ClassVar[str] = "mlflow"
    packages: ClassVar[tuple[str, ...]] = ("mlflow-skinny", "mlflow", "cloudpickle")

    def detect(self, obj: Any) -> bool:
        try:
            if not isinstance(obj, (str, PathLike)):
                return False
            path = Path(obj)
            return path.is_dir() and (path / "MLmodel").is_file()
        except Exception:  # noqa: BLE001 - detect answers a question, it never fails
            return False

    def save(self, obj: Any) -> SavedModel:
        if not self.detect(obj):
            what = repr(str(obj)) if isinstance(obj, (str, PathLike)) else f"a {type(obj).__name__}"
            raise InvalidArtifact(
                f"{what} is not an MLflow model: give the path of a directory that contains an MLmodel file",
                details={"kind": self.name},
            )
        root = Path(obj)
        mlmodel = _read_mlmodel((root / "MLmodel").read_bytes(), kind=self.name)
        data = _zip_directory(root, kind=self.name)
        return SavedModel(data=data, format=FORMAT, metadata=_describe(mlmodel))

    def load(self, saved: SavedModel) -> Any:
        if saved.format != FORMAT:
            raise InvalidArtifact(f"the mlflow kind cannot read format {saved.format!r}", details={"kind": self.name})
        directory = _extract(saved.data, kind=self.name)
        _quiet_telemetry()
        pyfunc = require("mlflow.pyfunc", "mlflow")
        try:
            return pyfunc.load_model(str(directory))
        except Exception as e:  # noqa: BLE001 - flavours fail with MlflowException, ImportError, pickle errors...
            raise InvalidArtifact(f"MLflow cannot load the model: {e}", details={"kind": self.name}) from e

    def signature(self, native: Any, example: pd.DataFrame | None) -> Signature:
        declared, problem = _declared_inputs(native)
        if declared is not None:
            return Signature(inputs=declared)
        if example is not None:
            return Signature(inputs=infer_columns(example))
        raise InvalidArgument(
            f"{problem}: pass input_example=... (a few rows of the model's input) so the signature can be recorded",
            details={"field": "input_example"},
        )

    def predict(self, native: Any, frame: pd.DataFrame) -> pd.DataFrame:
        _quiet_telemetry()
        exceptions = require("mlflow.exceptions", "mlflow")
        try:
            result = native.predict(_as_mlflow_types(frame, _input_schema(native)))
        except exceptions.MlflowException as e:
            full = str(getattr(e, "message", e))
            message = _reason(full)
            if full.startswith("Failed to enforce schema"):
                raise SchemaMismatch(f"the MLflow model refused the input: {message}") from e
            raise InvalidArgument(f"the MLflow model failed on this input: {message}") from e
        return outputs_to_frame(result, frame.index)


def _read_mlmodel(text: bytes, *, kind: str) -> dict[str, Any]:
    import yaml

    try:
        mlmodel = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidArtifact(f"the MLmodel file is not valid YAML: {e}", details={"kind": kind}) from e
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    if not isinstance(flavors, dict) or "python_function" not in flavors:
        raise InvalidArtifact(
            "the MLflow model has no python_function flavour; Model Steward runs MLflow models through pyfunc",
            details={"kind": kind, "flavors": sorted(flavors) if isinstance(flavors, dict) else []},
        )
    return mlmodel


def _describe(mlmodel: dict[str, Any]) -> dict[str, Any]:
    pyfunc = mlmodel["flavors"]["python_function"] or {}
    return {
        "flavors": sorted(mlmodel["flavors"]),
        "loader_module": pyfunc.get("loader_module"),
        "mlflow_version": mlmodel.get("mlflow_version"),
        "python_version": pyfunc.get("python_version"),
        "has_signature": bool(mlmodel.get("signature")),
    }


def _zip_directory(root: Path, *, kind: str) -> bytes:
    """The directory as a zip with sorted entries, fixed timestamps and modes: same files, same bytes."""
    files: list[tuple[str, Path]] = []
    for current, dirs, names in os.walk(root):
        here = Path(current)
        for d in dirs:
            if (here / d).is_symlink() and d not in _SKIPPED_DIRS:
                raise InvalidArtifact(
                    f"the MLflow model links to a directory ({(here / d).relative_to(root)}); copy it in instead",
                    details={"kind": kind},
                )
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        files.extend(((here / n).relative_to(root).as_posix(), here / n) for n in names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # Unix, whatever the platform that wrote it
            try:
                content = path.read_bytes()
            except OSError as e:
                raise InvalidArtifact(f"cannot read {name} of the MLflow model: {e}", details={"kind": kind}) from e
            archive.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return buffer.getvalue()


def _safe_names(archive: zipfile.ZipFile, *, kind: str) -> list[str]:
    names = []
    for name in archive.namelist():
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts:
            raise InvalidArtifact(
                f"the archive holds an entry that points outside it: {name!r}",
                details={"kind": kind, "entry": name},
            )
        names.append(name)
    if "MLmodel" not in names:
        raise InvalidArtifact("the archive has no MLmodel file at its root", details={"kind": kind})
    return names


def _cache_root() -> Path | None:
    """The shared extraction cache, or ``None`` when it is not private to this user (nothing is reused)."""
    root = Path(tempfile.gettempdir()) / CACHE_DIR_NAME
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    # Another user able to write here could plant code that loading would run.
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return None
    return root


def _extract(data: bytes, *, kind: str) -> Path:
    """The directory holding the archive's files, extracted once per content and then reused."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InvalidArtifact(f"the artifact is not a readable zip archive: {e}", details={"kind": kind}) from e
    with archive:
        _safe_names(archive, kind=kind)
        root = _cache_root()
        target = root / hashlib.sha256(data).hexdigest() if root is not None else None
        if target is not None and (target / "MLmodel").is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
        try:
            archive.extractall(staging)
        except Exception as e:  # noqa: BLE001 - bad CRCs, truncated members, unsupported compression...
            shutil.rmtree(staging, ignore_errors=True)
            raise InvalidArtifact(f"cannot extract the MLflow model: {e}", details={"kind": kind}) from e
    if target is None:
        return staging
    try:
        staging.rename(target)  # readers see a complete directory or none
    except OSError:
        if not (target / "MLmodel").is_file():
            return staging  # the cache entry is unusable (not ours to delete): run from this copy
        shutil.rmtree(staging, ignore_errors=True)  # another process extracted the same content first
    return target


def _input_schema(native: Any) -> Any | None:
    metadata = getattr(native, "metadata", None)
    get = getattr(metadata, "get_input_schema", None)
    return get() if callable(get) else None


def _declared_inputs(native: Any) -> tuple[list[ColumnSpec] | None, str]:
    """The inputs of the model's MLflow signature, or ``None`` and why they cannot be used."""
    schema = _input_schema(native)
    if schema is None:
        return None, "the MLflow model has no signature"
    if schema.is_tensor_spec() or not schema.has_input_names():
        return None, "the MLflow model's signature is a tensor or has unnamed columns"
    specs = []
    for col in schema.inputs:
        type_name = getattr(col.type, "name", None)
        if type_name not in _TYPES:
            return (
                None,
                f"the MLflow signature's column {col.name!r} has type {col.type}, which is not tabular",
            )
        specs.append(ColumnSpec(name=col.name, type=_TYPES[type_name], nullable=not col.required))
    return specs, ""


def _as_mlflow_types(frame: pd.DataFrame, schema: Any | None) -> pd.DataFrame:
    """Cast the columns MLflow's schema enforcement will not widen itself: float32, int32, naive datetimes."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return frame
    casts: dict[str, Any] = {}
    for col in schema.inputs:
        if col.name not in frame.columns:
            continue
        series = frame[col.name]
        type_name = getattr(col.type, "name", None)
        if type_name == "float" and pd.api.types.is_float_dtype(series.dtype) and series.dtype != np.float32:
            casts[col.name] = series.astype(np.float32)
        elif type_name == "integer" and pd.api.types.is_integer_dtype(series.dtype) and series.dtype != np.int32:
            info = np.iinfo(np.int32)
            if len(series) and (series.min() < info.min or series.max() > info.max):
                raise SchemaMismatch(
                    f"column {col.name!r} holds values outside the 32-bit range the MLflow signature declares",
                    details={"column": col.name},
                )
            casts[col.name] = series.astype(np.int32)
        elif type_name == "datetime" and isinstance(series.dtype, pd.DatetimeTZDtype):
            casts[col.name] = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return frame.assign(**casts) if casts else frame


def _reason(message: str) -> str:
    # MLflow's schema errors quote the whole input; keep only the reason, not the rows.
    return message.rsplit("Error: ", 1)[-1].strip() if "Error: " in message else message
