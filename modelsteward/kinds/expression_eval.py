"""Vectorized evaluation of checked expressions over NumPy arrays, and how columns become arrays.

Every node of an expression's tree is one NumPy operation over all rows. A :class:`Value` carries
the values (0-d for a constant, 1-d for a column) and a null mask; nulls propagate through
arithmetic, make comparisons false and count as false in ``and``/``or``/``not``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.errors import SchemaMismatch

if TYPE_CHECKING:
    from modelsteward.kinds.expressions import Expression

ARITHMETIC = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", np.true_divide),
    ast.FloorDiv: ("//", np.floor_divide),
    ast.Mod: ("%", np.remainder),
    ast.Pow: ("**", np.power),
}
COMPARISONS = {
    ast.Lt: ("<", np.less),
    ast.LtE: ("<=", np.less_equal),
    ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal),
    ast.Eq: ("==", np.equal),
    ast.NotEq: ("!=", np.not_equal),
}


@dataclass(frozen=True)
class Value:
    """An intermediate result: values (0-d for a constant, 1-d for a column) and where they are null."""

    values: np.ndarray
    null: np.ndarray | None = None


def literal_items(node: ast.expr, expr: Expression) -> list[Any]:
    """The constants of the list after ``in``: numbers (negative allowed), strings, booleans."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise expr.error('\'in\' needs a literal list on its right, as in: region in ["north", "east"]')
    items = []
    for item in node.elts:
        value = _literal(item)
        if value is None:
            raise expr.error("the list after 'in' may only hold numbers, strings and true/false")
        items.append(value)
    return items


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    return None


def column_array(series: pd.Series) -> np.ndarray:
    """A column as the array expressions read: float for numbers (NaN nulls), bool, datetime64, or object."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        if series.isna().any():
            return series.to_numpy(dtype=object, na_value=None)
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.to_numpy(dtype="datetime64[ns]")
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return series.to_numpy(dtype=object, na_value=None)


def frame_env(frame: pd.DataFrame, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` of ``frame`` as arrays; a missing one raises :class:`SchemaMismatch`."""
    wanted = list(dict.fromkeys(names))
    missing = [n for n in wanted if n not in frame.columns]
    if missing:
        raise SchemaMismatch(
            f"input is missing column(s): {', '.join(missing)}",
            details={
                "column": missing[0],
                "problems": [{"column": m, "problem": "missing"} for m in missing],
            },
        )
    return {name: column_array(frame[name]) for name in wanted}


def to_value(raw: Any) -> Value:
    """Any env entry (array, Series, scalar, None) as a :class:`Value`."""
    if isinstance(raw, pd.Series):
        raw = column_array(raw)
    if raw is None:
        return Value(np.array(np.nan), np.array(True))
    if isinstance(raw, (bool, np.bool_)):
        return Value(np.array(bool(raw)))
    if isinstance(raw, (int, float, np.integer, np.floating)):
        number = np.array(float(raw))
        return Value(number, np.array(True) if math.isnan(float(raw)) else None)
    if isinstance(raw, str):
        return Value(np.array(raw, dtype=object))
    if isinstance(raw, (datetime, date, np.datetime64, pd.Timestamp)):
        stamp = pd.Timestamp(raw)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return Value(np.array(stamp.to_datetime64()), np.array(pd.isna(stamp)))
    values = np.asarray(raw)
    kind = values.dtype.kind
    if kind == "b":
        return Value(values)
    if kind in "iu":
        return Value(values.astype(float))
    if kind == "f":
        null = np.isnan(values)
        return Value(values, null if null.any() else None)
    if kind == "M":
        null = np.isnat(values)
        return Value(values, null if null.any() else None)
    values = values.astype(object)
    null = np.asarray(pd.isna(values), dtype=bool)
    return Value(values, null if null.any() else None)


def _either(*masks: np.ndarray | None) -> np.ndarray | None:
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out | m
    return out


def _describe(value: Value) -> str:
    return {"f": "numbers", "b": "true/false values", "M": "dates"}.get(value.values.dtype.kind, "text")


def truth(value: Value, expr: Expression, role: str) -> np.ndarray:
    """``value`` as booleans, nulls false; anything that is not true/false is an error."""
    values = value.values
    if values.dtype.kind == "O":
        valid = ~value.null if value.null is not None else np.ones(values.shape, dtype=bool)
        if pd.api.types.infer_dtype(values[valid].ravel(), skipna=True) not in ("boolean", "empty"):
            raise expr.error(f"{role} must be true or false, got {_describe(value)}")
        out = np.zeros(values.shape, dtype=bool)
        out[valid] = values[valid].astype(bool)
        return out
    if values.dtype.kind != "b":
        if value.null is not None and value.null.all():
            return np.zeros(values.shape, dtype=bool)
        raise expr.error(f"{role} must be true or false, got {_describe(value)}")
    return values & ~value.null if value.null is not None else values


class Evaluator:
    """Walks a checked tree once; each node is one vectorized NumPy operation over all rows."""

    def __init__(self, expr: Expression, env: Mapping[str, Any]) -> None:
        self.expr = expr
        self.env = env
        self.cache: dict[str, Value] = {}

    def visit(self, node: ast.expr) -> Value:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.expr.error(f"{type(node).__name__} cannot be evaluated here")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Value:
        return to_value(node.value)

    def visit_Name(self, node: ast.Name) -> Value:
        if node.id not in self.cache:
            if node.id not in self.env:
                raise SchemaMismatch(
                    f"{self.expr.source}: no column or parameter named '{node.id}' "
                    f"(used by {self.expr.text.strip()!r})",
                    details={"column": node.id, "line": self.expr.line},
                )
            self.cache[node.id] = to_value(self.env[node.id])
        return self.cache[node.id]

    def number(self, value: Value, op: str) -> np.ndarray:
        values = value.values
        kind = values.dtype.kind
        if kind == "f":
            return values
        if kind in "biu":
            return values.astype(float)
        if value.null is not None and value.null.all():
            return np.full(values.shape, np.nan)
        raise self.expr.error(f"'{op}' needs numbers, got {_describe(value)}")

    def arithmetic(self, op: str, fn: Any, *operands: Value, zero_divisor: bool = False) -> Value:
        numbers = [self.number(v, op) for v in operands]
        with np.errstate(all="ignore"):
            result = np.asarray(fn(*numbers), dtype=float)
            null = np.isnan(result)
            if zero_divisor:
                null = null | (numbers[-1] == 0)
        null = _either(null, *(v.null for v in operands))
        if null is not None and null.any():
            result = np.where(null, np.nan, result)
            return Value(result, np.broadcast_to(null, result.shape))
        return Value(result)

    def visit_BinOp(self, node: ast.BinOp) -> Value:
        op, fn = ARITHMETIC[type(node.op)]
        left, right = self.visit(node.left), self.visit(node.right)
        return self.arithmetic(op, fn, left, right, zero_divisor=op in ("/", "//", "%"))

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Value:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return Value(~truth(operand, self.expr, "the operand of 'not'"))
        if isinstance(node.op, ast.USub):
            return self.arithmetic("-", np.negative, operand)
        return self.arithmetic("+", np.positive, operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> Value:
        word = "and" if isinstance(node.op, ast.And) else "or"
        parts = [truth(self.visit(v), self.expr, f"each side of '{word}'") for v in node.values]
        fn = np.logical_and if word == "and" else np.logical_or
        return Value(fn.reduce(np.broadcast_arrays(*parts)))

    def visit_Compare(self, node: ast.Compare) -> Value:
        left = self.visit(node.left)
        result: np.ndarray | None = None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                part = self.membership(left, literal_items(comparator, self.expr), isinstance(op, ast.NotIn))
                right = left
            else:
                right = self.visit(comparator)
                part = self.compare(COMPARISONS[type(op)], left, right)
            result = part if result is None else result & part
            left = right
        assert result is not None
        return Value(result)

    def compare(self, op: tuple[str, Any], left: Value, right: Value) -> np.ndarray:
        symbol, fn = op
        a, b = self.comparable(left, right, symbol)
        if a is None or b is None:  # numbers against text: never equal
            shape = np.broadcast_shapes(left.values.shape, right.values.shape)
            filled = np.zeros(shape, dtype=bool) if symbol == "==" else np.ones(shape, dtype=bool)
            null = _either(left.null, right.null)
            return filled & ~np.broadcast_to(null, shape) if null is not None else filled
        null = _either(left.null, right.null)
        try:
            with np.errstate(invalid="ignore"):
                if null is None:
                    return np.asarray(fn(a, b), dtype=bool)
                a, b, null = np.broadcast_arrays(a, b, null)
                out = np.zeros(a.shape, dtype=bool)
                valid = ~null
                out[valid] = np.asarray(fn(a[valid], b[valid]), dtype=bool)
                return out
        except TypeError as e:
            raise self.expr.error(f"cannot compare {_describe(left)} with {_describe(right)} using '{symbol}'") from e

    def comparable(self, left: Value, right: Value, symbol: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = left.values, right.values
        ka, kb = a.dtype.kind, b.dtype.kind
        numeric = "biuf"
        if ka in numeric and kb in numeric:
            return a, b
        if "M" in (ka, kb) and {ka, kb} <= {"M", "O"}:
            return self.as_dates(left), self.as_dates(right)
        if (ka in numeric) != (kb in numeric) and "O" in (ka, kb):
            if symbol in ("==", "!="):
                return None, None
        if ka != kb:
            raise self.expr.error(f"cannot compare {_describe(left)} with {_describe(right)} using '{symbol}'")
        return a, b

    def as_dates(self, value: Value) -> np.ndarray:
        if value.values.dtype.kind == "M":
            return value.values
        try:
            return (
                pd.to_datetime(pd.Series(value.values.ravel()), utc=True, format="ISO8601")
                .dt.tz_localize(None)
                .to_numpy(dtype="datetime64[ns]")
                .reshape(value.values.shape)
            )
        except (ValueError, TypeError) as e:
            shown = value.values.ravel()[0] if value.values.size else value.values
            raise self.expr.error(f"cannot read {shown!r} as a date (write dates as YYYY-MM-DD)") from e

    def membership(self, value: Value, items: list[Any], negate: bool) -> np.ndarray:
        values = value.values
        if values.dtype.kind in "biuf":
            pool = np.array([float(i) for i in items if not isinstance(i, str)], dtype=float)
            values = values.astype(float)
        else:
            pool = np.array([i for i in items if isinstance(i, str)], dtype=object)
        if value.null is None:
            hit = np.isin(values, pool)
            return ~hit if negate else hit
        values, null = np.broadcast_arrays(values, value.null)
        out = np.zeros(values.shape, dtype=bool)
        valid = ~null
        hit = np.isin(values[valid], pool)
        out[valid] = ~hit if negate else hit
        return out

    def visit_Call(self, node: ast.Call) -> Value:
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        args = [self.visit(a) for a in node.args]
        if name in ("is_null", "not_null"):
            arg = args[0]
            null = arg.null if arg.null is not None else np.zeros(arg.values.shape, dtype=bool)
            return Value(np.asarray(null if name == "is_null" else ~null, dtype=bool))
        if name == "abs":
            return self.arithmetic("abs()", np.abs, *args)
        if name in ("min", "max"):
            fn = np.minimum if name == "min" else np.maximum
            return self.arithmetic(f"{name}()", lambda *xs: fn.reduce(np.broadcast_arrays(*xs)), *args)
        if name == "round":
            digits = int(node.args[1].value) if len(node.args) == 2 else 0  # type: ignore[attr-defined]
            return self.arithmetic("round()", lambda x: np.round(x, digits), args[0])
        if name in ("log", "exp", "sqrt"):
            return self.arithmetic(f"{name}()", getattr(np, name), args[0])
        raise self.expr.error(f"{name}() cannot be evaluated row by row here")
