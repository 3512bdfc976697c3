"""The demo's 60 days, compressed: normal traffic, a downturn on day 31, late ground truth, KPIs, a
drift monitor that fires on day 33 and an alert delivered to the operations webhook (DEMO-STORY.md).

Traffic goes through the ``credit-decision`` pipeline with the facade's ``serve(..., at=...)``, so
the prediction log holds the simulated days; nothing here bypasses the product.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.demo.data import true_default_probability

DAYS = 60
DOWNTURN_DAY = 31
ALERT_DAY = 33
LABEL_DELAY_DAYS = 30
MONITOR = "credit-risk-drift"
ALERT_RULE = "credit-risk-drift"
CHANNEL = "ops-webhook"
REQUEST_COLUMNS = [
    "applicant_id",
    "age",
    "income",
    "employment_years",
    "debt_to_income",
    "loan_amount",
    "loan_purpose",
    "region",
    "housing",
]


def downturn(frame: pd.DataFrame) -> pd.DataFrame:
    """Day 31 on, a downturn: incomes fall 8% (15% in the south), debt-to-income rises (more in the south)."""
    out = frame.copy()
    south = out["region"] == "south"
    out["income"] = (out["income"] * np.where(south, 0.85, 0.92)).round(-2)
    out["debt_to_income"] = (out["debt_to_income"] + np.where(south, 0.12, 0.05)).clip(0, 0.95).round(3)
    return out


def day_of_applicants(pool: pd.DataFrame, day: int, per_day: int) -> pd.DataFrame:
    """One day's applications: applicants drawn from the bureau's pool (the pipeline looks them up)."""
    rng = np.random.default_rng(10_000 + day)
    rows = pool.iloc[rng.choice(len(pool), size=per_day, replace=False)].reset_index(drop=True)
    return downturn(rows) if day >= DOWNTURN_DAY else rows


def simulated_start(end: datetime | None = None) -> datetime:
    """Day 0 of the simulated calendar whose 60 days end at ``end`` (default: now, to the hour)."""
    return (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)


def record_debt_days(st: Any, start: datetime, days: range) -> None:
    """The daily debt snapshot (what ``steward up``'s scheduler takes) of each simulated day in ``days``, taken
    when the story has reached that day, so the portfolio's debt-over-time chart follows the story."""
    for day in days:
        st.record_debt(day=(start + timedelta(days=day)).date())


def play(
    st: Any,
    pool: pd.DataFrame,
    *,
    end: datetime | None = None,
    per_day: int = 150,
    inbox_url: str,
    before_breach: Callable[[], object] | None = None,
) -> str:
    """Serve 60 simulated days, send late ground truth and daily KPIs, set up the drift monitor and
    its alert, and run the monitor on day 28 (quiet) and day 33 (it fires). ``before_breach`` runs
    once the monitor, its alert and the channel exist and before day 33's run, so that what it sets
    up (the life cycle) sees the breach happen. Returns a summary."""
    start = simulated_start(end)
    end = start + timedelta(days=DAYS)
    decisions: list[tuple[datetime, pd.DataFrame, pd.DataFrame, list[str]]] = []
    for day in range(DAYS):
        at = start + timedelta(days=day, hours=12)
        requests = day_of_applicants(pool, day, per_day)
        served = st.serve("credit-decision", requests[REQUEST_COLUMNS], request_id=f"day{day + 1:02d}", at=at)
        decisions.append((at, requests, served.outputs, served.prediction_ids))

    outcomes = _ground_truth(st, decisions, end)
    points = _kpis(decisions, outcomes)
    st.record_kpis(points)

    st.put_channel({"name": CHANNEL, "type": "webhook", "url": inbox_url})
    st.put_monitor(
        MONITOR,
        {
            "target": {"deployment": "credit-decision", "step": "score"},
            "window": "3d",
            "reference": "training",
            "min_rows": 200,
            "schedule": "1h",
            "description": "Input drift of the credit-risk score in the credit decision, against its training data",
            "checks": [
                {"drift": {"columns": ["income", "debt_to_income", "age", "loan_amount"], "max_share_drifted": 0.0}},
                {"estimated_performance": {"metric": "accuracy", "threshold": 0.8, "score": "risk_score"}},
            ],
        },
    )
    st.put_alert_rule(
        {
            "name": ALERT_RULE,
            "monitor": MONITOR,
            "severity": "critical",
            "channels": [CHANNEL],
            "description": "The applicants no longer look like the credit-risk model's training data",
        }
    )
    quiet = st.run_monitor(MONITOR, at=start + timedelta(days=28))
    record_debt_days(st, start, range(1, DOWNTURN_DAY))
    if before_breach is not None:
        before_breach()
    record_debt_days(st, start, range(DOWNTURN_DAY, ALERT_DAY))
    fired = st.run_monitor(MONITOR, at=start + timedelta(days=ALERT_DAY))
    record_debt_days(st, start, range(ALERT_DAY, ALERT_DAY + 1))
    return (
        f"played {DAYS} days of credit decisions ({DAYS * per_day} applications); day 28 monitor: {quiet.status}, "
        f"day {ALERT_DAY}: {fired.status} ({', '.join(sorted({b.column or b.metric for b in fired.breaches})) or '-'})"
    )


def _ground_truth(
    st: Any, decisions: list[tuple[datetime, pd.DataFrame, pd.DataFrame, list[str]]], end: datetime
) -> dict[int, np.ndarray]:
    """Defaults are known 30 days after the decision, for a sample of the approved loans."""
    outcomes: dict[int, np.ndarray] = {}
    for day, (at, requests, outputs, ids) in enumerate(decisions):
        rng = np.random.default_rng(20_000 + day)
        # the applicants carry their whole record (bureau fields included), the requests only part of it
        defaulted = (rng.uniform(size=len(requests)) < true_default_probability(requests)).astype(int)
        outcomes[day] = defaulted
        observed = at + timedelta(days=LABEL_DELAY_DAYS)
        if observed > end:
            continue  # not known yet
        approved = outputs["decision"].to_numpy() == "approve"
        sample = approved & (rng.uniform(size=len(requests)) < 0.6)
        rows = [
            {"prediction_id": pid, "actual": int(value)}
            for pid, value, keep in zip(ids, defaulted, sample, strict=True)
            if keep
        ]
        if rows:
            st.send_feedback("credit-decision", rows, at=observed)
    return outcomes


def _kpis(
    decisions: list[tuple[datetime, pd.DataFrame, pd.DataFrame, list[str]]], outcomes: dict[int, np.ndarray]
) -> list[dict[str, Any]]:
    points = []
    for day, (at, _requests, outputs, _ids) in enumerate(decisions):
        approved = outputs["decision"].to_numpy() == "approve"
        limits = outputs["credit_limit"].fillna(0).to_numpy(dtype=float)
        defaulted = outcomes[day]
        profit = np.where(approved, np.where(defaulted == 1, -0.6, 0.12) * limits, 0.0)
        points += [
            {"kpi": "approval_rate", "scope": "credit-decision", "ts": at, "value": float(approved.mean())},
            {
                "kpi": "default_rate_90d",
                "scope": "credit-decision",
                "ts": at,
                "value": float(defaulted[approved].mean()) if approved.any() else 0.0,
            },
            {"kpi": "profit_per_decision", "scope": "credit-decision", "ts": at, "value": float(profit.mean())},
        ]
    return points
