"""A credit-risk model in two versions with lineage (training and test sets written to files), as the demo
registers it, but small enough for unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelsteward.demo.data import FEATURES, PROTECTED, TARGET, applicants
from modelsteward.demo.training import risk_metrics

REFIT = "modelsteward.demo.retrain:refit"
GB_PARAMS = {"algorithm": "hist_gradient_boosting", "max_iter": 60, "learning_rate": 0.1, "max_depth": 3,
             "min_samples_leaf": 50}  # fmt: skip
LR_PARAMS = {"algorithm": "logistic_regression", "max_iter": 1000}


@dataclass
class Credit:
    train: pd.DataFrame
    test: pd.DataFrame
    train_path: Path
    test_path: Path


def make_credit(folder: Path) -> Credit:
    data = applicants(4000, seed=42)
    train, test = data.iloc[:2800].reset_index(drop=True), data.iloc[2800:].reset_index(drop=True)
    train.to_parquet(folder / "train.parquet", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    return Credit(train, test, folder / "train.parquet", folder / "test.parquet")


def fit(credit: Credit, params: dict[str, Any]) -> Any:
    from modelsteward.demo.retrain import refit

    return refit(credit.train, params)


def register(st: Any, credit: Credit, params: dict[str, Any], **extra: Any) -> Any:
    model = fit(credit, params)
    return st.register_model(
        "credit-risk",
        model,
        kind="sklearn",
        input_example=credit.train[FEATURES].head(5),
        training_data=str(credit.train_path),
        datasets={"test": str(credit.test_path)},
        metrics=risk_metrics(model, credit.test[FEATURES], credit.test[TARGET]),
        params=params,
        protected_attributes=PROTECTED,
        version_tags={"steward.entry_point": REFIT},
        capture_git=False,
        **extra,
    )


SUITE = """\
name: credit-risk-validation
data: test
target: defaulted_90d
tests:
  - name: fair lending
    fairness:
      sensitive: [age_group, gender]
      favourable: 0
      decision: {score: proba_1, threshold: 0.35}
      min_demographic_parity_ratio: 0.8
      max_equalized_odds_difference: 0.1
  - name: held-out performance
    performance:
      score: proba_1
      min: {roc_auc: 0.7}
      champion: {alias: production, metric: roc_auc, max_drop: 0.01}
  - name: drivers
    explainability: {method: permutation, rows: 600, top: 3}
  - name: reproducible
    reproducibility: {metrics: [roc_auc], tolerance: 0.005}
"""


def another_recipe(data: pd.DataFrame, params: dict[str, Any]) -> Any:
    """A training entry point that does not reproduce the recorded version: it ignores the parameters."""
    from sklearn.linear_model import LogisticRegression

    from modelsteward.demo.training import risk_pipeline

    return risk_pipeline(LogisticRegression(C=0.001, max_iter=200)).fit(data[FEATURES], data[TARGET])
