"""Seed the Northwind Bank demo through the facade: the same calls a data scientist would make."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.demo.data import CATEGORICAL, FEATURES, NUMERIC, PROTECTED, TARGET, applicants
from modelsteward.demo.models import Affordability
from modelsteward.demo.training import risk_metrics, risk_pipeline
from modelsteward.steward import Steward

OWNER = "head-of-retail-credit"
BUSINESS_UNIT = "Retail Credit"
ENTRY_POINT_TAG = "steward.entry_point"  # how a version is trained again (the reproducibility test)
REFIT = "modelsteward.demo.retrain:refit"
LIMITATIONS = (
    "Consumer loans to applicants aged 19-75 only; outcomes are observed for approved loans only (no reject "
    "inference), so the score is least reliable for profiles the bank used to decline; retrain after a downturn."
)
KPIS = [
    {
        "name": "approval_rate",
        "description": "share of applications approved",
        "unit": "%",
        "direction": "target",
    },
    {
        "name": "default_rate_90d",
        "description": "share of loans 90 days past due",
        "unit": "%",
        "direction": "decrease",
    },
    {
        "name": "profit_per_decision",
        "description": "expected profit per decision",
        "unit": "EUR",
        "direction": "increase",
    },
]
DEMO_MODELS = ("credit-risk", "credit-risk-onnx", "credit-policy", "limit-allocation", "affordability")
DEMO_DEPLOYMENTS = ("credit-risk", "credit-policy", "affordability", "credit-decision")


def definition(name: str) -> Path:
    """Path of a demo YAML definition shipped inside the package."""
    return Path(str(resources.files("modelsteward.demo") / "definitions" / name))


def _onnx_export(pipeline: Any) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [
        (c, StringTensorType([None, 1])) for c in CATEGORICAL
    ]
    return convert_sklearn(pipeline, initial_types=inputs, options={id(pipeline.steps[-1][1]): {"zipmap": False}})


def seed_demo(st: Steward, *, data_dir: Path | None = None, rows: int = 10_000, inbox_url: str | None = None) -> str:
    """Register the demo models and deployments unless they are there already, and, given the URL of
    a webhook receiver for the alert (``steward up --demo`` serves one at /demo/inbox), play the
    demo's 60 days of traffic. Returns a one-line summary."""
    existing = {m.name for m in st.list_models()}
    deployed = {d.name for d in st.list_deployments()}
    if set(DEMO_MODELS) <= existing and set(DEMO_DEPLOYMENTS) <= deployed:
        if inbox_url is None or any(m.name == "credit-risk-drift" for m in st.list_monitors()):
            return "the Northwind Bank demo is already seeded"
        return _play(st, data_dir, rows, inbox_url)

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    data = applicants(rows, seed=42)
    train = data.iloc[: int(rows * 0.7)]
    test = data.iloc[int(rows * 0.7) :]
    folder = (data_dir or Path(getattr(getattr(st, "settings", None), "data_dir", "."))) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    train_path, test_path = folder / "applicants_train.parquet", folder / "applicants_test.parquet"
    train.to_parquet(train_path, index=False)
    test.to_parquet(test_path, index=False)
    X_train, y_train = train[FEATURES], train[TARGET]
    X_test, y_test = test[FEATURES], test[TARGET]
    common = dict(
        owner=OWNER,
        business_unit=BUSINESS_UNIT,
        kpis=KPIS,
        tags={"domain": "consumer-credit", "regulation": "EBA-GL-LOM"},
    )

    if "credit-risk" not in existing:
        lr = risk_pipeline(LogisticRegression(max_iter=1000)).fit(X_train, y_train)
        v1 = st.register_model(
            "credit-risk",
            lr,
            kind="sklearn",
            input_example=X_train.head(5),
            training_data=str(train_path),
            datasets={"test": str(test_path)},
            metrics=risk_metrics(lr, X_test, y_test),
            params={"algorithm": "logistic_regression", "max_iter": 1000},
            description="Probability that a consumer-loan applicant is 90 days past due within a year.",
            version_description="Baseline: logistic regression on scaled and one-hot features.",
            version_tags={ENTRY_POINT_TAG: REFIT},
            risk_tier="high",
            protected_attributes=PROTECTED,
            resources={"cpu": 0.5, "memory_mb": 512},
            **{**common, "tags": {**common["tags"], "limitations": LIMITATIONS}},
        )
        gb = risk_pipeline(
            HistGradientBoostingClassifier(
                max_iter=300, learning_rate=0.03, max_depth=3, min_samples_leaf=100, random_state=0
            )
        )
        gb.fit(X_train, y_train)
        v2 = st.register_model(
            "credit-risk",
            gb,
            kind="sklearn",
            input_example=X_train.head(5),
            training_data=str(train_path),
            datasets={"test": str(test_path)},
            metrics=risk_metrics(gb, X_test, y_test),
            params={
                "algorithm": "hist_gradient_boosting",
                "max_iter": 300,
                "learning_rate": 0.03,
                "max_depth": 3,
                "min_samples_leaf": 100,
            },
            version_description="Gradient boosting: captures the non-linear debt-to-income effect.",
            version_tags={ENTRY_POINT_TAG: REFIT},
        )
        st.set_alias("credit-risk", "previous", v1.version)
        st.set_alias("credit-risk", "production", v2.version)

    if "credit-risk-onnx" not in existing:
        # skl2onnx converts the logistic baseline; its tree converter does not handle this
        # HistGradientBoosting release, so the ONNX twin is of version 1.
        baseline = risk_pipeline(LogisticRegression(max_iter=1000)).fit(X_train, y_train)
        v = st.register_model(
            "credit-risk-onnx",
            _onnx_export(baseline),
            kind="onnx",
            input_example=_onnx_frame(X_train.head(5)),
            training_data=str(train_path),
            metrics=risk_metrics(baseline, X_test, y_test),
            description="The baseline credit-risk model exported to ONNX for low-latency scoring.",
            risk_tier="high",
            protected_attributes=PROTECTED,
            **common,
        )
        st.set_alias("credit-risk-onnx", "production", v.version)

    if "credit-policy" not in existing:
        v = st.register_model(
            "credit-policy",
            definition("credit_policy.yaml"),
            kind="rules",
            description="The bank's written consumer-credit policy as a decision table.",
            risk_tier="medium",
            **common,
        )
        st.set_alias("credit-policy", "production", v.version)

    if "limit-allocation" not in existing:
        v = st.register_model(
            "limit-allocation",
            definition("limit_allocation.yaml"),
            kind="optimization",
            input_example=_approved_example(data),
            description="Day-end allocation of credit limits under an exposure budget (MIP, HiGHS).",
            risk_tier="medium",
            resources={"cpu": 1, "memory_mb": 1024},
            **common,
        )
        st.set_alias("limit-allocation", "production", v.version)

    if "affordability" not in existing:
        v = st.register_model(
            "affordability",
            Affordability(),
            kind="python",
            input_example=data[list(Affordability.input_schema)].head(5),
            description="Monthly payment capacity from income, debts and the cost-of-living table.",
            risk_tier="low",
            **common,
        )
        st.set_alias("affordability", "production", v.version)
    _deploy(st, folder.parent, data, deployed)
    summary = (
        f"seeded the Northwind Bank demo: models {', '.join(DEMO_MODELS)}; deployments "
        f"{', '.join(DEMO_DEPLOYMENTS)} ({rows} generated applicants)"
    )
    if inbox_url is not None:
        summary += "\n" + _play(st, data_dir, rows, inbox_url)
    return summary


def _play(st: Steward, data_dir: Path | None, rows: int, inbox_url: str) -> str:
    from datetime import UTC, datetime

    from modelsteward.demo.lifecycle_story import PROMOTION_DAY, LifecycleStory
    from modelsteward.demo.timeline import DAYS, play, record_debt_days, simulated_start

    pool = applicants(rows, seed=42)  # the bureau knows these applicants
    end = datetime.now(UTC)
    story = LifecycleStory(st, pool, start=simulated_start(end))  # one calendar for the timeline and the story
    result = play(st, pool, end=end, inbox_url=inbox_url, before_breach=story.govern)
    result += "\n" + story.play()
    record_debt_days(st, story.start, range(PROMOTION_DAY + 1, DAYS + 1))  # after the promotion, to today
    st.stop_serving()  # type: ignore[attr-defined]  # flush the simulated days to the log
    return result


def _deploy(st: Steward, data_dir: Path, data: pd.DataFrame, deployed: set[str]) -> None:
    """The deployments the demo serves: each model behind its production alias, and the credit
    decision pipeline (bureau lookup -> risk score -> policy -> limit allocation)."""
    from modelsteward.demo.bureau import write_bureau

    write_bureau(data_dir, data)
    for name in ("credit-risk", "credit-policy", "affordability"):
        if name not in deployed:
            # An applicant always meets the same credit-risk version while a canary takes a share.
            sticky = "applicant_id" if name == "credit-risk" else None
            st.deploy(name, f"{name}@production", sticky_key=sticky, description=f"{name} as the business calls it")
    if "credit-decision" not in deployed:
        st.deploy(
            "credit-decision",
            pipeline=definition("credit_decision.yaml"),
            description="Northwind Bank's consumer-credit decision, end to end",
        )


def _onnx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    # The ONNX graph takes float32 numbers: give it floats, not integers.
    out = frame[NUMERIC + CATEGORICAL].copy()
    out[NUMERIC] = out[NUMERIC].astype(float)
    return out


def _approved_example(data: pd.DataFrame) -> pd.DataFrame:
    sample = data.head(12)
    risk = np.clip(sample["debt_to_income"].to_numpy() * 0.4, 0.01, 0.3)
    return pd.DataFrame(
        {
            "risk_score": risk.round(3),
            "loan_amount": sample["loan_amount"].to_numpy(),
            "income": sample["income"].to_numpy(),
            "region": sample["region"].to_numpy(),
        }
    )
