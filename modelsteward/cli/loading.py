"""Turning a path given on the command line into a model object a kind can register."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path
from typing import Any

from modelsteward.errors import InvalidArgument, InvalidArtifact, require


def load_model_file(spec: str) -> Any:
    """``model.skops``, ``model.pkl``/``.joblib``, ``module.py:attribute``; anything else (an ONNX
    file, a rules or optimization YAML, an MLflow directory) is passed on as a path."""
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        file_name, attribute = spec.split(":", 1)
        return _from_python_file(Path(file_name), attribute)
    path = Path(spec)
    if not path.exists():
        raise InvalidArgument(f"no such file or directory: {spec}", details={"field": "path", "value": spec})
    suffix = path.suffix.lower()
    if suffix == ".skops":
        sio = require("skops.io", "sklearn")
        data = path.read_bytes()
        # The user's own file on the user's own machine: trust the types it holds, as loading it by hand would.
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    if suffix in (".pkl", ".pickle"):
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)  # noqa: S301 - the user's own file
        except Exception as e:  # noqa: BLE001
            raise InvalidArtifact(f"cannot unpickle {spec}: {e}", details={"field": "path"}) from e
    if suffix == ".joblib":
        joblib = require("joblib", "sklearn")
        return joblib.load(path)
    if suffix == ".py":
        raise InvalidArgument(
            f"name the object inside {spec}: {spec}:MyModel", details={"field": "path", "value": spec}
        )
    return str(path)


def _from_python_file(path: Path, attribute: str) -> Any:
    if not path.is_file():
        raise InvalidArgument(f"no such file: {path}", details={"field": "path"})
    module_name = f"steward_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgument(f"cannot import {path}", details={"field": "path"})
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's code failed to import
        raise InvalidArgument(f"importing {path} failed: {type(e).__name__}: {e}", details={"field": "path"}) from e
    if not hasattr(module, attribute):
        raise InvalidArgument(f"{path} has no attribute {attribute!r}", details={"field": "path"})
    obj = getattr(module, attribute)
    return obj() if isinstance(obj, type) else obj
