"""The column plan of a pipeline: who reads and who produces each column, its type, and every check of that.

The same walk runs twice: when a definition is read (only what the definition itself says) and when
it is bound to loaded models (their signatures say what each model step reads and writes).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.domain.refs import ModelRef
from modelsteward.domain.yaml_source import Path
from modelsteward.errors import InvalidArgument, SchemaMismatch
from modelsteward.kinds.definitions import DUMMY_VALUES
from modelsteward.kinds.expressions import Expression, parse
from modelsteward.serving.pipeline_spec import LookupSpec, PipelineSpec, StepKind, StepSpec

_NUMERIC_FUNCTIONS = {"abs", "min", "max", "round", "log", "exp", "sqrt"}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@dataclass
class ColumnInfo:
    """What is known of one column of the frame: its type, whether it may be null, and where it comes from.

    ``step`` is the producing step for an output, or the first step that reads it for a request
    column (``None`` for a declared input). ``certain`` is False for a request column whose
    provenance depends on a model step not yet bound.
    """

    type: ColumnType | None
    nullable: bool
    step: str | None
    certain: bool = True
    guessed: bool = False  # typed only by how an expression uses it


@dataclass
class StepPlan:
    """One step as it will run: the columns it reads, its outputs (source name -> frame name)."""

    index: int
    spec: StepSpec
    where: Expression | None
    assign: tuple[tuple[str, Expression], ...]
    inputs: tuple[str, ...]
    outputs: dict[str, str] | None  # None: a model step whose outputs are known only once bound

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> StepKind:
        return self.spec.kind


@dataclass
class Plan:
    steps: list[StepPlan]
    request: dict[str, ColumnInfo]
    produced: dict[str, ColumnInfo]
    result: list[str] | None
    complete: bool

    def column(self, name: str) -> ColumnInfo:
        return self.produced[name] if name in self.produced else self.request[name]

    def signature(self) -> Signature:
        """Request columns as inputs, result columns as outputs; a type nothing tells defaults to string."""
        inputs = [ColumnSpec(name=n, type=c.type or "string", nullable=c.nullable) for n, c in self.request.items()]
        outputs = []
        for name in self.result or []:
            info = self.column(name)
            outputs.append(ColumnSpec(name=name, type=info.type or "string", nullable=info.nullable))
        return Signature(inputs=inputs, outputs=outputs)


def _compatible(a: ColumnType, b: ColumnType) -> bool:
    return a == b or {a, b} <= {"integer", "number"} or {a, b} == {"string", "datetime"}


@dataclass
class _Walk:
    spec: PipelineSpec
    signatures: Mapping[str, Signature] | None
    lookup_types: Mapping[str, Mapping[str, ColumnSpec]]
    request: dict[str, ColumnInfo] = field(default_factory=dict)
    produced: dict[str, ColumnInfo] = field(default_factory=dict)
    read: set[str] = field(default_factory=set)
    unsure: bool = False  # an earlier model step's outputs are not known yet

    @property
    def bound(self) -> bool:
        return self.signatures is not None

    def clash(self, name: str) -> str | None:
        if name in self.produced:
            return f"the output '{name}' of step '{self.produced[name].step}'"
        info = self.request.get(name)
        if info is not None and info.certain:
            if info.step is None:
                return f"the declared request input '{name}'"
            return f"the request column '{name}' that step '{info.step}' reads"
        return None

    def known(self) -> dict[str, ColumnType | None]:
        return {n: c.type for n, c in {**self.request, **self.produced}.items()}

    def try_types(self, expr: Expression, known: Mapping[str, ColumnType | None], *, condition: bool) -> None:
        """Once bound, evaluate on one dummy row of the known types, so type errors surface before any data."""
        if not self.bound:
            return
        env: dict[str, Any] = {}
        for name in expr.names:
            kind = known.get(name)
            if kind is None:
                return  # a column of unknown type: checked when data arrives
            env[name] = DUMMY_VALUES[kind]
        if condition:
            expr.evaluate_condition(env, 1)
        else:
            expr.evaluate(env, 1)

    def read_column(
        self,
        step: StepSpec,
        name: str,
        wanted: ColumnSpec | None,
        key_of: LookupSpec | None,
        *,
        guess: ColumnType | None = None,
    ) -> None:
        self.read.add(name)
        if name in self.produced:
            have = self.produced[name]
            if wanted is not None and have.type is not None and not _compatible(have.type, wanted.type):
                i = self.spec.steps.index(step)
                raise self.spec.error(
                    f"step '{step.name}': column '{name}' is {have.type} (from step '{have.step}') "
                    f"but the model {step.model} reads it as {wanted.type}",
                    ("steps", i, "model"),
                    cls=SchemaMismatch,
                    step=step.name,
                    column=name,
                )
            return
        kind: ColumnType | None = wanted.type if wanted is not None else None
        nullable = wanted.nullable if wanted is not None else key_of is None or key_of.on_missing == "null"
        if key_of is not None and kind is None:
            key_spec = self.lookup_types.get(step.name, {}).get(key_of.source_key)
            kind = key_spec.type if key_spec is not None else None
        guessed = kind is None and guess is not None
        kind = kind or guess
        info = self.request.get(name)
        if info is None:
            self.request[name] = ColumnInfo(kind, nullable, step.name, certain=not self.unsure, guessed=guessed)
        elif info.step is not None:  # declared inputs keep their declared type
            if info.type is None or (info.guessed and not guessed and kind is not None):
                info.type, info.guessed = kind, guessed
            info.nullable = info.nullable and nullable


def plan_pipeline(
    spec: PipelineSpec,
    signatures: Mapping[str, Signature] | None = None,
    lookup_types: Mapping[str, Mapping[str, ColumnSpec]] | None = None,
) -> Plan:
    """Walk the steps in order and work out every column: who reads it, who produces it, its type.

    Without ``signatures`` (step name -> the bound model's signature) only what the definition
    itself says is checked; with them, the plan is complete: model inputs, outputs and types.
    ``lookup_types`` (step name -> reflected table columns) types the looked-up columns.
    """
    walk = _Walk(spec, signatures, lookup_types or {})
    for name, decl in (spec.inputs or {}).items():
        walk.request[name] = ColumnInfo(decl.type, decl.nullable, None)
    steps: list[StepPlan] = []
    names: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.name in names:
            raise spec.error(
                f"duplicate step name '{step.name}' (first used by step {names[step.name] + 1})",
                ("steps", i, "name"),
                step=step.name,
            )
        names[step.name] = i
        steps.append(_plan_step(walk, i, step))
    has_models = any(s.model is not None for s in spec.steps)
    complete = walk.bound or not has_models
    result = _plan_result(walk, steps, complete)
    if complete:
        for name in spec.inputs or {}:
            if name not in walk.read and name not in (result or []):
                raise spec.error(
                    f"the declared input '{name}' is read by no step and is not in result", ("inputs", name)
                )
    return Plan(steps=steps, request=walk.request, produced=walk.produced, result=result, complete=complete)


def _plan_step(walk: _Walk, i: int, step: StepSpec) -> StepPlan:
    spec, source = walk.spec, walk.spec.source
    path: Path = ("steps", i)
    where = None
    if step.where is not None:
        where = parse(step.where, spec.line((*path, "where")), source, field=f"steps[{i}].where")
        for name in where.names:
            walk.read_column(step, name, None, None, guess=_guess(where, name))
    assign: list[tuple[str, Expression]] = []
    sources: list[str] | None
    explicit = step.outputs is not None or step.kind != "model"
    types: dict[str, ColumnInfo] = {}
    inputs: list[str] = []
    if step.lookup is not None:
        lookup = step.lookup
        if len(set(lookup.columns)) != len(lookup.columns):
            raise spec.error(f"step '{step.name}': a column is listed twice", (*path, "lookup", "columns"))
        if lookup.source_key in lookup.columns:
            raise spec.error(
                f"step '{step.name}': the key '{lookup.source_key}' is not a column to fetch",
                (*path, "lookup", "columns"),
            )
        inputs = [lookup.key]
        walk.read_column(step, lookup.key, None, lookup)
        sources = list(lookup.columns)
        reflected = walk.lookup_types.get(step.name, {})
        for name in sources:
            col = reflected.get(name)
            nullable = col is None or col.nullable or lookup.on_missing == "null" or where is not None
            types[name] = ColumnInfo(col.type if col else None, nullable, step.name)
    elif step.assign is not None:
        if step.outputs is not None:
            raise spec.error(
                f"step '{step.name}': outputs does not apply to assign (name the columns in assign)",
                (*path, "outputs"),
            )
        for name, text in step.assign.items():
            expr = parse(text, spec.line((*path, "assign", name)), source, field=f"steps[{i}].assign.{name}")
            defined = {n for n, _ in assign}
            for read in expr.names:
                if read not in defined:  # a column assigned earlier in the same step is read from there
                    inputs.append(read)
                    walk.read_column(step, read, None, None, guess=_guess(expr, read))
            assign.append((name, expr))
        known = walk.known()
        for name, expr in assign:
            walk.try_types(expr, known, condition=False)
            known[name] = _result_type(expr, known)
            types[name] = ColumnInfo(known[name], True, step.name)
        sources = [name for name, _ in assign]
    else:
        assert step.model is not None
        try:
            ModelRef.parse(step.model)
        except InvalidArgument as e:
            raise spec.error(f"step '{step.name}': {e.message}", (*path, "model")) from e
        signature = walk.signatures.get(step.name) if walk.signatures is not None else None
        if signature is None:
            sources = list(step.outputs) if step.outputs is not None else None
        else:
            for col in signature.inputs:
                inputs.append(col.name)
                walk.read_column(step, col.name, col, None)
            by_name = {c.name: c for c in signature.outputs}
            if not by_name and step.outputs is None:
                raise spec.error(
                    f"step '{step.name}': the model {step.model} records no outputs in its signature: "
                    "list the outputs to keep under outputs",
                    (*path, "model"),
                    step=step.name,
                )
            for name in (step.outputs or {}) if by_name else {}:
                if name not in by_name:
                    raise spec.error(
                        f"step '{step.name}': the model {step.model} has no output '{name}' "
                        f"(its outputs: {', '.join(by_name) or 'none'})",
                        (*path, "outputs", name),
                        step=step.name,
                        column=name,
                    )
            sources = list(step.outputs) if step.outputs is not None else list(by_name)
            for name in sources:
                if name in by_name:
                    types[name] = ColumnInfo(by_name[name].type, by_name[name].nullable or where is not None, step.name)
    if where is not None:
        walk.try_types(where, walk.known(), condition=True)
    outputs = None if sources is None else _place_outputs(walk, i, step, sources, explicit, types)
    if sources is None:
        walk.unsure = True
    return StepPlan(i, step, where, tuple(assign), tuple(dict.fromkeys(inputs)), outputs)


def _place_outputs(
    walk: _Walk, i: int, step: StepSpec, sources: list[str], explicit: bool, types: dict[str, ColumnInfo]
) -> dict[str, str]:
    spec = walk.spec
    rename = step.outputs or {}
    placed: dict[str, str] = {}
    for src in sources:
        dst = rename.get(src, src)
        if step.assign is not None:
            where: Path = ("steps", i, "assign", src)
        elif src in rename:
            where = ("steps", i, "outputs", src)
        else:
            where = ("steps", i, "lookup", "columns") if step.lookup is not None else ("steps", i, "model")
        clash = walk.clash(dst) or (f"another output of step '{step.name}'" if dst in placed.values() else None)
        if clash is not None and not explicit:
            dst = f"{step.name}_{src}"  # an unrenamed model output: prefixed with the step name
            clash = walk.clash(dst) or (f"another output of step '{step.name}'" if dst in placed.values() else None)
        if clash is not None:
            raise spec.error(
                f"step '{step.name}': output '{dst}' collides with {clash}", where, step=step.name, column=dst
            )
        placed[src] = dst
    for src, dst in placed.items():
        info = types.get(src) or ColumnInfo(None, True, step.name)
        walk.produced[dst] = info
    return placed


def _plan_result(walk: _Walk, steps: list[StepPlan], complete: bool) -> list[str] | None:
    spec = walk.spec
    if spec.result is None:
        last = steps[-1].outputs
        return list(last.values()) if last is not None else None
    seen: set[str] = set()
    for j, name in enumerate(spec.result):
        if name in seen:
            raise spec.error(f"result column '{name}' is listed twice", ("result", j))
        seen.add(name)
        if complete and name not in walk.produced and name not in walk.request:
            raise spec.error(
                f"result column '{name}' is produced by no step and is not a request column "
                "(declare it under inputs to pass a request column through)",
                ("result", j),
                column=name,
            )
    return list(spec.result)


def _guess(expr: Expression, name: str) -> ColumnType:
    """The type an expression treats a column as: number when it computes or orders with it, else string."""
    for node in ast.walk(expr.node):
        operands: list[ast.expr] = []
        if isinstance(node, ast.BinOp):
            operands = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.Not):
            operands = [node.operand]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _NUMERIC_FUNCTIONS:
            operands = list(node.args)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, sides, sides[1:], strict=False):
                for mine, other in ((left, right), (right, left)):
                    if not (isinstance(mine, ast.Name) and mine.id == name):
                        continue
                    if isinstance(other, (ast.List, ast.Tuple)):
                        strings = any(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in other.elts)
                        return "string" if strings else "number"
                    if isinstance(other, ast.Constant) and isinstance(other.value, str):
                        return "string"
                    if isinstance(other, ast.Constant) and isinstance(other.value, bool):
                        return "boolean"
                    if isinstance(op, _ORDERING) or isinstance(other, ast.Constant):
                        return "number"
        if any(isinstance(o, ast.Name) and o.id == name for o in operands):
            return "number"
    return "string"


def _result_type(expr: Expression, known: Mapping[str, ColumnType | None]) -> ColumnType | None:
    node = expr.node
    if isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
        return "boolean"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("is_null", "not_null"):
        return "boolean"
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Call)):
        return "number"
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return "boolean"
        return "string" if isinstance(value, str) else "number" if value is not None else None
    if isinstance(node, ast.Name):
        return known.get(node.id)
    return None
