"""Assembling one optimization program over a batch of rows and solving it with HiGHS (scipy's milp)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.errors import InvalidArgument
from modelsteward.kinds.expressions import Expression, column_array, frame_env
from modelsteward.kinds.linear_forms import Compiler, DataError

if TYPE_CHECKING:
    from modelsteward.kinds.optimization import OptimizationProgram

_INTEGRALITY = {"continuous": 0, "integer": 1, "binary": 1}


@dataclass(frozen=True)
class Variable:
    """A decision variable, one value per row; bounds are numbers, per-row expressions or None (infinite)."""

    name: str
    type: str
    lower: float | Expression | None
    upper: float | Expression | None


@dataclass(frozen=True)
class Constraint:
    name: str
    expr: Expression
    for_each: str | None = None


@dataclass
class _Model:
    c: np.ndarray
    c_const: float
    integrality: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    a: Any
    lo: np.ndarray
    hi: np.ndarray


def environment(program: OptimizationProgram, frame: pd.DataFrame) -> dict[str, Any]:
    """Parameters (a request column of the same name overrides one) and the referenced columns."""
    env: dict[str, Any] = {}
    for name, value in program.parameters.items():
        if name in frame.columns:
            column = column_array(frame[name])
            if column.dtype.kind != "f":
                raise InvalidArgument(
                    f"column '{name}' overrides the parameter '{name}' and must hold numbers",
                    details={"column": name, "field": name},
                )
            if len(column) and np.isnan(column).any():
                raise InvalidArgument(f"column '{name}' overrides a parameter and has nulls", details={"column": name})
            if len(column) and not np.all(column == column[0]):
                raise InvalidArgument(
                    f"column '{name}' overrides the parameter '{name}' and must hold one value for the whole "
                    "batch (or use scope: row)",
                    details={"column": name, "field": name},
                )
            value = float(column[0]) if len(column) else value
        env[name] = float(value)
    env.update(frame_env(frame, program.columns))
    return env


def _bound(value: float | Expression | None, default: float, env: dict[str, Any], n: int) -> np.ndarray:
    if value is None:
        return np.full(n, default)
    if isinstance(value, Expression):
        result = value.evaluate(env, n)
        if result.dtype.kind not in "biuf":
            raise value.error("a bound must be a number")
        return result.astype(float)
    return np.full(n, float(value))


def _groups(frame: pd.DataFrame, column: str) -> np.ndarray:
    codes, _ = pd.factorize(frame[column], use_na_sentinel=False)
    return codes


def _finite(name: str, *arrays: np.ndarray, allow_inf: bool = False) -> None:
    for array in arrays:
        bad = np.isnan(array) if allow_inf else ~np.isfinite(array)
        if bad.any():
            raise DataError(f"{name}: the data gives a null or infinite value")


def build(program: OptimizationProgram, frame: pd.DataFrame, env: dict[str, Any]) -> tuple[_Model, Compiler, dict]:
    from scipy import sparse

    n = len(frame)
    names = [v.name for v in program.variables]
    base = Compiler(names, n, env)
    lb = np.concatenate([_bound(v.lower, -np.inf, env, n) for v in program.variables])
    ub = np.concatenate([_bound(v.upper, np.inf, env, n) for v in program.variables])
    _finite("variable bounds", lb, ub, allow_inf=True)
    integrality = np.repeat([_INTEGRALITY[v.type] for v in program.variables], n)

    objective_rows, objective_const = base.rows(base.form(program.objective))
    c = np.asarray(objective_rows.sum(axis=0)).ravel()
    c_const = float(objective_const.sum())  # a row-wise objective is summed over the rows
    _finite("the objective", c, np.array(c_const))

    blocks, lows, highs = [], [], []
    for con in program.constraints:
        comp = base if con.for_each is None else Compiler(names, n, env, _groups(frame, con.for_each))
        node = con.expr.node
        assert isinstance(node, ast.Compare)
        diff = comp.add(comp.form(con.expr, node.left), comp.form(con.expr, node.comparators[0]), -1.0)
        rows, const = comp.rows(diff)  # rows @ x + const  (op)  0
        _finite(f"constraint '{con.name}'", rows.data, const)
        op = node.ops[0]
        low = np.full(len(const), -np.inf) if isinstance(op, ast.LtE) else -const
        high = np.full(len(const), np.inf) if isinstance(op, ast.GtE) else -const
        blocks.append(rows)
        lows.append(low)
        highs.append(high)
    a = sparse.vstack(blocks).tocsr() if blocks else None
    lo = np.concatenate(lows) if lows else np.zeros(0)
    hi = np.concatenate(highs) if highs else np.zeros(0)
    outputs = {name: base.form(expr) for name, expr in program.outputs.items()}
    return _Model(c, c_const, integrality, lb, ub, a, lo, hi), base, outputs


def _milp(model: _Model, sign: float, program: OptimizationProgram, *, feasibility: bool = False) -> Any:
    from scipy.optimize import Bounds, LinearConstraint, milp

    constraints = LinearConstraint(model.a, model.lo, model.hi) if model.a is not None else None
    c = np.zeros_like(model.c) if feasibility else sign * model.c
    options = {"time_limit": float(program.time_limit), "disp": False, "mip_rel_gap": float(program.mip_gap)}
    return milp(
        c,
        integrality=model.integrality,
        bounds=Bounds(model.lb, model.ub),
        constraints=constraints,
        options=options,
    )


def _run(model: _Model, program: OptimizationProgram) -> tuple[str, np.ndarray | None]:
    if np.any(model.lb > model.ub):
        return "infeasible", None
    sign = -1.0 if program.sense == "maximize" else 1.0
    try:
        result = _milp(model, sign, program)
    except ValueError:
        return "error", None
    if result.status == 0:
        return "optimal", result.x
    if result.status == 1:
        return "time_limit", result.x
    if result.status == 2:
        return "infeasible", None
    if result.status == 3:
        return "unbounded", None
    if "unbounded or infeasible" in str(result.message).lower():
        # HiGHS could not tell which: a program with no objective is feasible iff the original is.
        check = _milp(model, sign, program, feasibility=True)
        return ("unbounded" if check.status == 0 else "infeasible" if check.status == 2 else "error"), None
    return "error", None


def solve_program(
    program: OptimizationProgram, frame: pd.DataFrame, *, compile_only: bool = False
) -> pd.DataFrame | None:
    """Solve ``program`` once over all rows of ``frame``; one output row per input row."""
    n = len(frame)
    env = environment(program, frame)
    status, x = "error", None
    try:
        model, compiler, outputs = build(program, frame, env)
    except DataError:
        if compile_only:
            raise
        model = None
    if compile_only:
        return None
    if model is not None and n:
        status, x = _run(model, program)
    elif model is not None:
        status = "optimal"
    out: dict[str, Any] = {}
    if x is not None:
        integer = model.integrality > 0
        x = np.where(integer, np.round(x), x)
        for i, v in enumerate(program.variables):
            out[v.name] = x[i * n : (i + 1) * n]
        for name, form in outputs.items():
            out[name] = compiler.per_row(form, x)
        objective = float(model.c @ x + model.c_const)
    else:
        for name in [v.name for v in program.variables] + list(program.outputs):
            out[name] = np.full(n, np.nan)
        objective = np.nan
    out["objective"] = np.full(n, objective)
    out["status"] = np.full(n, status, dtype=object)
    return pd.DataFrame(out, index=frame.index)
