"""The mlflow kind: sklearn-flavour and custom pyfunc models, the deterministic zip, and refused archives."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelsteward.errors import InvalidArgument, InvalidArtifact, SchemaMismatch
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.mlflow import CACHE_DIR_NAME, MlflowKind
from modelsteward.stats.schema import conform
from modelsteward.testing import check_kind

pytestmark = [
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("mlflow", "sklearn")),
        reason="needs the mlflow extra: pip install 'modelsteward[mlflow]'",
    ),
    # MLflow's advice about integer columns, irrelevant to these models.
    pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer:UserWarning"),
]


@pytest.fixture(autouse=True)
def _mlflow_stays_in_tmp(tmp_path, monkeypatch):
    # Tracking, telemetry (MLflow writes ~/.config/mlflow and phones home unless told not to) and
    # the kind's extraction cache all point inside the test's directory.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()


@pytest.fixture
def credit() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"income": rng.normal(50, 15, 120), "debt": rng.normal(20, 8, 120)})
    return frame, (frame["income"] - 2 * frame["debt"] + rng.normal(0, 5, 120) > 10).astype(int)


@pytest.fixture
def sklearn_model(tmp_path, credit):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    frame, target = credit
    clf = LogisticRegression().fit(frame, target)
    path = tmp_path / "sklearn-model"
    # Explicit requirements: inferring them starts a subprocess that costs seconds.
    mlflow.sklearn.save_model(
        clf, str(path), signature=infer_signature(frame, target), pip_requirements=["scikit-learn"]
    )
    return clf, path


@pytest.fixture
def pyfunc_model(tmp_path):
    import mlflow.pyfunc

    class Scorecard(mlflow.pyfunc.PythonModel):
        # A pandas type hint keeps MLflow from warning that the method has none.
        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            bonus = np.where(model_input["segment"] == "gold", 10.0, 0.0)
            return pd.DataFrame({"score": model_input["income"] * 0.5 + bonus})

    path = tmp_path / "pyfunc-model"
    mlflow.pyfunc.save_model(str(path), python_model=Scorecard(), pip_requirements=["pandas"])
    frame = pd.DataFrame({"income": [40.0, 55.5, 70.0, 12.0], "segment": ["gold", "silver", "gold", "bronze"]})
    return Scorecard(), path, frame


def _roundtrip(kind: MlflowKind, path: Path):
    saved = kind.save(path)
    return kind.load(SavedModel(data=saved.data, format=saved.format, metadata=saved.metadata))


def test_sklearn_flavour_predicts_like_the_estimator(sklearn_model, credit):
    clf, path = sklearn_model
    frame, _ = credit
    kind = MlflowKind()
    native = _roundtrip(kind, path)

    signature = kind.signature(native, None)  # MLflow's own signature: no example needed
    assert [(c.name, c.type) for c in signature.inputs] == [("income", "number"), ("debt", "number")]
    out = kind.predict(native, conform(frame, signature))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), clf.predict(frame))
    assert list(out.index) == list(frame.index)


def test_custom_pyfunc_predicts_like_the_python_model(pyfunc_model):
    model, path, frame = pyfunc_model
    kind = MlflowKind()
    native = _roundtrip(kind, path)

    with pytest.raises(InvalidArgument, match="input_example"):
        kind.signature(native, None)  # saved without a signature
    signature = kind.signature(native, frame)
    assert [(c.name, c.type) for c in signature.inputs] == [("income", "number"), ("segment", "string")]
    out = kind.predict(native, conform(frame, signature))
    expected = model.predict(None, frame)
    np.testing.assert_allclose(out["score"].to_numpy(), expected["score"].to_numpy())


def test_kind_conformance(sklearn_model, pyfunc_model, credit):
    check_kind(MlflowKind(), sklearn_model[1], credit[0].head(10))
    check_kind(MlflowKind(), pyfunc_model[1], pyfunc_model[2])


def test_zip_is_deterministic(sklearn_model, tmp_path):
    _, path = sklearn_model
    kind = MlflowKind()
    first = kind.save(path).data
    assert kind.save(str(path)).data == first
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)  # new inode times and ...
    (copy / "__pycache__").mkdir()  # ... byte-compiled code do not change the artifact
    (copy / "__pycache__" / "x.pyc").write_bytes(b"\x00")
    assert kind.save(copy).data == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        names = archive.namelist()
        assert names == sorted(names) and "MLmodel" in names
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_load_reuses_one_cache_directory_per_content(sklearn_model):
    _, path = sklearn_model
    kind = MlflowKind()
    saved = kind.save(path)
    kind.load(saved)
    kind.load(saved)
    cache = Path(tempfile.gettempdir()) / CACHE_DIR_NAME
    assert [p.name for p in cache.iterdir()] == [hashlib.sha256(saved.data).hexdigest()]


def test_directory_without_mlmodel_is_refused(tmp_path, sklearn_model):
    _, path = sklearn_model
    kind = MlflowKind()
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "model.pkl").write_bytes(b"x")
    assert not kind.detect(empty) and not kind.detect(str(tmp_path / "missing"))
    with pytest.raises(InvalidArtifact, match="MLmodel"):
        kind.save(empty)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.pkl", b"x")
    with pytest.raises(InvalidArtifact, match="no MLmodel"):
        kind.load(SavedModel(data=buffer.getvalue(), format="mlflow-zip"))
    with pytest.raises(InvalidArtifact, match="not a readable zip"):
        kind.load(SavedModel(data=kind.save(path).data[:100], format="mlflow-zip"))


@pytest.mark.parametrize("entry", ["../escaped.txt", "/tmp/escaped.txt", "code/../../escaped.txt", "C:/escaped.txt"])
def test_zip_slip_is_refused(tmp_path, entry):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("MLmodel", "flavors: {python_function: {loader_module: x}}\n")
        archive.writestr(entry, b"owned")
    with pytest.raises(InvalidArtifact, match="outside") as err:
        MlflowKind().load(SavedModel(data=buffer.getvalue(), format="mlflow-zip"))
    assert err.value.details["entry"] == entry
    assert not list(tmp_path.rglob("escaped.txt"))


def test_predict_reports_schema_errors_without_echoing_the_rows(sklearn_model):
    _, path = sklearn_model
    kind = MlflowKind()
    native = _roundtrip(kind, path)
    secret = pd.DataFrame({"income": ["s3cr3t"], "debt": [1.0]})
    with pytest.raises(SchemaMismatch) as err:
        kind.predict(native, secret)
    assert "s3cr3t" not in err.value.message
