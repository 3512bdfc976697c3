"""The bank's algorithmic model, registered with the ``python`` kind."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Monthly cost of living by region and housing, the fixed table the affordability policy uses.
COST_OF_LIVING = {
    ("north", "rent"): 1450, ("north", "own"): 950, ("north", "mortgage"): 1250,
    ("south", "rent"): 1150, ("south", "own"): 800, ("south", "mortgage"): 1000,
    ("east", "rent"): 1250, ("east", "own"): 850, ("east", "mortgage"): 1100,
    ("west", "rent"): 1350, ("west", "own"): 900, ("west", "mortgage"): 1150,
}  # fmt: skip
_COST_BY_KEY = {f"{region}|{housing}": cost for (region, housing), cost in COST_OF_LIVING.items()}
DEFAULT_COST_OF_LIVING = 1300
TERM_MONTHS = 36
ANNUAL_RATE = 0.09


class Affordability:
    """Monthly payment capacity: income minus existing debt payments minus the cost of living,
    of which at most half may go to the new loan; compares it with the loan's installment."""

    input_schema = {
        "income": "number",
        "debt_to_income": "number",
        "loan_amount": "number",
        "region": "string",
        "housing": "string",
    }

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        monthly_income = frame["income"].to_numpy(dtype=float) / 12
        monthly_debt = frame["debt_to_income"].to_numpy(dtype=float) * monthly_income
        keys = frame["region"].astype(str) + "|" + frame["housing"].astype(str)
        cost = keys.map(_COST_BY_KEY).fillna(DEFAULT_COST_OF_LIVING).to_numpy(dtype=float)
        capacity = np.maximum(monthly_income - monthly_debt - cost, 0.0)
        rate = ANNUAL_RATE / 12
        installment = frame["loan_amount"].to_numpy(dtype=float) * rate / (1 - (1 + rate) ** -TERM_MONTHS)
        return pd.DataFrame(
            {
                "monthly_capacity": capacity.round(2),
                "installment": installment.round(2),
                "affordable": installment <= 0.5 * capacity,
            },
            index=frame.index,
        )
