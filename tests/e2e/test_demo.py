"""End to end: seed the Northwind Bank demo, then predict with every demo model, embedded and remote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelsteward import Steward
from modelsteward.demo.data import FEATURES, NUMERIC, applicants
from modelsteward.demo.seed import DEMO_MODELS, seed_demo


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("demo")
    st = Steward(data_dir=data_dir)
    assert "seeded" in seed_demo(st)
    assert seed_demo(st) == "the Northwind Bank demo is already seeded"
    st.close()
    return data_dir


def _predict_with_every_model(st: Steward) -> dict[str, pd.DataFrame]:
    new = applicants(50, seed=99, start_id=900_000)
    risk = st.predict("credit-risk@production", new[FEATURES])
    onnx_input = new[FEATURES].astype({c: float for c in NUMERIC})
    policy_input = new.assign(risk_score=risk["proba_1"])[
        ["debt_to_income", "risk_score", "loan_amount", "income", "credit_history_months"]
    ]
    decisions = st.predict("credit-policy@production", policy_input)
    approved = new.assign(risk_score=risk["proba_1"])[decisions["decision"].to_numpy() == "approve"]
    return {
        "credit-risk": risk,
        "credit-risk-onnx": st.predict(
            "credit-risk-onnx@production",
            onnx_input[st.get_version("credit-risk-onnx").signature.input_names],
        ),
        "credit-policy": decisions,
        "limit-allocation": st.predict(
            "limit-allocation@production", approved[["risk_score", "loan_amount", "income", "region"]]
        ),
        "affordability": st.predict(
            "affordability@production", new[["income", "debt_to_income", "loan_amount", "region", "housing"]]
        ),
    }


def _check(results: dict[str, pd.DataFrame]) -> None:
    assert set(results) == set(DEMO_MODELS)
    risk = results["credit-risk"]
    assert ((risk["proba_1"] >= 0) & (risk["proba_1"] <= 1)).all()
    assert set(results["credit-policy"]["decision"]) <= {"approve", "decline", "refer"}
    assert results["credit-policy"]["rule"].notna().all()
    limits = results["limit-allocation"]
    assert (limits["status"] == "optimal").all()
    assert limits["limit"].sum() <= 250_000 + 1e-6
    assert (limits["limit"] % 500 == 0).all()
    assert results["affordability"]["affordable"].dtype == bool
    onnx_proba = results["credit-risk-onnx"].filter(like="probabilities").iloc[:, -1]
    assert ((onnx_proba >= 0) & (onnx_proba <= 1)).all()


def test_demo_models_are_catalogued_with_lineage(seeded: Path) -> None:
    st = Steward(data_dir=seeded)
    models = {m.name: m for m in st.list_models()}
    assert set(models) == set(DEMO_MODELS)
    assert {m.kind for m in models.values()} == {"sklearn", "onnx", "rules", "optimization", "python"}
    risk = models["credit-risk"]
    assert risk.aliases == {"previous": 1, "production": 2}
    assert risk.owner and risk.business_unit == "Retail Credit" and risk.risk_tier == "high"
    assert [k.name for k in risk.kpis] == ["approval_rate", "default_rate_90d", "profit_per_decision"]
    v1, v2 = st.get_version("credit-risk/1"), st.get_version("credit-risk/2")
    assert v2.metrics["auc"] > v1.metrics["auc"]  # the story: gradient boosting beats the baseline
    assert {d.role for d in v2.datasets} == {"training", "test"}
    assert v1.datasets == v2.datasets  # same training data, same fingerprints
    lineage = st.get_lineage("credit-risk@production")
    assert any(e.relation == "training_data" for e in lineage.upstream)
    st.close()


def test_predict_with_every_demo_model_embedded(seeded: Path) -> None:
    st = Steward(data_dir=seeded)
    _check(_predict_with_every_model(st))
    st.close()


def test_predict_with_every_demo_model_remote(seeded: Path, server_factory) -> None:
    from modelsteward.settings import Settings

    with server_factory(Settings(data_dir=seeded)) as server:
        st = Steward(url=server.url)
        results = _predict_with_every_model(st)
        _check(results)
        local = Steward(data_dir=seeded)
        np.testing.assert_allclose(
            results["credit-risk"]["proba_1"].to_numpy(),
            _predict_with_every_model(local)["credit-risk"]["proba_1"].to_numpy(),
        )
        local.close()
        st.close()
