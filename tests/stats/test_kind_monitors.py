"""Kind monitors: rule hit rates alarm on real changes, not on small counts; solver health adds up."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import pytest

from modelsteward.errors import InvalidArgument
from modelsteward.stats.kind_monitors import optimization_health, rule_hit_rates
from modelsteward.stats.performance import by_window

# The credit policy's rules and how often each decides an application in normal times.
RULES = np.array(["decline_dti", "decline_risk", "refer_amount", "refer_history", "default"])
SHARES = np.array([0.08, 0.15, 0.05, 0.02, 0.70])


def decisions(seed: int, n: int, shares: np.ndarray = SHARES) -> np.ndarray:
    return np.random.default_rng(seed).choice(RULES, n, p=shares / shares.sum())


def test_a_rule_firing_three_times_as_often_is_flagged() -> None:
    # Day 31: incomes drop in the south, debt-to-income rises, the DTI rule fires far more often.
    surge = np.array([0.32, 0.15, 0.05, 0.02, 0.46])
    result = rule_hit_rates(decisions(0, 20_000), decisions(1, 2_000, surge))
    assert result.status == "ok" and result.breach and result.flagged == ["decline_dti"]
    dti = next(r for r in result.rules if r.rule == "decline_dti")
    assert dti.flag == "grew" and dti.ratio == pytest.approx(4, rel=0.15) and dti.p_value < 1e-10
    assert dti.current_share == pytest.approx(dti.current_count / 2000)
    assert result.chi2_p_value is not None and result.chi2_p_value < 1e-10
    assert next(r for r in result.rules if r.rule == "default").flag is None  # fell, but by less than 3x


def test_stable_rules_do_not_alarm() -> None:
    alarms = [rule_hit_rates(decisions(seed, 5_000), decisions(seed + 1000, 500)).breach for seed in range(30)]
    assert sum(alarms) == 0


def test_small_counts_do_not_alarm_even_with_a_large_ratio() -> None:
    reference = np.array(["rare"] * 10 + ["default"] * 990, dtype=object)
    current = np.array(["rare"] * 4 + ["default"] * 96, dtype=object)  # 1% -> 4%: ratio 4 on four decisions
    result = rule_hit_rates(reference, current)
    rare = next(r for r in result.rules if r.rule == "rare")
    assert rare.ratio == pytest.approx(4.0) and rare.flag is None and not result.breach
    many = rule_hit_rates(np.repeat(reference, 10), np.repeat(current, 10))  # the same shares, ten times the data
    assert many.flagged == ["rare"]


def test_rules_appearing_disappearing_and_falling() -> None:
    reference = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    current = np.array(["a"] * 880 + ["c"] * 50 + ["new"] * 70, dtype=object)
    flags = {r.rule: r.flag for r in rule_hit_rates(reference, current).rules}
    assert flags == {"a": None, "b": "disappeared", "c": "fell", "new": "appeared"}
    quiet = rule_hit_rates(reference, np.r_[current, ["tiny"] * 3], min_share=0.01)
    assert {r.rule: r.flag for r in quiet.rules}["tiny"] is None  # below min_share in both windows


def test_decisions_without_a_rule_count_as_decisions() -> None:
    reference = np.array(["a"] * 50 + [None] * 50, dtype=object)
    result = rule_hit_rates(pd.Series(reference), pd.Series(reference))
    assert result.no_rule_reference == 50 and result.rules[0].reference_share == 0.5
    assert [r.rule for r in result.rules] == ["a"]


def test_a_frame_of_booleans_when_several_rules_fire() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"dti": rng.uniform(size=4000) < 0.1, "risk": rng.uniform(size=4000) < 0.2})
    current = pd.DataFrame({"dti": rng.uniform(size=1000) < 0.35, "risk": rng.uniform(size=1000) < 0.2})
    current["risk"] = current["risk"].astype(object)
    current.loc[:9, "risk"] = None  # unknown: not counted as fired
    result = rule_hit_rates(reference, current)
    assert result.flagged == ["dti"] and result.chi2_p_value is None
    assert result.n_current == 1000


def test_not_enough_decisions() -> None:
    result = rule_hit_rates(decisions(0, 1000), decisions(1, 10))
    assert result.status == "not_enough_data" and not result.breach and result.rules == []
    assert "need 30" in result.reasons["status"]
    with pytest.raises(InvalidArgument):
        rule_hit_rates(decisions(0, 100), decisions(1, 100), max_ratio=1.0)
    json.dumps(rule_hit_rates(decisions(0, 100), decisions(1, 100)).to_dict(), allow_nan=False)


def runs(seed: int, n: int = 200, infeasible: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    status = rng.choice(["optimal", "infeasible", "time_limit"], n, p=[0.97 - infeasible, infeasible, 0.03])
    objective = np.where(status == "infeasible", np.nan, rng.normal(120_000, 8_000, n))
    return pd.DataFrame({"status": status, "objective": objective, "latency_ms": rng.gamma(4, 60, n)})


def test_solver_health_summarizes_statuses_objective_and_run_time() -> None:
    frame = runs(0)
    health = optimization_health(frame["status"], frame["objective"], frame["latency_ms"])
    assert health.status == "ok" and health.runs == 200 and not health.breach
    counts = frame["status"].value_counts(normalize=True)
    assert health.status_shares == pytest.approx(counts.to_dict())
    assert health.infeasible_rate == pytest.approx(counts.get("infeasible", 0.0))
    assert health.failure_rate == pytest.approx(1 - counts["optimal"])
    feasible = frame["objective"].dropna()
    assert health.objective.count == len(feasible) and health.objective.mean == pytest.approx(feasible.mean())
    assert health.latency_ms.p50 == pytest.approx(frame["latency_ms"].median())
    assert health.latency_ms.p95 == pytest.approx(np.quantile(frame["latency_ms"], 0.95))
    json.dumps(health.to_dict(), allow_nan=False)


def test_too_many_infeasible_runs_or_slow_solves_breach() -> None:
    frame = runs(1, infeasible=0.12)
    health = optimization_health(frame["status"], frame["objective"], frame["latency_ms"])
    assert health.breach and "infeasible rate" in health.breaches[0]
    slow = optimization_health(runs(0)["status"], runs(0)["objective"], runs(0)["latency_ms"], max_latency_ms_p95=100)
    assert slow.breach and "run time" in slow.breaches[0]


def test_rows_of_one_batch_run_count_once() -> None:
    # A batch program writes its status and objective on each of its rows.
    status = np.array(["optimal"] * 300 + ["infeasible"] * 100 + [None])
    objective = np.r_[np.full(300, 5.0), np.full(100, np.nan), np.nan]
    latency = np.r_[np.full(300, 80.0), np.full(100, 2000.0), np.inf]
    run = np.r_[np.repeat([1, 2, 3], 100), np.repeat(4, 100), 5]
    health = optimization_health(status, objective, latency, run=run)
    assert health.runs == 5 and health.infeasible_rate == pytest.approx(0.2)
    assert health.status_shares == {"infeasible": 0.2, "optimal": 0.6, "unknown": 0.2}
    assert health.latency_ms.count == 4 and "1 run(s)" in health.reasons["latency_ms"]
    assert health.objective.mean == 5.0 and health.objective.count == 3


def test_no_runs_is_not_enough_data() -> None:
    health = optimization_health([], [], [])
    assert health.status == "not_enough_data" and not health.breach and health.infeasible_rate is None
    with pytest.raises(InvalidArgument):
        optimization_health(["optimal"], [1.0, 2.0], [3.0])


def test_kind_monitors_run_per_window() -> None:
    frame = pd.concat([runs(2, 48), runs(3, 48, infeasible=0.3)], ignore_index=True)
    frame["ts"] = pd.date_range("2026-11-01", periods=96, freq="h")
    columns = {"status": "status", "objective": "objective", "latency_ms": "latency_ms"}
    daily = by_window(frame, ts="ts", freq="1D", fn=optimization_health, min_rows=1, **columns)
    assert [row["breach"] for row in daily.rows] == [0.0, 0.0, 1.0, 1.0]
    frame["rule"] = np.r_[decisions(4, 48), decisions(5, 48, np.array([0.4, 0.15, 0.05, 0.02, 0.38]))]
    rates = by_window(frame, ts="ts", freq="1D", fn=partial(rule_hit_rates, decisions(6, 5000)), current_rules="rule")
    assert [row["status"] for row in rates.rows] == ["not_enough_data"] * 4  # 24 decisions a day, fewer than 100
