"""The ``rules`` kind: a decision table written in YAML, evaluated column-wise, first match wins.

A rule set looks like this (``inputs``, ``outputs``, ``kind``, ``name`` and ``default`` are optional)::

    kind: rules
    name: credit-policy
    inputs: {debt_to_income: number, risk_score: number}
    outputs: {decision: string, reason: string}
    hit_policy: first
    rules:
      - id: decline-dti
        priority: 100
        when: "debt_to_income > 0.6"
        then: {decision: decline, reason: "debt-to-income above 60%"}
    default: {decision: approve, reason: within policy}

Rules are tried by priority (highest first), ties in file order; the first whose ``when`` holds
gives the row its outcome, and the ``rule`` output names it (``"default"`` when none did).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.domain.yaml_source import Locate, format_path, located
from modelsteward.errors import InvalidArgument, InvalidArtifact, InvalidDefinition
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.definitions import (
    DUMMY_VALUES,
    Columns,
    Strict,
    column_specs,
    decode_artifact,
    parse_definition,
    peek_keys,
    read_source,
)
from modelsteward.kinds.expressions import Expression, frame_env, parse
from modelsteward.stats.schema import infer_columns, to_frame

RULE_COLUMN = "rule"
DEFAULT_RULE = "default"


class _RuleDef(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    id: str = Field(min_length=1)
    description: str = ""
    priority: int = 0
    when: str
    then: dict[str, Any]


class _RuleSetDef(Strict):
    kind: Literal["rules"] | None = None
    name: str | None = None
    description: str = ""
    inputs: Columns | None = None
    outputs: Columns | None = None
    hit_policy: Literal["first"] = "first"
    rules: list[_RuleDef] = Field(min_length=1)
    default: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rule:
    """One rule: when ``when`` holds, the row's outcome is ``then``."""

    id: str
    when: Expression
    then: dict[str, Any]
    priority: int = 0
    description: str = ""
    line: int | None = None


class RuleSet:
    """A validated rule set; build it with :meth:`from_yaml` or :meth:`from_file`.

    >>> rules = RuleSet.from_yaml(open("credit_policy.yaml").read(), source="credit_policy.yaml")
    >>> rules.evaluate(applications)[["decision", "rule"]]
    """

    def __init__(
        self,
        *,
        text: str,
        source: str,
        name: str | None,
        description: str,
        inputs: list[ColumnSpec] | None,
        outputs: list[ColumnSpec],
        rules: list[Rule],
        default: dict[str, Any] | None,
    ) -> None:
        self.text = text
        self.source = source
        self.name = name
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        self.rules = tuple(rules)  # in evaluation order: priority descending, then file order
        self.default = default
        self.columns: tuple[str, ...] = tuple(dict.fromkeys(n for r in self.rules for n in r.when.names))

    def __repr__(self) -> str:
        return f"RuleSet(name={self.name!r}, rules={len(self.rules)}, source={self.source!r})"

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> RuleSet:
        text, source = read_source(pathlib.Path(path), default_source=str(path))
        return cls.from_yaml(text, source=source)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> RuleSet:
        """Parse and check a rule set; any problem raises :class:`InvalidDefinition` with its line."""
        spec, locate = parse_definition(text, source=source, model=_RuleSetDef, what="a rule set")
        return _build(spec, locate, text, source)

    def evaluate(self, frame: Any) -> pd.DataFrame:
        """The outcome of every row: one column per output plus ``rule``; the index is kept.

        One vectorized mask per rule, combined with ``np.select`` (no loop over rows).
        """
        frame = to_frame(frame)
        n = len(frame)
        env = frame_env(frame, self.columns)
        masks = [rule.when.evaluate_condition(env, n) for rule in self.rules]
        fired = np.select(masks, list(range(len(masks))), default=len(masks)).astype(np.intp)
        out: dict[str, Any] = {}
        for spec in self.outputs:
            table = [rule.then.get(spec.name) for rule in self.rules]
            table.append(self.default.get(spec.name) if self.default is not None else None)
            out[spec.name] = _column(table, fired, spec)
        ids = np.array([r.id for r in self.rules] + [DEFAULT_RULE if self.default is not None else None], dtype=object)
        out[RULE_COLUMN] = ids[fired]
        return pd.DataFrame(out, index=frame.index)

    def signature(self, example: pd.DataFrame | None) -> Signature:
        """Declared inputs win; otherwise the columns the rules read, typed from ``example``."""
        outputs = [*self.outputs, ColumnSpec(name=RULE_COLUMN, type="string", nullable=self.default is None)]
        if self.inputs is not None:
            return Signature(inputs=self.inputs, outputs=outputs)
        if example is None:
            raise InvalidArgument(
                f"{self.source}: declare 'inputs' in the rule set or pass input_example=... so the "
                "signature can be recorded",
                details={"field": "input_example"},
            )
        example = to_frame(example)
        present = {str(c) for c in example.columns}
        for rule in self.rules:
            for name in rule.when.names:
                if name not in present:
                    raise InvalidDefinition(
                        f"{self.source}: rule '{rule.id}' (line {rule.when.line}): unknown column '{name}' "
                        "(not in the input example)",
                        details={
                            "line": rule.when.line,
                            "source": self.source,
                            "field": "when",
                            "column": name,
                            "rule": rule.id,
                        },
                    )
        inputs = infer_columns(example[list(self.columns)]) if self.columns else []
        _type_check(self.rules, {c.name: c.type for c in inputs})
        return Signature(inputs=inputs, outputs=outputs)


def _build(spec: _RuleSetDef, locate: Locate, text: str, source: str) -> RuleSet:
    rules: list[tuple[int, Rule]] = []
    seen: dict[str, int | None] = {}
    declared = set(spec.inputs) if spec.inputs is not None else None
    for i, rdef in enumerate(spec.rules):
        line = locate(("rules", i, "id"))
        if rdef.id in seen:
            raise located(
                f"duplicate rule id '{rdef.id}' (first used on line {seen[rdef.id]})",
                source=source,
                line=line,
                field=f"rules[{i}].id",
                rule=rdef.id,
            )
        seen[rdef.id] = line
        when_line = locate(("rules", i, "when"))
        when = parse(rdef.when, when_line, source, field=f"rules[{i}].when")
        if declared is not None:
            for name in when.names:
                if name not in declared:
                    raise located(
                        f"rule '{rdef.id}': unknown column '{name}' (not declared in inputs)",
                        source=source,
                        line=when_line,
                        field=f"rules[{i}].when",
                        column=name,
                        rule=rdef.id,
                    )
        if RULE_COLUMN in rdef.then:
            raise located(
                f"rule '{rdef.id}': '{RULE_COLUMN}' is a reserved output name",
                source=source,
                line=locate(("rules", i, "then", RULE_COLUMN)),
                field=f"rules[{i}].then.{RULE_COLUMN}",
            )
        rule = Rule(rdef.id, when, dict(rdef.then), rdef.priority, rdef.description, line or when_line)
        rules.append((i, rule))
    if spec.default is not None and RULE_COLUMN in spec.default:
        raise located(
            f"'{RULE_COLUMN}' is a reserved output name",
            source=source,
            line=locate(("default", RULE_COLUMN)),
            field=f"default.{RULE_COLUMN}",
        )
    outputs = _outputs(spec, locate, source)
    ordered = [rule for _, rule in sorted(rules, key=lambda item: (-item[1].priority, item[0]))]
    inputs = column_specs(spec.inputs) if spec.inputs is not None else None
    if inputs is not None:
        _type_check(ordered, {c.name: c.type for c in inputs})
    return RuleSet(
        text=text,
        source=source,
        name=spec.name,
        description=spec.description,
        inputs=inputs,
        outputs=outputs,
        rules=ordered,
        default=dict(spec.default) if spec.default is not None else None,
    )


def _type_check(rules: tuple[Rule, ...] | list[Rule], types: dict[str, ColumnType]) -> None:
    """Evaluate every condition on one dummy row of the declared types: type errors surface now."""
    env = {name: DUMMY_VALUES[kind] for name, kind in types.items()}
    for rule in rules:
        rule.when.evaluate_condition(env, 1)


_TYPE_WORDS = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true/false"}


def _value_type(value: Any) -> ColumnType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (date, datetime)):
        return "datetime"
    raise TypeError(type(value).__name__)


def _fits(value: Any, kind: ColumnType) -> bool:
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return not isinstance(value, bool) and (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        )
    if kind == "number":
        return not isinstance(value, bool) and isinstance(value, (int, float))
    if isinstance(value, (date, datetime)):
        return True
    if isinstance(value, str):
        try:
            pd.Timestamp(value)
        except ValueError:
            return False
        return True
    return False


def _outcomes(spec: _RuleSetDef) -> list[tuple[tuple[str | int, ...], str, dict[str, Any]]]:
    """Every outcome block with its YAML path and a label: the rules' ``then`` and the ``default``."""
    blocks = [(("rules", i, "then"), f"rule '{r.id}'", r.then) for i, r in enumerate(spec.rules)]
    if spec.default is not None:
        blocks.append((("default",), "the default", spec.default))
    return blocks


def _outputs(spec: _RuleSetDef, locate: Locate, source: str) -> list[ColumnSpec]:
    blocks = _outcomes(spec)
    declared = spec.outputs
    types: dict[str, ColumnType | None] = dict.fromkeys(declared, None) if declared is not None else {}
    for path, label, block in blocks:
        for key, value in block.items():
            line = locate((*path, key))
            field = format_path((*path, key))
            try:
                found = _value_type(value)
            except TypeError:
                raise located(
                    f"{label}: outcome '{key}' must be one value (text, number, true/false or null)",
                    source=source,
                    line=line,
                    field=field,
                ) from None
            if declared is not None:
                if key not in declared:
                    raise located(
                        f"{label}: unknown output '{key}' (declared outputs: {', '.join(declared)})",
                        source=source,
                        line=line,
                        field=field,
                    )
                kind = declared[key].type
                if not _fits(value, kind):
                    hint = " (YAML reads yes/no/on/off as true/false: quote it)" if isinstance(value, bool) else ""
                    raise located(
                        f"{label}: outcome '{key}' is declared {kind} but the value {value!r} is not "
                        f"{_TYPE_WORDS.get(kind, 'a date')}{hint}",
                        source=source,
                        line=line,
                        field=field,
                    )
                continue
            known = types.get(key)
            if key not in types or known is None:
                types[key] = found
            elif found is not None and found != known:
                if {found, known} == {"integer", "number"}:
                    types[key] = "number"
                else:
                    raise located(
                        f"{label}: outcome '{key}' is {found} here but {known} elsewhere; "
                        "declare it under outputs or use one type",
                        source=source,
                        line=line,
                        field=field,
                    )
    specs = []
    for key, kind in types.items():
        decl = declared[key] if declared is not None else None
        final: ColumnType = decl.type if decl is not None else (kind or "string")
        missing = any(block.get(key) is None for _, _, block in blocks) or spec.default is None
        specs.append(ColumnSpec(name=key, type=final, nullable=missing or bool(decl and decl.nullable)))
    return specs


def _column(table: list[Any], fired: np.ndarray, spec: ColumnSpec) -> Any:
    """One outcome column: the value of the rule that fired in each row, in the output's type."""
    objects = np.empty(len(table), dtype=object)
    objects[:] = table
    picked = objects[fired]
    if spec.type == "number":
        return np.array([np.nan if v is None else float(v) for v in table], dtype=float)[fired]
    if spec.type == "integer":
        if spec.nullable:
            return pd.array(picked, dtype="Int64")
        return np.array([int(v) for v in table], dtype=np.int64)[fired]
    if spec.type == "boolean":
        return pd.array(picked, dtype="boolean") if spec.nullable else picked.astype(bool)
    if spec.type == "datetime":
        return pd.to_datetime(pd.Series(picked, dtype=object), format="ISO8601").to_numpy()
    return picked


class RulesKind:
    """Rule sets registered from a :class:`RuleSet`, a ``.yaml`` path or YAML text with ``rules``.

    The artifact is the YAML text itself (format ``yaml``), checked again when loaded.
    Outputs: the outcome columns and ``rule``, the id of the rule that decided each row.
    """

    name: ClassVar[str] = "rules"
    packages: ClassVar[tuple[str, ...]] = ("pyyaml", "numpy", "pandas")

    def detect(self, obj: Any) -> bool:
        if isinstance(obj, RuleSet):
            return True
        keys = peek_keys(obj)
        return keys is not None and isinstance(keys.get("rules"), list) and keys.get("kind") in (None, "rules")

    def _rule_set(self, obj: Any) -> RuleSet:
        if isinstance(obj, RuleSet):
            return obj
        if isinstance(obj, (str, pathlib.PurePath)):
            text, source = read_source(obj, default_source="<rules>")
            return RuleSet.from_yaml(text, source=source)
        raise InvalidArtifact(
            f"a {type(obj).__name__} is not a rule set: give a RuleSet, a .yaml path or YAML text with 'rules'",
            details={"kind": self.name},
        )

    def save(self, obj: Any) -> SavedModel:
        rules = self._rule_set(obj)
        metadata = {"source": rules.source, "name": rules.name, "rules": len(rules.rules)}
        return SavedModel(data=rules.text.encode("utf-8"), format="yaml", metadata=metadata)

    def load(self, saved: SavedModel) -> RuleSet:
        if saved.format != "yaml":
            raise InvalidArtifact(f"the rules kind cannot read format {saved.format!r}", details={"kind": self.name})
        text = decode_artifact(saved.data, kind=self.name)
        return RuleSet.from_yaml(text, source=str(saved.metadata.get("source") or "<rules>"))

    def signature(self, native: RuleSet, example: pd.DataFrame | None) -> Signature:
        return native.signature(example)

    def predict(self, native: RuleSet, frame: pd.DataFrame) -> pd.DataFrame:
        return native.evaluate(frame)
