"""What the declarative kinds (rules, optimization) share: reading a YAML definition and its columns."""

from __future__ import annotations

import pathlib
from typing import Annotated, Any, TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from modelsteward.domain.records import ColumnSpec, ColumnType
from modelsteward.domain.yaml_source import Locate, definition_error, load_yaml, located
from modelsteward.errors import InvalidArgument, InvalidDefinition

YAML_SUFFIXES = (".yaml", ".yml")
MAX_DEFINITION_BYTES = 10 * 1024 * 1024

M = TypeVar("M", bound=BaseModel)

# One row of each column type: evaluating a definition on it finds type errors before any data arrives.
DUMMY_VALUES: dict[str, np.ndarray] = {
    "integer": np.array([1.0]),
    "number": np.array([1.0]),
    "string": np.array(["x"], dtype=object),
    "boolean": np.array([True]),
    "datetime": np.array(["2000-01-01"], dtype="datetime64[ns]"),
}


class Strict(BaseModel):
    """A definition block: unknown keys are errors (a misspelt key must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnDecl(Strict):
    """A declared column: ``name: number`` or ``name: {type: number, nullable: true}``."""

    type: ColumnType
    nullable: bool = False
    description: str = ""


def _column_shorthand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


Columns = Annotated[dict[str, ColumnDecl], BeforeValidator(_column_shorthand)]


def column_specs(columns: dict[str, ColumnDecl]) -> list[ColumnSpec]:
    return [ColumnSpec(name=name, type=decl.type, nullable=decl.nullable) for name, decl in columns.items()]


def dummy_frame(columns: list[ColumnSpec]) -> pd.DataFrame:
    return pd.DataFrame({c.name: DUMMY_VALUES[c.type] for c in columns})


def parse_definition(text: str, *, source: str, model: type[M], what: str) -> tuple[M, Locate]:
    """Load YAML ``text`` and validate it as ``model``; every error names ``source`` and the line."""
    data, locate = load_yaml(text, source=source)
    if not isinstance(data, dict):
        raise located(f"{what} must be a YAML mapping of keys", source=source, line=1 if data is not None else None)
    try:
        return model.model_validate(data), locate
    except ValidationError as e:
        raise definition_error(e, locate, source) from e


def looks_like_path(obj: Any) -> bool:
    if isinstance(obj, pathlib.PurePath):
        return True
    return isinstance(obj, str) and "\n" not in obj and obj.strip().lower().endswith(YAML_SUFFIXES)


def read_source(obj: Any, *, default_source: str) -> tuple[str, str]:
    """The YAML text and a source name for a path (str or Path) to a .yaml/.yml file, or YAML text."""
    if looks_like_path(obj):
        path = pathlib.Path(obj)
        if path.suffix.lower() not in YAML_SUFFIXES:
            raise InvalidArgument(f"{path} is not a .yaml or .yml file", details={"field": "path", "path": str(path)})
        try:
            if path.stat().st_size > MAX_DEFINITION_BYTES:
                raise InvalidArgument(f"{path} is larger than 10 MB", details={"path": str(path)})
            return path.read_text(encoding="utf-8"), path.name
        except FileNotFoundError as e:
            raise InvalidArgument(f"no such file: {path}", details={"field": "path", "path": str(path)}) from e
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"cannot read {path}: {e}", details={"field": "path", "path": str(path)}) from e
    if isinstance(obj, str):
        return obj, default_source
    raise InvalidArgument(f"expected a path or YAML text, got {type(obj).__name__}", details={"field": "model"})


def peek_keys(obj: Any) -> dict[str, Any] | None:
    """The top-level mapping of a YAML path or string, or None; never raises (for ``detect``)."""
    try:
        if not isinstance(obj, (str, pathlib.PurePath)):
            return None
        if isinstance(obj, str) and not looks_like_path(obj) and ":" not in obj:
            return None
        text, _ = read_source(obj, default_source="<detect>")
        data, _ = load_yaml(text, source="<detect>")
    except (InvalidArgument, InvalidDefinition, OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def decode_artifact(data: bytes, *, kind: str) -> str:
    """The YAML text of a stored definition; bytes that are not UTF-8 are not one."""
    from modelsteward.errors import InvalidArtifact

    if not isinstance(data, (bytes, bytearray)):
        raise InvalidArtifact(f"a {kind} artifact must be bytes", details={"kind": kind})
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidArtifact(
            f"the {kind} artifact is not UTF-8 YAML text: {e.reason} at byte {e.start}",
            details={"kind": kind},
        ) from e
