"""How the demo's credit-risk versions are built and measured: the feature pipeline and the metrics each records."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelsteward.demo.data import CATEGORICAL, NUMERIC


def risk_pipeline(estimator: Any) -> Any:
    """Scaled numeric features and one-hot categories in front of ``estimator``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    return Pipeline([("features", pre), ("model", estimator)])


def risk_metrics(model: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """AUC, accuracy, log loss and Brier score of a fitted classifier on data it was not trained on."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    proba = model.predict_proba(X)[:, 1]
    return {
        "auc": round(float(roc_auc_score(y, proba)), 4),
        "accuracy": round(float(accuracy_score(y, model.predict(X))), 4),
        "log_loss": round(float(log_loss(y, proba)), 4),
        "brier": round(float(brier_score_loss(y, proba)), 4),
    }
