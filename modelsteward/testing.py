"""Conformance checks for model kinds: run ``check_kind`` over a kind and a model of that kind.

Every built-in kind passes it in CI; a third-party kind can call it from its own tests::

    from modelsteward.testing import check_kind
    check_kind(MyKind(), my_model, example_frame)
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from modelsteward.domain.records import Signature
from modelsteward.errors import StewardError
from modelsteward.kinds.base import ModelKind, SavedModel
from modelsteward.stats.schema import conform, infer_columns


def check_kind(kind: ModelKind, model: Any, example: pd.DataFrame) -> pd.DataFrame:
    """Assert that ``kind`` keeps the contract for ``model``; returns the predictions on ``example``.

    Checks: the protocol is implemented; ``detect`` accepts the model and refuses unrelated
    objects; save -> load round-trips through bytes and JSON metadata; the signature describes
    the example; predict returns one row per input row, in order, the same twice; and corrupt or
    wrong-format artifacts fail with a ``StewardError`` rather than an arbitrary exception.
    """
    assert isinstance(kind, ModelKind), f"{kind!r} does not implement ModelKind"
    assert isinstance(kind.name, str) and kind.name, "a kind needs a non-empty name"
    assert isinstance(kind.packages, tuple), "packages must be a tuple of distribution names"
    assert kind.detect(model), f"{kind.name}.detect refuses the model it was given"
    for other in (None, 42, object()):
        assert not kind.detect(other), f"{kind.name}.detect accepts {other!r}"

    saved = kind.save(model)
    assert isinstance(saved, SavedModel) and isinstance(saved.data, bytes) and saved.data, "save must give bytes"
    assert isinstance(saved.format, str) and saved.format, "save must name its format"
    metadata = json.loads(json.dumps(saved.metadata))  # metadata is stored as JSON
    native = kind.load(SavedModel(data=saved.data, format=saved.format, metadata=metadata))

    signature = kind.signature(native, example)
    assert isinstance(signature, Signature) and signature.inputs, "the signature needs inputs"
    frame = conform(example, signature, owner=f"the {kind.name} model", allow_extra=True)

    shuffled_index = pd.RangeIndex(100, 100 + len(frame))
    frame = frame.set_axis(shuffled_index)
    first = kind.predict(native, frame)
    assert isinstance(first, pd.DataFrame), "predict must return a DataFrame"
    assert len(first) == len(frame), "predict must return one row per input row"
    assert list(first.index) == list(frame.index), "predict must keep the input's index"
    assert list(first.columns), "predict must return named columns"
    infer_columns(first.reset_index(drop=True))  # outputs must have portable column types
    if signature.outputs:
        missing = set(signature.output_names) - set(first.columns)
        assert not missing, f"declared outputs missing from predict: {sorted(missing)}"
    second = kind.predict(native, frame)
    pd.testing.assert_frame_equal(first, second)

    try:
        kind.load(SavedModel(data=b"\x00not an artifact\xff", format=saved.format, metadata=metadata))
    except StewardError:
        pass
    else:
        raise AssertionError(f"{kind.name}.load accepted corrupt bytes")
    try:
        kind.load(SavedModel(data=saved.data, format="no-such-format", metadata=metadata))
    except StewardError:
        pass
    else:
        raise AssertionError(f"{kind.name}.load accepted an unknown format")
    return first
