"""YAML definitions that remember where each value came from, so errors can name the line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from modelsteward.errors import InvalidDefinition

Path = tuple[str | int, ...]
Locate = Callable[[Path], int | None]

_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")


def load_yaml(text: str, *, source: str) -> tuple[Any, Locate]:
    """Parse ``text`` with the safe loader and return the data plus ``locate(path)``.

    ``locate(("rules", 1, "when"))`` is the 1-based line of that node (for a mapping entry, the
    line of its key), or ``None`` when the path does not exist. Syntax errors, duplicate keys and
    unsafe tags raise :class:`InvalidDefinition` with ``details["line"]``::

        data, locate = load_yaml(text, source="credit_policy.yaml")
        locate(("rules", 0, "when"))   # -> 9
    """
    if not isinstance(text, str):
        raise InvalidDefinition(
            f"{source}: a definition must be text, not {type(text).__name__}", details={"source": source}
        )
    try:
        # the reader checks every character when it is built: a control character fails here
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise InvalidDefinition(
            f"{source} line {line}: invalid YAML: character #x{e.character:04x} is not allowed",
            details={"line": line, "source": source},
        ) from e
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_duplicate_keys(root, source)
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or e.context or "invalid YAML"
        if e.problem and e.context and e.context_mark is not None and e.context_mark is not mark:
            problem += f" ({e.context} on line {e.context_mark.line + 1})"
        where = f"{source} line {line}" if line else source
        details: dict[str, Any] = {"line": line, "source": source}
        if mark is not None:
            details["column"] = mark.column + 1
        raise InvalidDefinition(f"{where}: invalid YAML: {problem}", details=details) from e
    except yaml.YAMLError as e:
        raise InvalidDefinition(f"{source}: invalid YAML: {e}", details={"line": None, "source": source}) from e
    finally:
        loader.dispose()

    def locate(path: Path) -> int | None:
        return _locate(root, path)

    return data, locate


def _locate(root: yaml.Node | None, path: Path) -> int | None:
    node = root
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:  # the last duplicate wins, as in the loaded data
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = (key, value)
            if found is None:
                return None
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode):
            if not isinstance(part, int) or not 0 <= part < len(node.value):
                return None
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return None
    return line


def _check_duplicate_keys(root: yaml.Node, source: str) -> None:
    # PyYAML silently keeps the last of two equal keys; in a definition that hides a mistake.
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:  # anchors and aliases share nodes: visit each once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys and key.value != "<<":
                        line = key.start_mark.line + 1
                        raise InvalidDefinition(
                            f"{source} line {line}: duplicate key {key.value!r}",
                            details={"line": line, "source": source, "field": key.value},
                        )
                    keys.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def format_path(path: Path) -> str:
    """``("rules", 1, "when")`` -> ``"rules[1].when"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def nearest_line(locate: Locate, path: Path) -> int | None:
    """The line of ``path``, or of its closest ancestor that exists (a missing field's parent)."""
    for end in range(len(path), -1, -1):
        line = locate(path[:end])
        if line is not None:
            return line
    return None


def located(
    message: str, *, source: str, line: int | None, field: str | None = None, **details: Any
) -> InvalidDefinition:
    """An :class:`InvalidDefinition` reading ``"<source> line <n>: <message>"``."""
    where = f"{source} line {line}" if line is not None else source
    info: dict[str, Any] = {"line": line, "source": source, **details}
    if field is not None:
        info["field"] = field
    return InvalidDefinition(f"{where}: {message}", details=info)


def definition_error(exc: ValidationError, locate: Locate, source: str) -> InvalidDefinition:
    """Turn a Pydantic error on loaded YAML into one :class:`InvalidDefinition` naming the line.

    The message reads ``credit_policy.yaml line 14: rules[1].when: Field required``; ``details``
    carry the first problem's ``line`` and ``field`` and every problem under ``errors``.
    """
    problems = []
    for err in exc.errors(include_url=False):
        path = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
        message = str(err["msg"])
        for prefix in _VALUE_ERROR_PREFIXES:
            if message.startswith(prefix):
                message = message[len(prefix) :]
        problems.append({"field": format_path(path), "line": nearest_line(locate, path), "message": message})
    if not problems:  # pragma: no cover - pydantic always reports at least one error
        return InvalidDefinition(f"{source}: invalid definition", details={"source": source, "line": None})
    first = problems[0]
    text = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return located(text, source=source, line=first["line"], field=first["field"], errors=problems)
