"""The safe expression language: what it accepts, what it refuses, and how it evaluates over columns."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelsteward.errors import InvalidDefinition, SchemaMismatch
from modelsteward.kinds.expressions import FUNCTIONS, Expression, column_array, frame_env, parse, to_value


def ev(text: str, n: int | None = None, **env):
    if n is None:
        n = max((len(v) for v in env.values() if isinstance(v, (list, np.ndarray))), default=1)
    env = {k: np.asarray(v) if isinstance(v, list) else v for k, v in env.items()}
    return parse(text).evaluate(env, n)


# -- parsing ----------------------------------------------------------------------------------


def test_parse_returns_an_expression_with_its_names_in_order():
    expr = parse("b > 1 and a < b or max(c, a) == 2", line=4, source="p.yaml")
    assert isinstance(expr, Expression)
    assert expr.names == ("b", "a", "c")
    assert expr.functions == frozenset({"max"})
    assert expr.line == 4
    assert expr.source == "p.yaml"


def test_function_names_are_not_column_names():
    assert parse("abs(x) + round(y, 2) + is_null(z)").names == ("x", "y", "z")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x.real", "attribute access"),
        ("x[0]", "indexing"),
        ("open('f')", "unknown function open()"),
        ("__import__('os').system('ls')", "attribute access"),
        ("__import__('os')", "unknown function __import__()"),
        ("(lambda: 1)()", "calling anything but a named function"),
        ("lambda: 1", "lambda"),
        ("[a for a in b]", "comprehension"),
        ("(a for a in b)", "generator"),
        ("f'{x}'", "f-string"),
        ("a if b else c", "conditional expression"),
        ("(x := 1)", "assignment"),
        ("{'a': 1}", "dict literal"),
        ("{1, 2}", "set literal"),
        ("[1, 2]", "a list outside"),
        ("x & y", "write 'and'"),
        ("x | y", "write 'or'"),
        ("~x", "write 'not'"),
        ("x ^ 2", "'^'"),
        ("x << 1", "'<<'"),
        ("x @ y", "'@'"),
        ("x is None", "is_null"),
        ("x is not None", "not_null"),
        ("x in y", "literal list"),
        ("x in [y]", "may only hold"),
        ("x in [None]", "may only hold"),
        ("x in [1] == True", "chaining 'in'"),
        ("b'x'", "literal"),
        ("1j", "literal"),
        ("...", "literal"),
        ("abs(x, y)", "abs() takes 1 argument"),
        ("abs()", "abs() takes 1 argument"),
        ("min(x)", "min() takes 2 or more"),
        ("round(x, y)", "whole number"),
        ("round(x, 1.5)", "whole number"),
        ("round(x, 1, 2)", "round() takes 1 to 2"),
        ("log(x=1)", "keyword argument"),
        ("max(*xs)", "unpacking"),
        ("sum(x)", "unknown function sum()"),
        ("x +", "invalid syntax"),
        ("x = 1", "invalid syntax"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_constructs_outside_the_language_are_refused_with_the_line(text, fragment):
    with pytest.raises(InvalidDefinition) as info:
        parse(text, 12, "rules.yaml")
    err = info.value
    assert fragment in str(err)
    assert err.details["line"] == 12
    assert err.details["source"] == "rules.yaml"
    assert str(err).startswith("rules.yaml line 12: ")


def test_the_field_is_named_in_errors():
    with pytest.raises(InvalidDefinition) as info:
        parse("x.y", 3, "p.yaml", field="rules[0].when")
    assert str(info.value) == "p.yaml line 3: rules[0].when: expression 'x.y': attribute access is not allowed"
    assert info.value.details["field"] == "rules[0].when"


def test_extra_functions_are_admitted_only_when_asked():
    expr = parse("sum(x * 2) <= 10", functions=("sum",))
    assert "sum" in expr.functions
    with pytest.raises(InvalidDefinition):
        expr.evaluate({"x": np.array([1.0])}, 1)  # the kind that admits sum() evaluates it itself


def test_deep_nesting_is_refused_without_a_recursion_error():
    with pytest.raises(InvalidDefinition) as info:
        parse("x" + " + x" * 1000)
    assert "nested more than 100 levels" in str(info.value)
    assert len(str(info.value)) < 300  # the message shows only the start of a long expression
    with pytest.raises(InvalidDefinition):
        parse("(" * 300 + "x" + ")" * 300)
    with pytest.raises(InvalidDefinition):
        parse("x + " * 6000 + "x")


def test_very_long_text_is_refused():
    with pytest.raises(InvalidDefinition):
        parse("x" * 20_000)


def test_non_text_is_refused():
    with pytest.raises(InvalidDefinition):
        parse(42)  # type: ignore[arg-type]


def test_evaluation_never_uses_eval_or_exec(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    expr = parse("max(x, 2) * 3 > 7 and s in ['a']")
    got = expr.evaluate({"x": np.array([1.0, 5.0]), "s": np.array(["a", "a"], dtype=object)}, 2)
    assert got.tolist() == [False, True]


# -- arithmetic -------------------------------------------------------------------------------


def test_arithmetic_follows_python_precedence():
    got = ev("1 + x * 2 ** 2 - -y / 4", x=[1.0, 2.0], y=[4.0, 8.0])
    assert got.tolist() == [6.0, 11.0]


def test_floor_division_and_modulo_follow_python_signs():
    got = ev("x // 2", x=[7.0, -7.0]).tolist(), ev("x % 3", x=[7.0, -7.0]).tolist()
    assert got == ([3.0, -4.0], [1.0, 2.0])


def test_parameters_are_scalars_broadcast_over_the_rows():
    got = parse("x * rate + fee").evaluate({"x": np.array([10.0, 20.0, 30.0]), "rate": 0.5, "fee": 1}, 3)
    assert got.tolist() == [6.0, 11.0, 16.0]


def test_a_constant_expression_is_broadcast_to_every_row():
    assert ev("2 * 3", n=4).tolist() == [6.0] * 4
    assert ev("'a'", n=2).tolist() == ["a", "a"]
    assert ev("True", n=3).tolist() == [True, True, True]


def test_integer_and_boolean_columns_are_numbers_in_arithmetic():
    assert ev("i + b", i=np.array([1, 2]), b=np.array([True, False])).tolist() == [2.0, 2.0]


def test_functions():
    x = np.array([-2.5, 0.5, 4.0])
    assert ev("abs(x)", x=x).tolist() == [2.5, 0.5, 4.0]
    assert ev("min(x, 1, y)", x=x, y=np.array([0.0, 3.0, 3.0])).tolist() == [-2.5, 0.5, 1.0]
    assert ev("max(x, 0)", x=x).tolist() == [0.0, 0.5, 4.0]
    assert ev("round(x)", x=np.array([0.5, 1.5, 2.5, -0.5])).tolist() == [0.0, 2.0, 2.0, -0.0]
    assert ev("round(x, 2)", x=np.array([1.23456])).tolist() == [1.23]
    assert ev("sqrt(x)", x=np.array([4.0, 9.0])).tolist() == [2.0, 3.0]
    assert ev("exp(x)", x=np.array([0.0])).tolist() == [1.0]
    assert ev("log(exp(x))", x=np.array([2.0])).tolist() == pytest.approx([2.0])
    assert sorted(FUNCTIONS) == ["abs", "exp", "is_null", "log", "max", "min", "not_null", "round", "sqrt"]


def test_arithmetic_on_text_is_a_definition_error():
    with pytest.raises(InvalidDefinition) as info:
        parse("s * 2", 9, "r.yaml").evaluate({"s": np.array(["a"], dtype=object)}, 1)
    assert "'*' needs numbers, got text" in str(info.value)
    assert info.value.details["line"] == 9


# -- nulls ------------------------------------------------------------------------------------


NULLS = {"x": np.array([1.0, np.nan, 3.0]), "s": np.array(["a", None, "c"], dtype=object)}


def test_nulls_propagate_through_arithmetic():
    got = parse("x * 2 + 1").evaluate(NULLS, 3)
    assert got[0] == 3.0 and math.isnan(got[1]) and got[2] == 7.0
    assert math.isnan(parse("max(x, 0)").evaluate(NULLS, 3)[1])


@pytest.mark.parametrize(
    "text",
    [
        "x > 0",
        "x < 10",
        "x == x",
        "x != 5",
        "x >= 0",
        "s == s",
        "s != 'z'",
        "s < 'zz'",
        "x in [1, 2, 3]",
        "x not in [5]",
        "s in ['a', 'c']",
        "s not in ['q']",
        "0 < x < 10",
    ],
)
def test_every_comparison_with_a_null_is_false(text):
    got = parse(text).evaluate_condition(NULLS, 3)
    assert got[1] == False  # noqa: E712 - the null row
    assert got[0] or got[2]  # and the non-null rows are evaluated normally


def test_comparing_with_none_is_always_false():
    assert parse("x == None").evaluate_condition(NULLS, 3).tolist() == [False, False, False]
    assert parse("x != None").evaluate_condition(NULLS, 3).tolist() == [False, False, False]


def test_not_and_or_treat_a_null_comparison_as_false():
    assert parse("not x > 2").evaluate_condition(NULLS, 3).tolist() == [True, True, False]
    assert parse("x > 2 or s == 'a'").evaluate_condition(NULLS, 3).tolist() == [True, False, True]
    assert parse("x > 0 and s == 'c'").evaluate_condition(NULLS, 3).tolist() == [False, False, True]


def test_is_null_and_not_null():
    assert parse("is_null(x)").evaluate_condition(NULLS, 3).tolist() == [False, True, False]
    assert parse("not_null(s)").evaluate_condition(NULLS, 3).tolist() == [True, False, True]
    assert parse("is_null(x * 2)").evaluate_condition(NULLS, 3).tolist() == [False, True, False]
    assert parse("is_null(None)").evaluate_condition(NULLS, 3).tolist() == [True, True, True]


def test_division_by_zero_and_invalid_math_give_nulls():
    got = ev("x / y", x=[1.0, 1.0, 0.0], y=[0.0, 2.0, 0.0])
    assert math.isnan(got[0]) and got[1] == 0.5 and math.isnan(got[2])
    assert math.isnan(ev("x % 0", x=[3.0])[0])
    assert math.isnan(ev("sqrt(x)", x=[-1.0])[0])
    assert parse("is_null(1 / x)").evaluate_condition({"x": np.array([0.0, 1.0])}, 2).tolist() == [
        True,
        False,
    ]


def test_evaluate_returns_none_for_null_text():
    got = parse("s").evaluate(NULLS, 3)
    assert got.tolist() == ["a", None, "c"]


def test_a_nullable_boolean_column_is_false_where_null():
    flags = column_array(pd.Series([True, None, False], dtype="boolean"))
    assert parse("flag").evaluate_condition({"flag": flags}, 3).tolist() == [True, False, False]
    assert parse("not flag").evaluate_condition({"flag": flags}, 3).tolist() == [False, True, True]


# -- comparisons and membership ---------------------------------------------------------------


def test_chained_comparisons():
    got = ev("1 < x <= 3", x=[1.0, 2.0, 3.0, 4.0])
    assert got.tolist() == [False, True, True, False]


def test_text_comparisons():
    s = np.array(["north", "south", "east"], dtype=object)
    assert ev("s == 'north'", s=s).tolist() == [True, False, False]
    assert ev("s != 'north'", s=s).tolist() == [False, True, True]
    assert ev("s < 'p'", s=s).tolist() == [True, False, True]


def test_numbers_never_equal_text_and_cannot_be_ordered_against_it():
    assert ev("x == 'a'", x=[1.0]).tolist() == [False]
    assert ev("x != 'a'", x=[1.0]).tolist() == [True]
    with pytest.raises(InvalidDefinition):
        ev("x < 'a'", x=[1.0])


def test_membership_in_a_literal_list():
    s = np.array(["north", "south", "east"], dtype=object)
    assert ev("s in ['north', 'east']", s=s).tolist() == [True, False, True]
    assert ev("s not in ('north', 'east')", s=s).tolist() == [False, True, False]
    assert ev("x in [1, -2, 3.5]", x=[1.0, -2.0, 2.0, 3.5]).tolist() == [True, True, False, True]
    assert ev("x not in [1]", x=[1.0, 2.0]).tolist() == [False, True]
    assert ev("x in ['1']", x=[1.0]).tolist() == [False]  # text never matches a number


def test_datetime_columns_compare_with_dates_written_as_text():
    env = frame_env(pd.DataFrame({"d": pd.to_datetime(["2024-01-01", None, "2024-06-01"])}), ["d"])
    got = parse("d >= '2024-03-01'").evaluate_condition(env, 3)
    assert got.tolist() == [False, False, True]


def test_a_date_that_is_not_iso_text_is_a_definition_error():
    env = {"d": np.array(["2024-01-01"], dtype="datetime64[ns]")}
    with pytest.raises(InvalidDefinition) as info:
        parse("d > '01/02/2024'", 4, "r.yaml").evaluate(env, 1)
    assert "cannot read '01/02/2024' as a date" in str(info.value)


def test_timezone_aware_datetimes_are_compared_in_utc():
    frame = pd.DataFrame({"d": pd.to_datetime(["2024-01-01T01:00:00+02:00"])})
    got = parse("d < '2024-01-01T00:00:00'").evaluate_condition(frame_env(frame, ["d"]), 1)
    assert got.tolist() == [True]  # 23:00 UTC the day before


def test_a_condition_must_be_true_or_false():
    with pytest.raises(InvalidDefinition) as info:
        parse("x + 1", 5, "r.yaml").evaluate_condition({"x": np.array([1.0])}, 1)
    assert "must be true or false" in str(info.value)
    with pytest.raises(InvalidDefinition):
        parse("x and True").evaluate_condition({"x": np.array([1.0])}, 1)


def test_a_missing_column_is_a_schema_mismatch():
    with pytest.raises(SchemaMismatch) as info:
        parse("x > y", 3, "r.yaml").evaluate({"x": np.array([1.0])}, 1)
    assert info.value.details["column"] == "y"


# -- columns ----------------------------------------------------------------------------------


def test_column_array_converts_each_column_type():
    frame = pd.DataFrame(
        {
            "i": [1, 2],
            "ni": pd.array([1, None], dtype="Int64"),
            "f": [1.5, None],
            "b": [True, False],
            "s": ["a", None],
            "o": pd.Series([1, 2], dtype=object),
        }
    )
    env = frame_env(frame, frame.columns)
    assert env["i"].dtype == float and env["i"].tolist() == [1.0, 2.0]
    assert env["ni"][0] == 1.0 and math.isnan(env["ni"][1])
    assert env["b"].dtype == bool
    assert env["s"].tolist() == ["a", None]
    assert env["o"].dtype == float


def test_frame_env_reports_every_missing_column():
    with pytest.raises(SchemaMismatch) as info:
        frame_env(pd.DataFrame({"a": [1]}), ["a", "b", "c"])
    assert [p["column"] for p in info.value.details["problems"]] == ["b", "c"]


def test_to_value_of_scalars():
    assert to_value(None).null.all()
    assert to_value(3).values.dtype == float
    assert to_value("a").values.dtype == object
    assert to_value(pd.Series([1.0, np.nan])).null.tolist() == [False, True]


def test_evaluation_is_vectorized_over_large_inputs():
    n = 200_000
    rng = np.random.default_rng(0)
    x, s = rng.normal(size=n), rng.choice(np.array(["a", "b", "c"], dtype=object), size=n)
    got = parse("x > 0 and s in ['a', 'b'] or abs(x) > 2").evaluate_condition({"x": x, "s": s}, n)
    expected = ((x > 0) & np.isin(s, ["a", "b"])) | (np.abs(x) > 2)
    assert np.array_equal(got, expected)


# -- property: the vectorized evaluation agrees with Python's own scalar arithmetic ----------------

_LITERALS = st.sampled_from(["0", "1", "2", "3", "0.5", "2.5", "10", "100"])
_DIVISORS = st.sampled_from(["2", "3", "0.5", "4", "7"])


def _numeric():
    leaves = st.one_of(st.sampled_from(["x", "y"]), _LITERALS)

    def extend(children):
        pair = st.tuples(children, children)
        return st.one_of(
            pair.map(lambda p: f"({p[0]} + {p[1]})"),
            pair.map(lambda p: f"({p[0]} - {p[1]})"),
            pair.map(lambda p: f"({p[0]} * {p[1]})"),
            st.tuples(children, _DIVISORS).map(lambda p: f"({p[0]} / {p[1]})"),
            st.tuples(children, _DIVISORS).map(lambda p: f"({p[0]} // {p[1]})"),
            st.tuples(children, _DIVISORS).map(lambda p: f"({p[0]} % {p[1]})"),
            children.map(lambda c: f"(-{c})"),
            children.map(lambda c: f"({c} ** 2)"),
            children.map(lambda c: f"abs({c})"),
            children.map(lambda c: f"round({c})"),
            children.map(lambda c: f"sqrt(abs({c}))"),
            children.map(lambda c: f"log(abs({c}) + 1)"),
            children.map(lambda c: f"exp(min({c}, 5))"),
            pair.map(lambda p: f"min({p[0]}, {p[1]})"),
            st.tuples(children, children, children).map(lambda p: f"max({p[0]}, {p[1]}, {p[2]})"),
        )

    return st.recursive(leaves, extend, max_leaves=6)


def _boolean():
    numeric = _numeric()
    ops = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
    comparison = st.one_of(
        st.tuples(numeric, ops, numeric).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        st.tuples(numeric, numeric, numeric).map(lambda p: f"({p[0]} < {p[1]} <= {p[2]})"),
        numeric.map(lambda c: f"({c} in [0, 1, 2.5, 3])"),
        numeric.map(lambda c: f"({c} not in [1, 2])"),
    )

    def extend(children):
        pair = st.tuples(children, children)
        return st.one_of(
            pair.map(lambda p: f"({p[0]} and {p[1]})"),
            pair.map(lambda p: f"({p[0]} or {p[1]})"),
            children.map(lambda c: f"(not {c})"),
        )

    return st.recursive(comparison, extend, max_leaves=4)


_SCALAR_NAMESPACE = {
    "__builtins__": {},
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
}

_COLUMN = st.lists(
    st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False), min_size=1, max_size=8
)


def _scalar(text: str, x: float, y: float):
    # The oracle: Python evaluating the same text on one row (test code only; the package never evals).
    return eval(text, dict(_SCALAR_NAMESPACE), {"x": x, "y": y})  # noqa: S307


@settings(max_examples=300, deadline=None)
@given(text=_numeric(), xs=_COLUMN, data=st.data())
def test_vectorized_arithmetic_matches_python_scalar_arithmetic(text, xs, data):
    ys = data.draw(st.lists(st.floats(min_value=-50, max_value=50), min_size=len(xs), max_size=len(xs)))
    got = parse(text).evaluate({"x": np.array(xs), "y": np.array(ys)}, len(xs))
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        expected = _scalar(text, x, y)
        assert math.isclose(got[i], expected, rel_tol=1e-9, abs_tol=1e-9), (text, x, y, got[i], expected)


@settings(max_examples=300, deadline=None)
@given(text=_boolean(), xs=_COLUMN, data=st.data())
def test_vectorized_conditions_match_python_scalar_logic(text, xs, data):
    ys = data.draw(st.lists(st.floats(min_value=-50, max_value=50), min_size=len(xs), max_size=len(xs)))
    got = parse(text).evaluate_condition({"x": np.array(xs), "y": np.array(ys)}, len(xs))
    expected = [bool(_scalar(text, x, y)) for x, y in zip(xs, ys, strict=True)]
    assert got.tolist() == expected, text


@settings(max_examples=100, deadline=None)
@given(
    xs=st.lists(st.one_of(st.none(), st.floats(-10, 10)), min_size=1, max_size=10),
    threshold=st.floats(-10, 10),
)
def test_comparisons_with_nulls_are_false_and_others_match_python(xs, threshold):
    values = np.array([np.nan if v is None else v for v in xs])
    env = {"x": values, "t": threshold}
    for op in ("<", "<=", ">", ">=", "==", "!="):
        got = parse(f"x {op} t").evaluate_condition(env, len(xs))
        expected = [v is not None and _scalar(f"x {op} y", v, threshold) for v in xs]
        assert got.tolist() == expected, op
    assert parse("is_null(x)").evaluate_condition(env, len(xs)).tolist() == [v is None for v in xs]
