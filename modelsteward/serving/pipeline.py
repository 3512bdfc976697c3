"""Inference pipelines: a small graph of steps served as one endpoint, each step's work recorded for the log.

Define a pipeline in YAML (or as a dict with the same shape), bind it to loaded models, run it::

    spec = PipelineSpec.from_file("credit_decision.yaml")
    pipeline = bind(spec, steward.load_model, context={"DATA_DIR": "/srv/steward-data"})
    result = pipeline.run(applications)      # result.outputs: one row per request row, same index
    for step in result.steps:                # what each step read and produced, for the prediction log
        print(step.name, step.version, step.latency_ms)
    pipeline.close()

Steps run in order, each vectorized over all its rows. ``where`` sends only some rows to a step;
the others get nulls in its outputs. See :mod:`modelsteward.serving.pipeline_spec` for the format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from modelsteward.domain.records import ColumnSpec, Signature
from modelsteward.errors import SchemaMismatch, StewardError
from modelsteward.kinds.expressions import column_array
from modelsteward.kinds.loaded import LoadedModel
from modelsteward.serving.pipeline_lookup import EnginePool, LookupTable, expand_url
from modelsteward.serving.pipeline_plan import Plan, StepPlan, plan_pipeline
from modelsteward.serving.pipeline_spec import LookupSpec, PipelineSpec, StepKind, StepSpec
from modelsteward.stats.schema import to_frame

__all__ = [
    "LookupSpec",
    "Pipeline",
    "PipelineResult",
    "PipelineSpec",
    "StepRun",
    "StepSpec",
    "bind",
    "pipeline_context",
]

Resolve = Callable[[str], LoadedModel]


def pipeline_context(data_dir: str | PurePath) -> dict[str, str]:
    """The context a steward passes to :func:`bind`: ``${DATA_DIR}`` is its data directory, made absolute."""
    return {"DATA_DIR": str(Path(data_dir).resolve())}


@dataclass(frozen=True)
class StepRun:
    """What one step did in one run.

    ``rows`` are the index labels of the request rows it processed (all of them unless ``where``
    filtered); ``inputs`` and ``outputs`` hold what it read and produced for those rows, outputs
    under their names in the frame. ``ref`` and ``version`` (``name/version``) are set for model steps.
    """

    name: str
    kind: StepKind
    ref: str | None
    version: str | None
    rows: pd.Index
    inputs: pd.DataFrame
    outputs: pd.DataFrame
    latency_ms: float


@dataclass(frozen=True)
class PipelineResult:
    """``outputs``: the result columns, one row per request row with the request's index;
    ``frame``: every column (the request's and each step's outputs); ``steps``: one :class:`StepRun` each."""

    outputs: pd.DataFrame
    frame: pd.DataFrame
    steps: list[StepRun]

    @property
    def versions(self) -> list[str]:
        """The ``name/version`` of each model step that answered, in step order."""
        return [s.version for s in self.steps if s.version is not None]


def _values(series: pd.Series) -> Any:
    values = series.array
    return values.to_numpy() if isinstance(values, pd.arrays.NumpyExtensionArray) else values


def _take(values: Any, positions: np.ndarray, *, fill: bool = False) -> Any:
    """Rows by position; with ``fill``, position -1 gives a null (ints become floats, as pandas does)."""
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values.take(positions, allow_fill=fill)
    return pd.api.extensions.take(values, positions, allow_fill=fill)


def _env(cols: dict[str, Any], names: tuple[str, ...], positions: np.ndarray | None) -> dict[str, Any]:
    """Columns as the expression language reads them (what ``frame_env`` does, without building a frame)."""
    env: dict[str, Any] = {}
    for name in names:
        values = cols[name] if positions is None else _take(cols[name], positions)
        if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
            env[name] = values.astype(float) if values.dtype.kind in "iu" else values
        else:
            env[name] = column_array(pd.Series(values, copy=False))
    return env


def _rebuilt(e: StewardError, message: str, **details: Any) -> StewardError:
    try:
        new = type(e)(message, details={**e.details, **details})
    except TypeError:  # a subclass with its own constructor: keep it, change its message
        new = e
        new.message = message
        new.details = {**e.details, **details}
        new.args = (message,)
    return new


def _in_step(e: StewardError, step: str) -> StewardError:
    """The same error class, its message prefixed with the step's name."""
    return _rebuilt(e, f"step '{step}': {e.message}", step=step)


def _at_step(e: StewardError, spec: PipelineSpec, index: int, *path: str | int) -> StewardError:
    """A bind-time error of a step, naming the pipeline's source, the step's line and the step."""
    step = spec.steps[index].name
    line = spec.line(("steps", index, *path))
    where = f"{spec.source} line {line}" if line is not None else spec.source
    return _rebuilt(e, f"{where}: step '{step}': {e.message}", step=step, line=line, source=spec.source)


def _coerce(spec: PipelineSpec | Mapping[str, Any] | str | PurePath) -> PipelineSpec:
    if isinstance(spec, PipelineSpec):
        return spec
    if isinstance(spec, PurePath):
        return PipelineSpec.from_file(spec)
    if isinstance(spec, str):
        return PipelineSpec.from_yaml(spec)
    return PipelineSpec.from_dict(spec)


def bind(
    spec: PipelineSpec | Mapping[str, Any] | str | PurePath,
    resolve: Resolve,
    *,
    context: Mapping[str, str] | None = None,
    check_lookups: bool = True,
) -> Pipeline:
    """Bind a pipeline to loaded models and lookup databases, and check that it can run.

    ``spec`` is a :class:`PipelineSpec`, a dict of the same shape, YAML text or a path to a YAML file.

    ``resolve(ref)`` loads each distinct model reference once (the gateway passes its cached
    resolver, which follows alias moves). ``context`` expands ``${NAME}`` in lookup URLs before
    the environment does; a steward passes :func:`pipeline_context` (``{"DATA_DIR": ...}``).
    With ``check_lookups`` every lookup table is reflected now: a missing table or column raises
    :class:`InvalidDefinition`, an unreachable database :class:`StoreUnavailable`; without it
    nothing connects until the first run (the table's column types then stay unknown to
    :attr:`Pipeline.signature`).

    Every step must get its inputs from the request or from earlier steps: the request's columns
    (:attr:`Pipeline.input_columns`) are what steps read that no earlier step produced.
    """
    spec = _coerce(spec)
    models: dict[str, LoadedModel] = {}
    resolved: dict[str, LoadedModel] = {}
    for i, step in enumerate(spec.steps):
        if step.model is None:
            continue
        if step.model not in resolved:
            try:
                resolved[step.model] = resolve(step.model)
            except StewardError as e:
                raise _at_step(e, spec, i, "model") from e
        models[step.name] = resolved[step.model]
    engines = EnginePool()
    try:
        lookups: dict[str, LookupTable] = {}
        for i, step in enumerate(spec.steps):
            if step.lookup is None:
                continue
            try:
                url = expand_url(step.lookup.url, context)
                lookups[step.name] = LookupTable(step.lookup, url, engines.get(url))
                if check_lookups:
                    lookups[step.name].reflect()
            except StewardError as e:
                raise _at_step(e, spec, i, "lookup") from e
        plan = plan_pipeline(
            spec,
            signatures={name: model.signature for name, model in models.items()},
            lookup_types={name: table.types for name, table in lookups.items() if table.types is not None},
        )
    except BaseException:
        engines.dispose()
        raise
    return Pipeline(spec, plan, models, lookups, engines)


class Pipeline:
    """A bound pipeline: models loaded, lookup engines open. Safe to run from several threads."""

    def __init__(
        self,
        spec: PipelineSpec,
        plan: Plan,
        models: dict[str, LoadedModel],
        lookups: dict[str, LookupTable],
        engines: EnginePool,
    ) -> None:
        assert plan.result is not None and all(s.outputs is not None for s in plan.steps)
        self.spec = spec
        self.plan = plan
        self.models = models
        self.lookups = lookups
        self._engines = engines
        self.result_columns: list[str] = list(plan.result)
        self.signature: Signature = plan.signature()
        self._readers: dict[str, str] = {}  # request column -> the first step that reads it
        for step in plan.steps:
            for column in (*(step.where.names if step.where else ()), *step.inputs):
                self._readers.setdefault(column, step.name)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_columns(self) -> list[str]:
        """The columns a request must carry: what the steps read that no earlier step produces."""
        return list(self.plan.request)

    @property
    def versions(self) -> dict[str, str]:
        """Step name -> the ``name/version`` its model reference resolved to."""
        return {name: model.ref for name, model in self.models.items()}

    def __repr__(self) -> str:
        steps = ", ".join(f"{s.name}:{s.kind}" for s in self.plan.steps)
        return f"<Pipeline {self.spec.name} [{steps}]>"

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Dispose the lookup engines (their pooled connections)."""
        self._engines.dispose()

    def run(self, data: Any) -> PipelineResult:
        """Run every step over the request (a DataFrame, records or a dict of columns).

        Columns the request carries beyond :attr:`input_columns` stay in ``result.frame``, unless a
        step produces a column of the same name, which then replaces it.

        Raises :class:`SchemaMismatch` naming the step and the column when the request lacks a
        column; any error of a step carries the step's name in its message (StewardErrors keep their
        class: a lookup database that cannot be reached is a :class:`StoreUnavailable`).
        """
        frame = to_frame(data, columns=self.input_columns)
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise SchemaMismatch(
                f"the request has the column '{dup}' more than once",
                details={"column": dup, "problems": [{"column": dup, "problem": "appears more than once"}]},
            )
        present = set(names)
        missing = [c for c in self.plan.request if c not in present]
        if missing:
            step = self._readers.get(missing[0])
            prefix = f"step '{step}': " if step is not None else ""
            raise SchemaMismatch(
                f"{prefix}the request lacks column(s) {', '.join(repr(m) for m in missing)}",
                details={
                    "step": step,
                    "column": missing[0],
                    "problems": [{"column": m, "problem": "missing"} for m in missing],
                },
            )
        index = frame.index
        n = len(frame)
        cols: dict[str, Any] = {name: _values(frame.iloc[:, j]) for j, name in enumerate(names)}
        runs: list[StepRun] = []
        for step in self.plan.steps:
            started = time.perf_counter()
            try:
                positions = self._select(step, cols, n)
                labels = index if positions is None else index[positions]
                inputs, outputs = self._execute(step, cols, positions, labels)
            except StewardError as e:
                raise _in_step(e, step.name) from e
            except Exception as e:
                # Not ours to rebuild: keep the class and the traceback, name the step in the message.
                if e.args and isinstance(e.args[0], str):
                    e.args = (f"step '{step.name}': {e.args[0]}", *e.args[1:])
                e.add_note(f"in pipeline {self.spec.name!r}, step '{step.name}'")
                raise
            if positions is None:
                for column in outputs.columns:
                    cols[column] = _values(outputs[column])
            else:
                spread = np.full(n, -1, dtype=np.intp)
                spread[positions] = np.arange(len(positions))
                for column in outputs.columns:
                    cols[column] = _take(_values(outputs[column]), spread, fill=True)
            model = self.models.get(step.name)
            runs.append(
                StepRun(
                    name=step.name,
                    kind=step.kind,
                    ref=step.spec.model,
                    version=model.ref if model is not None else None,
                    rows=labels,
                    inputs=inputs,
                    outputs=outputs,
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            )
        outputs = pd.DataFrame({c: cols[c] for c in self.result_columns}, index=index)
        return PipelineResult(outputs=outputs, frame=pd.DataFrame(cols, index=index), steps=runs)

    # -- one step ------------------------------------------------------------------------------------

    @staticmethod
    def _select(step: StepPlan, cols: dict[str, Any], n: int) -> np.ndarray | None:
        if step.where is None:
            return None
        env = _env(cols, step.where.names, None)
        return np.flatnonzero(step.where.evaluate_condition(env, n))

    @staticmethod
    def _columns(cols: dict[str, Any], names: tuple[str, ...], positions: np.ndarray | None, labels: pd.Index) -> Any:
        if positions is None:
            return pd.DataFrame({c: cols[c] for c in names}, index=labels)
        return pd.DataFrame({c: _take(cols[c], positions) for c in names}, index=labels)

    def _execute(
        self, step: StepPlan, cols: dict[str, Any], positions: np.ndarray | None, labels: pd.Index
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        assert step.outputs is not None
        inputs = self._columns(cols, step.inputs, positions, labels)
        k = len(labels)
        if step.kind == "lookup":
            fetched = self.lookups[step.name].fetch(inputs[step.spec.lookup.key])  # type: ignore[union-attr]
            return inputs, fetched[list(step.outputs)].set_axis(list(step.outputs.values()), axis=1)
        if step.kind == "assign":
            env = _env(cols, step.inputs, positions)
            out: dict[str, Any] = {}
            for name, expr in step.assign:
                env[name] = out[name] = expr.evaluate(env, k)
            return inputs, pd.DataFrame(out, index=labels)
        model = self.models[step.name]
        if k == 0:  # nothing to send: an empty, typed answer without calling the model
            return inputs, _empty(model.signature.outputs, step.outputs, labels)
        predicted = model.predict(inputs, allow_extra=True)
        if len(predicted) != k:
            raise SchemaMismatch(
                f"the model {model.ref} returned {len(predicted)} rows for {k}", details={"model_version": model.ref}
            )
        absent = [c for c in step.outputs if c not in predicted.columns]
        if absent:
            raise SchemaMismatch(
                f"the model {model.ref} returned no column {', '.join(repr(a) for a in absent)}",
                details={"column": absent[0], "model_version": model.ref},
            )
        return inputs, pd.DataFrame({dst: _values(predicted[src]) for src, dst in step.outputs.items()}, index=labels)


_EMPTY_DTYPES = {"number": "float64", "integer": "float64", "datetime": "datetime64[ns]"}


def _empty(specs: list[ColumnSpec], mapping: dict[str, str], labels: pd.Index) -> pd.DataFrame:
    kinds = {c.name: c.type for c in specs}
    return pd.DataFrame(
        {dst: np.empty(0, dtype=_EMPTY_DTYPES.get(kinds.get(src, "string"), "object")) for src, dst in mapping.items()},
        index=labels,
    )
