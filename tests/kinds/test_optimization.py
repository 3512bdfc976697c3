"""The ``optimization`` kind: linear and mixed-integer programs over request rows, solved with HiGHS."""

from __future__ import annotations

import itertools
import json
import math
import pathlib
import textwrap

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelsteward.domain.records import ColumnSpec
from modelsteward.errors import InvalidArgument, InvalidArtifact, InvalidDefinition, StewardError
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.optimization import OptimizationKind, OptimizationProgram
from modelsteward.kinds.registry import get_kind
from modelsteward.testing import check_kind

DEMO = pathlib.Path(__file__).resolve().parents[2] / "modelsteward" / "demo" / "definitions"
LIMIT_ALLOCATION = DEMO / "limit_allocation.yaml"
CREDIT_POLICY = DEMO / "credit_policy.yaml"

MARGIN, LGD, UNIT = 0.12, 0.6, 500


def program(text: str, source: str = "program.yaml") -> OptimizationProgram:
    return OptimizationProgram.from_yaml(textwrap.dedent(text), source=source)


def rejection(text: str, source: str = "program.yaml") -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as info:
        program(text, source)
    return info.value


def small_batch() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "risk_score": [0.02, 0.05, 0.10, 0.12, 0.30],
            "loan_amount": [1500.0, 1000.0, 2000.0, 1500.0, 1000.0],
            "income": [10_000.0, 2_000.0, 2_400.0, 10_000.0, 50_000.0],
            "region": ["north", "north", "south", "south", "south"],
        }
    )


def brute_force_allocation(frame: pd.DataFrame, budget: float, share: float) -> tuple[float, tuple[int, ...]]:
    """Enumerate every allocation of whole units; return the best expected profit and its units."""
    per_unit = (MARGIN * (1 - frame["risk_score"]) - LGD * frame["risk_score"]) * UNIT
    ranges = [range(int(loan // UNIT) + 1) for loan in frame["loan_amount"]]
    best, best_units = -math.inf, ()
    for units in itertools.product(*ranges):
        limits = np.array(units) * UNIT
        if limits.sum() > budget:
            continue
        if any(limits[(frame["region"] == r).to_numpy()].sum() > share * budget for r in frame["region"].unique()):
            continue
        if (limits > 0.5 * frame["income"].to_numpy()).any():
            continue
        profit = float((per_unit.to_numpy() * np.array(units)).sum())
        if profit > best:
            best, best_units = profit, units
    return best, best_units


# -- the demo limit allocation ------------------------------------------------------------------


def test_the_demo_allocation_matches_a_brute_force_optimum():
    demo = OptimizationProgram.from_file(LIMIT_ALLOCATION)
    frame = small_batch().assign(budget=3000.0, region_share=0.5)  # request columns override parameters
    result = demo.solve(frame)
    best, best_units = brute_force_allocation(small_batch(), budget=3000, share=0.5)
    assert best == pytest.approx(223.2)  # by hand: 3 units at 52.8, 2 at 24, 1 at 16.8
    assert best_units == (3, 0, 2, 1, 0)
    assert (result["status"] == "optimal").all()
    assert result["objective"].tolist() == pytest.approx([best] * 5)
    assert result["units"].tolist() == list(best_units)
    assert result["limit"].tolist() == [u * UNIT for u in best_units]
    assert result["expected_profit"].sum() == pytest.approx(best)


def test_the_demo_allocation_respects_budget_regions_and_affordability_on_a_larger_batch():
    demo = OptimizationProgram.from_file(LIMIT_ALLOCATION)
    rng = np.random.default_rng(11)
    n = 300
    frame = pd.DataFrame(
        {
            "risk_score": rng.uniform(0.0, 0.3, n),
            "loan_amount": rng.choice([5_000.0, 10_000.0, 20_000.0, 40_000.0], n),
            "income": rng.uniform(20_000, 150_000, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    result = demo.solve(frame)
    assert (result["status"] == "optimal").all()
    limits = result["limit"]
    assert limits.sum() <= 250_000 + 1e-6
    assert limits.groupby(frame["region"]).sum().max() <= 0.4 * 250_000 + 1e-6
    assert (limits <= frame["loan_amount"] + 1e-6).all()
    assert (limits <= 0.5 * frame["income"] + 1e-6).all()
    assert (limits % UNIT == 0).all()
    assert (limits[frame["risk_score"] > 1 / 6] == 0).all()  # lending there loses money
    assert limits.sum() == pytest.approx(250_000)  # with this many good applicants the budget binds
    expected = ((MARGIN * (1 - frame["risk_score"]) - LGD * frame["risk_score"]) * limits).sum()
    assert result["objective"].iloc[0] == pytest.approx(expected)
    assert result["objective"].nunique() == 1


def test_the_demo_allocation_passes_the_kind_conformance_suite():
    out = check_kind(OptimizationKind(), OptimizationProgram.from_file(LIMIT_ALLOCATION), small_batch())
    assert list(out.columns) == ["units", "limit", "expected_profit", "objective", "status"]
    assert (out["status"] == "optimal").all()


def test_the_demo_allocation_declares_its_signature():
    demo = OptimizationProgram.from_file(LIMIT_ALLOCATION)
    signature = OptimizationKind().signature(demo, None)
    assert signature.inputs == [
        ColumnSpec(name="risk_score", type="number"),
        ColumnSpec(name="loan_amount", type="number"),
        ColumnSpec(name="income", type="number"),
        ColumnSpec(name="region", type="string"),
    ]
    assert signature.outputs == [
        ColumnSpec(name="units", type="number", nullable=True),
        ColumnSpec(name="limit", type="number", nullable=True),
        ColumnSpec(name="expected_profit", type="number", nullable=True),
        ColumnSpec(name="objective", type="number", nullable=True),
        ColumnSpec(name="status", type="string"),
    ]
    assert demo.sense == "maximize" and demo.scope == "batch"
    assert demo.parameters == {
        "budget": 250000.0,
        "region_share": 0.4,
        "margin": 0.12,
        "lgd": 0.6,
        "unit": 500.0,
    }


def test_the_kind_is_registered_under_optimization():
    kind = get_kind("optimization")
    assert isinstance(kind, OptimizationKind)
    assert kind.packages == ("scipy", "numpy", "pandas")


def test_a_parameter_column_must_be_constant_in_a_batch():
    demo = OptimizationProgram.from_file(LIMIT_ALLOCATION)
    frame = small_batch().assign(budget=[1000.0, 2000.0, 1000.0, 1000.0, 1000.0])
    with pytest.raises(InvalidArgument) as info:
        demo.solve(frame)
    assert info.value.details["column"] == "budget"


# -- solving: hand-checked programs ------------------------------------------------------------

FRACTIONAL = """\
sense: maximize
parameters: {capacity: 1.5}
variables:
  x: {type: continuous, lower: 0, upper: 1}
objective: "sum(value * x)"
constraints:
  - {name: capacity, expr: "sum(x) <= capacity"}
outputs:
  share: "x / capacity"
  total: "sum(x)"
"""


def test_a_continuous_program_gives_the_fractional_knapsack_solution():
    result = program(FRACTIONAL).solve(pd.DataFrame({"value": [3.0, 5.0, 1.0, 4.0]}))
    assert result["x"].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.5])
    assert result["objective"].tolist() == pytest.approx([7.0] * 4)
    assert result["share"].tolist() == pytest.approx([0.0, 2 / 3, 0.0, 1 / 3])
    assert result["total"].tolist() == pytest.approx([1.5] * 4)  # a sum() output is the same on every row


def test_minimize_with_an_equality_fills_the_cheapest_first():
    result = program(
        """\
        sense: minimize
        variables:
          qty: {lower: 0, upper: "stock"}
        objective: "sum(cost * qty) + 100"
        constraints:
          - {name: demand, expr: "sum(qty) == 10"}
        """
    ).solve(pd.DataFrame({"cost": [4.0, 1.0, 2.0], "stock": [100.0, 6.0, 3.0]}))
    assert result["qty"].tolist() == pytest.approx([1.0, 6.0, 3.0])
    assert result["objective"].iloc[0] == pytest.approx(4 + 6 + 6 + 100)  # constants count in the objective


def test_for_each_adds_one_constraint_per_group():
    result = program(
        """\
        sense: maximize
        variables:
          x: {upper: 10}
        objective: "sum(x)"
        constraints:
          - {name: per_team, for_each: team, expr: "sum(x) <= cap"}
        """
    ).solve(pd.DataFrame({"team": ["a", "a", "b", "c"], "cap": [3.0, 3.0, 4.0, 20.0]}))
    totals = result["x"].groupby(["a", "a", "b", "c"]).sum()
    assert totals.to_dict() == pytest.approx({"a": 3.0, "b": 4.0, "c": 10.0})
    assert result["objective"].iloc[0] == pytest.approx(17.0)


def test_a_row_constraint_holds_on_every_row():
    result = program(
        """\
        sense: maximize
        variables: {x: continuous}
        objective: "sum(x)"
        constraints:
          - {name: each, expr: "2 * x + 1 <= limit"}
        """
    ).solve(pd.DataFrame({"limit": [1.0, 5.0, 11.0]}))
    assert result["x"].tolist() == pytest.approx([0.0, 2.0, 5.0])


def test_binary_variables_and_per_row_bounds():
    result = program(
        """\
        sense: maximize
        variables:
          pick: binary
          extra: {type: integer, lower: 0, upper: "slots - 1"}
        objective: "sum(value * pick + extra)"
        constraints:
          - {name: weight, expr: "sum(weight * pick) <= 5"}
          - {name: link, expr: "extra <= 10 * pick"}
        """
    ).solve(pd.DataFrame({"value": [6.0, 5.0, 4.0], "weight": [4.0, 3.0, 2.0], "slots": [1.0, 3.0, 2.0]}))
    assert result["pick"].tolist() == [0.0, 1.0, 1.0]
    assert result["extra"].tolist() == [0.0, 2.0, 1.0]
    assert result["objective"].iloc[0] == pytest.approx(12.0)


@settings(max_examples=25, deadline=None)
@given(
    items=st.lists(st.tuples(st.integers(1, 9), st.integers(1, 20)), min_size=1, max_size=7),
    capacity=st.integers(0, 25),
)
def test_a_binary_knapsack_matches_brute_force(items, capacity):
    frame = pd.DataFrame(items, columns=["weight", "value"]).astype(float)
    result = program(
        """\
        sense: maximize
        parameters: {capacity: 0}
        variables: {take: binary}
        objective: "sum(value * take)"
        constraints:
          - {name: capacity, expr: "sum(weight * take) <= capacity"}
        """
    ).solve(frame.assign(capacity=float(capacity)))
    best = max(
        sum(v for (w, v), t in zip(items, choice, strict=True) if t)
        for choice in itertools.product([0, 1], repeat=len(items))
        if sum(w for (w, _), t in zip(items, choice, strict=True) if t) <= capacity
    )
    assert (result["status"] == "optimal").all()
    assert result["objective"].iloc[0] == pytest.approx(best)
    assert float((frame["weight"] * result["take"]).sum()) <= capacity


def test_integer_values_are_whole_numbers():
    result = OptimizationProgram.from_file(LIMIT_ALLOCATION).solve(small_batch())
    assert (result["units"] == result["units"].round()).all()


# -- statuses ----------------------------------------------------------------------------------

NEEDS = """\
sense: maximize
scope: {scope}
parameters: {{need: 0}}
variables:
  x: {{lower: 0, upper: cap}}
objective: "sum(value * x)"
constraints:
  - {{name: floor, expr: "sum(x) >= need"}}
"""


def test_an_infeasible_program_reports_its_status_without_raising():
    frame = pd.DataFrame({"value": [1.0, 2.0], "cap": [1.0, 2.0], "need": [10.0, 10.0]})
    result = program(NEEDS.format(scope="batch")).solve(frame)
    assert result["status"].tolist() == ["infeasible", "infeasible"]
    assert result["x"].isna().all() and result["objective"].isna().all()


def test_conflicting_bounds_are_infeasible():
    frame = pd.DataFrame({"value": [1.0], "cap": [-1.0]})
    assert program(NEEDS.format(scope="batch")).solve(frame)["status"].tolist() == ["infeasible"]


def test_a_violated_constant_constraint_is_infeasible():
    result = program(
        """\
        variables: {x: continuous}
        objective: "sum(x)"
        constraints:
          - {name: data_check, expr: "sum(amount) <= 10"}
        """
    ).solve(pd.DataFrame({"amount": [6.0, 7.0]}))
    assert result["status"].tolist() == ["infeasible", "infeasible"]


def test_an_unbounded_program_reports_unbounded():
    result = program("sense: maximize\nvariables: {x: continuous}\nobjective: 'sum(x)'\n").solve(
        pd.DataFrame({"a": [1.0, 2.0]})
    )
    assert result["status"].tolist() == ["unbounded", "unbounded"]
    assert result["objective"].isna().all()


def test_null_data_gives_status_error_not_an_exception():
    p = program(
        """\
        inputs: {cap: {type: number, nullable: true}}
        sense: maximize
        variables: {x: {upper: cap}}
        objective: "sum(x)"
        """
    )
    result = p.solve(pd.DataFrame({"cap": [1.0, None]}))
    assert result["status"].tolist() == ["error", "error"]
    assert result["x"].isna().all()


def test_scope_row_solves_each_row_on_its_own():
    frame = pd.DataFrame(
        {"value": [1.0, 2.0, 3.0], "cap": [1.0, 2.0, 3.0], "need": [0.0, 5.0, 2.0]}, index=[10, 20, 30]
    )
    result = program(NEEDS.format(scope="row")).solve(frame)
    assert list(result.index) == [10, 20, 30]
    assert result["status"].tolist() == ["optimal", "infeasible", "optimal"]
    assert result["x"].iloc[0] == pytest.approx(1.0) and result["x"].iloc[2] == pytest.approx(3.0)
    assert result["objective"].iloc[0] == pytest.approx(1.0)  # each row has its own objective
    assert result["objective"].iloc[2] == pytest.approx(9.0)
    assert math.isnan(result["objective"].iloc[1])


def test_the_time_limit_status_keeps_the_best_solution_found(monkeypatch):
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    def stopped(c, **kwargs):
        return OptimizeResult(status=1, x=np.array([0.9999999, 2.0]), message="Time limit reached.")

    monkeypatch.setattr(scipy.optimize, "milp", stopped)
    result = program("sense: maximize\nvariables: {x: {type: integer, upper: 5}}\nobjective: 'sum(x)'\n").solve(
        pd.DataFrame({"a": [1.0, 2.0]})
    )
    assert result["status"].tolist() == ["time_limit", "time_limit"]
    assert result["x"].tolist() == [1.0, 2.0]
    assert result["objective"].tolist() == [3.0, 3.0]


def test_unbounded_or_infeasible_is_resolved_with_a_feasibility_check(monkeypatch):
    import scipy.optimize
    from scipy.optimize import OptimizeResult

    real = scipy.optimize.milp
    calls = []

    def undecided(c, **kwargs):
        calls.append(np.array(c))
        if len(calls) == 1:
            return OptimizeResult(status=4, x=None, message="The problem is unbounded or infeasible. (HiGHS 10)")
        return real(c, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", undecided)
    frame = pd.DataFrame({"value": [1.0], "cap": [1.0], "need": [10.0]})
    assert program(NEEDS.format(scope="batch")).solve(frame)["status"].tolist() == ["infeasible"]
    assert len(calls) == 2 and not calls[1].any()  # the second solve has no objective


def test_an_empty_request_gives_an_empty_answer():
    result = OptimizationProgram.from_file(LIMIT_ALLOCATION).solve(small_batch().iloc[:0])
    assert len(result) == 0
    assert list(result.columns) == ["units", "limit", "expected_profit", "objective", "status"]


def test_a_large_batch_is_solved_with_sparse_matrices():
    n = 5_000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"value": rng.uniform(0, 1, n), "group": rng.choice(list("abcdefghij"), n)})
    result = program(
        """\
        sense: maximize
        variables: {x: {upper: 1}}
        objective: "sum(value * x)"
        constraints:
          - {name: total, expr: "sum(x) <= 1000"}
          - {name: per_group, for_each: group, expr: "sum(x) <= 120"}
          - {name: each, expr: "x <= 0.9"}
        """
    ).solve(frame)
    assert (result["status"] == "optimal").all()
    assert result["x"].sum() == pytest.approx(1000)
    assert result["x"].groupby(frame["group"]).sum().max() <= 120 + 1e-6
    assert result["x"].max() <= 0.9 + 1e-9


# -- rejections, each with its line ------------------------------------------------------------

BASE = """\
kind: optimization
sense: maximize
parameters: {{budget: 100, unit: 5}}
variables:
  x: {{type: integer, lower: 0, upper: 10}}
  y: continuous
objective: "{objective}"
constraints:
  - name: budget
    expr: "{constraint}"
"""


@pytest.mark.parametrize(
    ("objective", "constraint", "line", "fragment"),
    [
        ("sum(x * y)", "sum(x) <= budget", 7, "multiplies two decision-variable terms"),
        ("sum(value * x * x)", "sum(x) <= budget", 7, "multiplies two decision-variable terms"),
        ("sum(value / x)", "sum(x) <= budget", 7, "divides by a decision variable"),
        ("sum(log(x))", "sum(x) <= budget", 7, "applies log() to a decision variable"),
        ("sum(x ** 2)", "sum(x) <= budget", 7, "applies '**' to a decision variable"),
        ("sum(abs(x - 3))", "sum(x) <= budget", 7, "applies abs() to a decision variable"),
        ("sum(max(x, y))", "sum(x) <= budget", 7, "applies max() to a decision variable"),
        ("sum(x) > 3", "sum(x) <= budget", 7, "not a comparison"),
        ("sum(x)", "sum(x) * sum(y) <= budget", 10, "multiplies two decision-variable terms"),
        ("sum(x)", "sum(sum(x)) <= budget", 10, "nests sum() inside sum()"),
        ("sum(x)", "sum(x) < budget", 10, "strict inequality '<'"),
        ("sum(x)", "sum(x) != budget", 10, "compares with <=, >= or =="),
        ("sum(x)", "sum(x)", 10, "must be one comparison"),
        ("sum(x)", "0 <= sum(x) <= budget", 10, "must be one comparison"),
        ("sum(x)", "sum(x % 2) <= budget", 10, "applies '%' to a decision variable"),
        ("sum(x)", "sqrt(sum(value)) <= x", 10, "applies sqrt() to a sum()"),
        ("sum(x)", "x >= 1 and y >= 1", 10, "must be one comparison"),
        ("sum(x)", "sum(x) <= budget.real", 10, "attribute access"),
        ("sum(x)", "total(x) <= budget", 10, "unknown function total()"),
    ],
)
def test_non_linear_and_invalid_expressions_are_rejected_with_their_line(objective, constraint, line, fragment):
    err = rejection(BASE.format(objective=objective, constraint=constraint))
    assert err.details["line"] == line
    assert fragment in str(err)
    assert str(err).startswith(f"program.yaml line {line}: ")


def test_a_nonlinear_objective_is_rejected_at_save_time():
    text = BASE.format(objective="sum(x * y)", constraint="sum(x) <= budget")
    with pytest.raises(InvalidDefinition) as info:
        OptimizationKind().save(text)
    assert info.value.details["line"] == 7
    assert info.value.details["field"] == "objective"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("variables:\n  x: {upper: 'sum(cap)'}\nobjective: 'sum(x)'\n", 2, "unknown function sum()"),
        (
            "variables:\n  x: {upper: 3}\n  y: {upper: 'x + 1'}\nobjective: 'sum(x)'\n",
            3,
            "cannot depend on a decision",
        ),
        ("variables:\n  x: {type: binary, upper: 3}\nobjective: 'sum(x)'\n", 2, "takes no upper bound"),
        ("variables:\n  x: {upper: [1]}\nobjective: 'sum(x)'\n", 2, "a bound must be a number"),
        ("variables:\n  x: {type: real}\nobjective: 'sum(x)'\n", 2, "variables.x.type"),
        ("variables: {}\nobjective: 'sum(1)'\n", 1, "at least 1"),
        ("variables: {x: continuous}\n", 1, "objective: Field required"),
        (
            "parameters: {rate: high}\nvariables: {x: continuous}\nobjective: 'sum(x)'\n",
            1,
            "must be a number",
        ),
        (
            "parameters: {x: 1}\nvariables:\n  x: continuous\nobjective: 'sum(x)'\n",
            3,
            "both a variable and a parameter",
        ),
        ("variables:\n  status: continuous\nobjective: 'sum(status)'\n", 2, "reserved"),
        ("variables:\n  my-var: continuous\nobjective: '1'\n", 2, "cannot be used in expressions"),
        ("variables: {x: continuous}\nobjective: 'sum(x)'\noutputs:\n  x: 'x * 2'\n", 4, "clashes"),
        ("variables: {x: continuous}\nobjective: 'sum(x)'\ntime_limit: 0\n", 3, "time_limit"),
        ("variables: {x: continuous}\nobjective: 'sum(x)'\nsense: maximise\n", 3, "sense"),
        ("variables: {x: continuous}\nobjective: 'sum(x)'\nscope: rows\n", 3, "scope"),
        ("variables: {x: continuous}\nobjective: 'sum(x)'\nconstrains: []\n", 3, "Extra inputs"),
        ("kind: rules\nvariables: {x: continuous}\nobjective: 'sum(x)'\n", 1, "kind"),
        ("variables: {x: continuous}\nobjective: 'sum(x)\n", 3, "invalid YAML"),
        (
            "variables: {x: continuous}\nobjective: 'sum(x)'\nconstraints:\n"
            "  - {name: a, expr: 'x <= 1'}\n  - {name: a, expr: 'x <= 2'}\n",
            5,
            "duplicate constraint name 'a'",
        ),
    ],
)
def test_invalid_definitions_are_rejected_with_their_line(text, line, fragment):
    err = rejection(text)
    assert err.details["line"] == line
    assert fragment in str(err)


def test_an_undeclared_column_is_rejected_when_inputs_are_declared():
    err = rejection(
        """\
        inputs: {value: number}
        variables: {x: {upper: 1}}
        objective: "sum(value * x)"
        constraints:
          - {name: spread, expr: "sum(x) <= ammount"}
        """
    )
    assert err.details["line"] == 5
    assert err.details["column"] == "ammount"
    assert "constraint 'spread': unknown name 'ammount'" in str(err)


def test_an_undeclared_for_each_column_is_rejected():
    err = rejection(
        """\
        inputs: {value: number}
        variables: {x: {upper: 1}}
        objective: "sum(value * x)"
        constraints:
          - name: per_region
            for_each: region
            expr: "sum(x) <= 2"
        """
    )
    assert err.details["line"] == 6
    assert err.details["column"] == "region"


def test_a_type_error_is_found_at_save_time_on_a_dummy_row():
    err = rejection(
        """\
        inputs: {value: number, region: string}
        variables: {x: {upper: 1}}
        objective: "sum(value * x)"
        outputs:
          weird: "region * x"
        """
    )
    assert err.details["line"] == 5
    assert "is not a number" in str(err)


# -- the signature -----------------------------------------------------------------------------


def test_without_declared_inputs_columns_are_numbers_and_for_each_columns_text():
    p = program(
        """\
        variables: {x: {upper: cap}}
        objective: "sum(cost * x)"
        constraints:
          - {name: g, for_each: team, expr: "sum(x) >= 1"}
        outputs: {spend: "cost * x"}
        """
    )
    signature = p.signature()
    assert signature.inputs == [
        ColumnSpec(name="cap", type="number"),
        ColumnSpec(name="cost", type="number"),
        ColumnSpec(name="team", type="string"),
    ]
    assert signature.output_names == ["x", "spend", "objective", "status"]


def test_a_column_missing_from_the_example_names_where_it_is_used():
    p = program(
        """\
        variables: {x: {upper: 1}}
        objective: "sum(cost * x)"
        constraints:
          - {name: floor, expr: "sum(x) >= minimum"}
        """,
        source="plan.yaml",
    )
    with pytest.raises(InvalidDefinition) as info:
        OptimizationKind().signature(p, pd.DataFrame({"cost": [1.0]}))
    assert info.value.details["line"] == 4
    assert info.value.details["column"] == "minimum"
    assert "constraint 'floor' (line 4): unknown column 'minimum'" in str(info.value)


# -- save, load, detect ------------------------------------------------------------------------


def test_save_stores_the_yaml_text_and_load_rebuilds_the_program():
    kind = OptimizationKind()
    saved = kind.save(LIMIT_ALLOCATION)
    assert saved.format == "yaml"
    assert saved.data == LIMIT_ALLOCATION.read_bytes()
    metadata = json.loads(json.dumps(saved.metadata))
    assert metadata == {
        "source": "limit_allocation.yaml",
        "name": "limit-allocation",
        "sense": "maximize",
        "scope": "batch",
    }
    loaded = kind.load(SavedModel(saved.data, saved.format, metadata))
    frame = small_batch().assign(budget=3000.0, region_share=0.5)
    assert loaded.solve(frame)["units"].tolist() == [3, 0, 2, 1, 0]


@pytest.mark.parametrize(
    "data",
    [b"\x00not an artifact\xff", b"variables: [", b"42", b"variables: {x: continuous}\nobjective: 'x * x'\n"],
)
def test_load_rejects_junk_with_a_steward_error(data):
    with pytest.raises(StewardError) as info:
        OptimizationKind().load(SavedModel(data, "yaml", {}))
    assert isinstance(info.value, (InvalidArtifact, InvalidDefinition))


def test_load_rejects_an_unknown_format():
    with pytest.raises(InvalidArtifact):
        OptimizationKind().load(SavedModel(LIMIT_ALLOCATION.read_bytes(), "pickle", {}))


def test_save_refuses_objects_that_are_not_programs():
    for obj in (None, 42, object(), {"variables": {}}):
        with pytest.raises(StewardError):
            OptimizationKind().save(obj)


def test_detect_accepts_programs_paths_and_yaml_text():
    kind = OptimizationKind()
    assert kind.detect(OptimizationProgram.from_file(LIMIT_ALLOCATION))
    assert kind.detect(LIMIT_ALLOCATION)
    assert kind.detect(str(LIMIT_ALLOCATION))
    assert kind.detect(LIMIT_ALLOCATION.read_text())


def test_detect_refuses_everything_else_without_raising(tmp_path):
    kind = OptimizationKind()
    broken = tmp_path / "broken.yml"
    broken.write_bytes(b"\x00\xff")
    for obj in (
        None,
        42,
        object(),
        {"variables": {}, "objective": "x"},
        "objective: x",
        "kind: rules\nvariables: {}\nobjective: x\n",
        CREDIT_POLICY,
        CREDIT_POLICY.read_text(),
        broken,
        tmp_path / "missing.yaml",
        "variables: [",
    ):
        assert kind.detect(obj) is False, obj
