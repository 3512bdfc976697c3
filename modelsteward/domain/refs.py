"""Names and references: ``name``, ``name/VERSION`` and ``name@ALIAS``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelsteward.errors import InvalidArgument

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ALIAS_PATTERN = r"[A-Za-z][A-Za-z0-9_-]{0,62}"
_NAME = re.compile(NAME_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)
_REF = re.compile(rf"(?P<name>{NAME_PATTERN})(?:/(?P<version>[0-9]{{1,9}})|@(?P<alias>{ALIAS_PATTERN}))?")
#: the highest version number a reference can name (nine digits)
MAX_VERSION = 999_999_999

#: ``name@latest`` always means the highest version; it cannot be assigned.
LATEST = "latest"


def check_name(name: object, *, field: str = "name") -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidArgument` naming the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid {field} {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            details={"field": field, "value": str(name)},
        )
    return name


def check_alias(alias: object, *, assignable: bool = True) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: use 1-63 letters, digits, '_' or '-', starting with a letter",
            details={"field": "alias", "value": str(alias)},
        )
    if assignable and alias == LATEST:
        raise InvalidArgument(
            "the alias 'latest' is reserved: it always means the highest version",
            details={"field": "alias", "value": alias},
        )
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed reference to a model version: exactly one of ``version`` and ``alias`` may be set.

    >>> ModelRef.parse("credit-risk@production")
    ModelRef(name='credit-risk', version=None, alias='production')
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, ref: str | ModelRef) -> ModelRef:
        if isinstance(ref, ModelRef):
            return ref
        if not isinstance(ref, str):
            raise InvalidArgument(
                f"a model reference must be a string like 'name', 'name/3' or 'name@production', "
                f"got {type(ref).__name__}",
                details={"field": "ref"},
            )
        match = _REF.fullmatch(ref.strip())
        if not match:
            raise InvalidArgument(
                f"invalid model reference {ref!r}: expected 'name', 'name/VERSION' or 'name@ALIAS'",
                details={"field": "ref", "value": ref},
            )
        version = match.group("version")
        if version is not None and int(version) < 1:
            raise InvalidArgument("versions start at 1", details={"field": "ref", "value": ref})
        alias = match.group("alias")
        if alias == LATEST:
            alias = None
        return cls(match.group("name"), int(version) if version else None, alias)

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias is None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def named_model(ref: str) -> str:
    """The model part of a reference without checking it (``a@b`` -> ``a``, ``a/3`` -> ``a``): for references
    that were checked when they were stored, such as a deployment's."""
    return ref.partition("@")[0].partition("/")[0]


def model_of(ref: str | ModelRef) -> str:
    """The model a reference names: ``credit-risk`` for ``credit-risk@production``."""
    return ModelRef.parse(ref).name
