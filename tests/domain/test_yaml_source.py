"""YAML definitions keep their line numbers, and every error names the source and the line."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from modelsteward.domain.yaml_source import definition_error, format_path, load_yaml, located, nearest_line
from modelsteward.errors import InvalidDefinition, StewardError

POLICY = """\
# a comment on line 1
name: credit-policy
inputs:
  debt_to_income: number
  risk_score: {type: number, nullable: true}
rules:
  - id: decline-dti
    when: "debt_to_income > 0.6"
    then: {decision: decline}
  - id: refer
    priority: 5
    then:
      decision: refer
"""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    priority: int = 0
    when: str
    then: dict[str, Any]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inputs: dict[str, Any] = {}
    rules: list[_Rule]


def test_load_yaml_returns_the_data():
    data, _ = load_yaml(POLICY, source="p.yaml")
    assert data["name"] == "credit-policy"
    assert data["rules"][1]["then"] == {"decision": "refer"}
    assert data["inputs"]["risk_score"] == {"type": "number", "nullable": True}


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ((), 2),  # the root mapping starts at its first key
        (("name",), 2),
        (("inputs",), 3),
        (("inputs", "risk_score"), 5),
        (("inputs", "risk_score", "nullable"), 5),
        (("rules",), 6),
        (("rules", 0), 7),
        (("rules", 0, "when"), 8),
        (("rules", 0, "then", "decision"), 9),
        (("rules", 1), 10),
        (("rules", 1, "priority"), 11),
        (("rules", 1, "then"), 12),
        (("rules", 1, "then", "decision"), 13),
    ],
)
def test_locate_gives_the_line_of_each_node(path, line):
    _, locate = load_yaml(POLICY, source="p.yaml")
    assert locate(path) == line


@pytest.mark.parametrize(
    "path",
    [("missing",), ("rules", 2), ("rules", 1, "when"), ("rules", "0"), ("name", "x"), ("rules", -1)],
)
def test_locate_gives_none_for_a_path_that_does_not_exist(path):
    _, locate = load_yaml(POLICY, source="p.yaml")
    assert locate(path) is None


def test_nearest_line_falls_back_to_the_closest_existing_parent():
    _, locate = load_yaml(POLICY, source="p.yaml")
    assert nearest_line(locate, ("rules", 1, "when")) == 10
    assert nearest_line(locate, ("nothing", "here")) == 2


def test_a_syntax_error_names_the_source_and_the_line():
    text = "name: x\nrules:\n  - id: a\n    when: [unclosed\n  - id: b\n"
    with pytest.raises(InvalidDefinition) as info:
        load_yaml(text, source="policy.yaml")
    err = info.value
    assert err.code == "invalid_definition"
    assert err.details["source"] == "policy.yaml"
    assert err.details["line"] == 5
    assert str(err).startswith("policy.yaml line 5: invalid YAML")


def test_an_unterminated_quote_mentions_where_the_scalar_started():
    text = 'rules:\n  - id: a\n    when: "x > 1\n    then: {d: 1}\n'
    with pytest.raises(InvalidDefinition) as info:
        load_yaml(text, source="p.yaml")
    assert str(info.value) == (
        "p.yaml line 5: invalid YAML: found unexpected end of stream (while scanning a quoted scalar on line 3)"
    )
    assert info.value.details["line"] == 5


def test_tabs_for_indentation_are_a_located_error():
    with pytest.raises(InvalidDefinition) as info:
        load_yaml("a: 1\nb:\n\t- c\n", source="t.yaml")
    assert info.value.details["line"] == 3


def test_duplicate_keys_are_refused_with_the_line_of_the_second():
    text = "name: a\nrules: []\nname: b\n"
    with pytest.raises(InvalidDefinition) as info:
        load_yaml(text, source="d.yaml")
    assert info.value.details["line"] == 3
    assert info.value.details["field"] == "name"
    assert "duplicate key 'name'" in str(info.value)


def test_duplicate_keys_in_a_nested_flow_mapping_are_refused():
    with pytest.raises(InvalidDefinition) as info:
        load_yaml("a:\n  - {x: 1, x: 2}\n", source="d.yaml")
    assert info.value.details["line"] == 2


def test_python_tags_are_refused_not_executed():
    text = "a: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(InvalidDefinition) as info:
        load_yaml(text, source="evil.yaml")
    assert info.value.details["line"] == 1


def test_several_documents_are_refused():
    with pytest.raises(InvalidDefinition):
        load_yaml("a: 1\n---\nb: 2\n", source="two.yaml")


def test_empty_text_gives_none_and_a_locate_that_finds_nothing():
    data, locate = load_yaml("", source="e.yaml")
    assert data is None
    assert locate(()) is None
    assert locate(("a",)) is None


def test_non_text_is_refused():
    with pytest.raises(InvalidDefinition):
        load_yaml(b"a: 1", source="b.yaml")  # type: ignore[arg-type]


def test_anchors_and_aliases_load_and_locate():
    text = "base: &b {type: number}\ninputs:\n  x: *b\n  y: *b\n"
    data, locate = load_yaml(text, source="a.yaml")
    assert data["inputs"] == {"x": {"type": "number"}, "y": {"type": "number"}}
    assert locate(("inputs", "y")) == 4
    assert locate(("inputs", "y", "type")) == 1  # an alias points at its anchor's node


def test_an_alias_bomb_loads_without_blowing_up():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    data, locate = load_yaml("\n".join(lines) + "\n", source="bomb.yaml")
    assert len(data["a9"]) == 9
    assert data["a9"][0] is data["a9"][1]  # shared, not copied 9**10 times
    assert locate(("a9",)) == 10


def test_format_path():
    assert format_path(("rules", 1, "when")) == "rules[1].when"
    assert format_path(("inputs", "x")) == "inputs.x"
    assert format_path(()) == ""
    assert format_path((0, "a")) == "[0].a"


def test_located_builds_the_message_and_details():
    err = located("something is wrong", source="s.yaml", line=7, field="rules[0].id", rule="r")
    assert isinstance(err, StewardError)
    assert str(err) == "s.yaml line 7: something is wrong"
    assert err.details == {"line": 7, "source": "s.yaml", "field": "rules[0].id", "rule": "r"}
    assert str(located("no line", source="s.yaml", line=None)) == "s.yaml: no line"


def _validation_error(text: str) -> tuple[ValidationError, Any]:
    data, locate = load_yaml(text, source="credit_policy.yaml")
    with pytest.raises(ValidationError) as info:
        _Policy.model_validate(data)
    return info.value, locate


def test_definition_error_names_the_line_of_a_missing_field():
    lines = POLICY.splitlines()
    # push the second rule down so that it starts on line 14, as in the docs
    text = "\n".join(lines[:9] + ["    # padding"] * 4 + lines[9:]) + "\n"
    exc, locate = _validation_error(text)
    err = definition_error(exc, locate, "credit_policy.yaml")
    assert isinstance(err, InvalidDefinition)
    assert str(err) == "credit_policy.yaml line 14: rules[1].when: Field required"
    assert err.details["line"] == 14
    assert err.details["field"] == "rules[1].when"
    assert err.details["source"] == "credit_policy.yaml"
    assert err.details["errors"] == [{"field": "rules[1].when", "line": 14, "message": "Field required"}]


def test_definition_error_points_at_an_unknown_key():
    text = POLICY.replace("    priority: 5\n", "    priority: 5\n    whn: x > 1\n    when: x > 1\n")
    exc, locate = _validation_error(text)
    err = definition_error(exc, locate, "p.yaml")
    assert err.details["field"] == "rules[1].whn"
    assert err.details["line"] == 12
    assert "Extra inputs are not permitted" in str(err)


def test_definition_error_points_at_a_bad_value_and_counts_the_others():
    text = POLICY.replace("priority: 5", "priority: high").replace("name: credit-policy", "name: [a]")
    exc, locate = _validation_error(text)
    err = definition_error(exc, locate, "p.yaml")
    assert err.details["field"] == "name"
    assert err.details["line"] == 2
    fields = {e["field"]: e["line"] for e in err.details["errors"]}
    assert fields["rules[1].priority"] == 11
    assert fields["rules[1].when"] == 10
    assert "(and 2 more problems)" in str(err)


def test_definition_error_strips_the_value_error_prefix():
    class _Positive(BaseModel):
        n: int

        @field_validator("n")
        @classmethod
        def _positive(cls, v: int) -> int:
            if v <= 0:
                raise ValueError("n must be positive")
            return v

    data, locate = load_yaml("\n\nn: -1\n", source="v.yaml")
    with pytest.raises(ValidationError) as info:
        _Positive.model_validate(data)
    err = definition_error(info.value, locate, "v.yaml")
    assert str(err) == "v.yaml line 3: n: n must be positive"
