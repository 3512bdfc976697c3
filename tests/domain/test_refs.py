"""References and names: parsing, validation and rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelsteward.domain.refs import ModelRef, check_alias, check_name
from modelsteward.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("credit-risk", ModelRef("credit-risk")),
        ("credit-risk/3", ModelRef("credit-risk", version=3)),
        ("credit-risk@production", ModelRef("credit-risk", alias="production")),
        ("credit-risk@latest", ModelRef("credit-risk")),
        ("a.b_c-1/12", ModelRef("a.b_c-1", version=12)),
    ],
)
def test_parse(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text) == expected


@pytest.mark.parametrize("text", ["", "credit risk", "-x", "x/0", "x/", "x@", "x@1a", "x/1@a", "x@a/1", "é"])
def test_invalid_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ModelRef.parse(text)


def test_names_and_aliases_are_checked() -> None:
    assert check_name("credit-risk") == "credit-risk"
    with pytest.raises(InvalidArgument, match="invalid name"):
        check_name("a" * 129)
    with pytest.raises(InvalidArgument, match="reserved"):
        check_alias("latest")
    with pytest.raises(InvalidArgument):
        check_alias("9lives")


@given(
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    version=st.integers(min_value=1, max_value=10**8),
)
def test_rendering_round_trips(name: str, version: int) -> None:
    ref = ModelRef(name, version=version)
    assert ModelRef.parse(str(ref)) == ref
