"""Explainability as pure functions: SHAP attributions and permutation importance for every model kind.

The explainer follows the native object: a bare tree ensemble on numeric inputs (scikit-learn
forests, trees and gradient boosting, XGBoost, LightGBM) gets ``shap.TreeExplainer``; a bare
scikit-learn linear model ``shap.LinearExplainer``, in its linear output (log-odds for a logistic
regression); anything else (Pipelines, ONNX, python and MLflow models) the model-agnostic
permutation SHAP over the raw signature columns, through the kind's own ``predict``. A rule set is
explained by the rule that fired; an optimization program is refused.

Classifiers are explained by the probability of the positive class (the second of two classes);
with more classes, each row by the probability of the class it was predicted to be (the largest
explained output). Regressors by their prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.domain.explain import Contribution, Explanation, FeatureImportance, GlobalImportance
from modelsteward.errors import InvalidArgument, StewardError, require

if TYPE_CHECKING:
    from modelsteward.kinds.loaded import LoadedModel

BACKGROUND_ROWS = 100
ROW_PERMUTATIONS = 10  # per explained row: stable single-row attributions, ~0.1 s on the demo models
GLOBAL_PERMUTATIONS = 1  # per row of a global importance: the noise averages out over the rows
_BATCH_ROWS = 50_000  # model rows per predict call of the permutation explainer
_PROBABILITY_PREFIXES = ("proba_", "output_probability_", "probabilities_", "probability_")
_TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")
# Boosted classifiers add log-odds in their trees: their probability is explained with the
# interventional algorithm against a background. scikit-learn's HistGradientBoosting goes to the
# model-agnostic explainer: shap's tree reader gives it values that do not add up (measured).
_BOOSTED = ("GradientBoosting", "XGB", "LGBM")


def shap_importance(
    model: LoadedModel,
    data: pd.DataFrame,
    *,
    background_rows: int = BACKGROUND_ROWS,
    max_rows: int = 500,
    random_state: int = 0,
) -> GlobalImportance:
    """Mean absolute SHAP value of each input column of the signature over (a sample of) ``data``.

    ``data`` may carry extra columns (a target, ids): they are ignored. At most ``max_rows`` rows
    are explained against ``background_rows`` background rows, both drawn from ``data``. For a
    rule set, a column's importance is the share of rows decided by a rule whose condition reads
    it (rows that fell through to the default count for no column).

    >>> imp = shap_importance(steward.load_model("credit-risk/2"), test_frame)
    >>> imp.explainer, [(f.feature, round(f.importance, 3)) for f in imp.features[:3]]
    ('permutation-shap', [('debt_to_income', 0.081), ('income', 0.027), ('housing', 0.018)])
    """
    _refuse_optimization(model)
    frame = _prepare(model, data, what="data")
    rows = _sample(frame, max_rows, random_state)
    if model.kind.name == "rules":
        fired, reads, _ = _rules_fired(model, rows)
        read = [reads.get(rule_id, ()) for rule_id in fired]
        scores = {c: sum(c in names for names in read) / len(rows) for c in rows.columns}
        return _global(model, "rules", "rules", "rule", len(rows), scores)
    background = _sample(frame, background_rows, random_state + 1)
    result = _attribute(model, rows, background, GLOBAL_PERMUTATIONS, random_state)
    scores = dict(zip(result.features, np.abs(result.picked()[0]).mean(axis=0), strict=True))
    what = result.labels[0].partition(" of class ")[0]
    output = result.labels[0] if len(result.labels) == 1 else f"{what} of the predicted class"
    return _global(model, "shap", result.explainer, output, len(rows), scores)


def permutation_importance(
    model: LoadedModel,
    data: pd.DataFrame,
    target: Any,
    *,
    scoring: str | None = None,
    n_repeats: int = 5,
    random_state: int = 0,
) -> GlobalImportance:
    """scikit-learn's permutation importance of each input column, through the kind's ``predict``.

    Works for every kind that predicts a target. The default ``scoring`` is ``roc_auc`` for a
    binary classifier with probabilities, ``accuracy`` for other classifiers and ``r2`` for
    regressors; importances are the mean decrease of the score, ``std`` over ``n_repeats``.

    >>> imp = permutation_importance(model, test_frame, test_frame["defaulted_90d"])
    >>> imp.scoring, [(f.feature, round(f.importance, 3)) for f in imp.features[:2]]
    ('roc_auc', [('debt_to_income', 0.181), ('income', 0.058)])
    """
    inspection = require("sklearn.inspection", "explain")
    _refuse_optimization(model)
    frame = _prepare(model, data, what="data")
    y = np.asarray(target)
    if y.ndim != 1 or len(y) != len(frame):
        raise InvalidArgument(
            f"the target has {len(y)} values for {len(frame)} rows", details={"field": "target", "rows": len(frame)}
        )
    estimator, default, output = _through_kind(model, frame, y)
    scoring = scoring or default
    try:
        result = inspection.permutation_importance(
            estimator, frame, y, scoring=scoring, n_repeats=n_repeats, random_state=random_state
        )
    except ValueError as e:  # an unknown scorer, one class in the target...
        raise InvalidArgument(f"permutation importance failed: {e}", details={"scoring": scoring}) from e
    scores = dict(zip(frame.columns, result.importances_mean, strict=True))
    std = dict(zip(frame.columns, result.importances_std, strict=True))
    output = output if scoring == default else "the outputs its scorer reads"
    return _global(model, "permutation", "permutation", output, len(frame), scores, std=std, scoring=scoring)


def explain_rows(
    model: LoadedModel,
    rows: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    top: int | None = None,
) -> list[Explanation]:
    """One explanation per row: the SHAP value of each input column, largest first.

    ``base_value + sum(contributions)`` equals the explained ``prediction`` (exactly for tree and
    linear models, up to float rounding for permutation SHAP) when ``top`` is ``None``; ``top``
    keeps the largest only. Contributions are relative to ``background``, a sample of the training
    data (at most 100 rows are used; default: the version's input example). A rule set names the
    ``rule`` that decided each row, and as contributions the columns its condition reads (1.0 each).

    >>> [e] = explain_rows(steward.load_model("credit-risk/2"), applicant, background=training.sample(100))
    >>> e.output, round(e.prediction, 3), [(c.feature, round(c.contribution, 3)) for c in e.contributions[:2]]
    ('probability of class 1', 0.084, [('loan_amount', -0.028), ('age', -0.023)])
    """
    _refuse_optimization(model)
    if top is not None and top < 1:
        raise InvalidArgument("top must be at least 1", details={"field": "top"})
    frame = _prepare(model, rows, what="rows")
    if frame.empty:
        return []
    if model.kind.name == "rules":
        return _explain_rules(model, frame)
    if background is None and model.version.input_example:
        background = pd.DataFrame(model.version.input_example)
    if background is None:
        raise InvalidArgument(
            "pass background=... (a sample of the training data): explanations are relative to it",
            details={"field": "background"},
        )
    base = _sample(_prepare(model, background, what="background"), BACKGROUND_ROWS, 0)
    result = _attribute(model, frame, base, ROW_PERMUTATIONS, 0)
    values, base_values, predicted, pick = result.picked()
    explanations = []
    for i in range(len(frame)):
        contributions = sorted(
            (
                Contribution(feature=name, value=_plain(frame[name].iloc[i]), contribution=float(v))
                for name, v in zip(result.features, values[i], strict=True)
            ),
            key=lambda c: -abs(c.contribution),
        )
        explanations.append(
            Explanation(
                ref=model.ref,
                row=i,
                output=result.labels[pick[i]],
                explainer=result.explainer,
                base_value=float(base_values[i]),
                prediction=float(predicted[i]),
                contributions=contributions[:top],
            )
        )
    return explanations


@dataclass
class _Attribution:
    explainer: str
    features: list[str]
    labels: list[str]  # one per explained output, e.g. "probability of class 1"
    values: np.ndarray  # (rows, features, outputs)
    base: np.ndarray  # (rows, outputs)
    predicted: np.ndarray  # (rows, outputs): what the model gave for the explained outputs

    def picked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each row's own output (the only one, or the class it was predicted to be): its values
        (rows, features), base value, prediction, and which output it is."""
        pick = np.argmax(self.predicted, axis=1)
        rows = np.arange(len(pick))
        return self.values[rows, :, pick], self.base[rows, pick], self.predicted[rows, pick], pick

    def error(self) -> float:
        return float(np.max(np.abs(self.base + self.values.sum(axis=1) - self.predicted), initial=0.0))


def _attribute(
    model: LoadedModel, frame: pd.DataFrame, background: pd.DataFrame, permutations: int, seed: int
) -> _Attribution:
    native = model.native
    # A Pipeline is explained over its raw columns (model-agnostic) rather than its last step over
    # encoded ones: one-hot columns would split a category's effect into pieces a reader does not
    # recognise, and the raw columns are the ones the signature, the monitors and the requests use.
    numeric = all(_is_number(dtype) for dtype in frame.dtypes.tolist())
    family = _family(native) if model.kind.name == "sklearn" and numeric else None
    if family is not None:
        shap = require("shap", "explain")
        order = [str(n) for n in getattr(native, "feature_names_in_", frame.columns)]
        explain = _tree if family == "tree" else _linear
        try:
            result = explain(shap, native, frame[order].astype(float), background[order].astype(float))
        except StewardError:
            raise
        except Exception:  # noqa: BLE001 - shap refuses unsupported estimators in many ways
            result = None  # the model-agnostic explainer below works for any estimator
        # A tree or linear explanation that does not add up to the model's output is not used.
        if result is not None and result.error() < 1e-6:
            return result
    return _permutation_shap(model, frame, background, permutations, seed)


def _family(native: Any) -> str | None:
    cls = type(native)
    module = cls.__module__
    if module.startswith(_TREE_MODULES) and "HistGradientBoosting" not in cls.__name__:
        if hasattr(native, "estimators_") or hasattr(native, "tree_") or module.startswith(("xgboost", "lightgbm")):
            return "tree"
    if module.startswith("sklearn.linear_model") and hasattr(native, "coef_"):
        return "linear"
    return None


def _tree(shap: Any, est: Any, X: pd.DataFrame, background: pd.DataFrame) -> _Attribution:
    classes = getattr(est, "classes_", None) if callable(getattr(est, "predict_proba", None)) else None
    if classes is not None and type(est).__name__.startswith(_BOOSTED):
        explainer = shap.TreeExplainer(
            est, background, feature_perturbation="interventional", model_output="probability"
        )
    else:  # forests, trees and regressors hold the explained output in their leaves: exact, no background
        explainer = shap.TreeExplainer(est)
    if classes is None:
        return _assemble("tree", X, explainer, est.predict(X), ["prediction"])
    return _assemble("tree", X, explainer, est.predict_proba(X), [f"probability of class {_text(c)}" for c in classes])


def _linear(shap: Any, est: Any, X: pd.DataFrame, background: pd.DataFrame) -> _Attribution:
    explainer = shap.LinearExplainer(est, shap.maskers.Independent(background, max_samples=len(background)))
    classes = getattr(est, "classes_", None)
    if classes is None:
        return _assemble("linear", X, explainer, est.predict(X), ["prediction"])
    # Linear classifiers are additive in their decision function (the log-odds for a logistic
    # regression), not in the probability: that is what is explained.
    scores = np.asarray(est.decision_function(X))
    what = "log-odds" if "Logistic" in type(est).__name__ and scores.ndim == 1 else "decision score"
    labels = [f"{what} of class {_text(c)}" for c in classes]
    return _assemble("linear", X, explainer, scores, labels[1:] if scores.ndim == 1 else labels)


def _assemble(name: str, X: pd.DataFrame, explainer: Any, predicted: Any, labels: list[str]) -> _Attribution:
    """Normalise shap's shapes to (rows, features, outputs); of two classes keep the positive one."""
    values = np.asarray(explainer.shap_values(X), dtype=float)
    values = values[:, :, None] if values.ndim == 2 else values
    predicted = np.asarray(predicted, dtype=float).reshape(len(X), -1)
    base = np.broadcast_to(np.atleast_1d(np.asarray(explainer.expected_value, dtype=float)), predicted.shape)
    if len(labels) == 2:  # a binary classifier: the probability of the positive class
        labels, values, base, predicted = labels[1:], values[:, :, -1:], base[:, -1:], predicted[:, -1:]
    return _Attribution(name, [str(c) for c in X.columns], labels, values, np.array(base), predicted)


def _permutation_shap(
    model: LoadedModel, frame: pd.DataFrame, background: pd.DataFrame, permutations: int, seed: int
) -> _Attribution:
    codec = _Codec(pd.concat([frame, background], ignore_index=True))
    columns, labels = _explained_outputs(model.kind.predict(model.native, frame))

    def outputs(matrix: np.ndarray) -> np.ndarray:
        predicted = model.kind.predict(model.native, codec.decode(matrix))
        return predicted[columns].to_numpy(dtype=float).reshape(len(matrix), -1)

    X, masker = codec.encode(frame), codec.encode(background)
    values, base, predicted = permutation_shap(outputs, X, masker, permutations=permutations, seed=seed)
    return _Attribution("permutation-shap", codec.columns, labels, values, base, predicted)


def permutation_shap(
    f: Any, X: np.ndarray, background: np.ndarray, *, permutations: int = ROW_PERMUTATIONS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SHAP values of ``f`` (matrix -> (rows, outputs)) by antithetic permutation sampling.

    The algorithm of ``shap.PermutationExplainer`` with an independent masker: per row and
    permutation, features are switched from the background to the row's value one by one, then back
    in the same order, each credited with the change of the mean output; the values add up exactly
    to ``f(x) - mean(f(background))``. In NumPy because shap's own compiles numba code on its first
    call in each process (8 s here: too slow for an API request) and runs row by row; this batches
    all rows' masked copies into a few ``f`` calls and keeps NumPy's global generator untouched.

    >>> values, base, predicted = permutation_shap(f, X, background, permutations=10)
    >>> np.allclose(base + values.sum(axis=1), predicted)
    True
    """
    rng = np.random.default_rng(seed)
    n, m = X.shape
    full = f(X)
    empty = np.broadcast_to(f(background).mean(axis=0), full.shape)[:, None]
    orders = np.argsort(rng.random((permutations, n, m)), axis=2)  # one permutation per row and round
    ranks = np.argsort(orders, axis=2)[:, :, None, :]
    sizes = np.arange(1, m)[:, None]  # coalition sizes strictly between empty and full
    # Every round's coalitions in one go: the first s features of the order switched on, then off.
    masks = np.concatenate(list(np.concatenate([ranks < sizes, ranks >= sizes], axis=2)), axis=1)
    inner = _masked_means(f, X, background, masks) if m > 1 else np.zeros((n, 0, full.shape[1]))
    values = np.zeros((n, m, full.shape[1]))
    rows, width = np.arange(n)[:, None], 2 * (m - 1)
    for k in range(permutations):
        part = inner[:, k * width : (k + 1) * width]
        on = np.concatenate([empty, part[:, : m - 1], full[:, None]], axis=1)
        off = np.concatenate([full[:, None], part[:, m - 1 :], empty], axis=1)
        values[rows, orders[k]] += (on[:, 1:] - on[:, :-1]) + (off[:, :-1] - off[:, 1:])
    return values / (2 * permutations), empty[:, 0].copy(), full


def _masked_means(f: Any, X: np.ndarray, background: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean of ``f`` over the background with the masked-on features taken from the row:
    ``masks`` (rows, states, features) -> (rows, states, outputs), in batches of ~50,000 rows."""
    n, states, m = masks.shape
    flat, owner = masks.reshape(n * states, m), np.repeat(np.arange(n), states)
    per = max(1, _BATCH_ROWS // len(background))
    means = []
    for start in range(0, len(flat), per):
        mask = flat[start : start + per]
        data = np.where(mask[:, None, :], X[owner[start : start + per]][:, None, :], background[None, :, :])
        means.append(f(data.reshape(-1, m)).reshape(len(mask), len(background), -1).mean(axis=1))
    return np.concatenate(means).reshape(n, states, -1)


class _Codec:
    """Masking works on numeric matrices: non-numeric columns travel as category codes (missing as
    -1) and are decoded, in the signature's dtypes, before the kind's ``predict`` sees them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.dtypes = {str(c): dtype for c, dtype in frame.dtypes.items()}
        self.columns = list(self.dtypes)
        self.categories = {c: frame[c].dropna().unique() for c, d in self.dtypes.items() if not _is_number(d)}

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack(
            [
                pd.Categorical(frame[c], categories=self.categories[c]).codes.astype(float)
                if c in self.categories
                else frame[c].to_numpy(dtype=float, na_value=np.nan)
                for c in self.columns
            ]
        )

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for j, (c, dtype) in enumerate(self.dtypes.items()):
            column: Any = matrix[:, j]
            if c in self.categories:
                column = pd.Categorical.from_codes(column.astype(int), categories=self.categories[c])
            elif dtype.kind == "f" or (dtype.kind in "iu" and np.isnan(column).any()):
                data[c] = column  # an integer column with missing values stays float
                continue
            data[c] = pd.Series(column).astype(dtype)
        return pd.DataFrame(data, columns=self.columns)


def _explained_outputs(outputs: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The output columns to explain and how to name them (see the module docstring)."""
    names = [str(c) for c in outputs.columns]
    for prefix in _PROBABILITY_PREFIXES:
        group = [n for n in names if n.startswith(prefix) and _is_number(outputs[n].dtype)]
        if len(group) >= 2:
            labels = [f"probability of class {n[len(prefix) :]}" for n in group]
            return (group[1:], labels[1:]) if len(group) == 2 else (group, labels)
    numeric = [n for n in names if _is_number(outputs[n].dtype)]
    preferred = [n for n in ("probability", "prediction") if n in numeric] + numeric
    if not preferred:
        raise InvalidArgument(f"the model has no numeric output to explain (outputs: {', '.join(names)})")
    return preferred[:1], preferred[:1]


def _through_kind(model: LoadedModel, frame: pd.DataFrame, y: np.ndarray) -> tuple[Any, str, str]:
    """An estimator that predicts through the kind, for scikit-learn's scorers; its default scoring
    and the output that scoring reads."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    outputs = model.predict(frame.head(1))
    names = [str(c) for c in outputs.columns]
    others = [n for n in names if not n.startswith(_PROBABILITY_PREFIXES) and n != "rule"]
    label = "prediction" if "prediction" in names else (others or names)[0]
    probabilities = [n for n in names if n.startswith("proba_")]

    class Through(BaseEstimator):
        def __init__(self, model: Any = None) -> None:
            self.model = model

        def fit(self, X: Any, y: Any = None) -> Through:
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return self.model.predict(X)[label].to_numpy()

    class Regressor(RegressorMixin, Through):
        pass

    class Classifier(ClassifierMixin, Through):
        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return self.model.predict(X)[probabilities].to_numpy(dtype=float)

    if not probabilities and _is_number(pd.Series(y).dtype) and _is_number(outputs[label].dtype):
        return Regressor(model), "r2", label
    estimator = Classifier(model)
    known = {str(v): v for v in np.unique(y)}
    classes = [known.get(p[len("proba_") :], p[len("proba_") :]) for p in probabilities]
    estimator.classes_ = np.array(classes) if classes else np.unique(y)
    if len(probabilities) == 2:
        return estimator, "roc_auc", f"probability of class {_text(classes[1])}"
    return estimator, "accuracy", label


def _explain_rules(model: LoadedModel, frame: pd.DataFrame) -> list[Explanation]:
    fired, reads, outputs = _rules_fired(model, frame)
    output = next((str(c) for c in outputs.columns if str(c) != "rule"), "rule")
    return [
        Explanation(
            ref=model.ref,
            row=i,
            output=output,
            explainer="rules",
            rule=rule_id,
            prediction=_plain(outputs[output].iloc[i]),
            contributions=[
                Contribution(feature=c, value=_plain(frame[c].iloc[i]), contribution=1.0)
                for c in reads.get(rule_id, ())
            ],
        )
        for i, rule_id in enumerate(fired)
    ]


def _rules_fired(model: LoadedModel, frame: pd.DataFrame) -> tuple[list[Any], dict[str, tuple[str, ...]], pd.DataFrame]:
    """The id of the rule that decided each row (None: no rule and no default), the columns each
    rule's condition reads, and the outputs."""
    outputs = model.kind.predict(model.native, frame)
    reads = {str(rule.id): tuple(rule.when.names) for rule in model.native.rules}
    return [None if r is None else str(r) for r in outputs["rule"]], reads, outputs


def _global(
    model: LoadedModel,
    method: Any,
    explainer: str,
    output: str,
    rows: int,
    scores: dict[Any, Any],
    *,
    std: dict[Any, Any] | None = None,
    scoring: str | None = None,
) -> GlobalImportance:
    std = std or {}
    features = [
        FeatureImportance(feature=str(c), importance=float(v), std=float(std[c]) if c in std else None)
        for c, v in scores.items()
    ]
    features.sort(key=lambda f: -f.importance)
    return GlobalImportance(
        ref=model.ref, method=method, explainer=explainer, output=output, rows=rows, features=features, scoring=scoring
    )


def _refuse_optimization(model: LoadedModel) -> None:
    if model.kind.name == "optimization":
        raise InvalidArgument(
            f"{model.ref} is an optimization program: optimization models are explained by their constraints "
            "and objective, not by feature attributions",
            details={"model_version": model.ref, "kind": "optimization"},
        )


def _prepare(model: LoadedModel, data: Any, *, what: str) -> pd.DataFrame:
    frame = model.prepare(data, allow_extra=True).reset_index(drop=True)
    if frame.empty and what != "rows":
        raise InvalidArgument(f"the {what} has no rows", details={"field": what})
    return frame


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n < 1:
        raise InvalidArgument("the number of rows must be at least 1", details={"rows": n})
    return frame if len(frame) <= n else frame.sample(n=n, random_state=seed).reset_index(drop=True)


def _is_number(dtype: Any) -> bool:
    return getattr(dtype, "kind", "O") in "iuf"


def _text(label: Any) -> str:
    return str(label.item() if hasattr(label, "item") else label)


def _plain(value: Any) -> Any:
    """A JSON-able scalar: numbers as float, other values as text, missing as None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    return float(value) if isinstance(value, (int, float, np.integer, np.floating)) else str(value)
