"""The ``optimization`` kind: a linear or mixed-integer program in YAML, solved with HiGHS.

The request rows are the items of the program: every variable has one value per row. A
program looks like this::

    kind: optimization
    sense: maximize
    scope: batch                 # or row: each row is its own program
    parameters: {budget: 250000, unit: 500}
    variables:
      units: {type: integer, lower: 0, upper: "loan_amount / unit"}
    objective: "sum((0.12 - 0.72 * risk_score) * unit * units)"
    constraints:
      - {name: budget, expr: "sum(unit * units) <= budget"}
      - {name: per_region, for_each: region, expr: "sum(unit * units) <= 0.4 * budget"}
    outputs: {limit: "unit * units"}

``sum(...)`` adds over the rows (over each ``for_each`` group); a constraint without ``sum`` holds
on every row. Predictions carry each variable, each output, ``objective`` and ``status``.
"""

from __future__ import annotations

import keyword
import pathlib
import reprlib
from typing import Annotated, Any, ClassVar, Literal

import pandas as pd
from pydantic import BeforeValidator, Field, field_validator

from modelsteward.domain.records import ColumnSpec, ColumnType, Signature
from modelsteward.domain.yaml_source import Locate, format_path, located
from modelsteward.errors import InvalidArtifact, InvalidDefinition
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.definitions import (
    Columns,
    Strict,
    column_specs,
    decode_artifact,
    dummy_frame,
    parse_definition,
    peek_keys,
    read_source,
)
from modelsteward.kinds.expressions import Expression, parse
from modelsteward.kinds.linear_forms import DataError, Role, check_linear
from modelsteward.kinds.optimization_solver import Constraint, Variable, solve_program
from modelsteward.stats.schema import to_frame

OBJECTIVE_COLUMN = "objective"
STATUS_COLUMN = "status"
RESERVED = {OBJECTIVE_COLUMN, STATUS_COLUMN}


def _number_or_text(value: Any) -> Any:
    if value is None or isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        if isinstance(value, str) and not value.strip():
            raise ValueError("a bound must be a number, an expression or null")
        return value
    raise ValueError("a bound must be a number, an expression or null")


class _VariableDef(Strict):
    type: Literal["continuous", "integer", "binary"] = "continuous"
    lower: Any = 0
    upper: Any = None
    description: str = ""

    _bounds = field_validator("lower", "upper")(_number_or_text)


def _variable_shorthand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"type": v} if isinstance(v, str) else ({} if v is None else v) for k, v in value.items()}
    return value


class _ConstraintDef(Strict):
    name: str = Field(min_length=1)
    expr: str
    for_each: str | None = None
    description: str = ""


class _ProgramDef(Strict):
    kind: Literal["optimization"] | None = None
    name: str | None = None
    description: str = ""
    sense: Literal["maximize", "minimize"] = "minimize"
    scope: Literal["batch", "row"] = "batch"
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: Columns | None = None
    variables: Annotated[dict[str, _VariableDef], BeforeValidator(_variable_shorthand)] = Field(min_length=1)
    objective: str
    constraints: list[_ConstraintDef] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)
    time_limit: float = Field(default=60.0, gt=0)
    mip_gap: float = Field(default=1e-6, ge=0)

    @field_validator("parameters")
    @classmethod
    def _numbers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                # reprlib bounds the text: a YAML alias bomb must not be expanded into the message
                raise ValueError(f"parameter '{key}' must be a number, got {reprlib.repr(item)}")
        return value


class OptimizationProgram:
    """A validated program; build it with :meth:`from_yaml` or :meth:`from_file`, run it with :meth:`solve`.

    >>> program = OptimizationProgram.from_file("limit_allocation.yaml")
    >>> program.solve(applicants)[["units", "limit", "objective", "status"]]
    """

    def __init__(self, spec: _ProgramDef, locate: Locate, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.name = spec.name
        self.description = spec.description
        self.sense = spec.sense
        self.scope = spec.scope
        self.time_limit = spec.time_limit
        self.mip_gap = spec.mip_gap
        self.parameters = {k: float(v) for k, v in spec.parameters.items()}
        self._declared = set(spec.inputs) if spec.inputs is not None else None
        self._check_names(spec, locate)
        vars_ = set(spec.variables)
        self._uses: dict[str, tuple[str, int | None]] = {}  # column -> (where, line), first use
        self.variables = [self._variable(name, d, locate, vars_) for name, d in spec.variables.items()]
        self.objective = self._expression(spec.objective, ("objective",), "objective", vars_, locate)
        self.constraints = []
        seen: set[str] = set()
        for i, c in enumerate(spec.constraints):
            if c.name in seen:
                raise located(
                    f"duplicate constraint name '{c.name}'",
                    source=source,
                    line=locate(("constraints", i, "name")),
                    field=f"constraints[{i}].name",
                )
            seen.add(c.name)
            path = ("constraints", i, "expr")
            expr = self._expression(c.expr, path, "constraint", vars_, locate, where=f"constraint '{c.name}'")
            if c.for_each is not None:
                self._column(c.for_each, f"constraint '{c.name}'", locate(("constraints", i, "for_each")), vars_)
            self.constraints.append(Constraint(c.name, expr, c.for_each))
        self.outputs = {
            key: self._expression(text_, ("outputs", key), "output", vars_, locate, where=f"output '{key}'")
            for key, text_ in spec.outputs.items()
        }
        self.for_each = tuple(dict.fromkeys(c.for_each for c in self.constraints if c.for_each))
        self.columns = tuple(self._uses)
        self.inputs = column_specs(spec.inputs) if spec.inputs is not None else None
        self._dry_run()

    # -- building ---------------------------------------------------------------------------------

    def _check_names(self, spec: _ProgramDef, locate: Locate) -> None:
        def fail(message: str, path: tuple[str | int, ...]) -> InvalidDefinition:
            return located(message, source=self.source, line=locate(path), field=".".join(map(str, path)))

        for section, names in (("variables", spec.variables), ("parameters", spec.parameters)):
            for name in names:
                if not name.isidentifier() or keyword.iskeyword(name):
                    raise fail(f"'{name}' cannot be used in expressions: use letters, digits and _", (section, name))
        for name in spec.variables:
            if name in RESERVED:
                raise fail(f"'{name}' is a reserved output name; rename the variable", ("variables", name))
            if name in spec.parameters:
                raise fail(f"'{name}' is both a variable and a parameter", ("variables", name))
            if spec.inputs is not None and name in spec.inputs:
                raise fail(f"'{name}' is both a variable and an input column", ("variables", name))
        for name in spec.outputs:
            if name in RESERVED or name in spec.variables:
                raise fail(f"output '{name}' clashes with a variable or a reserved name", ("outputs", name))

    def _column(self, name: str, where: str, line: int | None, variables: set[str]) -> None:
        if name in variables or name in self.parameters:
            raise located(
                f"{where}: '{name}' is a variable or parameter, not a column",
                source=self.source,
                line=line,
                column=name,
            )
        if self._declared is not None and name not in self._declared:
            raise located(
                f"{where}: unknown name '{name}' (not a parameter, a variable or a declared input)",
                source=self.source,
                line=line,
                column=name,
            )
        self._uses.setdefault(name, (where, line))

    def _expression(
        self,
        text: str,
        path: tuple[str | int, ...],
        role: Role,
        variables: set[str],
        locate: Locate,
        *,
        where: str = "the objective",
    ) -> Expression:
        line = locate(path)
        functions = ("sum",) if role != "bound" else ()
        expr = parse(text, line, self.source, field=format_path(path), functions=functions)
        check_linear(expr, variables, role)
        for name in expr.names:
            if name not in variables and name not in self.parameters:
                self._column(name, where, line, variables)
        return expr

    def _variable(self, name: str, d: _VariableDef, locate: Locate, variables: set[str]) -> Variable:
        bounds: list[float | Expression | None] = []
        for side in ("lower", "upper"):
            value = getattr(d, side)
            if d.type == "binary" and side in d.model_fields_set:
                raise located(
                    f"variable '{name}' is binary: it takes no {side} bound",
                    source=self.source,
                    line=locate(("variables", name, side)),
                    field=f"variables.{name}.{side}",
                )
            if isinstance(value, str):
                path = ("variables", name, side)
                where = f"the {side} bound of '{name}'"
                bounds.append(self._expression(value, path, "bound", variables, locate, where=where))
            else:
                bounds.append(None if value is None else float(value))
        if d.type == "binary":
            bounds = [0.0, 1.0]
        return Variable(name, d.type, bounds[0], bounds[1])

    def _dry_run(self) -> None:
        """Compile every expression on one dummy row of the input types: type errors surface now."""
        frame = dummy_frame(self._input_specs())
        try:
            solve_program(self, frame, compile_only=True)
        except DataError:
            pass

    # -- public -----------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text: str, source: str = "<optimization>") -> OptimizationProgram:
        """Parse and check a program; any problem raises :class:`InvalidDefinition` with its line."""
        spec, locate = parse_definition(text, source=source, model=_ProgramDef, what="an optimization program")
        return cls(spec, locate, text, source)

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> OptimizationProgram:
        text, source = read_source(pathlib.Path(path), default_source=str(path))
        return cls.from_yaml(text, source=source)

    def __repr__(self) -> str:
        return f"OptimizationProgram(name={self.name!r}, sense={self.sense!r}, source={self.source!r})"

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.variables] + list(self.outputs) + [OBJECTIVE_COLUMN, STATUS_COLUMN]

    def _input_specs(self) -> list[ColumnSpec]:
        if self.inputs is not None:
            return self.inputs
        types: dict[str, ColumnType] = {c: "number" for c in self.columns}
        types.update(dict.fromkeys(self.for_each, "string"))
        return [ColumnSpec(name=name, type=kind) for name, kind in types.items()]

    def signature(self, example: pd.DataFrame | None = None) -> Signature:
        """Declared inputs, or the referenced columns (numbers; ``for_each`` columns text)."""
        if self.inputs is None and example is not None:
            present = {str(c) for c in to_frame(example).columns}
            for name in self.columns:
                if name not in present:
                    where, line = self._uses[name]
                    raise InvalidDefinition(
                        f"{self.source}: {where} (line {line}): unknown column '{name}' (not in the input example)",
                        details={"line": line, "source": self.source, "column": name},
                    )
        outputs = [ColumnSpec(name=n, type="number", nullable=True) for n in self.output_names[:-1]]
        outputs.append(ColumnSpec(name=STATUS_COLUMN, type="string"))
        return Signature(inputs=self._input_specs(), outputs=outputs)

    def solve(self, frame: Any) -> pd.DataFrame:
        """Solve the program over ``frame`` (scope batch) or once per row (scope row).

        An infeasible or unbounded program is not an error: its rows carry NaN values and the
        status (``optimal``, ``infeasible``, ``unbounded``, ``time_limit`` or ``error``).
        """
        frame = to_frame(frame)
        if self.scope == "batch" or len(frame) <= 1:
            return solve_program(self, frame)
        parts = [solve_program(self, frame.iloc[[i]]) for i in range(len(frame))]
        return pd.concat(parts)


class OptimizationKind:
    """Programs registered from an :class:`OptimizationProgram`, a ``.yaml`` path or YAML text.

    The artifact is the YAML text itself (format ``yaml``), checked again when loaded.
    """

    name: ClassVar[str] = "optimization"
    packages: ClassVar[tuple[str, ...]] = ("scipy", "numpy", "pandas")

    def detect(self, obj: Any) -> bool:
        if isinstance(obj, OptimizationProgram):
            return True
        keys = peek_keys(obj)
        return (
            keys is not None
            and "objective" in keys
            and "variables" in keys
            and keys.get("kind") in (None, "optimization")
        )

    def _program(self, obj: Any) -> OptimizationProgram:
        if isinstance(obj, OptimizationProgram):
            return obj
        if isinstance(obj, (str, pathlib.PurePath)):
            text, source = read_source(obj, default_source="<optimization>")
            return OptimizationProgram.from_yaml(text, source=source)
        raise InvalidArtifact(
            f"a {type(obj).__name__} is not an optimization program: give an OptimizationProgram, "
            "a .yaml path or YAML text with 'variables' and 'objective'",
            details={"kind": self.name},
        )

    def save(self, obj: Any) -> SavedModel:
        program = self._program(obj)
        metadata = {
            "source": program.source,
            "name": program.name,
            "sense": program.sense,
            "scope": program.scope,
        }
        return SavedModel(data=program.text.encode("utf-8"), format="yaml", metadata=metadata)

    def load(self, saved: SavedModel) -> OptimizationProgram:
        if saved.format != "yaml":
            raise InvalidArtifact(
                f"the optimization kind cannot read format {saved.format!r}", details={"kind": self.name}
            )
        text = decode_artifact(saved.data, kind=self.name)
        return OptimizationProgram.from_yaml(text, source=str(saved.metadata.get("source") or "<optimization>"))

    def signature(self, native: OptimizationProgram, example: pd.DataFrame | None) -> Signature:
        return native.signature(example)

    def predict(self, native: OptimizationProgram, frame: pd.DataFrame) -> pd.DataFrame:
        return native.solve(frame)
