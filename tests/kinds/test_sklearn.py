"""The sklearn kind: estimators, pipelines, XGBoost and LightGBM, safe persistence."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelsteward.errors import InvalidArtifact
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.sklearn import SklearnKind
from modelsteward.testing import check_kind

KIND = SklearnKind()


def test_logistic_regression_round_trips_with_skops(numeric_model) -> None:
    model, X = numeric_model
    out = check_kind(KIND, model, X.head(50))
    assert KIND.save(model).format == "skops"
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X.head(50)))
    np.testing.assert_allclose(out["proba_1"].to_numpy(), model.predict_proba(X.head(50))[:, 1])


def test_pipeline_with_categorical_columns(credit_data) -> None:
    frame, target = credit_data
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["income", "debt_to_income", "age"]), ("cat", OneHotEncoder(), ["region"])]
    )
    model = make_pipeline(pre, HistGradientBoostingClassifier(max_iter=20)).fit(frame, target)
    out = check_kind(KIND, model, frame.head(40))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(frame.head(40)))


def test_regressor_without_feature_names(credit_data) -> None:
    frame, target = credit_data
    numeric = frame[["income", "age"]]
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(numeric.to_numpy(), target)
    out = check_kind(KIND, model, numeric.head(10))
    assert list(out.columns) == ["prediction"]
    np.testing.assert_allclose(out["prediction"].to_numpy(), model.predict(numeric.head(10).to_numpy()))


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosting_libraries_through_the_sklearn_api(numeric_model, library: str) -> None:
    _, X = numeric_model
    y = (X["debt_to_income"] > 0.4).astype(int)
    if library == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    out = check_kind(KIND, model, X.head(30))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(X.head(30)))


class _OpaqueEstimator:
    """A duck-typed estimator holding state skops cannot write (a compiled regex): pickled instead."""

    def __init__(self) -> None:
        self.weights = np.array([1.0, -1.0, 0.0])
        self.pattern = re.compile("[a-z]+")

    def fit(self, X, y=None):
        return self

    def get_params(self, deep=True):
        return {}

    def predict(self, X):
        return (np.asarray(X, dtype=float) @ self.weights > 0).astype(int)


def test_pickle_fallback_is_used_and_guarded(numeric_model) -> None:
    _, X = numeric_model
    model = _OpaqueEstimator()
    saved = KIND.save(model)
    assert saved.format == "pickle"
    check_kind(KIND, model, X.head(10))
    with pytest.raises(InvalidArtifact, match="not a valid pickle"):
        KIND.load(SavedModel(data=saved.data[: len(saved.data) // 2], format="pickle"))


def test_unfitted_and_non_estimators_are_refused() -> None:
    with pytest.raises(InvalidArtifact, match="not fitted"):
        KIND.save(LogisticRegression())
    with pytest.raises(InvalidArtifact, match="not a scikit-learn estimator"):
        KIND.save("model.pkl")


def test_a_truncated_skops_artifact_is_refused(numeric_model) -> None:
    model, _ = numeric_model
    saved = KIND.save(model)
    with pytest.raises(InvalidArtifact):
        KIND.load(SavedModel(data=saved.data[:100], format="skops", metadata=saved.metadata))


def test_signature_from_feature_names_without_example(numeric_model) -> None:
    model, _ = numeric_model
    sig = KIND.signature(model, None)
    assert sig.input_names == ["income", "debt_to_income", "age"]


def test_fast_paths_answer_exactly_like_the_estimator(credit_data) -> None:
    # One predict_proba call for argmax classifiers, an array instead of a DataFrame for plain
    # estimators: the answers must not change, whatever order the example listed the columns in.
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.model_selection import FixedThresholdClassifier
    from sklearn.naive_bayes import GaussianNB

    frame, target = credit_data
    numeric = frame[["income", "debt_to_income", "age"]]
    shuffled = numeric[["age", "income", "debt_to_income"]]
    for estimator in (
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=10, random_state=0),
        ExtraTreesClassifier(n_estimators=10, random_state=0),
        GaussianNB(),
        # predict() here is not the argmax of predict_proba: the kind must call both
        FixedThresholdClassifier(LogisticRegression(max_iter=500), threshold=0.2),
    ):
        model = estimator.fit(numeric, target)
        native = KIND.load(KIND.save(model))
        signature = KIND.signature(native, shuffled.head())
        from modelsteward.stats.schema import conform

        out = KIND.predict(native, conform(shuffled, signature))
        np.testing.assert_array_equal(
            out["prediction"].to_numpy(), model.predict(numeric), err_msg=type(model).__name__
        )
        np.testing.assert_allclose(out["proba_1"].to_numpy(), model.predict_proba(numeric)[:, 1])
