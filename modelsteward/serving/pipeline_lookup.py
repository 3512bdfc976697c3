"""Lookup steps: one SQLAlchemy engine per database URL and a prepared ``SELECT ... WHERE key IN (...)`` per table."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from modelsteward.domain.records import ColumnSpec, ColumnType
from modelsteward.errors import InvalidArgument, InvalidDefinition, StoreUnavailable
from modelsteward.serving.pipeline_spec import LookupSpec

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, sa.exc.DisconnectionError)
_SHOWN_KEYS = 5


def expand_url(url: str, context: Mapping[str, str] | None = None) -> str:
    """Replace each ``${NAME}`` with ``context[NAME]``, else the environment variable ``NAME``.

    Raises :class:`InvalidDefinition` naming a variable that neither defines. Other ``$`` signs
    (in a password, say) are left alone.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if context is not None and name in context:
            return str(context[name])
        if name in os.environ:
            return os.environ[name]
        known = ", ".join(sorted(context or {})) or "none"
        raise InvalidDefinition(
            f"the URL uses ${{{name}}}, which neither the context (known: {known}) nor the environment defines",
            details={"variable": name},
        )

    return _VARIABLE.sub(value, url)


def shown_url(url: str) -> str:
    """The URL as it may appear in messages and logs: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


class EnginePool:
    """One engine per URL (pool pre-ping on), shared by the lookup steps of a pipeline."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> sa.Engine:
        with self._lock:
            engine = self._engines.get(url)
            if engine is None:
                try:
                    engine = sa.create_engine(url, pool_pre_ping=True)
                except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
                    raise InvalidDefinition(
                        f"cannot use the database URL {shown_url(url)}: {e}", details={"url": shown_url(url)}
                    ) from e
                self._engines[url] = engine
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def _column_type(column: sa.Column[Any]) -> ColumnType | None:
    try:
        python = column.type.python_type
    except NotImplementedError:
        return None
    if issubclass(python, bool):
        return "boolean"
    if issubclass(python, int):
        return "integer"
    if issubclass(python, float) or python.__name__ == "Decimal":
        return "number"
    if issubclass(python, str):
        return "string"
    if python.__name__ in ("datetime", "date"):
        return "datetime"
    return None


class LookupTable:
    """The table of one lookup step: reflected once (at bind, or on first use), then queried by key."""

    def __init__(self, spec: LookupSpec, url: str, engine: sa.Engine) -> None:
        self.spec = spec
        self.url = shown_url(url)
        self.engine = engine
        self.types: dict[str, ColumnSpec] | None = None
        self._statement: sa.Select[Any] | None = None
        self._key_type: ColumnType | None = None
        self._lock = threading.Lock()

    def unreachable(self, e: Exception) -> StoreUnavailable:
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        return StoreUnavailable(
            f"the lookup database {self.url} cannot be reached: {reason}",
            details={"url": self.url, "table": self.spec.table},
        )

    def reflect(self) -> dict[str, ColumnSpec]:
        """Check the table and its columns exist; returns their types. Thread-safe, done once."""
        with self._lock:
            if self.types is not None:
                return self.types
            spec = self.spec
            try:
                table = sa.Table(spec.table, sa.MetaData(), autoload_with=self.engine)
            except sa.exc.NoSuchTableError as e:
                raise InvalidDefinition(
                    f"the lookup database {self.url} has no table '{spec.table}'",
                    details={"url": self.url, "table": spec.table},
                ) from e
            except _UNREACHABLE as e:
                raise self.unreachable(e) from e
            except sa.exc.SQLAlchemyError as e:
                raise self.unreachable(e) from e
            wanted = [spec.source_key, *spec.columns]
            missing = [c for c in wanted if c not in table.c]
            if missing:
                raise InvalidDefinition(
                    f"table '{spec.table}' has no column {', '.join(repr(m) for m in missing)} "
                    f"(its columns: {', '.join(table.c.keys())})",
                    details={"table": spec.table, "column": missing[0]},
                )
            key = table.c[spec.source_key]
            self._statement = sa.select(*(table.c[c] for c in wanted)).where(
                key.in_(sa.bindparam("keys", expanding=True))
            )
            self._key_type = _column_type(key)
            self.types = {
                c: ColumnSpec(name=c, type=_column_type(table.c[c]) or "string", nullable=bool(table.c[c].nullable))
                for c in wanted
            }
            return self.types

    def _normalized(self, keys: pd.Series) -> pd.Series:
        # Request keys arrive as the JSON decoder made them (7.0, "7"): meet the table's key type.
        if self._key_type == "integer" and pd.api.types.is_float_dtype(keys.dtype):
            values = keys.to_numpy(dtype=float, na_value=np.nan)
            finite = values[~np.isnan(values)]
            if np.all(np.floor(finite) == finite):
                return keys.astype("Int64")
        if self._key_type == "string" and not pd.api.types.is_string_dtype(keys.dtype):
            return keys.astype("string")
        return keys

    def fetch(self, keys: pd.Series) -> pd.DataFrame:
        """The looked-up columns for each key, in the keys' order and index; absent keys give nulls
        (``on_missing: null``) or :class:`InvalidArgument` naming the first few (``on_missing: error``)."""
        self.reflect()
        assert self._statement is not None
        spec = self.spec
        keys = self._normalized(keys)
        codes, uniques = pd.factorize(keys, use_na_sentinel=True)
        params = list(uniques.tolist())
        rows: list[Any] = []
        if params:
            try:
                with self.engine.connect() as conn:
                    for start in range(0, len(params), spec.batch_size):
                        chunk = params[start : start + spec.batch_size]
                        rows.extend(conn.execute(self._statement, {"keys": chunk}).all())
            except _UNREACHABLE as e:
                raise self.unreachable(e) from e
            except sa.exc.SQLAlchemyError as e:
                raise self.unreachable(e) from e
        fetched = pd.DataFrame.from_records(rows, columns=[spec.source_key, *spec.columns])
        found = pd.Index(fetched[spec.source_key])
        if found.has_duplicates:
            dup = found[found.duplicated()].unique().tolist()[:_SHOWN_KEYS]
            raise InvalidArgument(
                f"table '{spec.table}' has more than one row for {spec.source_key} "
                f"{', '.join(map(str, dup))}: a lookup key must be unique",
                details={"table": spec.table, "column": spec.source_key, "keys": dup},
            )
        positions = np.full(len(keys), -1, dtype=np.intp)
        if len(uniques):
            where = np.asarray(found.get_indexer(uniques), dtype=np.intp)
            valid = codes >= 0
            positions[valid] = where[codes[valid]]
        missing = positions < 0
        if spec.on_missing == "error" and missing.any():
            absent = pd.unique(keys[missing].astype(object).where(keys[missing].notna(), None))
            shown = [None if v is None else (v.item() if hasattr(v, "item") else v) for v in absent[:_SHOWN_KEYS]]
            more = f" and {len(absent) - _SHOWN_KEYS} more" if len(absent) > _SHOWN_KEYS else ""
            raise InvalidArgument(
                f"no row in table '{spec.table}' for {spec.key} "
                f"{', '.join('null' if v is None else str(v) for v in shown)}{more} "
                f"({int(missing.sum())} of {len(keys)} rows)",
                details={"column": spec.key, "table": spec.table, "keys": shown, "count": int(missing.sum())},
            )
        out = {}
        for column in spec.columns:
            values = fetched[column].array
            fill = bool(missing.any())
            if isinstance(values, pd.arrays.NumpyExtensionArray):
                out[column] = pd.api.extensions.take(values.to_numpy(), positions, allow_fill=fill)
            else:
                out[column] = values.take(positions, allow_fill=fill)
        return pd.DataFrame(out, index=keys.index)
