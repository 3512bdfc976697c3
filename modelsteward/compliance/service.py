"""Compliance suites stored by name and run against model versions: the data found and checked by fingerprint,
each test judged, and the run kept with the version (with an audit event, in one transaction)."""

from __future__ import annotations

import importlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelsteward.compliance import judges as judge
from modelsteward.domain.compliance import (
    ComplianceRun,
    ComplianceSuite,
    DataUsed,
    StoredSuite,
    TestResult,
    parse_suite,
)
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import InvalidArgument, NotFound, StewardError
from modelsteward.store import compliance_repo, event_repo
from modelsteward.store.catalog_repo import now

if TYPE_CHECKING:
    from modelsteward.catalog.service import CatalogService
    from modelsteward.domain.records import ModelVersion
    from modelsteward.kinds.loaded import LoadedModel
    from modelsteward.store.database import Database


ENTRY_POINT_TAG = "steward.entry_point"  # a version's (or its model's) training entry point


class ComplianceService:
    def __init__(self, db: Database, catalog: CatalogService) -> None:
        self.db = db
        self.catalog = catalog

    # -- suites -----------------------------------------------------------------------------------------

    def put_suite(self, value: Any, *, actor: str) -> StoredSuite:
        suite = parse_suite(value)
        with self.db.write() as conn:
            stored, old = compliance_repo.put_suite(conn, suite, actor=actor)
            event_repo.append_event(
                conn,
                actor=actor,
                action="compliance.suite_applied",
                details={
                    "suite": suite.name,
                    "before": old,
                    "after": suite.model_dump(mode="json", exclude_defaults=True),
                },
            )
        return stored

    def get_suite(self, name: str) -> StoredSuite:
        with self.db.read() as conn:
            stored = compliance_repo.get_suite(conn, name)
        if stored is None:
            raise NotFound(
                f"no compliance suite named {name!r} (steward compliance apply FILE)", details={"suite": name}
            )
        return stored

    def list_suites(self) -> list[StoredSuite]:
        with self.db.read() as conn:
            return compliance_repo.list_suites(conn)

    def resolve_suite(self, value: Any) -> ComplianceSuite:
        """A stored suite's name, or a definition (instance, dict, YAML text or file)."""
        if isinstance(value, str) and "\n" not in value and not value.strip().endswith((".yaml", ".yml")):
            return self.get_suite(value.strip()).suite
        return parse_suite(value)

    # -- runs -------------------------------------------------------------------------------------------

    def run(self, ref: str, suite: Any, *, data: pd.DataFrame | None = None, actor: str) -> ComplianceRun:
        """Run every test of ``suite`` on the version ``ref`` names; ``data`` overrides the suite's held-out
        data. A test that cannot be judged is an ``error`` result with its reason; the run is stored anyway."""
        spec = self.resolve_suite(suite)
        version = self.catalog.get_version(ref)
        started = now()
        loaded = self.catalog.load(version)
        frame, used = self._held_out(version, spec, data)
        results = []
        for test in spec.tests:
            try:
                result = self._judge(test, spec, version, loaded, frame)
            except StewardError as e:
                result = TestResult(name=test.label, type=test.kind, status="error", summary=e.message)
            except Exception as e:  # noqa: BLE001 - a failing test is a finding to record, not a crash
                result = TestResult(name=test.label, type=test.kind, status="error", summary=f"{type(e).__name__}: {e}")
            results.append(result.model_copy(update={"name": test.label}))
        statuses = {r.status for r in results}
        status = "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"
        with self.db.write() as conn:
            stored = compliance_repo.add_run(
                conn,
                model=version.name,
                version=version.version,
                suite=spec.name,
                status=status,
                data=used,
                results=results,
                actor=actor,
                started_at=started,
            )
            event_repo.append_event(
                conn,
                actor=actor,
                action="compliance.run",
                model=version.name,
                version=version.version,
                details={
                    "run": stored.id,
                    "suite": spec.name,
                    "status": status,
                    "failed": [r.name for r in results if r.status != "pass"],
                    "data": used.model_dump(mode="json") if used else None,
                },
            )
        return stored

    def _judge(
        self, test: Any, spec: ComplianceSuite, version: ModelVersion, loaded: LoadedModel, frame: pd.DataFrame | None
    ) -> TestResult:
        if frame is None:
            raise InvalidArgument("the suite names no held-out data and none was given", details={"field": "data"})
        body = test.body
        if test.kind == "fairness":
            protected = self.catalog.get_model(version.name).protected_attributes
            return judge.fairness_test(body, spec, protected, loaded, frame)
        if test.kind == "performance":
            champion = None
            if body.champion is not None:
                champion = self.catalog.get_version(f"{version.name}@{body.champion.alias}")
                champion = None if champion.version == version.version else (champion, self.catalog.load(champion))
            return judge.performance_test(body, spec, loaded, frame, champion)
        if test.kind == "explainability":
            return judge.explainability_test(body, spec, loaded, frame)
        training, _ = self._data(version, body.data, None)
        recorded = version.tags.get(ENTRY_POINT_TAG) or self.catalog.get_model(version.name).tags.get(ENTRY_POINT_TAG)
        fn = _entry_point(body.entry_point or recorded)
        return judge.reproducibility_test(body, spec, version, loaded, frame, training, fn)

    def _held_out(
        self, version: ModelVersion, spec: ComplianceSuite, data: pd.DataFrame | None
    ) -> tuple[pd.DataFrame | None, DataUsed | None]:
        if data is None and spec.data is None:
            return None, None
        return self._data(version, spec.data, data)

    def _data(
        self, version: ModelVersion, where: str | None, data: pd.DataFrame | None
    ) -> tuple[pd.DataFrame, DataUsed]:
        """Given data, a data set the version links (read where it lies, checked by fingerprint), or a file."""
        from modelsteward.catalog.registration import read_table
        from modelsteward.stats.fingerprint import fingerprint

        if data is not None:
            frame = data.reset_index(drop=True)
            return frame, DataUsed(
                source="data given with the run", content_hash=fingerprint(frame).content_hash, rows=len(frame)
            )
        assert where is not None
        if where.lower().endswith((".csv", ".parquet", ".pq")):
            frame = read_table(where)
            return frame, DataUsed(source=where, content_hash=fingerprint(frame).content_hash, rows=len(frame))
        link = next((d for d in version.datasets if d.role == where), None)
        if link is None:
            raise InvalidArgument(
                f"{version.ref} links no {where} data set (it links: "
                f"{', '.join(d.role for d in version.datasets) or 'none'}): give the data with the run",
                details={"field": "data", "role": where},
            )
        dataset = self.catalog.get_dataset(link.content_hash)
        if dataset.uri is None:
            raise InvalidArgument(
                f"the {where} data of {version.ref} was registered without a location",
                details={"field": "data", "role": where},
            )
        frame = read_table(dataset.uri)
        if fingerprint(frame).content_hash != link.content_hash:
            raise InvalidArgument(
                f"the {where} data of {version.ref} at {dataset.uri} changed since it was registered "
                "(its fingerprint differs)",
                details={"field": "data", "role": where, "uri": dataset.uri},
            )
        return frame, DataUsed(
            source=f"{where} data set of {version.ref} ({dataset.name})",
            content_hash=link.content_hash,
            rows=len(frame),
        )

    def runs(
        self, ref: str | None = None, *, suite: str | None = None, before: datetime | None = None, limit: int = 50
    ) -> list[ComplianceRun]:
        """Runs newest first, of a model (``name``) or a version (``name/3``, ``name@alias``)."""
        model = version = None
        if ref is not None:
            parsed = ModelRef.parse(ref)
            model = parsed.name
            if parsed.version is not None or parsed.alias is not None:
                version = self.catalog.get_version(ref).version
        with self.db.read() as conn:
            return compliance_repo.list_runs(
                conn, model=model, version=version, suite=suite, before=before, limit=limit
            )

    def get_run(self, run_id: int) -> ComplianceRun:
        with self.db.read() as conn:
            run = compliance_repo.get_run(conn, run_id)
        if run is None:
            raise NotFound(f"no compliance run {run_id}", details={"run": run_id})
        return run

    def latest(self, model: str, version: int, suite: str) -> ComplianceRun | None:
        with self.db.read() as conn:
            found = compliance_repo.list_runs(conn, model=model, version=version, suite=suite, limit=1)
        return found[0] if found else None

    def importance(self, ref: str) -> TestResult:
        """The latest global importances stored with the version (from an explainability test)."""
        version = self.catalog.get_version(ref)
        with self.db.read() as conn:
            for run in compliance_repo.list_runs(conn, model=version.name, version=version.version, limit=200):
                for result in run.results:
                    if result.type == "explainability" and result.figures.get("features"):
                        return result
        raise NotFound(
            f"{version.ref} has no stored importances: run a suite with an explainability test",
            details={"ref": version.ref},
        )

    def explain(self, version: ModelVersion, rows: pd.DataFrame, *, background: pd.DataFrame | None = None) -> Any:
        from modelsteward.compliance.explain import explain_rows

        return explain_rows(self.catalog.load(version), rows, background=background)


def files_outside(suite: ComplianceSuite, root: Path) -> list[str]:
    """The files a suite reads (held-out or training data named by path) that lie outside ``root``."""
    named = [suite.data, *(t.reproducibility.data for t in suite.tests if t.reproducibility is not None)]
    files = [f for f in named if f is not None and f.lower().endswith((".csv", ".parquet", ".pq"))]
    base = root.resolve()
    return [f for f in files if not (base / f).resolve().is_relative_to(base)]


def _entry_point(value: str | None) -> Any:
    if not value:
        raise InvalidArgument(
            "no training entry point: give reproducibility.entry_point or tag the version steward.entry_point",
            details={"field": "entry_point"},
        )
    module, _, name = value.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InvalidArgument(f"cannot import the entry point {value}: {e}", details={"field": "entry_point"}) from e
    if not callable(fn):
        raise InvalidArgument(f"the entry point {value} is not a function", details={"field": "entry_point"})
    return fn


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None
