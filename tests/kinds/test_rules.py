"""The ``rules`` kind: decision tables in YAML, first match by priority, errors that name the line."""

from __future__ import annotations

import json
import pathlib
import textwrap

import numpy as np
import pandas as pd
import pytest

from modelsteward.domain.records import ColumnSpec
from modelsteward.errors import InvalidArgument, InvalidArtifact, InvalidDefinition, StewardError
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.registry import get_kind
from modelsteward.kinds.rules import RuleSet, RulesKind
from modelsteward.testing import check_kind

DEMO = pathlib.Path(__file__).resolve().parents[2] / "modelsteward" / "demo" / "definitions"
CREDIT_POLICY = DEMO / "credit_policy.yaml"
LIMIT_ALLOCATION = DEMO / "limit_allocation.yaml"

SIMPLE = textwrap.dedent(
    """\
    kind: rules
    name: simple
    inputs:
      score: number
      region: string
    outputs:
      decision: string
    rules:
      - id: low
        when: "score < 0.2"
        then: {decision: accept}
      - id: north
        when: "region == 'north'"
        then: {decision: review}
    default: {decision: reject}
    """
)


def applicants() -> pd.DataFrame:
    """One row per branch of the Northwind policy, plus the boundaries and the overlaps."""
    rows = [
        # debt_to_income, risk_score, loan_amount, income, history, expected decision, expected rule
        (0.65, 0.10, 5_000, 60_000, 48, "decline", "decline-dti"),
        (0.30, 0.40, 5_000, 60_000, 48, "decline", "decline-risk"),
        (0.30, 0.10, 45_000, 60_000, 48, "refer", "refer-loan-size"),
        (0.30, 0.10, 5_000, 60_000, 3, "refer", "refer-thin-file"),
        (0.30, 0.10, 5_000, 60_000, 48, "approve", "default"),
        (0.70, 0.50, 90_000, 60_000, 1, "decline", "decline-dti"),  # everything fires: highest priority wins
        (0.30, 0.50, 90_000, 60_000, 1, "decline", "decline-risk"),  # decline outranks refer
        (0.30, 0.10, 90_000, 60_000, 1, "refer", "refer-loan-size"),  # equal priority: file order
        (0.60, 0.35, 40_000, 60_000, 6, "approve", "default"),  # every threshold exactly met: not crossed
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "debt_to_income",
            "risk_score",
            "loan_amount",
            "income",
            "credit_history_months",
            "decision",
            "rule",
        ],
    )
    return frame


def inputs_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["decision", "rule"])


def rejection(text: str, source: str = "policy.yaml") -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as info:
        RuleSet.from_yaml(textwrap.dedent(text), source=source)
    return info.value


# -- the Northwind demo policy ----------------------------------------------------------------


def test_the_demo_credit_policy_decides_each_row_as_written():
    policy = RuleSet.from_file(CREDIT_POLICY)
    frame = applicants()
    result = policy.evaluate(inputs_of(frame))
    assert result["decision"].tolist() == frame["decision"].tolist()
    assert result["rule"].tolist() == frame["rule"].tolist()
    reasons = dict(zip(result["rule"], result["reason"], strict=True))
    assert reasons["decline-dti"] == "debt-to-income above 60%"
    assert reasons["default"] == "within policy"


def test_the_demo_credit_policy_passes_the_kind_conformance_suite():
    out = check_kind(RulesKind(), RuleSet.from_file(CREDIT_POLICY), inputs_of(applicants()))
    assert out["decision"].tolist() == applicants()["decision"].tolist()


def test_the_demo_credit_policy_declares_its_signature():
    policy = RuleSet.from_file(CREDIT_POLICY)
    signature = RulesKind().signature(policy, None)
    assert signature.inputs == [
        ColumnSpec(name="debt_to_income", type="number"),
        ColumnSpec(name="risk_score", type="number"),
        ColumnSpec(name="loan_amount", type="number"),
        ColumnSpec(name="income", type="number"),
        ColumnSpec(name="credit_history_months", type="integer"),
    ]
    assert signature.outputs == [
        ColumnSpec(name="decision", type="string"),
        ColumnSpec(name="reason", type="string"),
        ColumnSpec(name="rule", type="string"),
    ]
    assert policy.name == "credit-policy"
    assert "Northwind" in policy.description


def test_the_kind_is_registered_under_rules():
    kind = get_kind("rules")
    assert isinstance(kind, RulesKind)
    assert kind.name == "rules"
    assert kind.packages == ("pyyaml", "numpy", "pandas")


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_the_kind_registers_a_path(as_path):
    frame = inputs_of(applicants())
    out = check_kind(RulesKind(), as_path(CREDIT_POLICY), frame)
    assert out["rule"].tolist() == applicants()["rule"].tolist()


def test_the_kind_registers_yaml_text():
    out = check_kind(RulesKind(), SIMPLE, pd.DataFrame({"score": [0.1, 0.5, 0.5], "region": ["x", "north", "y"]}))
    assert out["decision"].tolist() == ["accept", "review", "reject"]


# -- evaluation -------------------------------------------------------------------------------


def test_priority_beats_file_order_and_ties_keep_file_order():
    rules = RuleSet.from_yaml(
        textwrap.dedent(
            """\
            rules:
              - {id: first-low, priority: 1, when: "x > 0", then: {o: a}}
              - {id: second-high, priority: 10, when: "x > 5", then: {o: b}}
              - {id: third-high, priority: 10, when: "x > 1", then: {o: c}}
              - {id: fourth-low, priority: 1, when: "x > -100", then: {o: d}}
            default: {o: z}
            """
        )
    )
    assert [r.id for r in rules.rules] == ["second-high", "third-high", "first-low", "fourth-low"]
    out = rules.evaluate(pd.DataFrame({"x": [10, 3, 0.5, -1, -1000]}))
    assert out["o"].tolist() == ["b", "c", "a", "d", "z"]
    assert out["rule"].tolist() == ["second-high", "third-high", "first-low", "fourth-low", "default"]


def test_the_index_of_the_request_is_kept():
    rules = RuleSet.from_yaml(SIMPLE)
    frame = pd.DataFrame({"score": [0.1, 0.9], "region": ["north", "south"]}, index=["a7", "b9"])
    out = rules.evaluate(frame)
    assert list(out.index) == ["a7", "b9"]
    assert out.loc["b9", "decision"] == "reject"


def test_evaluate_accepts_records():
    out = RuleSet.from_yaml(SIMPLE).evaluate([{"score": 0.1, "region": "x"}])
    assert out["decision"].tolist() == ["accept"]


def test_nulls_make_conditions_false_and_is_null_catches_them():
    rules = RuleSet.from_yaml(
        textwrap.dedent(
            """\
            inputs:
              income: {type: number, nullable: true}
              segment: {type: string, nullable: true}
            rules:
              - id: missing-income
                priority: 10
                when: "is_null(income)"
                then: {decision: refer}
              - id: low-income
                when: "income < 1000"
                then: {decision: decline}
              - id: vip
                when: "segment == 'vip' or segment != 'basic'"
                then: {decision: fast-track}
            default: {decision: approve}
            """
        )
    )
    frame = pd.DataFrame(
        {"income": [None, 500.0, 5000.0, 5000.0, 5000.0], "segment": ["vip", None, None, "x", "basic"]}
    )
    out = rules.evaluate(frame)
    assert out["rule"].tolist() == ["missing-income", "low-income", "default", "vip", "default"]
    assert out["decision"].tolist() == ["refer", "decline", "approve", "fast-track", "approve"]


def test_without_a_default_unmatched_rows_get_nulls():
    rules = RuleSet.from_yaml("rules:\n  - {id: big, when: 'x > 10', then: {label: big, size: 3}}\n")
    out = rules.evaluate(pd.DataFrame({"x": [20, 1]}))
    assert out["label"].iloc[0] == "big" and pd.isna(out["label"].iloc[1])
    assert out["rule"].iloc[0] == "big" and pd.isna(out["rule"].iloc[1])
    assert out["size"].iloc[0] == 3 and pd.isna(out["size"].iloc[1])
    signature = rules.signature(pd.DataFrame({"x": [1.0]}))
    assert signature.outputs == [
        ColumnSpec(name="label", type="string", nullable=True),
        ColumnSpec(name="size", type="integer", nullable=True),
        ColumnSpec(name="rule", type="string", nullable=True),
    ]


def test_output_types_are_inferred_from_the_values():
    rules = RuleSet.from_yaml(
        textwrap.dedent(
            """\
            rules:
              - {id: a, when: "x > 1", then: {flag: true, count: 2, rate: 1, label: high}}
              - {id: b, when: "x > 0", then: {flag: false, count: 1, rate: 0.5, label: mid}}
            default: {flag: false, count: 0, rate: 0, label: low}
            """
        )
    )
    assert [(c.name, c.type, c.nullable) for c in rules.outputs] == [
        ("flag", "boolean", False),
        ("count", "integer", False),
        ("rate", "number", False),
        ("label", "string", False),
    ]
    out = rules.evaluate(pd.DataFrame({"x": [2, 0.5, -1]}))
    assert out["flag"].dtype == bool and out["flag"].tolist() == [True, False, False]
    assert out["count"].dtype == np.int64 and out["count"].tolist() == [2, 1, 0]
    assert out["rate"].dtype == float and out["rate"].tolist() == [1.0, 0.5, 0.0]
    assert out["label"].tolist() == ["high", "mid", "low"]


def test_dates_as_outcomes_and_nullable_integer_and_boolean_outcomes():
    rules = RuleSet.from_yaml(
        textwrap.dedent(
            """\
            rules:
              - {id: a, when: "x > 1", then: {review_on: 2024-01-31, tier: 1, vip: true}}
              - {id: b, when: "x > 0", then: {review_on: 2024-06-30}}
            default: {review_on: 2025-01-01, tier: 3, vip: false}
            """
        )
    )
    assert [(c.name, c.type, c.nullable) for c in rules.outputs] == [
        ("review_on", "datetime", False),
        ("tier", "integer", True),
        ("vip", "boolean", True),
    ]
    out = rules.evaluate(pd.DataFrame({"x": [2, 0.5, -1]}))
    assert out["review_on"].tolist() == [
        pd.Timestamp("2024-01-31"),
        pd.Timestamp("2024-06-30"),
        pd.Timestamp("2025-01-01"),
    ]
    assert str(out["tier"].dtype) == "Int64" and out["tier"].iloc[0] == 1 and pd.isna(out["tier"].iloc[1])
    assert str(out["vip"].dtype) == "boolean" and out["vip"].iloc[0] and pd.isna(out["vip"].iloc[1])


def test_a_rule_that_leaves_out_an_outcome_gives_null_there():
    rules = RuleSet.from_yaml(
        "rules:\n  - {id: a, when: 'x > 1', then: {decision: decline}}\ndefault: {decision: ok, reason: fine}\n"
    )
    out = rules.evaluate(pd.DataFrame({"x": [2, 0]}))
    assert pd.isna(out["reason"].iloc[0]) and out["reason"].iloc[1] == "fine"
    assert [c.nullable for c in rules.outputs] == [False, True]


def test_a_large_frame_is_evaluated_column_wise():
    policy = RuleSet.from_file(CREDIT_POLICY)
    rng = np.random.default_rng(7)
    n = 100_000
    frame = pd.DataFrame(
        {
            "debt_to_income": rng.uniform(0, 1, n),
            "risk_score": rng.uniform(0, 0.5, n),
            "loan_amount": rng.uniform(1_000, 60_000, n),
            "income": rng.uniform(20_000, 150_000, n),
            "credit_history_months": rng.integers(0, 120, n),
        }
    )
    out = policy.evaluate(frame)
    dti, risk = frame["debt_to_income"], frame["risk_score"]
    big = frame["loan_amount"] > 8 * frame["income"] / 12
    thin = frame["credit_history_months"] < 6
    expected = np.select(
        [dti > 0.6, risk > 0.35, big, thin],
        ["decline-dti", "decline-risk", "refer-loan-size", "refer-thin-file"],
        default="default",
    )
    assert (out["rule"].to_numpy() == expected).all()


def test_a_missing_column_at_evaluation_is_a_schema_mismatch():
    with pytest.raises(StewardError) as info:
        RuleSet.from_yaml(SIMPLE).evaluate(pd.DataFrame({"score": [0.1]}))
    assert info.value.code == "schema_mismatch"
    assert info.value.details["column"] == "region"


# -- rejections, each with its line ------------------------------------------------------------


def test_invalid_yaml_is_rejected_with_its_line():
    err = rejection(
        """\
        rules:
          - id: a
            when: "x > 1"
            then: {decision: [unclosed}
        """
    )
    assert err.details["line"] == 4
    assert "invalid YAML" in str(err)


def test_duplicate_rule_ids_are_rejected_at_the_second():
    err = rejection(
        """\
        rules:
          - id: a
            when: "x > 1"
            then: {d: 1}
          - id: b
            when: "x > 2"
            then: {d: 2}
          - id: a
            when: "x > 3"
            then: {d: 3}
        """
    )
    assert err.details["line"] == 8
    assert "duplicate rule id 'a' (first used on line 2)" in str(err)


def test_a_condition_on_an_undeclared_column_is_rejected():
    err = rejection(
        """\
        inputs:
          score: number
        rules:
          - id: uses-typo
            when: "score > 1 and scroe < 3"
            then: {d: 1}
        """
    )
    assert err.details["line"] == 5
    assert err.details["column"] == "scroe"
    assert str(err) == "policy.yaml line 5: rule 'uses-typo': unknown column 'scroe' (not declared in inputs)"


def test_an_unknown_output_in_then_is_rejected():
    err = rejection(
        """\
        outputs:
          decision: string
        rules:
          - id: a
            when: "x > 1"
            then:
              decision: decline
              reasn: typo
        """
    )
    assert err.details["line"] == 8
    assert err.details["field"] == "rules[0].then.reasn"
    assert "unknown output 'reasn'" in str(err)


def test_an_unknown_output_in_the_default_is_rejected():
    err = rejection(
        """\
        outputs: {decision: string}
        rules:
          - {id: a, when: "x > 1", then: {decision: decline}}
        default:
          decision: approve
          colour: red
        """
    )
    assert err.details["line"] == 6
    assert err.details["field"] == "default.colour"


def test_a_value_of_the_wrong_declared_type_is_rejected():
    err = rejection(
        """\
        outputs: {limit: integer}
        rules:
          - id: a
            when: "x > 1"
            then: {limit: 2.5}
        """
    )
    assert err.details["line"] == 5
    assert "declared integer" in str(err)


def test_yaml_yes_and_no_are_caught_as_booleans_where_text_is_declared():
    err = rejection("outputs: {decision: string}\nrules:\n  - id: a\n    when: x > 1\n    then: {decision: no}\n")
    assert err.details["line"] == 5
    assert "quote it" in str(err)


def test_outcomes_of_mixed_types_without_a_declaration_are_rejected():
    err = rejection(
        """\
        rules:
          - {id: a, when: "x > 1", then: {v: 1}}
          - {id: b, when: "x > 0", then: {v: high}}
        """
    )
    assert err.details["line"] == 3
    assert "outcome 'v' is string here but integer elsewhere" in str(err)


def test_an_outcome_must_be_a_single_value():
    err = rejection("rules:\n  - id: a\n    when: x > 1\n    then:\n      v: [1, 2]\n")
    assert err.details["line"] == 5


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("x.__class__", "attribute access"),
        ("open('/etc/passwd')", "unknown function open()"),
        ("x >", "invalid syntax"),
        ("[a for a in x]", "comprehension"),
    ],
)
def test_a_bad_expression_is_rejected_with_its_line(when, fragment):
    err = rejection(
        f"""\
        name: p
        rules:
          - id: ok
            when: "x > 1"
            then: {{d: 1}}
          - id: bad
            description: broken
            when: "{when}"
            then: {{d: 2}}
        """
    )
    assert err.details["line"] == 8
    assert err.details["field"] == "rules[1].when"
    assert fragment in str(err)


def test_a_type_error_is_found_when_inputs_are_declared():
    err = rejection(
        """\
        inputs: {region: string}
        rules:
          - id: a
            when: "region * 2 > 1"
            then: {d: 1}
        """
    )
    assert err.details["line"] == 4
    assert "needs numbers, got text" in str(err)


def test_a_condition_that_is_not_true_or_false_is_rejected():
    err = rejection("inputs: {x: number}\nrules:\n  - {id: a, when: 'x + 1', then: {d: 1}}\n")
    assert err.details["line"] == 3
    assert "must be true or false" in str(err)


def test_a_missing_when_is_rejected_with_the_line_of_its_rule():
    err = rejection(
        """\
        rules:
          - id: a
            when: "x > 1"
            then: {d: 1}
          - id: b
            then: {d: 2}
        """
    )
    assert str(err) == "policy.yaml line 5: rules[1].when: Field required"
    assert err.details["field"] == "rules[1].when"


def test_a_misspelt_key_is_rejected():
    err = rejection("rules:\n  - id: a\n    when: x > 1\n    then: {d: 1}\n    priorty: 3\n")
    assert err.details["line"] == 5
    assert "Extra inputs are not permitted" in str(err)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("rules: []\n", 1, "at least 1"),
        ("name: x\nhit_policy: collect\nrules:\n  - {id: a, when: x > 1, then: {d: 1}}\n", 2, "hit_policy"),
        ("kind: optimization\nrules:\n  - {id: a, when: x > 1, then: {d: 1}}\n", 1, "kind"),
        ("- just\n- a list\n", 1, "must be a YAML mapping"),
        ("rules:\n  - {id: a, when: x > 1, then: {rule: 1}}\n", 2, "reserved"),
        ("inputs: {x: money}\nrules:\n  - {id: a, when: x > 1, then: {d: 1}}\n", 1, "inputs.x.type"),
    ],
)
def test_other_invalid_definitions(text, line, fragment):
    err = rejection(text)
    assert err.details["line"] == line
    assert fragment in str(err)


# -- the signature -----------------------------------------------------------------------------


def test_without_declared_inputs_the_signature_types_the_referenced_columns_from_the_example():
    rules = RuleSet.from_yaml("rules:\n  - {id: a, when: 'age > 30 and city == \"Oslo\"', then: {d: 1}}\n")
    example = pd.DataFrame({"city": ["Oslo", None], "age": [40, 20], "unused": [1.0, 2.0]})
    signature = RulesKind().signature(rules, example)
    assert signature.inputs == [
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="city", type="string", nullable=True),
    ]


def test_a_referenced_column_missing_from_the_example_names_the_rule_and_line():
    rules = RuleSet.from_yaml(
        "rules:\n  - {id: a, when: 'age > 30', then: {d: 1}}\n  - id: b\n    when: 'salary > 5'\n    then: {d: 2}\n",
        source="hr.yaml",
    )
    with pytest.raises(InvalidDefinition) as info:
        rules.signature(pd.DataFrame({"age": [40]}))
    assert str(info.value) == "hr.yaml: rule 'b' (line 4): unknown column 'salary' (not in the input example)"
    assert info.value.details["line"] == 4
    assert info.value.details["column"] == "salary"


def test_without_inputs_or_an_example_the_signature_asks_for_one():
    rules = RuleSet.from_yaml("rules:\n  - {id: a, when: 'age > 30', then: {d: 1}}\n")
    with pytest.raises(InvalidArgument) as info:
        RulesKind().signature(rules, None)
    assert "inputs" in str(info.value) and "input_example" in str(info.value)
    assert info.value.details["field"] == "input_example"


def test_a_type_error_is_found_when_the_signature_comes_from_an_example():
    rules = RuleSet.from_yaml("rules:\n  - {id: a, when: 'city > 3', then: {d: 1}}\n")
    with pytest.raises(InvalidDefinition) as info:
        rules.signature(pd.DataFrame({"city": ["Oslo"]}))
    assert info.value.details["line"] == 2


# -- save, load, detect ------------------------------------------------------------------------


def test_save_stores_the_yaml_text_and_load_rebuilds_the_rule_set():
    kind = RulesKind()
    saved = kind.save(CREDIT_POLICY)
    assert saved.format == "yaml"
    assert saved.data == CREDIT_POLICY.read_bytes()
    metadata = json.loads(json.dumps(saved.metadata))
    assert metadata == {"source": "credit_policy.yaml", "name": "credit-policy", "rules": 4}
    loaded = kind.load(SavedModel(saved.data, saved.format, metadata))
    assert isinstance(loaded, RuleSet)
    assert loaded.evaluate(inputs_of(applicants()))["rule"].tolist() == applicants()["rule"].tolist()


def test_save_validates_and_rejects_a_bad_definition():
    with pytest.raises(InvalidDefinition) as info:
        RulesKind().save("rules:\n  - {id: a, when: 'x >>> 1', then: {d: 1}}\n")
    assert info.value.details["line"] == 2


def test_save_refuses_objects_that_are_not_rule_sets():
    for obj in (None, 42, object(), {"rules": []}):
        with pytest.raises(StewardError):
            RulesKind().save(obj)
    with pytest.raises(InvalidArgument):
        RulesKind().save("/no/such/policy.yaml")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00not an artifact\xff",
        b"rules: [",
        b"just text",
        b"rules:\n  - {id: a, when: 'import os', then: {}}\n",
    ],
)
def test_load_rejects_junk_with_a_steward_error(data):
    with pytest.raises(StewardError) as info:
        RulesKind().load(SavedModel(data, "yaml", {}))
    assert isinstance(info.value, (InvalidArtifact, InvalidDefinition))


def test_load_rejects_an_unknown_format():
    with pytest.raises(InvalidArtifact):
        RulesKind().load(SavedModel(SIMPLE.encode(), "pickle", {}))


def test_detect_accepts_rule_sets_paths_and_yaml_text(tmp_path):
    kind = RulesKind()
    assert kind.detect(RuleSet.from_yaml(SIMPLE))
    assert kind.detect(CREDIT_POLICY)
    assert kind.detect(str(CREDIT_POLICY))
    assert kind.detect(SIMPLE)
    other = tmp_path / "policy.YML"
    other.write_text(SIMPLE)
    assert kind.detect(other)


def test_detect_refuses_everything_else_without_raising(tmp_path):
    kind = RulesKind()
    directory = tmp_path / "looks.yaml"
    directory.mkdir()
    not_rules = tmp_path / "config.yaml"
    not_rules.write_text("name: x\nitems: [1, 2]\n")
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(b"\xff\xfe rules: [")
    for obj in (
        None,
        42,
        object(),
        b"rules: []",
        {"rules": []},
        "",
        "hello",
        "rules",
        "rules: [unclosed",
        "/no/such/file.yaml",
        directory,
        not_rules,
        broken,
        LIMIT_ALLOCATION,
        str(LIMIT_ALLOCATION),
        LIMIT_ALLOCATION.read_text(),
        "kind: optimization\nrules: []\n",
    ):
        assert kind.detect(obj) is False, obj
