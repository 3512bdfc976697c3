"""Finding kinds: by name through the ``modelsteward.kinds`` entry points, or by looking at an object."""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
from typing import Any

from modelsteward.errors import MissingDependency, UnknownKind
from modelsteward.kinds.base import ModelKind

ENTRY_POINT_GROUP = "modelsteward.kinds"

# The built-in kinds, also declared as entry points in pyproject.toml; listed here so that a source
# checkout that was never pip-installed still finds them. Order matters for inference: the most
# specific detector first, the catch-all ``python`` kind last.
BUILTIN_KINDS = {
    "onnx": "modelsteward.kinds.onnx:OnnxKind",
    "mlflow": "modelsteward.kinds.mlflow:MlflowKind",
    "rules": "modelsteward.kinds.rules:RulesKind",
    "optimization": "modelsteward.kinds.optimization:OptimizationKind",
    "sklearn": "modelsteward.kinds.sklearn:SklearnKind",
    "python": "modelsteward.kinds.python:PythonKind",
}


def _load_target(target: str) -> type:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@functools.cache
def _targets() -> dict[str, str]:
    found = dict(BUILTIN_KINDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def kind_names() -> list[str]:
    """Every kind this installation knows, built-in first."""
    return list(_targets())


@functools.cache
def get_kind(name: str) -> ModelKind:
    """The kind registered under ``name``; an unknown name lists the known ones."""
    targets = _targets()
    if name not in targets:
        raise UnknownKind(
            f"unknown model kind {name!r}; known kinds: {', '.join(targets)}",
            details={"field": "kind", "value": name, "known": list(targets)},
        )
    try:
        kind = _load_target(targets[name])()
    except ImportError as e:
        raise MissingDependency(f"the {name!r} kind cannot load: {e}", details={"kind": name}) from e
    if not isinstance(kind, ModelKind):
        raise UnknownKind(f"the entry point for kind {name!r} does not implement the ModelKind contract")
    return kind


def infer_kind(obj: Any) -> ModelKind:
    """The first kind whose ``detect`` accepts ``obj``; kinds whose extra is missing are skipped."""
    for name in _targets():
        try:
            kind = get_kind(name)
        except MissingDependency:
            continue
        if kind.detect(obj):
            return kind
    raise UnknownKind(
        f"cannot tell which kind of model a {type(obj).__name__} is; pass kind=... (one of {', '.join(_targets())})",
        details={"field": "kind"},
    )
