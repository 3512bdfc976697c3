"""The ``python`` kind: a user's class or function with ``predict``, for algorithmic models."""

from __future__ import annotations

import inspect
import sys
from types import ModuleType
from typing import Any, ClassVar

import pandas as pd

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import InvalidArgument, InvalidArtifact
from modelsteward.kinds.base import SavedModel, check_pickle_stream, outputs_to_frame
from modelsteward.stats.schema import infer_columns


class PythonKind:
    """Holds any object with a ``predict(frame)`` method, or a plain function ``f(frame)``.

    The object is serialized with cloudpickle, by value when it was defined in a notebook or
    script, so the code travels with the version. Loading happens only after the artifact store
    has checked the bytes against the registered sha256.

    An object may declare ``input_schema`` (a dict column -> type) to give its signature without
    an input example.
    """

    name: ClassVar[str] = "python"
    packages: ClassVar[tuple[str, ...]] = ("cloudpickle", "pandas", "numpy")

    def detect(self, obj: Any) -> bool:
        if isinstance(obj, (str, bytes, type)) or obj is None:
            return False
        return callable(getattr(obj, "predict", None)) or inspect.isfunction(obj)

    def save(self, obj: Any) -> SavedModel:
        if not self.detect(obj):
            raise InvalidArtifact(
                f"a {type(obj).__name__} is not a python model: give an object with predict(frame) or a function",
                details={"kind": self.name},
            )
        import cloudpickle

        by_value = _user_module(obj)
        if by_value is not None:
            cloudpickle.register_pickle_by_value(by_value)
        try:
            data = cloudpickle.dumps(obj)
        except Exception as e:  # noqa: BLE001 - cloudpickle fails with many types on unpicklable state
            raise InvalidArtifact(f"cannot serialize the {type(obj).__name__}: {e}", details={"kind": self.name}) from e
        finally:
            if by_value is not None:
                cloudpickle.unregister_pickle_by_value(by_value)
        return SavedModel(data=data, format="cloudpickle", metadata={"callable": not hasattr(obj, "predict")})

    def load(self, saved: SavedModel) -> Any:
        if saved.format != "cloudpickle":
            raise InvalidArtifact(f"the python kind cannot read format {saved.format!r}", details={"kind": self.name})
        import pickle

        check_pickle_stream(saved.data, kind=self.name)
        try:
            native = pickle.loads(saved.data)  # noqa: S301 - bytes were hash-checked by the caller
        except Exception as e:  # noqa: BLE001
            raise InvalidArtifact(f"cannot load the python model: {e}", details={"kind": self.name}) from e
        if not self.detect(native):
            raise InvalidArtifact("the artifact does not hold a python model", details={"kind": self.name})
        return native

    def signature(self, native: Any, example: pd.DataFrame | None) -> Signature:
        declared = getattr(native, "input_schema", None)
        if isinstance(declared, dict) and declared:
            try:
                inputs = [ColumnSpec(name=str(k), type=v) for k, v in declared.items()]
            except ValueError as e:
                raise InvalidArgument(
                    f"invalid input_schema on the model: {e}", details={"field": "input_schema"}
                ) from e
            return Signature(inputs=inputs)
        if example is None:
            raise InvalidArgument(
                "pass input_example=... or give the model an input_schema so its signature can be recorded",
                details={"field": "input_example"},
            )
        return Signature(inputs=infer_columns(example))

    def predict(self, native: Any, frame: pd.DataFrame) -> pd.DataFrame:
        fn = native.predict if hasattr(native, "predict") else native
        return outputs_to_frame(fn(frame), frame.index)


def _user_module(obj: Any) -> ModuleType | None:
    """The module of a user's own code (not an installed package), whose code must travel by value:
    the server that loads the version will not have the user's project on its path."""
    owner = obj if inspect.isfunction(obj) else type(obj)
    module = sys.modules.get(owner.__module__)
    if module is None or module.__name__ == "__main__":  # cloudpickle already pickles __main__ by value
        return None
    root = module.__name__.split(".")[0]
    file = getattr(module, "__file__", None) or ""
    if root in sys.stdlib_module_names or root == "modelsteward" or "-packages" in file:
        return None
    return module
