"""Explainability records: global feature importances of a version and per-prediction explanations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelsteward.domain.records import Record

ImportanceMethod = Literal["shap", "permutation", "rules"]


class FeatureImportance(Record):
    """How much one input column matters to the model, in the unit of its method.

    ``shap``: mean absolute SHAP value (in the unit of the explained output); ``permutation``: mean
    decrease of the score when the column is shuffled, with ``std`` over the repeats; ``rules``: the
    share of rows decided by a rule whose condition reads the column.
    """

    feature: str
    importance: float
    std: float | None = None


class GlobalImportance(Record):
    """The importances of a version's input columns over a data set, most important first.

    ``explainer`` names the algorithm (``tree``, ``linear``, ``permutation-shap``, ``permutation``,
    ``rules``); ``output`` says which output was explained or scored, e.g. ``probability of class 1``;
    ``rows`` is the number of rows the figures are computed on; ``scoring`` is the scikit-learn
    scorer of a permutation importance.
    """

    ref: str
    method: ImportanceMethod
    explainer: str
    output: str
    rows: int
    features: list[FeatureImportance] = Field(default_factory=list)
    scoring: str | None = None

    def importance(self, feature: str) -> float:
        """The importance of one column; ``KeyError`` when it is not an input of the version."""
        for item in self.features:
            if item.feature == feature:
                return item.importance
        raise KeyError(feature)


class Contribution(Record):
    """One input column's share of one prediction: its value in the row and its SHAP value."""

    feature: str
    value: float | str | None = None
    contribution: float


class Explanation(Record):
    """Why one row got its prediction.

    For attribution explainers ``base_value + sum(c.contribution for c in contributions)`` equals
    ``prediction`` (the explained ``output``), contributions sorted by absolute size. For a rule
    set, ``rule`` names the rule that decided the row, ``prediction`` is its first outcome, and
    ``contributions`` lists the columns that rule's condition reads (1.0 each; empty for the
    default outcome, which no condition decided).
    """

    ref: str
    row: int
    output: str
    explainer: str
    base_value: float | None = None
    prediction: float | str | None = None
    contributions: list[Contribution] = Field(default_factory=list)
    rule: str | None = None
