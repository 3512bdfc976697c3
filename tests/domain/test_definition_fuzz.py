"""Every parser of user YAML either returns a definition or raises a StewardError with a message, whatever it is fed."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelsteward.domain.compliance import parse_suite
from modelsteward.domain.lifecycle import parse_lifecycle
from modelsteward.domain.monitoring import MonitorSpec
from modelsteward.domain.yaml_source import load_yaml
from modelsteward.errors import StewardError
from modelsteward.kinds.optimization import OptimizationProgram
from modelsteward.kinds.rules import RuleSet
from modelsteward.steward import parse_spec

FUZZ = settings(
    max_examples=40,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _demo(name: str) -> str:
    return resources.files("modelsteward.demo").joinpath("definitions", name).read_text(encoding="utf-8")


MONITOR = """\
target: {deployment: credit-risk}
window: 1d
reference: {window: 7d, offset: 7d}
checks:
  - drift: {}
min_rows: 50
schedule: 15m
"""

# name -> (parser of YAML text, a valid definition)
PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "rules": (lambda text: RuleSet.from_yaml(text, source="rules.yaml"), _demo("credit_policy.yaml")),
    "optimization": (
        lambda text: OptimizationProgram.from_yaml(text, source="program.yaml"),
        _demo("limit_allocation.yaml"),
    ),
    "lifecycle": (lambda text: parse_lifecycle(text, source="lifecycle.yaml"), _demo("credit_lifecycle.yaml")),
    "compliance": (lambda text: parse_suite(text, source="suite.yaml"), _demo("credit_risk_compliance.yaml")),
    "monitor": (lambda text: parse_spec(MonitorSpec, text, what="monitor"), MONITOR),
    "yaml": (lambda text: load_yaml(text, source="any.yaml"), MONITOR),
}
NAMES = sorted(PARSERS)
VALID = {name: yaml.safe_load(text) for name, (_, text) in PARSERS.items()}


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


KNOWN_KEYS = sorted({key for data in VALID.values() for key in _keys(data)})


def _parse_or_steward_error(name: str, text: str) -> None:
    """The property: a definition, or a StewardError with a message; nothing else may escape."""
    parse = PARSERS[name][0]
    try:
        parse(text)
    except StewardError as e:
        assert isinstance(e.message, str) and e.message.strip(), f"{type(e).__name__} with an empty message"
        assert str(e).strip()


# -- strategies ------------------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["1d", "15m", "0s", "99999999999999999999d", "${min_auc}", "x > 1", "number", "manual"])
)
_KEYS = st.sampled_from(KNOWN_KEYS) | st.text(min_size=1, max_size=10)
YAML_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=25,
)
# Characters that make YAML's scanner and parser work: indicators, anchors, tags, indentation.
_YAML_ALPHABET = st.sampled_from(list(":-[]{},&*!|>'\"#%@`? \n\t\rab01.=<$_") + ["\x00", "\x85", "\ufeff", "é"])
YAML_ISH_TEXT = st.text(_YAML_ALPHABET, max_size=80)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _paths(item, (*prefix, i))


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


_STRANGE_VALUES = st.sampled_from(
    [
        None,
        True,
        [],
        {},
        0,
        -1,
        -(10**20),
        10**400,
        1e308,
        -math.inf,
        math.inf,
        math.nan,
        "",
        "x" * 20_000,
        "a\x00b\x07\x1b[31m\u202e",
        "${}",
        "1e999",
        "99999999999999999999d",
        [[[[[]]]]],
        {"a": {"b": {"c": None}}},
    ]
)


@st.composite
def mutated(draw: st.DrawFn, name: str) -> str:
    """A valid definition with one thing wrong: a key dropped or renamed, a value of the wrong type or size."""
    data = _copy(VALID[name])
    path = draw(st.sampled_from([p for p in _paths(data) if p]))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    value = parent[last]
    operations = ["replace", "random"]
    if isinstance(parent, dict):
        operations += ["drop", "rename"]
    if isinstance(value, str):
        operations += ["long", "control"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        operations += ["huge", "negative", "nan"]
    operation = draw(st.sampled_from(operations))
    if operation == "drop":
        del parent[last]
    elif operation == "rename":
        parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(last)
    elif operation == "replace":
        parent[last] = draw(_STRANGE_VALUES)
    elif operation == "random":
        parent[last] = draw(YAML_VALUES)
    elif operation == "long":
        parent[last] = value * 5000 if value else "y" * 20_000
    elif operation == "control":
        parent[last] = value + draw(st.text(st.characters(codec="utf-8", categories=["Cc", "Cf"]), min_size=1))
    elif operation == "huge":
        parent[last] = draw(st.sampled_from([10**40, 1e300, math.inf]))
    elif operation == "negative":
        parent[last] = -abs(value) - 1
    else:
        parent[last] = math.nan
    return _dump(data)


# -- properties ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_valid_definitions_the_fuzzing_starts_from_parse(name: str) -> None:
    parse, text = PARSERS[name]
    assert parse(text) is not None


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(text=st.text(max_size=200) | YAML_ISH_TEXT)
@example(text="\x1f")  # leaked yaml.reader.ReaderError: the loader was built outside the try
def test_random_text_gives_a_definition_or_a_steward_error(name: str, text: str) -> None:
    _parse_or_steward_error(name, text)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=YAML_VALUES)
@example(data={"models": [[]]})  # TypeError: unhashable type 'list' in LifecycleDefinition._bare_models
def test_random_yaml_documents_give_a_definition_or_a_steward_error(name: str, data: Any) -> None:
    _parse_or_steward_error(name, _dump(data))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_the_right_keys_with_random_values_give_a_definition_or_a_steward_error(name: str, data: st.DataObject) -> None:
    valid = VALID[name]
    keys = data.draw(st.lists(st.sampled_from(sorted(valid)), unique=True, min_size=1))
    document = {key: data.draw(YAML_VALUES | st.just(valid[key])) for key in keys}
    _parse_or_steward_error(name, _dump(document))


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.data())
def test_mutated_valid_definitions_give_a_definition_or_a_steward_error(name: str, data: st.DataObject) -> None:
    _parse_or_steward_error(name, data.draw(mutated(name)))


# -- YAML bombs ------------------------------------------------------------------------------------------

# Billion laughs: 9 levels of 9 aliases expand to 9**9 (387 million) leaves if anything walks the tree
# as a tree instead of a graph.
_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{','.join(['*' + chr(ord('a') + i - 1)] * 9)}]"
        for i in range(1, 9)
    ]
)


def _bombs(name: str) -> list[str]:
    """The bomb as a whole document, and in place of each value of the valid definition (as list and mapping)."""
    texts = [_LAUGHS + "\n"]
    for path in _paths(VALID[name]):
        if not path:
            continue
        for bomb in ("*i", "{bomb: *i, again: *i}"):
            data = _copy(VALID[name])
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = "BOMB_GOES_HERE"
            texts.append(f"{_LAUGHS}\n" + _dump(data).replace("BOMB_GOES_HERE", bomb))
    return texts


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def _timeout(signum: int, frame: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s: an alias bomb is being expanded")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", NAMES)
def test_a_billion_laughs_alias_bomb_is_refused_or_parsed_without_expanding(name: str) -> None:
    for text in _bombs(name):
        with _time_limit(2):
            _parse_or_steward_error(name, text)
