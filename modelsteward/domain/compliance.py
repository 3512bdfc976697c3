"""Compliance suites as code (fairness, performance, explainability, reproducibility tests of a model version)
and the results kept with the version.

A suite is YAML validated here, like a life cycle; errors name the field and the line::

    name: credit-risk-validation
    data: test                    # a data set the version's lineage links (test, validation...), or a file
    target: defaulted_90d
    tests:
      - name: four-fifths by age group
        fairness:
          sensitive: [age_group]
          favourable: 0           # the label that is good for the person: the loan is repaid
          decision: {score: proba_1, threshold: 0.35}
          min_demographic_parity_ratio: 0.8
      - name: held-out performance
        performance: {min: {roc_auc: 0.75}, champion: {alias: production, metric: roc_auc, max_drop: 0.01}}
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from modelsteward.domain.monitoring import OneOf, Spec
from modelsteward.domain.refs import ALIAS_PATTERN, NAME_PATTERN

_COLUMN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
_ENTRY_POINT = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
DATA_ROLES = ("training", "validation", "test", "evaluation", "reference")


def _data(value: str | None) -> str | None:
    """A data set is a role the version's lineage links or the path of a .csv/.parquet file."""
    if value is None or value in DATA_ROLES:
        return value
    if not value.lower().endswith((".csv", ".parquet", ".pq")):
        raise ValueError(f"{value!r} is neither a data-set role ({', '.join(DATA_ROLES)}) nor a .csv/.parquet file")
    return value


class Decision(Spec):
    """How a score becomes the decision that is tested: ``threshold`` cuts ``score``; above it is ``above``
    (1 for a default score: decline), else ``below``. Without a decision the model's ``prediction`` is used."""

    score: str = Field(pattern=_COLUMN, description="an output column, e.g. proba_1")
    threshold: float
    above: Any = 1
    below: Any = 0


class FairnessTest(Spec):
    """fairlearn's group metrics over the protected attributes (the model's, unless ``sensitive`` names others)."""

    sensitive: list[str] = Field(default_factory=list, description="columns; default: the model's protected attributes")
    favourable: Any = Field(default=1, description="the label value that is good for the person")
    decision: Decision | None = None
    min_demographic_parity_ratio: float | None = Field(default=0.8, ge=0, le=1, description="the four-fifths rule")
    max_demographic_parity_difference: float | None = Field(default=None, ge=0, le=1)
    max_equalized_odds_difference: float | None = Field(default=None, ge=0, le=1)
    min_group_size: int = Field(default=30, ge=1, description="smaller groups are reported, not judged")


class ChampionComparison(Spec):
    """The version against the one an alias names, on the same data: it may lose at most ``max_drop``."""

    alias: str = Field(default="production", pattern=rf"^{ALIAS_PATTERN}$")
    metric: str = Field(min_length=1, max_length=64)
    max_drop: float = Field(default=0.0, ge=0)
    higher_is_better: bool = True


class PerformanceTest(Spec):
    """Metrics on held-out data against bounds, and against the champion."""

    score: str | None = Field(default=None, pattern=_COLUMN, description="the positive-class score column")
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    champion: ChampionComparison | None = None

    @model_validator(mode="after")
    def _something(self) -> PerformanceTest:
        if not self.min and not self.max and self.champion is None:
            raise ValueError("give min, max or champion: a performance test must check something")
        return self


class ExplainabilityTest(Spec):
    """Global importances (SHAP or permutation), stored with the version; fails when a ``forbidden`` column
    (a protected attribute's proxy, say) is among the ``top`` most important."""

    method: Literal["shap", "permutation"] = "shap"
    rows: int = Field(default=500, ge=10, le=100_000)
    top: int = Field(default=3, ge=1, le=100)
    forbidden: list[str] = Field(default_factory=list)


class ReproducibilityTest(Spec):
    """Re-run the training entry point on the recorded training data (checked by fingerprint) and compare the
    refitted model's metrics with the version's on the suite's data, within ``tolerance``.

    The entry point is called ``function(data, params)`` with the training data and the version's params, and
    returns the fitted native model (an estimator for the sklearn kind)."""

    entry_point: str | None = Field(
        default=None, pattern=_ENTRY_POINT, description="module:function; default: its steward.entry_point tag"
    )
    data: str = "training"
    metrics: list[str] = Field(default_factory=lambda: ["roc_auc"], min_length=1)
    tolerance: float = Field(default=0.01, ge=0)
    score: str | None = Field(default=None, pattern=_COLUMN)

    _check_data = field_validator("data")(_data)


class ComplianceTest(OneOf):
    """One test: a name and exactly one kind."""

    what: ClassVar[str] = "test"

    name: str | None = Field(default=None, min_length=1, max_length=128)
    fairness: FairnessTest | None = None
    performance: PerformanceTest | None = None
    explainability: ExplainabilityTest | None = None
    reproducibility: ReproducibilityTest | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = [k for k in value if k not in cls.model_fields]
            if unknown:
                kinds = ", ".join(k for k in cls.model_fields if k != "name")
                raise ValueError(f"unknown test {unknown[0]!r} (tests: {kinds})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ComplianceTest:
        given = [k for k in TEST_TYPES if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"each test is exactly one of: {', '.join(TEST_TYPES)} (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in TEST_TYPES if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        return self.name or self.kind


TEST_TYPES = ("fairness", "performance", "explainability", "reproducibility")


class ComplianceSuite(Spec):
    name: str = Field(pattern=rf"^{NAME_PATTERN}$")
    description: str = Field(default="", max_length=2000)
    data: str | None = Field(default="test", description="held-out data: a role the version links, or a file")
    target: str | None = Field(default=None, pattern=_COLUMN, description="the ground-truth column")
    tests: list[ComplianceTest] = Field(min_length=1)

    _check_data = field_validator("data")(_data)

    @model_validator(mode="after")
    def _unique(self) -> ComplianceSuite:
        labels = [t.label for t in self.tests]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"two tests are named {dupes[0]!r}: name them apart")
        needs_target = [t.label for t in self.tests if t.kind in ("performance", "reproducibility")]
        needs_target += [t.label for t in self.tests if t.kind == "fairness"]
        if needs_target and self.target is None:
            raise ValueError(f"test {needs_target[0]!r} needs the ground truth: give the suite a target column")
        return self


def parse_suite(value: Any, *, source: str = "compliance suite") -> ComplianceSuite:
    """A suite from an instance, a dict, YAML text or a YAML file; errors name the field and the line."""
    from pydantic import ValidationError

    from modelsteward.domain.yaml_source import definition_error, format_path, load_yaml
    from modelsteward.errors import InvalidDefinition

    if isinstance(value, ComplianceSuite):
        return value
    if isinstance(value, str) and "\n" not in value and value.strip().endswith((".yaml", ".yml")):
        value = Path(value.strip())
    if isinstance(value, Path):
        if not value.is_file():
            raise InvalidDefinition(f"no such file: {value}", details={"field": "suite", "path": str(value)})
        source, value = str(value), value.read_text(encoding="utf-8")
    if isinstance(value, str):
        data, locate = load_yaml(value, source=source)
        try:
            return ComplianceSuite.model_validate(data)
        except ValidationError as e:
            raise definition_error(e, locate, source) from e
    try:
        return ComplianceSuite.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        field = format_path(tuple(p for p in first["loc"] if isinstance(p, (str, int))))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidDefinition(f"{source}: {field}: {message}", details={"field": field}) from e


# -- results --------------------------------------------------------------------------------------------


class Check(BaseModel):
    """One figure against its bound: ``demographic_parity_ratio over age_group = 0.83 >= 0.8``."""

    metric: str
    value: float | None
    bound: str
    passed: bool
    over: str | None = None  # the sensitive column, for fairness checks


class TestResult(BaseModel):
    name: str
    type: str
    status: Literal["pass", "fail", "error"]
    summary: str
    checks: list[Check] = Field(default_factory=list)
    figures: dict[str, Any] = Field(default_factory=dict)  # per-group tables, importances, metric values...


class DataUsed(BaseModel):
    """The data a run used, by fingerprint, so that the report can name it."""

    source: str  # "test data set of credit-risk/2" or a file name
    content_hash: str
    rows: int


class ComplianceRun(BaseModel):
    id: int
    model: str
    version: int
    suite: str
    status: Literal["pass", "fail", "error"]
    data: DataUsed | None = None
    results: list[TestResult]
    started_at: datetime
    finished_at: datetime
    actor: str

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if r.status != "pass"]


class StoredSuite(BaseModel):
    name: str
    suite: ComplianceSuite
    updated_at: datetime
    updated_by: str
