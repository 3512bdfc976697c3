"""The catalog service: record versions, move aliases, answer questions about models and their data."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import exc as sa_exc

from modelsteward.catalog.registration import Registration, describe
from modelsteward.domain.records import (
    Alias,
    ArtifactInfo,
    Dataset,
    DatasetLink,
    Event,
    Lineage,
    ModelPage,
    ModelUpdate,
    ModelVersion,
    RegisteredModel,
    Signature,
    VersionSummary,
)
from modelsteward.domain.refs import ModelRef, check_alias, check_name
from modelsteward.errors import Conflict, InvalidArgument, InvalidArtifact, NotFound, StewardError
from modelsteward.kinds.base import SavedModel
from modelsteward.kinds.loaded import LoadedModel
from modelsteward.kinds.registry import get_kind
from modelsteward.store import catalog_repo as repo
from modelsteward.store import event_repo
from modelsteward.store.artifacts import ArtifactStore
from modelsteward.store.database import Database

MODEL_CACHE_SIZE = 64
VERSION_CACHE_SIZE = 10_000


def _model_not_found(name: str) -> NotFound:
    return NotFound(f"no model named {name!r}", details={"model": name})


class CatalogService:
    """Owns the catalog's transactions. Artifacts are written before metadata, and each change
    (with its audit event) is one transaction, so a failure leaves no half-registered version."""

    def __init__(self, db: Database, artifacts: ArtifactStore) -> None:
        self.db = db
        self.artifacts = artifacts
        self._natives: OrderedDict[str, Any] = OrderedDict()
        self._versions: OrderedDict[int, ModelVersion] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- registration -------------------------------------------------------------------------------

    def verify_upload(self, registration: Registration) -> Registration:
        """Check an artifact that arrived over the network: it loads as its kind and predicts on its
        own example. Returns the registration with the signature recomputed where possible."""
        kind = get_kind(registration.kind)
        native = kind.load(registration.saved)
        example = None
        if registration.input_example:
            import pandas as pd

            example = pd.DataFrame.from_records(registration.input_example)
        try:
            signature = describe(kind, native, example, owner=registration.name)
        except InvalidArgument:
            if example is not None:
                raise
            signature = registration.signature  # no example: trust the declared signature
        if example is not None:
            declared = registration.signature
            if declared.inputs and [c.name for c in declared.inputs] != signature.input_names:
                raise InvalidArtifact(
                    "the uploaded signature does not match the artifact",
                    details={"field": "signature", "expected": signature.input_names},
                )
        return Registration(**{**registration.__dict__, "signature": _merge(registration.signature, signature)})

    def register(self, registration: Registration, *, actor: str) -> ModelVersion:
        check_name(registration.name)
        digest = self.artifacts.put(registration.saved.data)  # artifacts first: metadata never points at nothing
        for attempt in range(3):
            try:
                return self._record(registration, digest, actor)
            except sa_exc.IntegrityError as e:
                # Two first registrations of one new name raced on PostgreSQL; the retry finds the row.
                if attempt == 2:
                    raise Conflict(
                        f"concurrent registrations of {registration.name!r} kept colliding; try again",
                        details={"model": registration.name},
                    ) from e
        raise AssertionError("unreachable")

    def _record(self, registration: Registration, digest: str, actor: str) -> ModelVersion:
        fields = _changed_fields(registration.model_update)
        created_at = repo.now()
        values = {
            "kind": registration.kind,
            "artifact_sha256": digest,
            "artifact_size": len(registration.saved.data),
            "artifact_format": registration.saved.format,
            "artifact_meta": registration.saved.metadata,
            "signature": registration.signature.model_dump(mode="json"),
            "metrics": registration.metrics,
            "params": registration.params,
            "requirements": registration.requirements.model_dump(mode="json"),
            "source": registration.source.model_dump(mode="json") if registration.source else None,
            "description": registration.description,
            "tags": registration.version_tags,
            "input_example": registration.input_example,
            "created_by": actor,
            "created_at": created_at,
        }
        with self.db.write() as conn:
            row = repo.lock_model(conn, registration.name)
            if row is None:
                version = 1
                model_pk = repo.insert_model(
                    conn,
                    name=registration.name,
                    kind=registration.kind,
                    fields=fields,
                    actor=actor,
                    latest_version=1,
                )
            else:
                model_pk = row.id
                if "tags" in fields:
                    fields["tags"] = {**row.tags, **fields["tags"]}
                version = repo.next_version(conn, model_pk, {**fields, "kind": registration.kind})
            version_pk = repo.insert_version(conn, model_pk=model_pk, version=version, values=values)
            for dataset in registration.datasets:
                dataset_pk = repo.upsert_dataset(
                    conn, name=dataset.name, uri=dataset.uri, fingerprint=dataset.fingerprint
                )
                repo.link_dataset(conn, version_pk=version_pk, dataset_pk=dataset_pk, role=dataset.role)
            event_repo.append_event(
                conn,
                actor=actor,
                action="version.registered",
                model=registration.name,
                version=version,
                details={
                    "kind": registration.kind,
                    "sha256": digest,
                    "datasets": [d.fingerprint.content_hash for d in registration.datasets],
                },
            )
        # Everything in the new version is known here: build the record instead of reading it back.
        return ModelVersion(
            name=registration.name,
            version=version,
            kind=registration.kind,
            artifact=ArtifactInfo(
                sha256=digest,
                size=len(registration.saved.data),
                format=registration.saved.format,
                metadata=registration.saved.metadata,
            ),
            signature=registration.signature,
            metrics=registration.metrics,
            params=registration.params,
            datasets=sorted(
                (
                    DatasetLink(
                        role=d.role,
                        name=d.name,
                        content_hash=d.fingerprint.content_hash,
                        row_count=d.fingerprint.row_count,
                    )  # type: ignore[arg-type]
                    for d in registration.datasets
                ),
                key=lambda link: (link.role, link.name),
            ),
            source=registration.source,
            requirements=registration.requirements,
            description=registration.description,
            tags=registration.version_tags,
            aliases=[],
            input_example=registration.input_example,
            created_by=actor,
            created_at=created_at,
        )

    # -- models -------------------------------------------------------------------------------------

    def get_model(self, name: str) -> RegisteredModel:
        check_name(name)
        with self.db.read() as conn:
            model = repo.get_model(conn, name)
        if model is None:
            raise _model_not_found(name)
        return model

    def update_model(self, name: str, update: ModelUpdate, *, actor: str) -> RegisteredModel:
        check_name(name)
        fields = _changed_fields(update)
        with self.db.write() as conn:
            row = repo.lock_model(conn, name)
            if row is None:
                raise _model_not_found(name)
            before = {k: getattr(row, k) for k in fields}
            if fields:
                repo.update_model(conn, row.id, fields)
                event_repo.append_event(
                    conn,
                    actor=actor,
                    action="model.updated",
                    model=name,
                    details={"before": before, "after": fields},
                )
            model = repo.get_model(conn, name)
        assert model is not None
        return model

    def search_models(self, **filters: Any) -> ModelPage:
        limit = filters.pop("limit", 100)
        offset = filters.pop("offset", 0)
        if limit is not None and (limit < 0 or limit > 10_000):
            raise InvalidArgument("limit must be between 0 and 10000", details={"field": "limit"})
        if offset < 0:
            raise InvalidArgument("offset must not be negative", details={"field": "offset"})
        order_by = filters.pop("order_by", "name")
        if order_by.removeprefix("-") not in repo.MODEL_ORDERS:
            raise InvalidArgument(f"order_by must be one of {', '.join(repo.MODEL_ORDERS)} (a leading - reverses it)",
                                  details={"field": "order_by"})  # fmt: skip
        with self.db.read() as conn:
            items, total = repo.list_models(
                conn, limit=10_000 if limit is None else limit, offset=offset, order_by=order_by, **filters
            )
        return ModelPage(items=items, total=total, limit=len(items) if limit is None else limit, offset=offset)

    # -- versions -----------------------------------------------------------------------------------

    def get_version(self, ref: str | ModelRef) -> ModelVersion:
        parsed = ModelRef.parse(ref)
        with self.db.read(single_statement=True) as conn:
            found = repo.resolve(conn, parsed.name, version=parsed.version, alias=parsed.alias)
            if found is None:
                raise self._version_not_found(conn, parsed)
            version_pk, alias_names = found
            # A version row never changes after registration; only its aliases do, and those were
            # just read. So the rest of the record can come from memory.
            with self._cache_lock:
                record = self._versions.get(version_pk)
            if record is None:
                record = repo.version_by_pk(conn, version_pk)
                with self._cache_lock:
                    self._versions[version_pk] = record
                    while len(self._versions) > VERSION_CACHE_SIZE:
                        self._versions.popitem(last=False)
        if record.aliases != alias_names:
            record = record.model_copy(update={"aliases": alias_names})
        return record

    def _version_not_found(self, conn: Any, ref: ModelRef) -> NotFound:
        if repo.model_id(conn, ref.name) is None:
            return _model_not_found(ref.name)
        if ref.alias is not None:
            return NotFound(
                f"model {ref.name!r} has no alias {ref.alias!r}",
                details={"model": ref.name, "alias": ref.alias},
            )
        if ref.version is not None:
            return NotFound(
                f"model {ref.name!r} has no version {ref.version}",
                details={"model": ref.name, "version": ref.version},
            )
        return NotFound(f"model {ref.name!r} has no versions yet", details={"model": ref.name})

    def list_versions(
        self, name: str | None = None, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[VersionSummary], int]:
        if name is not None:
            check_name(name)
        with self.db.read() as conn:
            if name is not None and repo.model_id(conn, name) is None:
                raise _model_not_found(name)
            return repo.list_versions(conn, name=name, limit=limit, offset=offset)

    def lineage(self, ref: str | ModelRef) -> Lineage:
        parsed = ModelRef.parse(ref)
        with self.db.read() as conn:
            row = repo.find_version(conn, parsed.name, version=parsed.version, alias=parsed.alias)
            if row is None:
                raise self._version_not_found(conn, parsed)
            return repo.lineage(conn, row)

    def get_dataset(self, content_hash: str) -> Dataset:
        with self.db.read() as conn:
            dataset = repo.get_dataset(conn, content_hash)
        if dataset is None:
            raise NotFound(f"no data set with hash {content_hash!r}", details={"content_hash": content_hash})
        return dataset

    # -- aliases ------------------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, expected_version: int | None = None
    ) -> Alias:
        check_name(name)
        check_alias(alias)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"version must be a positive integer, got {version!r}", details={"field": "version"})
        with self.db.write() as conn:
            found = repo.alias_target(conn, name=name, alias=alias, version=version)
            if found is None:
                raise _model_not_found(name)
            if found.target_pk is None:
                raise NotFound(
                    f"cannot point {name}@{alias} at version {version}: model {name!r} has no version {version}",
                    details={"model": name, "alias": alias, "version": version},
                )
            before = found.current
            if expected_version is not None and before != expected_version:
                raise Conflict(
                    f"{name}@{alias} points at version {before}, not {expected_version}; someone moved it",
                    details={"model": name, "alias": alias, "current": before, "expected": expected_version},
                )
            record = repo.set_alias(
                conn,
                model_pk=found.model_pk,
                model=name,
                alias=alias,
                version_pk=found.target_pk,
                version=version,
                actor=actor,
            )
            event_repo.append_event(
                conn,
                actor=actor,
                action="alias.set",
                model=name,
                version=version,
                details={"alias": alias, "before": before, "after": version},
            )
        return record

    def delete_alias(self, name: str, alias: str, *, actor: str) -> None:
        check_name(name)
        check_alias(alias)
        with self.db.write() as conn:
            row = repo.lock_model(conn, name)
            if row is None:
                raise _model_not_found(name)
            before = repo.current_alias(conn, row.id, alias)
            if before is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", details={"model": name, "alias": alias})
            repo.delete_alias(conn, row.id, alias)
            event_repo.append_event(
                conn,
                actor=actor,
                action="alias.deleted",
                model=name,
                details={"alias": alias, "before": before},
            )

    def list_aliases(self, name: str) -> list[Alias]:
        check_name(name)
        with self.db.read() as conn:
            if repo.model_id(conn, name) is None:
                raise _model_not_found(name)
            return repo.list_aliases(conn, name)

    # -- events -------------------------------------------------------------------------------------

    def list_events(
        self, *, model: str | None = None, action: str | None = None, actor: str | None = None, limit: int = 100
    ) -> list[Event]:
        with self.db.read() as conn:
            return event_repo.list_events(conn, model=model, action=action, actor=actor, limit=limit)

    def generation(self) -> int:
        with self.db.read() as conn:
            return event_repo.generation(conn)

    # -- artifacts and loading ----------------------------------------------------------------------

    def artifact_bytes(self, version: ModelVersion) -> bytes:
        return self.artifacts.get(version.artifact.sha256, owner=version.ref)

    def load(self, version: ModelVersion) -> LoadedModel:
        """Load a version, reusing the native model when the same artifact was loaded before."""
        kind = get_kind(version.kind)
        key = f"{version.kind}:{version.artifact.sha256}"
        with self._cache_lock:
            native = self._natives.get(key)
            if native is not None:
                self._natives.move_to_end(key)
        if native is None:
            saved = SavedModel(
                data=self.artifact_bytes(version),
                format=version.artifact.format,
                metadata=version.artifact.metadata,
            )
            try:
                native = kind.load(saved)
            except StewardError as e:
                e.details.setdefault("model_version", version.ref)
                e.message = f"{version.ref}: {e.message}"
                e.args = (e.message,)
                raise
            with self._cache_lock:
                self._natives[key] = native
                while len(self._natives) > MODEL_CACHE_SIZE:
                    self._natives.popitem(last=False)
        return LoadedModel(kind, native, version)


def _changed_fields(update: ModelUpdate) -> dict[str, Any]:
    return {k: v for k, v in update.model_dump(mode="json", exclude_none=True).items()}


def _merge(declared: Signature, computed: Signature) -> Signature:
    return Signature(inputs=computed.inputs or declared.inputs, outputs=computed.outputs or declared.outputs)
