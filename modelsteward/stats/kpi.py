"""Business-KPI evidence: A/B arm comparisons and before/after assessments of a deployment change.

:func:`compare_arms` tests two arms (Welch's t-test for means, a two-proportion z-test for rates);
:func:`before_after` tests the mean before against after a known change and, independently, searches
the series for its most likely single change point, so "did the new model cause this dip?" gets an
answer with evidence. Both treat observations as independent: aggregate strongly autocorrelated
data (per day, say) first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from modelsteward.errors import InvalidArgument
from modelsteward.stats.performance import json_ready

Kind = Literal["mean", "proportion"]
_PERMUTATION_CELLS = 4_000_000  # permuted values held in memory at once


class Counts(NamedTuple):
    """A rate given as counts: ``Counts(successes=412, trials=1000)``."""

    successes: int
    trials: int


@dataclass(frozen=True)
class ArmComparison:
    """Arm B against arm A: ``difference = estimate_b - estimate_a`` with its confidence interval and p-value.

    ``effect_size`` is Cohen's d (difference over the root mean variance) for means and Cohen's h
    for proportions; ``verdict`` says it in a sentence.
    """

    kind: Kind
    status: Literal["ok", "not_enough_data"]
    labels: tuple[str, str]
    n_a: int
    n_b: int
    dropped: int
    estimate_a: float | None = None
    estimate_b: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95
    p_value: float | None = None
    statistic: float | None = None
    df: float | None = None
    effect_size: float | None = None
    effect_size_name: str | None = None
    relative_difference: float | None = None
    significant: bool | None = None
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _fmt(diff: float, low: float, high: float, points: bool) -> tuple[str, str, str]:
    """A difference and its interval with one precision: percentage points to 0.1, else two digits of the width."""
    if points:
        return f"{diff * 100:.1f}", f"{low * 100:.1f}", f"{high * 100:.1f}"
    width = (high - low) / 2
    decimals = max(0, 1 - math.floor(math.log10(width))) if width > 0 and math.isfinite(width) else 2
    return f"{diff:,.{decimals}f}", f"{low:,.{decimals}f}", f"{high:,.{decimals}f}"


def _fmt_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _values(values: Any, kind: Kind, label: str) -> tuple[np.ndarray | Counts, int]:
    """The usable observations of one arm (or its counts) and how many were dropped."""
    if kind == "proportion" and isinstance(values, (Counts, Mapping)):
        raw = values if isinstance(values, Mapping) else values._asdict()
        counts = Counts(int(raw["successes"]), int(raw["trials"]))
        if counts.trials < 0 or not 0 <= counts.successes <= counts.trials:
            raise InvalidArgument(f"arm {label}: successes must be between 0 and trials", details={"arm": label})
        return counts, 0
    array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    try:
        numbers = array.astype(float).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"arm {label}: values must be numbers", details={"arm": label}) from exc
    keep = np.isfinite(numbers)
    numbers = numbers[keep]
    if kind == "proportion":
        if not np.all((numbers == 0) | (numbers == 1)):
            raise InvalidArgument(
                f"arm {label}: a proportion needs 0/1 values or Counts(successes, trials)", details={"arm": label}
            )
        return Counts(int(numbers.sum()), numbers.size), int((~keep).sum())
    return numbers, int((~keep).sum())


def _change(diff: float, low: float, high: float, points: bool) -> tuple[str, str]:
    """The size of a change and its interval in the direction of the change: ('4.1 points', '2.3 to 5.9')."""
    if diff < 0:
        diff, low, high = -diff, -high, -low
    size, lower, upper = _fmt(diff, low, high, points)
    return f"{size}{' points' if points else ''}", f"{lower} to {upper}"


def _signed(diff: float, low: float, high: float, points: bool) -> str:
    """'+0.3 points, CI -1.2 to 1.8': a signed difference, for a change that may not be there."""
    text, lower, upper = _fmt(diff, low, high, points)
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # a difference that rounds to zero has no sign
    sign = "" if text.startswith("-") else "+"
    return f"{sign}{text}{' points' if points else ''}, CI {lower} to {upper}"


def compare_arms(
    values_a: Any,
    values_b: Any,
    *,
    kind: Kind = "mean",
    alpha: float = 0.05,
    min_n: int = 10,
    labels: tuple[str, str] = ("A", "B"),
    name: str = "the value",
    points: bool | None = None,
) -> ArmComparison:
    """Compare arm B with arm A: Welch's t-test of the means, or a two-proportion z-test of the rates.

    Values may hold NaN (counted and dropped). For ``kind="proportion"`` an arm is 0/1 values or
    ``Counts(successes, trials)``. ``points`` writes differences in percentage points (the default
    for proportions). Below ``min_n`` observations in either arm the status is ``not_enough_data``.

    >>> compare_arms(approved_v2, approved_v3, kind="proportion", labels=("v2", "v3"), name="the approval rate")
    """
    if kind not in ("mean", "proportion"):
        raise InvalidArgument(f"kind must be 'mean' or 'proportion', not {kind!r}", details={"field": "kind"})
    points = kind == "proportion" if points is None else points
    a, dropped_a = _values(values_a, kind, labels[0])
    b, dropped_b = _values(values_b, kind, labels[1])
    n_a = a.trials if isinstance(a, Counts) else a.size
    n_b = b.trials if isinstance(b, Counts) else b.size
    confidence = 1 - alpha
    base = ArmComparison(kind, "not_enough_data", labels, n_a, n_b, dropped_a + dropped_b, confidence=confidence)
    if min(n_a, n_b) < max(min_n, 2 if kind == "mean" else 1):
        verdict = f"not enough data to compare {name}: {n_a} in {labels[0]} and {n_b} in {labels[1]} (need {min_n})"
        return replace(base, verdict=verdict)
    if isinstance(a, Counts) and isinstance(b, Counts):
        est_a, est_b = a.successes / a.trials, b.successes / b.trials
        pooled = (a.successes + b.successes) / (a.trials + b.trials)
        se_test = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
        se = math.sqrt(est_a * (1 - est_a) / a.trials + est_b * (1 - est_b) / b.trials)
        df, critical = None, float(stats.norm.ppf(1 - alpha / 2))
        effect, effect_name = 2 * math.asin(math.sqrt(est_b)) - 2 * math.asin(math.sqrt(est_a)), "cohen_h"
    else:
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        est_a, est_b = float(a.mean()), float(b.mean())
        var_a, var_b = float(a.var(ddof=1)), float(b.var(ddof=1))
        se = se_test = math.sqrt(var_a / n_a + var_b / n_b)
        df = se**4 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1)) if se > 0 else None
        critical = float(stats.t.ppf(1 - alpha / 2, df)) if df else 0.0
        spread = math.sqrt((var_a + var_b) / 2)
        effect, effect_name = ((est_b - est_a) / spread if spread > 0 else math.nan), "cohen_d"
    diff = est_b - est_a
    if se_test > 0:
        statistic = diff / se_test
        tail = stats.norm.sf(abs(statistic)) if df is None else stats.t.sf(abs(statistic), df)
        p_value = float(min(1.0, 2 * tail))
    else:  # both arms constant: the difference is exact
        statistic, p_value = math.nan, 1.0 if diff == 0 else 0.0
    low, high = diff - critical * se, diff + critical * se
    significant = p_value < alpha
    level = f"{confidence:.0%}"
    if significant:
        size, interval = _change(diff, low, high, points)
        direction = "higher" if diff > 0 else "lower"
        verdict = (
            f"{name} is {size} {direction} in {labels[1]} than in {labels[0]} ({level} CI {interval}, "
            f"{_fmt_p(p_value)}): a significant difference at the {alpha:.0%} level"
        )
    else:
        verdict = (
            f"no significant difference in {name} between {labels[1]} and {labels[0]} "
            f"({_signed(diff, low, high, points).replace('CI', f'{level} CI')}, {_fmt_p(p_value)})"
        )
    return replace(
        base,
        status="ok",
        estimate_a=est_a,
        estimate_b=est_b,
        difference=diff,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=p_value,
        statistic=_number(statistic),
        df=df,
        effect_size=_number(effect),
        effect_size_name=effect_name,
        relative_difference=diff / est_a if est_a else None,
        significant=significant,
        verdict=verdict,
    )


def _scan(series: np.ndarray, min_segment: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over split points of the pooled two-sample |t| for each row of ``series`` (rows are series)."""
    n = series.shape[1]
    x = series - series.mean(axis=1, keepdims=True)  # centred, so the sums of squares do not cancel
    left_sum = np.cumsum(x, axis=1)[:, :-1]
    left_sq = np.cumsum(x * x, axis=1)[:, :-1]
    total_sq = left_sq[:, -1:] + x[:, -1:] ** 2
    n_left = np.arange(1, n, dtype=float)
    n_right = n - n_left
    # The centred total is 0, so the right-hand sum is -left_sum.
    sse = total_sq - left_sum**2 / n_left - left_sum**2 / n_right
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(left_sum / n_left + left_sum / n_right) / np.sqrt(sse / (n - 2) * (1 / n_left + 1 / n_right))
    t = np.where(np.isnan(t), 0.0, t)
    t[:, : min_segment - 1] = -1.0
    t[:, n - min_segment :] = -1.0
    best = t.argmax(axis=1)
    return t[np.arange(len(t)), best], best + 1  # the first index of the right-hand segment


@dataclass(frozen=True)
class ChangePoint:
    """The most likely single mean shift: the first timestamp after it, and a permutation p-value."""

    at: pd.Timestamp
    index: int
    statistic: float
    p_value: float
    permutations: int
    mean_before: float
    mean_after: float
    distance_seconds: float
    near_change: bool


def change_point(
    values: np.ndarray, *, permutations: int = 499, seed: int = 0, min_segment: int | None = None
) -> tuple[int, float, float] | None:
    """Index, |t| statistic and permutation p-value of the most likely single mean shift in ordered ``values``.

    Every split is scored by the two-sample t statistic (from cumulative sums); the p-value compares
    the maximum with the maxima of ``permutations`` shuffles of the series. ``None`` when the series
    is too short to split.
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    segment = max(2, n // 20) if min_segment is None else max(1, min_segment)
    if n < 2 * segment or n < 4:
        return None
    observed, split = _scan(x[None, :], segment)
    rng = np.random.default_rng(seed)
    exceed, batch = 0, max(1, _PERMUTATION_CELLS // n)
    for start in range(0, permutations, batch):
        shuffled = rng.permuted(np.broadcast_to(x, (min(batch, permutations - start), n)), axis=1)
        exceed += int(np.sum(_scan(shuffled, segment)[0] >= observed[0] - 1e-12))
    return int(split[0]), float(observed[0]), (1 + exceed) / (1 + permutations)


@dataclass(frozen=True)
class ChangeAssessment:
    """Before against after a known change, the most likely change point, and the ``answer`` in words.

    ``coincides`` is true when the change point is significant and within ``tolerance`` of the change.
    """

    status: Literal["ok", "not_enough_data"]
    change_at: pd.Timestamp
    n: int
    dropped: int
    comparison: ArmComparison
    change_point: ChangePoint | None
    tolerance_seconds: float
    coincides: bool | None
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return json_ready(asdict(self))


def _humanize(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size or unit == "second":
            amount = round(seconds / size, 1)
            text = f"{amount:g}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    raise AssertionError("unreachable")  # pragma: no cover


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def before_after(
    ts: Any,
    values: Any,
    change_at: Any,
    *,
    kind: Kind = "mean",
    name: str = "the value",
    points: bool | None = None,
    alpha: float = 0.05,
    tolerance: str | pd.Timedelta = "1D",
    min_n: int = 5,
    permutations: int = 499,
    seed: int = 0,
    min_segment: int | None = None,
) -> ChangeAssessment:
    """Did ``values`` change at ``change_at``? Welch's test of before against after, plus a change-point search.

    Timestamps without a zone are read as UTC. Values at or after ``change_at`` count as after.

    >>> before_after(kpi.ts, kpi.value, "2026-11-27", name="the approval rate", points=True).answer
    'the approval rate fell by 4.1 points (95% CI 2.3 to 5.9) after the change on 2026-11-27 (p < 0.001); the
    most likely change point is within 1 day of it (2026-11-27, p = 0.002)'
    """
    # Naive UTC datetime64 from here on: NumPy compares and sorts those directly.
    stamps = pd.DatetimeIndex(pd.to_datetime(ts, utc=True)).tz_convert(None).to_numpy()
    numbers = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if len(stamps) != len(numbers):
        raise InvalidArgument("ts and values differ in length", details={"field": "values"})
    keep = ~np.isnat(stamps) & np.isfinite(numbers)
    order = np.argsort(stamps[keep], kind="stable")
    when, x = stamps[keep][order], numbers[keep][order]
    at, window = _utc(change_at), pd.Timedelta(tolerance)
    after = when >= at.tz_convert(None).to_datetime64()
    points = kind == "proportion" if points is None else points
    comparison = compare_arms(
        x[~after], x[after], kind=kind, alpha=alpha, min_n=min_n, labels=("before", "after"), name=name, points=points
    )
    day_only = bool(len(when)) and bool(np.all(pd.DatetimeIndex(when).normalize() == pd.DatetimeIndex(when)))
    layout = "%Y-%m-%d" if day_only and at == at.normalize() else "%Y-%m-%d %H:%M"

    def show(stamp: pd.Timestamp) -> str:
        return stamp.strftime(layout)

    tolerance_seconds = window.total_seconds()
    base = ChangeAssessment(
        "not_enough_data", at, int(keep.sum()), int((~keep).sum()), comparison, None, tolerance_seconds, None, ""
    )
    if comparison.status != "ok":
        answer = (
            f"not enough data to assess {name}: {comparison.n_a} value(s) before and {comparison.n_b} after "
            f"the change on {show(at)} (need {min_n} on each side)"
        )
        return replace(base, answer=answer)
    assert comparison.difference is not None and comparison.ci_low is not None and comparison.ci_high is not None
    level = f"{comparison.confidence:.0%} CI"
    diff, low, high = comparison.difference, comparison.ci_low, comparison.ci_high
    p_text = _fmt_p(comparison.p_value if comparison.p_value is not None else 1.0)
    if comparison.significant:
        size, interval = _change(diff, low, high, points)
        verb = "rose" if diff > 0 else "fell"
        answer = f"{name} {verb} by {size} ({level} {interval}) after the change on {show(at)} ({p_text})"
    else:
        answer = (
            f"{name} did not change significantly after the change on {show(at)} "
            f"({_signed(diff, low, high, points).replace('CI', level)}, {p_text})"
        )
    found = change_point(x, permutations=permutations, seed=seed, min_segment=min_segment)
    point = None
    coincides: bool | None = None
    if found is None:
        answer += "; the series is too short to search for a change point"
    else:
        index, statistic, p_value = found
        moment = pd.Timestamp(when[index], tz="UTC")
        distance = (moment - at).total_seconds()
        near = abs(distance) <= tolerance_seconds
        before_mean, after_mean = float(x[:index].mean()), float(x[index:].mean())
        point = ChangePoint(moment, index, statistic, p_value, permutations, before_mean, after_mean, distance, near)
        coincides = p_value < alpha and near
        where = f"{show(moment)}, {_fmt_p(p_value)}"
        if p_value >= alpha:
            answer += f"; no change point stands out in the series ({_fmt_p(p_value)})"
        elif near:
            answer += f"; the most likely change point is within {_humanize(tolerance_seconds)} of it ({where})"
        else:
            side = "before" if distance < 0 else "after"
            answer += (
                f"; but the most likely change point is {_humanize(abs(distance))} {side} it ({where}), "
                "so the shift does not coincide with the change"
            )
    return replace(base, status="ok", change_point=point, coincides=coincides, answer=answer)
