"""Monitors that fit the model kind: rule hit rates for rule sets, solver health for optimization models.

A rule set's decisions each name the rule that fired; a rule that suddenly fires several times as
often (or stops firing) means the inputs or the world changed. An optimization model's runs each
have a solver status, an objective and a run time; infeasible runs and slow solves are the alarms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from modelsteward.errors import InvalidArgument
from modelsteward.stats.performance import json_ready

Flag = Literal["grew", "fell", "appeared", "disappeared"]


@dataclass(frozen=True)
class RuleRate:
    """How often one rule fired in each window (share of all decisions), and whether that alarms."""

    rule: str
    reference_count: int
    reference_share: float
    current_count: int
    current_share: float
    ratio: float | None
    p_value: float
    flag: Flag | None


@dataclass(frozen=True)
class RuleRates:
    """Per-rule hit rates of a current window against a reference window.

    ``p_value`` per rule is a two-proportion z-test (the 2x2 chi-square test); a rule is flagged only
    when its change is large (``max_ratio``, ``min_share``) and significant after a Bonferroni
    correction over the rules, so small-count noise does not alarm. ``chi2_p_value`` tests the
    whole distribution of rules at once.
    """

    status: Literal["ok", "not_enough_data"]
    n_reference: int
    n_current: int
    no_rule_reference: int
    no_rule_current: int
    rules: list[RuleRate]
    flagged: list[str]
    breach: bool
    chi2_p_value: float | None
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.n_current

    @property
    def values(self) -> dict[str, float | None]:
        """Current share per rule, for :func:`~modelsteward.stats.performance.by_window`."""
        return {f"share_{r.rule}": r.current_share for r in self.rules} | {"breach": float(self.breach)}

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _rule_counts(rules: Any) -> tuple[pd.Series, int, int]:
    """Counts per rule name, the number of decisions, and how many named no rule."""
    if isinstance(rules, pd.DataFrame):  # one boolean column per rule: several rules may fire per decision
        fired = rules.notna() & rules.astype(bool)
        counts = fired.sum(axis=0)
        return counts.set_axis([str(c) for c in counts.index]), len(rules), int((~fired.any(axis=1)).sum())
    array = rules.to_numpy() if isinstance(rules, pd.Series) else np.asarray(rules, dtype=object)
    if array.ndim != 1:
        raise InvalidArgument("rules must be one rule name per decision, or a frame of booleans per rule")
    names = pd.Series(array, dtype=object)
    counts = names.dropna().astype(str).value_counts(sort=False)
    return counts, len(names), int(names.isna().sum())


def rule_hit_rates(
    reference_rules: Any,
    current_rules: Any,
    *,
    max_ratio: float = 3.0,
    min_share: float = 0.01,
    alpha: float = 0.01,
    min_rows: int = 30,
) -> RuleRates:
    """Compare how often each rule fires now with a reference window.

    Each input is the rule each decision fired (a null means no rule fired and still counts as a
    decision), or a DataFrame of booleans with one column per rule. A rule is flagged ``grew`` or
    ``fell`` when its share changed by more than ``max_ratio`` times (either way), ``appeared`` or
    ``disappeared`` when it is absent from one window; rules rarer than ``min_share`` in both
    windows are never flagged, and every flag needs a Bonferroni-corrected p-value below ``alpha``.

    >>> rule_hit_rates(last_month["rule"], today["rule"]).flagged
    ['dti_above_0_6']
    """
    if max_ratio <= 1:
        raise InvalidArgument("max_ratio must be greater than 1", details={"field": "max_ratio"})
    ref_counts, n_ref, none_ref = _rule_counts(reference_rules)
    cur_counts, n_cur, none_cur = _rule_counts(current_rules)
    reasons: dict[str, str] = {}
    if min(n_ref, n_cur) < min_rows:
        reasons["status"] = f"{n_ref} reference and {n_cur} current decision(s) (need {min_rows} in each)"
        return RuleRates("not_enough_data", n_ref, n_cur, none_ref, none_cur, [], [], False, None, reasons)
    names = sorted(set(ref_counts.index) | set(cur_counts.index))
    ref = ref_counts.reindex(names, fill_value=0).to_numpy(dtype=float)
    cur = cur_counts.reindex(names, fill_value=0).to_numpy(dtype=float)
    ref_share, cur_share = ref / n_ref, cur / n_cur
    pooled = (ref + cur) / (n_ref + n_cur)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (cur_share - ref_share) / se, 0.0)
        ratio = np.where(ref > 0, cur_share / ref_share, np.nan)
    p_value = 2 * stats.norm.sf(np.abs(z))
    significant = np.minimum(1.0, p_value * len(names)) < alpha
    common = np.maximum(ref_share, cur_share) >= min_share
    flags = np.select(
        [
            (ref == 0) & (cur > 0),
            (cur == 0) & (ref > 0),
            ratio > max_ratio,
            ratio < 1 / max_ratio,
        ],
        ["appeared", "disappeared", "grew", "fell"],
        default="",
    )
    flags = np.where(significant & common, flags, "")
    rates = [
        RuleRate(
            rule=name,
            reference_count=int(ref[i]),
            reference_share=float(ref_share[i]),
            current_count=int(cur[i]),
            current_share=float(cur_share[i]),
            ratio=float(ratio[i]) if math.isfinite(ratio[i]) else None,
            p_value=float(p_value[i]),
            flag=str(flags[i]) or None,  # type: ignore[arg-type]
        )
        for i, name in enumerate(names)
    ]
    chi2 = None
    table = np.array([np.r_[ref, none_ref], np.r_[cur, none_cur]])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and not isinstance(reference_rules, pd.DataFrame):
        # A decision fires one rule at most here, so the table is a proper contingency table.
        chi2 = float(stats.chi2_contingency(table, correction=False).pvalue)
    flagged = [r.rule for r in rates if r.flag]
    return RuleRates("ok", n_ref, n_cur, none_ref, none_cur, rates, flagged, bool(flagged), chi2, reasons)


@dataclass(frozen=True)
class Summary:
    """Mean, median, 95th percentile and maximum of the finite values; ``count`` of them."""

    count: int
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    max: float | None = None


def _summary(values: np.ndarray) -> Summary:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return Summary(0)
    p50, p95 = np.quantile(finite, [0.5, 0.95])
    return Summary(int(finite.size), float(finite.mean()), float(p50), float(p95), float(finite.max()))


@dataclass(frozen=True)
class OptimizationHealth:
    """Solver health over a window of runs: status shares, infeasible and failure rates, objective, run time."""

    status: Literal["ok", "not_enough_data"]
    runs: int
    status_shares: dict[str, float]
    infeasible_rate: float | None
    failure_rate: float | None
    objective: Summary
    latency_ms: Summary
    breach: bool
    breaches: list[str]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.runs

    @property
    def values(self) -> dict[str, float | None]:
        """Flat figures, for :func:`~modelsteward.stats.performance.by_window`."""
        return {
            "infeasible_rate": self.infeasible_rate,
            "failure_rate": self.failure_rate,
            "objective_mean": self.objective.mean,
            "objective_p50": self.objective.p50,
            "latency_ms_mean": self.latency_ms.mean,
            "latency_ms_p50": self.latency_ms.p50,
            "latency_ms_p95": self.latency_ms.p95,
            "breach": float(self.breach),
        }

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


SUCCESS_STATUSES = ("optimal", "feasible")


def optimization_health(
    status: Any,
    objective: Any,
    latency_ms: Any,
    *,
    run: Any = None,
    max_infeasible_rate: float = 0.05,
    max_latency_ms_p95: float | None = None,
    min_runs: int = 1,
) -> OptimizationHealth:
    """Summarize solver runs: one entry per run, or per row with ``run`` naming each row's run.

    A batch program writes its status and objective on every row of the batch; pass ``run`` (a
    request or batch id per row) and the first row of each run stands for it. A missing status
    counts as ``"unknown"``; infeasible and failed runs have no objective, so the objective summary
    covers the runs that have one. ``failure_rate`` is the share of runs whose status is neither
    ``optimal`` nor ``feasible``. The result breaches when the infeasible rate exceeds
    ``max_infeasible_rate`` or the 95th percentile of the run time exceeds ``max_latency_ms_p95``.

    >>> optimization_health(log["out_status"], log["out_objective"], log["latency_ms"], run=log["request_id"])
    """
    statuses = pd.Series(np.asarray(status, dtype=object), dtype=object)
    objectives = pd.to_numeric(pd.Series(np.asarray(objective)), errors="coerce").to_numpy(float, na_value=np.nan)
    latencies = pd.to_numeric(pd.Series(np.asarray(latency_ms)), errors="coerce").to_numpy(float, na_value=np.nan)
    if not len(statuses) == len(objectives) == len(latencies):
        raise InvalidArgument("status, objective and latency_ms differ in length", details={"field": "status"})
    if run is not None:
        runs_of = pd.Series(np.asarray(run, dtype=object))
        if len(runs_of) != len(statuses):
            raise InvalidArgument("run differs in length from status", details={"field": "run"})
        first = ~runs_of.duplicated().to_numpy()
        statuses, objectives, latencies = statuses[first].reset_index(drop=True), objectives[first], latencies[first]
    runs = len(statuses)
    reasons: dict[str, str] = {}
    missing_latency = int(np.sum(~np.isfinite(latencies)))
    if missing_latency:
        reasons["latency_ms"] = f"{missing_latency} run(s) without a finite run time left out"
    if runs < min_runs or runs == 0:
        reasons["status"] = f"{runs} run(s) (need {max(min_runs, 1)})"
        return OptimizationHealth("not_enough_data", runs, {}, None, None, Summary(0), Summary(0), False, [], reasons)
    labels = statuses.fillna("unknown").astype(str).str.lower()
    shares = labels.value_counts(normalize=True)
    infeasible_rate = float(shares.get("infeasible", 0.0))
    failure_rate = float(np.mean(~labels.isin(SUCCESS_STATUSES).to_numpy()))
    latency = _summary(latencies)
    breaches = []
    if infeasible_rate > max_infeasible_rate:
        breaches.append(f"infeasible rate {infeasible_rate:.1%} above {max_infeasible_rate:.1%}")
    if max_latency_ms_p95 is not None and latency.p95 is not None and latency.p95 > max_latency_ms_p95:
        breaches.append(f"95th percentile run time {latency.p95:,.0f} ms above {max_latency_ms_p95:,.0f} ms")
    return OptimizationHealth(
        status="ok",
        runs=runs,
        status_shares={str(k): float(v) for k, v in shares.sort_index().items()},
        infeasible_rate=infeasible_rate,
        failure_rate=failure_rate,
        objective=_summary(objectives),
        latency_ms=latency,
        breach=bool(breaches),
        breaches=breaches,
        reasons=reasons,
    )
