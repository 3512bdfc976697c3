"""The onnx kind: skl2onnx conversions in both input layouts, ZipMap outputs, and refused artifacts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from modelsteward.errors import InvalidArgument, InvalidArtifact
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.onnx import OnnxKind
from modelsteward.stats.schema import conform
from modelsteward.testing import check_kind

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime", "skl2onnx", "sklearn")),
    reason="needs the onnx extra: pip install 'modelsteward[onnx]'",
)


@pytest.fixture(scope="module", autouse=True)
def _no_onnxruntime_telemetry():
    # onnxruntime writes a device id under ~/.cache when it is imported, unless told not to.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORT_DISABLE_TELEMETRY", "1")
        yield


@pytest.fixture(scope="module")
def applicants() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50, 15, n),
            "city": rng.choice(["paris", "lyon", "nantes"], n),
        }
    )
    target = ((frame["age"] - 40) / 10 + (frame["city"] == "lyon") * 1.5 + rng.normal(0, 0.5, n)) > 0.5
    return frame, target.astype(int)


def _pipeline_onnx(frame: pd.DataFrame, target: pd.Series, *, zipmap: bool):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    clf = LogisticRegression()
    pipe = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                        ("scale", StandardScaler(), ["age", "income"]),
                    ]
                ),
            ),
            ("clf", clf),
        ]
    ).fit(frame, target)
    initial_types = [
        ("age", FloatTensorType([None, 1])),
        ("income", FloatTensorType([None, 1])),
        ("city", StringTensorType([None, 1])),
    ]
    options = {} if zipmap else {id(clf): {"zipmap": False}}
    return pipe, convert_sklearn(pipe, initial_types=initial_types, options=options)


@pytest.fixture(scope="module")
def per_column(applicants):
    return _pipeline_onnx(*applicants, zipmap=False)


@pytest.fixture(scope="module")
def per_column_zipmap(applicants):
    return _pipeline_onnx(*applicants, zipmap=True)


@pytest.fixture(scope="module")
def numeric() -> tuple[pd.DataFrame, object, object]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200), "n": rng.integers(0, 5, 200)})
    target = (frame["x1"] - frame["x2"] + 0.3 * frame["n"] > 0.5).astype(int)
    clf = LogisticRegression().fit(frame.to_numpy(), target)
    proto = convert_sklearn(
        clf, initial_types=[("X", FloatTensorType([None, 3]))], options={id(clf): {"zipmap": False}}
    )
    return frame, clf, proto


def _roundtrip(kind: OnnxKind, obj):
    saved = kind.save(obj)
    return kind.load(SavedModel(data=saved.data, format=saved.format, metadata=saved.metadata))


def test_per_column_pipeline_predicts_like_sklearn(applicants, per_column):
    frame, _ = applicants
    pipe, proto = per_column
    kind = OnnxKind()
    native = _roundtrip(kind, proto)

    signature = kind.signature(native, frame.head(5))
    assert [(c.name, c.type) for c in signature.inputs] == [
        ("age", "number"),
        ("income", "number"),
        ("city", "string"),
    ]
    assert signature.output_names == ["label", "probabilities_0", "probabilities_1"]

    out = kind.predict(native, conform(frame, signature))
    np.testing.assert_array_equal(out["label"].to_numpy(), pipe.predict(frame))
    np.testing.assert_allclose(
        out[["probabilities_0", "probabilities_1"]].to_numpy(), pipe.predict_proba(frame), atol=1e-5
    )


def test_single_tensor_follows_the_example_columns(numeric):
    frame, clf, proto = numeric
    kind = OnnxKind()
    native = _roundtrip(kind, proto)

    signature = kind.signature(native, frame.head(3))
    assert [(c.name, c.type) for c in signature.inputs] == [
        ("x1", "number"),
        ("x2", "number"),
        ("n", "number"),
    ]

    out = kind.predict(native, conform(frame, signature))
    np.testing.assert_array_equal(out["label"].to_numpy(), clf.predict(frame.to_numpy()))
    np.testing.assert_allclose(
        out[["probabilities_0", "probabilities_1"]].to_numpy(), clf.predict_proba(frame.to_numpy()), atol=1e-5
    )


def test_zipmap_output_becomes_one_column_per_class(applicants, per_column_zipmap):
    frame, _ = applicants
    pipe, proto = per_column_zipmap
    kind = OnnxKind()
    saved = kind.save(proto)
    assert [o.get("keys") for o in saved.metadata["outputs"]] == [None, [0, 1]]
    native = kind.load(saved)

    signature = kind.signature(native, frame.head(5))
    assert signature.output_names == ["output_label", "output_probability_0", "output_probability_1"]
    out = kind.predict(native, conform(frame, signature))
    np.testing.assert_array_equal(out["output_label"].to_numpy(), pipe.predict(frame))
    np.testing.assert_allclose(
        out[["output_probability_0", "output_probability_1"]].to_numpy(), pipe.predict_proba(frame), atol=1e-5
    )


@pytest.mark.parametrize("model", ["per_column", "per_column_zipmap", "numeric"])
def test_kind_conformance(model, request, applicants):
    proto = request.getfixturevalue(model)[-1]
    example = request.getfixturevalue("numeric")[0] if model == "numeric" else applicants[0]
    check_kind(OnnxKind(), proto, example.head(20))


def test_accepts_a_path_and_bytes(tmp_path, per_column):
    _, proto = per_column
    path = tmp_path / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    kind = OnnxKind()
    assert kind.detect(path) and kind.detect(str(path)) and kind.detect(proto.SerializeToString())
    assert kind.save(path).data == kind.save(proto.SerializeToString()).data == proto.SerializeToString()


def test_refuses_what_is_not_an_onnx_model(tmp_path, per_column):
    _, proto = per_column
    kind = OnnxKind()
    data = proto.SerializeToString()
    other = tmp_path / "model.txt"
    other.write_text("hello")
    for obj in (b"\x08junk that is not a model", b"", "model.onnx", other, str(other), {"graph": 1}):
        assert not kind.detect(obj)
    with pytest.raises(InvalidArtifact):
        kind.save(b"\x08\x07garbage")
    with pytest.raises(InvalidArtifact):
        kind.save(data[: len(data) // 2])
    with pytest.raises(InvalidArtifact):
        kind.load(SavedModel(data=b"\x08\x07garbage" * 10, format="onnx"))
    with pytest.raises(InvalidArtifact):
        kind.load(SavedModel(data=data, format="pickle"))


def test_tensor_width_must_match_the_example(numeric):
    frame, _, proto = numeric
    kind = OnnxKind()
    native = _roundtrip(kind, proto)
    with pytest.raises(InvalidArgument, match="3 columns but the input example has 2") as err:
        kind.signature(native, frame[["x1", "x2"]])
    assert err.value.details == {"field": "input_example", "expected": 3, "got": 2}
    with pytest.raises(InvalidArgument, match="input_example"):
        kind.signature(native, None)
    with pytest.raises(InvalidArgument, match="'x2' is string"):
        kind.signature(native, frame.assign(x2="a"))


def test_per_column_example_must_hold_every_input(applicants, per_column):
    frame, _ = applicants
    kind = OnnxKind()
    native = _roundtrip(kind, per_column[1])
    assert kind.signature(native, None).input_names == ["age", "income", "city"]
    with pytest.raises(InvalidArgument, match="lacks"):
        kind.signature(native, frame[["age", "income"]])


def test_importing_and_detecting_stay_cheap():
    code = (
        "import sys\n"
        "from modelsteward.kinds.onnx import OnnxKind\n"
        "k = OnnxKind()\n"
        "assert not any(k.detect(o) for o in (None, 42, object(), b'\\x00abc', 'x.csv', [1]))\n"
        "loaded = {'onnx', 'onnxruntime'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
