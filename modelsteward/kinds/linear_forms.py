"""Linear forms over row-indexed decision variables: the static linearity check and sparse compilation.

A program's variables are indexed by request row: with ``V`` variables and ``n`` rows there are
``V * n`` unknowns, variable ``v`` of row ``r`` at column ``v * n + r``. An expression compiles to
a :class:`Form`: one linear combination of the unknowns per row (``row`` level), per group of a
``sum`` (``group`` level) or a plain number (``scalar`` level, constants only). SciPy is imported
only when a program is compiled.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modelsteward.kinds.expressions import Expression

Role = Literal["objective", "constraint", "output", "bound"]
Level = Literal["scalar", "row", "group"]
INEQUALITIES = {ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "=="}


class DataError(Exception):
    """The request's data makes the program unsolvable as written (a null, a zero divisor...)."""


# -- the static check ---------------------------------------------------------------------------


def check_linear(expr: Expression, variables: set[str], role: Role) -> None:
    """Refuse anything that is not linear in ``variables``, pointing at the expression's line.

    A constraint is one comparison (``<=``, ``>=`` or ``==``) of two linear sides; the objective
    and outputs are linear; a bound does not involve variables or ``sum``.
    """
    node = expr.node
    if role == "constraint":
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            raise expr.error("a constraint must be one comparison: left <= right, left >= right or left == right")
        op = node.ops[0]
        if isinstance(op, (ast.Lt, ast.Gt)):
            symbol = "<" if isinstance(op, ast.Lt) else ">"
            raise expr.error(f"strict inequality '{symbol}': write '{symbol}=' (a program has no strict inequalities)")
        if type(op) not in INEQUALITIES:
            raise expr.error("a constraint compares with <=, >= or ==")
        _Linearity(expr, variables, role).visit(node.left)
        _Linearity(expr, variables, role).visit(node.comparators[0])
        return
    if isinstance(node, ast.Compare):
        raise expr.error(f"the {role} must be a number, not a comparison")
    degree, _ = _Linearity(expr, variables, role).visit(node)
    if role == "bound" and degree:
        raise expr.error("a bound cannot depend on a decision variable")


class _Linearity:
    def __init__(self, expr: Expression, variables: set[str], role: Role) -> None:
        self.expr = expr
        self.variables = variables
        self.role = role

    def visit(self, node: ast.expr) -> tuple[int, bool]:
        """(degree in the variables: 0 or 1, whether a sum() is inside)."""
        expr = self.expr
        text = ast.unparse(node)
        if isinstance(node, ast.Constant):
            return 0, False
        if isinstance(node, ast.Name):
            return (1 if node.id in self.variables else 0), False
        if isinstance(node, ast.BinOp):
            (dl, sl), (dr, sr) = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, (ast.Add, ast.Sub)):
                return max(dl, dr), sl or sr
            if isinstance(node.op, ast.Mult):
                if dl and dr:
                    raise expr.error(f"'{text}' multiplies two decision-variable terms; the program must be linear")
                return max(dl, dr), sl or sr
            if isinstance(node.op, ast.Div):
                if dr:
                    raise expr.error(f"'{text}' divides by a decision variable; the program must be linear")
                return dl, sl or sr
            self.plain(node, dl or dr, sl or sr, text)
            return 0, False
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return self.visit(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum":
            if self.role == "bound":
                raise expr.error("sum() cannot be used in a bound; a bound is a per-row value")
            degree, inner = self.visit(node.args[0])
            if inner:
                raise expr.error(f"'{text}' nests sum() inside sum()")
            return degree, True
        children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
        if isinstance(node, ast.Compare):
            children = [node.left, *[c for c in node.comparators if not isinstance(c, (ast.List, ast.Tuple))]]
        results = [self.visit(c) for c in children]
        self.plain(node, any(d for d, _ in results), any(s for _, s in results), text)
        return 0, False

    def plain(self, node: ast.expr, has_variable: bool, has_sum: bool, text: str) -> None:
        """A node outside + - * / : fine on data, never on a variable or a sum()."""
        what = _what(node)
        if has_variable:
            raise self.expr.error(f"'{text}' applies {what} to a decision variable; the program must be linear")
        if has_sum:
            raise self.expr.error(f"'{text}' applies {what} to a sum(); only + - * / may combine sums")


def _what(node: ast.expr) -> str:
    if isinstance(node, ast.BinOp):
        return {ast.FloorDiv: "'//'", ast.Mod: "'%'", ast.Pow: "'**'"}.get(type(node.op), "an operator")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"{node.func.id}()"
    if isinstance(node, ast.Compare):
        return "a comparison"
    if isinstance(node, ast.BoolOp):
        return "'and'/'or'"
    if isinstance(node, ast.UnaryOp):
        return "'not'"
    return type(node).__name__


# -- compilation --------------------------------------------------------------------------------


@dataclass
class Form:
    """``coef @ x + const``: ``coef`` is (m x V*n) sparse or None (a constant); ``const`` is (m,) or 0-d."""

    level: Level
    const: np.ndarray
    coef: Any = None


def _pure(node: ast.expr, variables: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in variables:
            return False
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "sum":
            return False
    return True


class Compiler:
    """Compiles expressions of one program over ``n`` rows into sparse linear forms.

    ``groups`` (codes 0..G-1 per row) makes ``sum`` aggregate per group (``for_each``);
    without it, ``sum`` aggregates all rows.
    """

    def __init__(self, variables: list[str], n: int, env: Mapping[str, Any], groups: np.ndarray | None = None):
        from scipy import sparse

        self.sparse = sparse
        self.variables = list(variables)
        self.index = {v: i for i, v in enumerate(self.variables)}
        self.n = n
        self.width = len(self.variables) * n
        self.env = env
        self.codes = np.zeros(n, dtype=np.intp) if groups is None else np.asarray(groups, dtype=np.intp)
        self.n_groups = int(self.codes.max()) + 1 if n else 0
        self.counts = np.bincount(self.codes, minlength=self.n_groups).astype(float)
        self.aggregate = sparse.csr_matrix((np.ones(n), (self.codes, np.arange(n))), shape=(self.n_groups, n))

    def form(self, expr: Expression, node: ast.expr | None = None) -> Form:
        node = expr.node if node is None else node
        if _pure(node, set(self.variables)):
            return self.constant(expr, node)
        if isinstance(node, ast.Name):
            rows = np.arange(self.n)
            coef = self.sparse.csr_matrix(
                (np.ones(self.n), (rows, self.index[node.id] * self.n + rows)), shape=(self.n, self.width)
            )
            return Form("row", np.zeros(self.n), coef)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            sign = 1.0 if isinstance(node.op, ast.Add) else -1.0
            return self.add(self.form(expr, node.left), self.form(expr, node.right), sign)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            left, right = self.form(expr, node.left), self.form(expr, node.right)
            return self.scale(right, left) if left.coef is None else self.scale(left, right)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.form(expr, node.left), self.form(expr, node.right)
            if np.any(right.const == 0):
                raise DataError(f"{expr.text.strip()!r} divides by zero for this data")
            with np.errstate(all="ignore"):
                return self.scale(left, Form(right.level, 1.0 / right.const))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.form(expr, node.operand)
            return inner if isinstance(node.op, ast.UAdd) else self.scale(inner, Form("scalar", np.array(-1.0)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sum":
            return self.total(self.form(expr, node.args[0]))
        raise expr.error(f"'{ast.unparse(node)}' is not linear")  # the static check keeps this out

    def constant(self, expr: Expression, node: ast.expr) -> Form:
        value = expr.evaluate_node(node, self.env)
        values = value.values
        if values.dtype.kind not in "biuf":
            raise expr.error(f"'{ast.unparse(node)}' is not a number")
        values = values.astype(float)
        if value.null is not None:
            values = np.where(value.null, np.nan, values)
        level: Level = "row" if values.ndim == 1 else "scalar"
        return Form(level, values if level == "row" else np.asarray(values, dtype=float).reshape(()))

    def total(self, inner: Form) -> Form:
        if inner.level == "scalar":
            return Form("group", inner.const * self.counts)
        if inner.level == "group":  # pragma: no cover - nested sums are refused statically
            raise DataError("sum() inside sum()")
        coef = self.aggregate @ inner.coef if inner.coef is not None else None
        return Form("group", self.aggregate @ np.broadcast_to(inner.const, (self.n,)), coef)

    def expand(self, form: Form) -> Form:
        """A group-level form repeated on each row of its group."""
        if form.level != "group":
            return form
        coef = form.coef[self.codes] if form.coef is not None else None
        return Form("row", np.asarray(form.const)[self.codes], coef)

    def add(self, a: Form, b: Form, sign: float = 1.0) -> Form:
        """``a + sign * b``."""
        a, b = self.align(a, b)
        return Form(_level(a, b), a.const + sign * b.const, _add(a.coef, b.coef, sign))

    def align(self, a: Form, b: Form) -> tuple[Form, Form]:
        if a.level == b.level or "scalar" in (a.level, b.level):
            return a, b
        return self.expand(a), self.expand(b)

    def scale(self, form: Form, factor: Form) -> Form:
        form, factor = self.align(form, factor)
        level = _level(form, factor)
        c = factor.const
        if form.coef is None:
            coef = None
        elif c.ndim == 0:
            coef = form.coef * float(c)
        else:
            coef = self.sparse.diags(c) @ form.coef
        return Form(level, form.const * c, coef)

    def rows(self, form: Form) -> tuple[Any, np.ndarray]:
        """``(coef, const)`` with one row per constraint/output row (m x width sparse, (m,))."""
        m = self.n if form.level == "row" else self.n_groups if form.level == "group" else 1
        coef = form.coef if form.coef is not None else self.sparse.csr_matrix((m, self.width))
        return self.sparse.csr_matrix(coef), np.broadcast_to(form.const, (m,)).astype(float)

    def per_row(self, form: Form, x: np.ndarray) -> np.ndarray:
        """The value of ``form`` on every request row at the solution ``x``."""
        form = self.expand(form)
        coef, const = self.rows(form)
        values = coef @ x + const
        return np.broadcast_to(values, (self.n,)).copy() if form.level == "scalar" else values


def _level(a: Form, b: Form) -> Level:
    return a.level if a.level != "scalar" else b.level


def _add(a: Any, b: Any, sign: float) -> Any:
    if b is None:
        return a
    if a is None:
        return b * sign
    return a + b * sign
