"""The safe expression language of the declarative kinds: parsed with ``ast``, checked, run on NumPy arrays.

An expression is a Python-like formula over column and parameter names::

    debt_to_income > 0.6 and region in ["north", "east"]
    max(income / 12, 1000) * 0.4
    is_null(credit_history_months) or credit_history_months < 6

It is never passed to ``eval``: the syntax tree is checked against a short list of allowed
constructs and then evaluated once over whole columns. Nulls (NaN, None, NaT) propagate through
arithmetic, make every comparison false, and count as false in ``and``/``or``/``not``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelsteward.domain.yaml_source import located
from modelsteward.errors import InvalidDefinition
from modelsteward.kinds.expression_eval import (
    ARITHMETIC,
    COMPARISONS,
    Evaluator,
    Value,
    column_array,
    frame_env,
    literal_items,
    to_value,
    truth,
)

__all__ = [
    "EXTRA_FUNCTIONS",
    "FUNCTIONS",
    "Expression",
    "Value",
    "column_array",
    "frame_env",
    "parse",
    "to_value",
]

# name -> (minimum, maximum) number of arguments; None: no maximum
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "round": (1, 2),
    "log": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "is_null": (1, 1),
    "not_null": (1, 1),
}
EXTRA_FUNCTIONS: dict[str, tuple[int, int | None]] = {"sum": (1, 1)}

MAX_LENGTH = 10_000
MAX_DEPTH = 100
_HINTS = {
    ast.BitAnd: "the operator '&' (write 'and')",
    ast.BitOr: "the operator '|' (write 'or')",
    ast.BitXor: "the operator '^' (write '**' for powers)",
    ast.Invert: "the operator '~' (write 'not')",
    ast.LShift: "the operator '<<'",
    ast.RShift: "the operator '>>'",
    ast.MatMult: "the operator '@'",
    ast.Is: "'is' (write is_null(x) or ==)",
    ast.IsNot: "'is not' (write not_null(x) or !=)",
}
_CONSTRUCTS = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Slice: "slicing",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.IfExp: "a conditional expression (a if c else b)",
    ast.NamedExpr: "an assignment (:=)",
    ast.Dict: "a dict literal",
    ast.Set: "a set literal",
    ast.Starred: "unpacking (*)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


@dataclass(frozen=True, eq=False)
class Expression:
    """A checked expression; ``names`` are the column or parameter names it reads, in order."""

    text: str
    node: ast.expr
    line: int | None = None
    source: str = "<expression>"
    names: tuple[str, ...] = ()
    functions: frozenset[str] = frozenset()
    field: str | None = None

    def error(self, problem: str, **details: Any) -> InvalidDefinition:
        """An :class:`InvalidDefinition` naming this expression, its field and its line."""
        prefix = f"{self.field}: " if self.field else ""
        shown = self.text.strip()
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return located(
            f"{prefix}expression {shown!r}: {problem}",
            source=self.source,
            line=self.line,
            field=self.field,
            expression=self.text,
            **details,
        )

    def evaluate(self, env: Mapping[str, Any], n_rows: int) -> np.ndarray:
        """Evaluate over all rows at once; nulls come back as NaN (numbers) or None (other values).

        >>> parse("a * 2 + b").evaluate({"a": np.array([1.0, 2.0]), "b": 1}, 2)
        array([3., 5.])
        """
        result = self.evaluate_node(self.node, env)
        values = np.broadcast_to(result.values, (n_rows,)).copy()
        if result.null is None:
            return values
        null = np.broadcast_to(result.null, (n_rows,))
        if not null.any():
            return values
        if values.dtype.kind == "f":
            values[null] = np.nan
            return values
        if values.dtype.kind == "M":
            values[null] = np.datetime64("NaT")
            return values
        values = values.astype(object)
        values[null] = None
        return values

    def evaluate_condition(self, env: Mapping[str, Any], n_rows: int) -> np.ndarray:
        """Evaluate a condition to a boolean array; a null condition is false."""
        result = self.evaluate_node(self.node, env)
        return np.broadcast_to(truth(result, self, "a condition"), (n_rows,)).copy()

    def evaluate_node(self, node: ast.expr, env: Mapping[str, Any]) -> Value:
        """Evaluate one node of this expression's tree (used by kinds that interpret parts themselves)."""
        return Evaluator(self, env).visit(node)


def parse(
    text: str,
    line: int | None = None,
    source: str = "<expression>",
    *,
    field: str | None = None,
    functions: Iterable[str] = (),
) -> Expression:
    """Parse and check ``text``; anything outside the language raises :class:`InvalidDefinition`.

    ``line``, ``source`` and ``field`` (``"rules[1].when"``) locate the expression in its
    definition for error messages. ``functions`` admits extra function names (``"sum"`` for
    optimization programs); the kind that admits them evaluates those calls itself.
    """
    extra = {name: EXTRA_FUNCTIONS[name] for name in functions}
    probe = Expression(text=str(text), node=ast.Constant(None), line=line, source=source, field=field)
    if not isinstance(text, str):
        raise probe.error(f"an expression must be text, not {type(text).__name__}")
    if not text.strip():
        raise probe.error("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise probe.error(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise probe.error(f"invalid syntax: {e.msg}") from e
    except (RecursionError, MemoryError, ValueError) as e:
        raise probe.error("the expression cannot be parsed (too deeply nested or contains null bytes)") from e
    checker = _Checker(probe, {**FUNCTIONS, **extra})
    checker.check(tree.body, 0)
    return Expression(
        text=text,
        node=tree.body,
        line=line,
        source=source,
        names=tuple(dict.fromkeys(checker.names)),
        functions=frozenset(checker.functions),
        field=field,
    )


class _Checker:
    def __init__(self, expr: Expression, functions: Mapping[str, tuple[int, int | None]]) -> None:
        self.expr = expr
        self.allowed = functions
        self.names: list[str] = []
        self.functions: set[str] = set()

    def refuse(self, what: str) -> InvalidDefinition:
        return self.expr.error(f"{what} is not allowed")

    def check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.expr.error(f"the expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            if node.value is not None and not isinstance(node.value, (bool, int, float, str)):
                raise self.refuse(f"the literal {node.value!r}")
        elif isinstance(node, ast.Name):
            self.names.append(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in ARITHMETIC:
                raise self.refuse(_HINTS.get(type(node.op), f"the operator {type(node.op).__name__}"))
            self.check(node.left, depth + 1)
            self.check(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                raise self.refuse(_HINTS.get(type(node.op), f"the operator {type(node.op).__name__}"))
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value, depth + 1)
        elif isinstance(node, ast.Compare):
            if len(node.ops) > 1 and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                raise self.refuse("chaining 'in' with other comparisons")
            self.check(node.left, depth + 1)
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)):
                    literal_items(right, self.expr)
                elif type(op) in COMPARISONS:
                    self.check(right, depth + 1)
                else:
                    raise self.refuse(_HINTS.get(type(op), f"the comparison {type(op).__name__}"))
        elif isinstance(node, ast.Call):
            self.check_call(node, depth)
        elif isinstance(node, (ast.List, ast.Tuple)):
            raise self.refuse("a list outside 'x in [...]'")
        else:
            raise self.refuse(_CONSTRUCTS.get(type(node), f"the construct {type(node).__name__}"))

    def check_call(self, node: ast.Call, depth: int) -> None:
        if isinstance(node.func, ast.Attribute):
            raise self.refuse("attribute access (a method call)")
        if not isinstance(node.func, ast.Name):
            raise self.refuse("calling anything but a named function")
        name = node.func.id
        if name not in self.allowed:
            known = ", ".join(sorted(self.allowed))
            raise self.expr.error(f"unknown function {name}() (known: {known})", function=name)
        if node.keywords:
            raise self.refuse(f"a keyword argument to {name}()")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.refuse(f"unpacking (*) in {name}()")
        low, high = self.allowed[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise self.expr.error(f"{name}() takes {wanted} argument(s), got {count}", function=name)
        if name == "round" and count == 2:
            digits = node.args[1]
            if not (isinstance(digits, ast.Constant) and type(digits.value) is int):
                raise self.expr.error("the second argument of round() must be a whole number")
        self.functions.add(name)
        for arg in node.args:
            self.check(arg, depth + 1)
