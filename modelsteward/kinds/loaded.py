"""A loaded model version: its kind, the native object and the signature that guards ``predict``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelsteward.domain.records import ModelVersion, Signature
from modelsteward.kinds.base import ModelKind
from modelsteward.stats.schema import conform


class LoadedModel:
    """What ``Steward.load_model`` returns: ``predict`` checks the input against the signature,
    runs the kind, and returns a DataFrame of named outputs (``prediction`` for scikit-learn
    estimators, so ``loaded.predict(df)["prediction"]`` equals ``estimator.predict(df)``).

    ``native`` is the underlying object (the estimator, the ONNX session, the rule set...).
    """

    def __init__(self, kind: ModelKind, native: Any, version: ModelVersion) -> None:
        self.kind = kind
        self.native = native
        self.version = version

    @property
    def signature(self) -> Signature:
        return self.version.signature

    @property
    def ref(self) -> str:
        return self.version.ref

    def prepare(self, data: Any, *, allow_extra: bool = False) -> pd.DataFrame:
        """Check ``data`` against the signature; returns the frame in signature order and types."""
        return conform(data, self.version.signature, owner=self.version.ref, allow_extra=allow_extra)

    def predict(self, data: Any, *, allow_extra: bool = False) -> pd.DataFrame:
        """Predict on a DataFrame, a list of records or a dict of columns.

        Raises :class:`~modelsteward.SchemaMismatch` naming the column when the input does not
        match the signature. ``allow_extra=True`` drops columns the model does not use.
        """
        frame = self.prepare(data, allow_extra=allow_extra)
        return self.kind.predict(self.native, frame)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.version.ref} kind={self.kind.name}>"
