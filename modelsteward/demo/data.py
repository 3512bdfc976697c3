"""Generated consumer-loan applicants whose default risk follows a known formula (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pandas as pd

PURPOSES = ["car", "home", "education", "debt_consolidation", "other"]
REGIONS = ["north", "south", "east", "west"]
HOUSING = ["rent", "own", "mortgage"]
NUMERIC = [
    "age",
    "income",
    "employment_years",
    "debt_to_income",
    "credit_history_months",
    "num_open_accounts",
    "loan_amount",
]
CATEGORICAL = ["loan_purpose", "region", "housing"]
FEATURES = NUMERIC + CATEGORICAL
PROTECTED = ["gender", "age_group"]
TARGET = "defaulted_90d"


def true_default_probability(frame: pd.DataFrame) -> np.ndarray:
    """The known data-generating formula: a logistic score with a non-linear debt-to-income effect,
    so that a gradient-boosted model can beat a linear one on these data."""
    dti = frame["debt_to_income"].to_numpy()
    young = frame["age"].to_numpy() < 25
    renting = frame["housing"].to_numpy() == "rent"
    logit = (
        -3.2
        + 9.0 * np.maximum(dti - 0.4, 0)
        + 1.0 * dti
        - 0.7 * np.log(frame["income"].to_numpy() / 50_000)
        - 0.05 * np.minimum(frame["employment_years"].to_numpy(), 15)
        - 0.008 * np.minimum(frame["credit_history_months"].to_numpy(), 120)
        + 0.1 * frame["num_open_accounts"].to_numpy()
        + 0.6 * (frame["loan_amount"].to_numpy() / frame["income"].to_numpy() > 0.5)
        + 0.3 * renting
        + 0.35 * (frame["loan_purpose"].to_numpy() == "debt_consolidation")
        + 0.25 * (frame["region"].to_numpy() == "south")
        + 0.5 * young
        + 0.8 * (young & renting)
    )
    return 1 / (1 + np.exp(-logit))


def applicants(n: int = 5000, *, seed: int = 42, start_id: int = 1) -> pd.DataFrame:
    """``n`` applicants with features, protected attributes (for fairness tests only) and the
    90-day default outcome drawn from :func:`true_default_probability`."""
    rng = np.random.default_rng(seed)
    age = rng.integers(19, 76, n)
    region = rng.choice(REGIONS, n, p=[0.3, 0.25, 0.25, 0.2])
    income = np.round(rng.lognormal(np.log(48_000), 0.45, n) * np.where(region == "north", 1.1, 1.0), -2)
    employment_years = np.minimum(rng.gamma(2.0, 3.5, n), np.maximum(age - 18, 0)).round(1)
    debt_to_income = np.clip(rng.beta(2.2, 5.5, n) * 1.1, 0.0, 0.95).round(3)
    credit_history_months = np.minimum(rng.gamma(2.5, 30, n), (age - 18) * 12).astype(int)
    frame = pd.DataFrame(
        {
            "applicant_id": np.arange(start_id, start_id + n),
            "age": age,
            "income": income,
            "employment_years": employment_years,
            "debt_to_income": debt_to_income,
            "credit_history_months": credit_history_months,
            "num_open_accounts": rng.poisson(3.0, n),
            "loan_amount": np.round(rng.lognormal(np.log(12_000), 0.6, n), -2),
            "loan_purpose": rng.choice(PURPOSES, n, p=[0.3, 0.15, 0.1, 0.3, 0.15]),
            "region": region,
            "housing": rng.choice(HOUSING, n, p=[0.4, 0.25, 0.35]),
            "gender": rng.choice(["female", "male"], n),
        }
    )
    frame["age_group"] = pd.cut(
        frame["age"], [0, 25, 40, 60, 200], labels=["<25", "25-39", "40-59", "60+"], right=False
    ).astype(str)
    frame[TARGET] = (rng.uniform(size=n) < true_default_probability(frame)).astype(int)
    return frame
