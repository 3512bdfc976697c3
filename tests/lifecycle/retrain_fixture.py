"""A retraining entry point for the tests: fits on the data the job was given and registers it."""

from __future__ import annotations

import os
from typing import Any

from sklearn.linear_model import LogisticRegression


def retrain(st: Any, data: Any, model: str) -> Any:
    if os.environ.get("RETRAIN_FAIL"):
        raise SystemExit("the training data is not good enough")
    X = data[["income", "debt_to_income"]]
    y = (data["debt_to_income"] > 0.4).astype(int)
    fitted = LogisticRegression().fit(X, y)
    print(f"fitted on {len(X)} rows", flush=True)
    return st.register_model(model, fitted, input_example=X.head(), training_data=X, metrics={"auc": 0.9})
