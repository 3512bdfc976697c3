"""The definition of an inference pipeline: its schema and the YAML loader.

A pipeline is a list of steps run in order over one growing frame (the request's columns plus the
outputs of earlier steps); each step is exactly one of ``lookup``, ``assign`` or ``model``::

    kind: pipeline                       # optional
    name: credit-decision
    inputs: {applicant_id: integer}      # optional: type request columns, or pass them through to result
    steps:
      - name: history                    # letters, digits, '_': it prefixes clashing output names
        lookup:                          # enrich rows from a SQL table by key
          url: "sqlite:///${DATA_DIR}/demo/bureau.db"   # ${NAME}: the bind context, then the environment
          table: applicant_history
          key: applicant_id              # the request column; table_key: when the table names it otherwise
          columns: [credit_history_months, num_open_accounts]
          on_missing: error              # or null: absent keys give nulls
      - name: features
        assign: {loan_to_income: "loan_amount / income"}   # the safe expression language, in order
      - name: score
        model: credit-risk@production    # reads the columns its signature names
        outputs: {proba_1: risk_score}   # keep and rename; without it every output (step_output on a clash)
      - name: limits
        model: limit-allocation@production
        where: "decision == 'approve'"   # only these rows go to the step; the others get nulls
    result: [risk_score, limit]          # default: the last step's outputs

Reading a definition checks what can be known without the models (see
:mod:`modelsteward.serving.pipeline_plan`); binding it checks the rest against their signatures.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modelsteward.domain.yaml_source import (
    Locate,
    Path,
    definition_error,
    format_path,
    load_yaml,
    located,
    nearest_line,
)
from modelsteward.errors import InvalidDefinition, StewardError
from modelsteward.kinds.definitions import Columns, Strict, read_source

StepKind = Literal["lookup", "assign", "model"]
STEP_KINDS: tuple[StepKind, ...] = ("lookup", "assign", "model")
_STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _nowhere(path: Path) -> int | None:
    return None


def _outputs_shorthand(value: Any) -> Any:
    # ``outputs: [decision, reason]`` keeps those outputs under their own names.
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: v for v in value}
    return value


def _null_word(value: Any) -> Any:
    # YAML reads an unquoted ``on_missing: null`` as None: it means the word.
    return "null" if value is None else value


Outputs = Annotated[dict[str, str], BeforeValidator(_outputs_shorthand)]


class LookupSpec(Strict):
    """Enrich rows from a SQL table by key: ``SELECT key, columns FROM table WHERE key IN (...)``."""

    url: str = Field(
        min_length=1, description="SQLAlchemy URL; ${NAME} expands from the bind context, then the environment"
    )
    table: str = Field(min_length=1)
    key: str = Field(min_length=1, description="the request column holding the key")
    table_key: str | None = Field(
        default=None, min_length=1, description="the table's key column, when named differently"
    )
    columns: list[str] = Field(min_length=1)
    on_missing: Annotated[Literal["error", "null"], BeforeValidator(_null_word)] = "error"
    batch_size: int = Field(default=500, ge=1, le=10_000, description="keys per SELECT")

    @property
    def source_key(self) -> str:
        return self.table_key or self.key


class StepSpec(Strict):
    """One step: exactly one of ``lookup``, ``assign`` or ``model``, optionally with ``where`` and ``outputs``."""

    name: str
    description: str = ""
    lookup: LookupSpec | None = None
    assign: dict[str, str] | None = None
    model: str | None = None
    where: str | None = None
    outputs: Outputs | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STEP_NAME.fullmatch(value):
            raise ValueError(
                f"invalid step name {value!r}: use a letter or '_' then letters, digits or '_' "
                "(at most 64; it prefixes output names)"
            )
        return value

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {' and '.join(given)})" if given else ""
            raise ValueError(f"step '{self.name}' needs exactly one of lookup, assign or model{found}")
        if self.assign is not None and not self.assign:
            raise ValueError(f"step '{self.name}': assign needs at least one column")
        return self

    @property
    def kind(self) -> StepKind:
        return "lookup" if self.lookup is not None else "assign" if self.assign is not None else "model"


class PipelineSpec(Strict):
    """A validated pipeline definition; build it with :meth:`from_yaml`, :meth:`from_file` or :meth:`from_dict`.

    ``model_dump()`` is plain JSON-able data, and ``PipelineSpec.from_dict(spec.model_dump())``
    gives the same spec back. Every problem raises :class:`InvalidDefinition` naming the line
    (for YAML) and the field::

        spec = PipelineSpec.from_yaml(text, source="credit_decision.yaml")
        spec = PipelineSpec.from_dict({"name": "p", "steps": [{"name": "s", "model": "credit-risk@production"}]})
    """

    kind: Literal["pipeline"] = "pipeline"
    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    inputs: Columns | None = None
    steps: list[StepSpec] = Field(min_length=1)
    result: list[str] | None = None

    _source: str = PrivateAttr(default="<pipeline>")
    _locate: Locate | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> PipelineSpec:
        context = info.context or {}
        self._source = str(context.get("source") or "<pipeline>")
        self._locate = context.get("locate")
        from modelsteward.serving.pipeline_plan import plan_pipeline  # the plan module builds on this one

        plan_pipeline(self)  # what can be checked without the models
        return self

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> PipelineSpec:  # type: ignore[override]
        """Validate a dict (or a spec); problems raise :class:`InvalidDefinition`, never a bare ValidationError."""
        context = kwargs.get("context") or {}
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as e:
            locate = context.get("locate") or _nowhere
            raise definition_error(e, locate, str(context.get("source") or "<pipeline>")) from e

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | PipelineSpec, *, source: str = "<pipeline>") -> PipelineSpec:
        """The SDK's way in: a dict shaped like the YAML (also what ``model_dump()`` stored)."""
        if isinstance(data, PipelineSpec):
            return data
        if not isinstance(data, Mapping):
            raise InvalidDefinition(
                f"{source}: a pipeline must be a mapping of keys, not {type(data).__name__}",
                details={"source": source, "line": None},
            )
        return cls.model_validate(dict(data), context={"source": source})

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<pipeline>") -> PipelineSpec:
        """Parse and check YAML text; errors name ``source`` and the line."""
        data, locate = load_yaml(text, source=source)
        if not isinstance(data, dict):
            raise located("a pipeline must be a YAML mapping of keys", source=source, line=1 if data else None)
        return cls.model_validate(data, context={"source": source, "locate": locate})

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> PipelineSpec:
        text, source = read_source(pathlib.Path(path), default_source=str(path))
        return cls.from_yaml(text, source=source)

    @property
    def source(self) -> str:
        return self._source

    def line(self, path: Path) -> int | None:
        """The line of ``path`` (or of its nearest ancestor) in the YAML this spec came from; None for dicts."""
        return nearest_line(self._locate, path) if self._locate is not None else None

    def error(
        self, message: str, path: Path, *, cls: type[StewardError] = InvalidDefinition, **details: Any
    ) -> StewardError:
        """An error reading ``"<source> line <n>: <message>"`` with the line and field in its details."""
        err = located(message, source=self._source, line=self.line(path), field=format_path(path), **details)
        return err if cls is InvalidDefinition else cls(err.message, details=err.details)
