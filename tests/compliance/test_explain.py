"""Explainability: SHAP importances and per-row explanations per kind, and permutation importance."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelsteward.compliance.explain import explain_rows, permutation_importance, permutation_shap, shap_importance
from modelsteward.domain.records import ArtifactInfo, ModelVersion, Requirements
from modelsteward.errors import InvalidArgument
from modelsteward.kinds.loaded import LoadedModel
from modelsteward.kinds.optimization import OptimizationProgram
from modelsteward.kinds.registry import get_kind
from modelsteward.kinds.rules import RuleSet

shap = pytest.importorskip("shap")
sklearn_ensemble = pytest.importorskip("sklearn.ensemble")

DEFINITIONS = pathlib.Path(__file__).resolve().parents[2] / "modelsteward" / "demo" / "definitions"


def loaded(native: Any, example: pd.DataFrame | None, kind: str = "sklearn", *, keep_example: bool = False) -> Any:
    """A model version as ``Steward.load_model`` returns it, without a store."""
    model_kind = get_kind(kind)
    version = ModelVersion(
        name="m",
        version=1,
        kind=kind,
        artifact=ArtifactInfo(sha256="0" * 64, size=1, format="test"),
        created_at=datetime.now(UTC),
        signature=model_kind.signature(native, example),
        requirements=Requirements(python="3", platform="test"),
        input_example=example.head(20).to_dict("records") if keep_example and example is not None else None,
    )
    return LoadedModel(model_kind, native, version)


def numeric_data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["signal", "weak", "noise", "other"])
    y = pd.Series((2 * X["signal"] + 0.5 * X["weak"] + rng.normal(size=n) > 0).astype(int), name="y")
    return X, y


def mixed_data(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """``signal`` and ``region`` drive the target; ``noise`` and ``colour`` are pure noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "signal": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "age": rng.integers(20, 70, n),
            "region": rng.choice(["north", "south", "east"], n),
            "colour": rng.choice(["red", "blue", "green", "grey"], n),
        }
    )
    logit = 2.5 * X["signal"] + 2.0 * (X["region"] == "south") - 1.0
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int), name="y")
    return X, y


def pipeline(estimator: Any, categorical: tuple[str, ...] = ("region", "colour")) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", StandardScaler(), ["signal", "noise", "age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(categorical)),
        ]
    )
    return Pipeline([("features", features), ("model", estimator)])


def importances(result: Any) -> dict[str, float]:
    return {f.feature: f.importance for f in result.features}


def assert_sorted(result: Any) -> None:
    values = [f.importance for f in result.features]
    assert values == sorted(values, reverse=True)


def test_tree_importances_equal_tree_explainer_called_directly() -> None:
    X, y = numeric_data()
    forest = sklearn_ensemble.RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0).fit(X, y)
    result = shap_importance(loaded(forest, X), X)
    direct = np.abs(shap.TreeExplainer(forest).shap_values(X)[:, :, 1]).mean(axis=0)
    assert (result.method, result.explainer, result.output, result.rows) == (
        "shap",
        "tree",
        "probability of class 1",
        300,
    )
    assert importances(result) == pytest.approx(dict(zip(X.columns, direct, strict=True)), abs=1e-12)
    assert result.features[0].feature == "signal"
    assert_sorted(result)


def test_linear_importances_equal_linear_explainer_called_directly() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = numeric_data()
    logistic = LogisticRegression().fit(X, y)
    # background_rows >= rows: the whole data set is the background, as in the direct call.
    result = shap_importance(loaded(logistic, X), X, background_rows=300)
    masker = shap.maskers.Independent(X, max_samples=300)
    direct = np.abs(shap.LinearExplainer(logistic, masker).shap_values(X)).mean(axis=0)
    assert (result.explainer, result.output) == ("linear", "log-odds of class 1")
    assert importances(result) == pytest.approx(dict(zip(X.columns, direct, strict=True)), abs=1e-12)
    assert [f.feature for f in result.features[:2]] == ["signal", "weak"]


def test_permutation_importance_equals_scikit_learn_called_directly() -> None:
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.linear_model import LogisticRegression

    X, y = numeric_data()
    logistic = LogisticRegression().fit(X, y)
    result = permutation_importance(loaded(logistic, X), X, y, n_repeats=4, random_state=3)
    direct = sk_permutation_importance(logistic, X, y, scoring="roc_auc", n_repeats=4, random_state=3)
    assert (result.method, result.scoring, result.output, result.rows) == (
        "permutation",
        "roc_auc",
        "probability of class 1",
        300,
    )
    by_name = {f.feature: f for f in result.features}
    for j, name in enumerate(X.columns):
        assert by_name[name].importance == pytest.approx(direct.importances_mean[j], abs=1e-12)
        assert by_name[name].std == pytest.approx(direct.importances_std[j], abs=1e-12)
    assert result.features[0].feature == "signal"
    assert_sorted(result)


def test_permutation_importance_defaults_to_r2_for_regressors_and_accuracy_for_labels() -> None:
    from sklearn.inspection import permutation_importance as sk_permutation_importance
    from sklearn.linear_model import Ridge

    X, _ = numeric_data()
    target = 3 * X["signal"] - X["weak"]
    ridge = Ridge().fit(X, target)
    result = permutation_importance(loaded(ridge, X), X, target, n_repeats=3)
    direct = sk_permutation_importance(ridge, X, target, scoring="r2", n_repeats=3, random_state=0)
    assert (result.scoring, result.output) == ("r2", "prediction")
    assert importances(result) == pytest.approx(dict(zip(X.columns, direct.importances_mean, strict=True)))

    rules = loaded(RuleSet.from_yaml(SIMPLE_RULES), None, "rules")
    frame = pd.DataFrame(
        {"score": [0.1, 0.5, 0.9, 0.3, 0.15, 0.7], "region": ["north", "south"] * 3, "age": [25, 40, 25, 40, 25, 40]}
    )
    truth = rules.predict(frame)["decision"]
    result = permutation_importance(rules, frame, truth, n_repeats=3)
    assert (result.scoring, result.output) == ("accuracy", "decision")
    assert importances(result)["score"] > 0


@pytest.mark.parametrize("case", ["forest", "boosting", "logistic", "ridge", "pipeline", "hist-boosting"])
def test_row_explanations_add_up_to_the_explained_prediction(case: str) -> None:
    from sklearn.linear_model import LogisticRegression, Ridge

    X, y = mixed_data() if case == "pipeline" else numeric_data()
    if case == "forest":
        est, explainer = sklearn_ensemble.RandomForestClassifier(20, max_depth=4, random_state=0).fit(X, y), "tree"
    elif case == "boosting":
        est, explainer = sklearn_ensemble.GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, y), "tree"
    elif case == "logistic":
        est, explainer = LogisticRegression().fit(X, y), "linear"
    elif case == "ridge":
        est, explainer = Ridge().fit(X, 2 * X["signal"]), "linear"
    elif case == "pipeline":
        est, explainer = pipeline(LogisticRegression()).fit(X, y), "permutation-shap"
    else:  # shap's tree reader does not add up for HistGradientBoosting: the model-agnostic path
        est = sklearn_ensemble.HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
        explainer = "permutation-shap"
    rows = X.iloc[:5]
    explanations = explain_rows(loaded(est, X), rows, background=X.iloc[100:200])
    if case == "logistic":
        expected = est.decision_function(rows)
    elif case == "ridge":
        expected = est.predict(rows)
    else:
        expected = est.predict_proba(rows)[:, 1]
    tolerance = 1e-6 if explainer in ("tree", "linear") else 1e-9  # permutation SHAP is exactly efficient
    assert [e.row for e in explanations] == [0, 1, 2, 3, 4]
    for e, want in zip(explanations, expected, strict=True):
        assert e.explainer == explainer
        assert e.prediction == pytest.approx(want, abs=1e-9)
        assert e.base_value + sum(c.contribution for c in e.contributions) == pytest.approx(e.prediction, abs=tolerance)
        sizes = [abs(c.contribution) for c in e.contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert {c.feature for c in e.contributions} == set(X.columns)
    first = {c.feature: c.value for c in explanations[0].contributions}
    assert first["signal"] == pytest.approx(float(X["signal"].iloc[0]))
    if case == "pipeline":
        assert first["region"] == X["region"].iloc[0]


def test_permutation_shap_is_exact_where_shapley_values_are_known() -> None:
    rng = np.random.default_rng(5)
    background, X = rng.normal(size=(40, 2)), rng.normal(size=(6, 2))

    def interaction(a: np.ndarray) -> np.ndarray:
        return (a[:, 0] * a[:, 1] + np.sin(a[:, 0]))[:, None]

    # Two features: one forward-and-back permutation covers both orders, so both are exact and
    # equal to shap's own permutation explainer.
    values, base, predicted = permutation_shap(interaction, X, background, permutations=1)
    direct = shap.PermutationExplainer(lambda a: interaction(a)[:, 0], shap.maskers.Independent(background))(
        X, max_evals=5, silent=True
    )
    assert values[:, :, 0] == pytest.approx(direct.values, abs=1e-12)
    assert base[:, 0] == pytest.approx(direct.base_values, abs=1e-12)
    assert predicted[:, 0] == pytest.approx(interaction(X)[:, 0])

    # An additive model of five features: each value is its term minus the term's background mean.
    background, X = rng.normal(size=(30, 5)), rng.normal(size=(4, 5))
    weights = np.array([1.0, -2.0, 0.5, 0.0, 3.0])

    def additive(a: np.ndarray) -> np.ndarray:
        return np.column_stack([a @ weights, np.tanh(a[:, 0]) + a[:, 4] ** 2])

    values, base, predicted = permutation_shap(additive, X, background, permutations=3, seed=9)
    assert values[:, :, 0] == pytest.approx((X - background.mean(axis=0)) * weights, abs=1e-12)
    assert values[:, 0, 1] == pytest.approx(np.tanh(X[:, 0]) - np.tanh(background[:, 0]).mean(), abs=1e-12)
    assert values[:, 4, 1] == pytest.approx(X[:, 4] ** 2 - (background[:, 4] ** 2).mean(), abs=1e-12)
    assert base + values.sum(axis=1) == pytest.approx(predicted, abs=1e-12)


def test_model_agnostic_explainer_on_a_pipeline_ranks_true_drivers_above_noise() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = mixed_data()
    model = loaded(pipeline(LogisticRegression()).fit(X, y), X)
    result = shap_importance(model, X, background_rows=50, max_rows=150)
    scores = importances(result)
    assert (result.explainer, result.output, result.rows) == ("permutation-shap", "probability of class 1", 150)
    assert set(scores) == set(X.columns)  # the raw columns, not the one-hot ones
    assert scores["signal"] > scores["noise"]
    assert scores["region"] > scores["colour"]
    assert result.features[0].feature == "signal"


def test_multiclass_rows_explain_the_probability_of_their_predicted_class() -> None:
    X, _ = numeric_data()
    y = pd.cut(X["signal"], [-np.inf, -0.5, 0.5, np.inf], labels=["low", "mid", "high"]).astype(str)
    forest = sklearn_ensemble.RandomForestClassifier(20, max_depth=4, random_state=0).fit(X, y)
    rows = X.iloc[:6]
    explanations = explain_rows(loaded(forest, X), rows, background=X)
    predicted = forest.predict(rows)
    proba = forest.predict_proba(rows).max(axis=1)
    for e, label, p in zip(explanations, predicted, proba, strict=True):
        assert e.output == f"probability of class {label}"
        assert e.prediction == pytest.approx(p)
        assert e.base_value + sum(c.contribution for c in e.contributions) == pytest.approx(p, abs=1e-6)
    assert shap_importance(loaded(forest, X), X).output == "probability of the predicted class"


class Affordability:
    """A python-kind model: ``debts`` matters, ``nickname`` is never read."""

    input_schema = {"income": "number", "debts": "number", "nickname": "string"}

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"monthly_capacity": (df["income"] / 12 * 0.35 - df["debts"]).clip(lower=0)})


def test_python_models_are_explained_through_their_predict() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            "income": rng.uniform(20_000, 90_000, 60),
            "debts": rng.uniform(0, 900, 60),
            "nickname": rng.choice(["a", "b", "c"], 60),
        }
    )
    model = loaded(Affordability(), None, "python")
    result = shap_importance(model, frame, background_rows=20)
    scores = importances(result)
    assert (result.explainer, result.output) == ("permutation-shap", "monthly_capacity")
    assert scores["nickname"] == pytest.approx(0.0, abs=1e-9)  # never read: no credit
    assert scores["income"] > scores["debts"] > 0
    [e] = explain_rows(model, frame.iloc[:1], background=frame, top=2)
    assert e.prediction == pytest.approx(float(Affordability().predict(frame.iloc[:1])["monthly_capacity"].iloc[0]))
    assert [c.feature for c in e.contributions] == ["income", "debts"]


SIMPLE_RULES = textwrap.dedent(
    """\
    kind: rules
    name: simple
    inputs: {score: number, region: string, age: integer}
    outputs: {decision: string}
    rules:
      - id: low
        when: "score < 0.2"
        then: {decision: accept}
      - id: north-young
        when: "region == 'north' and age < 30"
        then: {decision: review}
    default: {decision: reject}
    """
)


def test_rule_sets_are_explained_by_the_rule_that_fired() -> None:
    model = loaded(RuleSet.from_yaml(SIMPLE_RULES), None, "rules")
    frame = pd.DataFrame(
        {"score": [0.1, 0.5, 0.9, 0.3], "region": ["north", "north", "south", "south"], "age": [40, 25, 25, 50]}
    )
    explanations = explain_rows(model, frame)
    assert [e.rule for e in explanations] == ["low", "north-young", "default", "default"]
    assert [e.prediction for e in explanations] == ["accept", "review", "reject", "reject"]
    assert {(e.explainer, e.output) for e in explanations} == {("rules", "decision")}
    assert [(c.feature, c.value, c.contribution) for c in explanations[1].contributions] == [
        ("region", "north", 1.0),
        ("age", 25.0, 1.0),
    ]
    assert explanations[2].contributions == []

    result = shap_importance(model, frame)
    assert (result.method, result.explainer, result.rows) == ("rules", "rules", 4)
    assert importances(result) == {"score": 0.25, "region": 0.25, "age": 0.25}


def test_optimization_programs_are_refused_with_a_clear_error() -> None:
    program = OptimizationProgram.from_file(DEFINITIONS / "limit_allocation.yaml")
    model = loaded(program, None, "optimization")
    frame = pd.DataFrame({"risk_score": [0.1], "loan_amount": [1000.0], "income": [9000.0], "region": ["north"]})
    for call in (
        lambda: shap_importance(model, frame),
        lambda: explain_rows(model, frame),
        lambda: permutation_importance(model, frame, [1.0]),
    ):
        with pytest.raises(InvalidArgument, match="constraints and objective") as info:
            call()
        assert info.value.details == {"model_version": "m/1", "kind": "optimization"}


def test_explanations_need_a_background_unless_the_version_has_an_input_example() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = numeric_data()
    logistic = LogisticRegression().fit(X, y)
    with pytest.raises(InvalidArgument, match="background") as info:
        explain_rows(loaded(logistic, X), X.iloc[:1])
    assert info.value.details == {"field": "background"}
    [e] = explain_rows(loaded(logistic, X, keep_example=True), X.iloc[:1])
    assert e.base_value + sum(c.contribution for c in e.contributions) == pytest.approx(e.prediction, abs=1e-9)
    with pytest.raises(InvalidArgument, match="top"):
        explain_rows(loaded(logistic, X), X.iloc[:1], background=X, top=0)


def test_extra_columns_are_ignored_and_the_caller_numpy_random_state_is_kept() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = mixed_data(n=120)
    model = loaded(pipeline(LogisticRegression()).fit(X, y), X)
    np.random.seed(123)
    expected_draw = np.random.random()
    np.random.seed(123)
    result = shap_importance(model, X.assign(y=y, applicant_id=range(len(X))), background_rows=20, max_rows=30)
    assert np.random.random() == expected_draw
    assert {f.feature for f in result.features} == set(X.columns)


def test_importing_the_module_does_not_import_shap() -> None:
    code = "import sys, modelsteward.compliance.explain; print('shap' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_models_are_explained_through_their_probability_output(zipmap: bool, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.linear_model import LogisticRegression

    from modelsteward.kinds.base import SavedModel

    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "1")
    X, y = mixed_data(n=300)
    X = X.drop(columns=["colour"]).astype({"signal": "float32", "noise": "float32", "age": "float32"})
    fitted = pipeline(LogisticRegression(), categorical=("region",)).fit(X, y)
    clf = fitted.steps[-1][1]
    types = [(c, FloatTensorType([None, 1])) for c in ("signal", "noise", "age")] + [
        ("region", StringTensorType([None, 1]))
    ]
    proto = skl2onnx.convert_sklearn(
        fitted, initial_types=types, options={} if zipmap else {id(clf): {"zipmap": False}}
    )
    kind = get_kind("onnx")
    saved = kind.save(proto)
    native = kind.load(SavedModel(data=saved.data, format=saved.format, metadata=saved.metadata))
    model = loaded(native, X, "onnx")
    [e] = explain_rows(model, X.iloc[:1], background=X.iloc[100:200])
    assert (e.explainer, e.output) == ("permutation-shap", "probability of class 1")
    assert e.prediction == pytest.approx(fitted.predict_proba(X.iloc[:1])[0, 1], abs=1e-5)
    assert e.base_value + sum(c.contribution for c in e.contributions) == pytest.approx(e.prediction, abs=1e-6)
    scores = importances(shap_importance(model, X, background_rows=40, max_rows=80))
    assert scores["signal"] > scores["noise"] and scores["region"] > scores["noise"]
