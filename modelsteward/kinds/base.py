"""The model-kind contract: five methods that let the catalog save, load, describe and run any model."""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from modelsteward.domain.records import Signature
from modelsteward.errors import InvalidArgument, InvalidArtifact


@dataclass(frozen=True)
class SavedModel:
    """A model as bytes, plus the small JSON-able facts its kind needs to load it again.

    ``native`` is optional and never stored: a kind that knows its format round-trips the object
    exactly may hand the in-memory model back, sparing registration a reload of what it just wrote.
    """

    data: bytes
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)
    native: Any = field(default=None, compare=False, repr=False)


@runtime_checkable
class ModelKind(Protocol):
    """A kind of model (sklearn, onnx, rules...). Register one under the entry-point group
    ``modelsteward.kinds``; ``modelsteward.testing.check_kind`` checks that it keeps this contract.

    ``name`` is the kind's identifier; ``packages`` lists the distributions whose versions are
    recorded with every version of this kind.
    """

    name: ClassVar[str]
    packages: ClassVar[tuple[str, ...]]

    def detect(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this kind (used when the caller gives no kind)."""
        ...

    def save(self, obj: Any) -> SavedModel:
        """Serialize ``obj``; raise :class:`InvalidArtifact` or :class:`InvalidDefinition` if it is not one."""
        ...

    def load(self, saved: SavedModel) -> Any:
        """Rebuild the native model from bytes whose hash the caller has already checked."""
        ...

    def signature(self, native: Any, example: pd.DataFrame | None) -> Signature:
        """The inputs (and the outputs when the kind knows them without running) of ``native``."""
        ...

    def predict(self, native: Any, frame: pd.DataFrame) -> pd.DataFrame:
        """Run the model on rows that already match the signature; one output row per input row."""
        ...


def columns_frame(names: list[str], arrays: list[Any], index: pd.Index) -> pd.DataFrame:
    """A DataFrame from column arrays, built in one step (several times faster than adding columns
    one by one on the request path); an object-dtype column index keeps later column lookups cheap."""
    columns = pd.Index(names, dtype=object)
    build = getattr(pd.DataFrame, "_from_arrays", None)
    if build is not None:
        try:
            return build([np.asarray(a) if isinstance(a, list) else a for a in arrays], columns=columns, index=index)
        except (TypeError, ValueError):  # pragma: no cover - a pandas without this fast path
            pass
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), index=index, columns=columns)


def outputs_to_frame(result: Any, index: pd.Index, *, default_name: str = "prediction") -> pd.DataFrame:
    """Normalize what a model returns (array, Series, DataFrame, dict of arrays) to named columns."""
    if isinstance(result, pd.DataFrame):
        frame = result.copy()
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(result, pd.Series):
        frame = result.to_frame(name=str(result.name) if result.name is not None else default_name)
    elif isinstance(result, dict):
        frame = pd.DataFrame({str(k): np.asarray(v) for k, v in result.items()})
    else:
        array = np.asarray(result)
        if array.ndim == 0:
            array = array.reshape(1)
        if array.ndim == 1:
            frame = pd.DataFrame({default_name: array})
        elif array.ndim == 2:
            frame = pd.DataFrame(array, columns=[f"{default_name}_{i}" for i in range(array.shape[1])])
        else:
            raise InvalidArgument(f"the model returned a {array.ndim}-D array; expected 1-D or 2-D")
    if len(frame) != len(index):
        raise InvalidArgument(
            f"the model returned {len(frame)} rows for {len(index)} input rows", details={"rows": len(frame)}
        )
    frame.index = index
    return frame


def check_pickle_stream(data: bytes, *, kind: str) -> None:
    """Walk a pickle's opcodes without executing any: junk or truncated bytes fail here, clearly."""
    try:
        for _ in pickletools.genops(io.BytesIO(data)):
            pass
    except Exception as e:  # noqa: BLE001 - genops raises ValueError and others on junk
        raise InvalidArtifact(f"the artifact is not a valid pickle stream: {e}", details={"kind": kind}) from e
