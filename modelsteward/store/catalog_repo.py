"""Catalog queries on an open transaction; rows go in and domain records come out, nothing else leaks."""

from __future__ import annotations

import gc
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import aliased

from modelsteward.domain.records import (
    Alias,
    ArtifactInfo,
    Dataset,
    DatasetFingerprint,
    DatasetLink,
    Lineage,
    LineageEdge,
    ModelVersion,
    RegisteredModel,
    VersionSummary,
)
from modelsteward.store.tables import (
    aliases,
    datasets,
    model_versions,
    registered_models,
    version_datasets,
)

M, V, A, D, VD = registered_models.c, model_versions.c, aliases.c, datasets.c, version_datasets.c


def utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


# -- registered models ------------------------------------------------------------------------------


def model_id(conn: Connection, name: str) -> int | None:
    return conn.execute(sa.select(M.id).where(M.name == name)).scalar()


def lock_model(conn: Connection, name: str) -> Row[Any] | None:
    """The model's row, locked for the rest of the transaction where the database can (PostgreSQL)."""
    query = sa.select(registered_models).where(M.name == name)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def insert_model(
    conn: Connection, *, name: str, kind: str, fields: dict[str, Any], actor: str, latest_version: int = 0
) -> int:
    at = now()
    values = {
        "description": "",
        "kpis": [],
        "resources": {},
        "protected_attributes": [],
        "tags": {},
        **{k: v for k, v in fields.items() if v is not None},
    }
    return conn.execute(
        registered_models.insert()
        .values(
            name=name,
            kind=kind,
            latest_version=latest_version,
            created_by=actor,
            created_at=at,
            updated_at=at,
            **values,
        )
        .returning(M.id)
    ).scalar_one()


def update_model(conn: Connection, model_pk: int, fields: dict[str, Any]) -> None:
    conn.execute(registered_models.update().where(M.id == model_pk).values(updated_at=now(), **fields))


def next_version(conn: Connection, model_pk: int, fields: dict[str, Any] | None = None) -> int:
    """Reserve the next version number (also setting ``fields``); the row update serializes
    concurrent registrations of one model."""
    return conn.execute(
        registered_models.update()
        .where(M.id == model_pk)
        .values(latest_version=M.latest_version + 1, updated_at=now(), **(fields or {}))
        .returning(M.latest_version)
    ).scalar_one()


def _model_record(row: Row[Any], alias_map: dict[str, int]) -> RegisteredModel:
    return RegisteredModel.model_validate(
        {
            "name": row.name,
            "kind": row.kind,
            "description": row.description,
            "owner": row.owner,
            "business_unit": row.business_unit,
            "risk_tier": row.risk_tier,
            "kpis": row.kpis,
            "resources": row.resources,
            "protected_attributes": row.protected_attributes,
            "tags": row.tags,
            "latest_version": row.latest_version,
            "aliases": alias_map,
            "created_by": row.created_by,
            "created_at": utc(row.created_at),
            "updated_at": utc(row.updated_at),
        }
    )


def _alias_maps(conn: Connection, model_pks: list[int]) -> dict[int, dict[str, int]]:
    if not model_pks:
        return {}
    rows = conn.execute(
        sa.select(A.model_id, A.name, V.version)
        .join(model_versions, V.id == A.version_id)
        .where(A.model_id.in_(model_pks))
    )
    out: dict[int, dict[str, int]] = {}
    for model_pk, alias, version in rows:
        out.setdefault(model_pk, {})[alias] = version
    return out


def get_model(conn: Connection, name: str) -> RegisteredModel | None:
    row = conn.execute(sa.select(registered_models).where(M.name == name)).first()
    if row is None:
        return None
    return _model_record(row, _alias_maps(conn, [row.id]).get(row.id, {}))


MODEL_ORDERS = {
    "name": M.name, "updated_at": M.updated_at, "created_at": M.created_at, "kind": M.kind, "owner": M.owner,
    "business_unit": M.business_unit, "risk_tier": M.risk_tier,
}  # fmt: skip


def list_models(
    conn: Connection,
    *,
    kind: str | None = None,
    owner: str | None = None,
    business_unit: str | None = None,
    risk_tier: str | None = None,
    tags: dict[str, str] | None = None,
    query: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_by: str = "name",
) -> tuple[list[RegisteredModel], int]:
    where = []
    for column, value in (
        (M.kind, kind),
        (M.owner, owner),
        (M.business_unit, business_unit),
        (M.risk_tier, risk_tier),
    ):
        if value is not None:
            where.append(column == value)
    for key, value in (tags or {}).items():
        where.append(M.tags[key].as_string() == value)
    if query:
        # a bound parameter, with LIKE's wildcards escaped: "100%" finds "100%", not everything
        needle = "%" + re.sub(r"([\\%_])", r"\\\1", query.lower()) + "%"
        where.append(
            sa.or_(
                sa.func.lower(M.name).like(needle, escape="\\"),
                sa.func.lower(M.description).like(needle, escape="\\"),
                sa.func.lower(sa.func.coalesce(M.owner, "")).like(needle, escape="\\"),
                sa.func.lower(sa.func.coalesce(M.business_unit, "")).like(needle, escape="\\"),
            )
        )
    column = MODEL_ORDERS[order_by.removeprefix("-")]
    # updated_at and created_at read newest first; "-" reverses whichever way a column reads
    newest_first = order_by.removeprefix("-") in ("updated_at", "created_at")
    order = column.desc() if newest_first != order_by.startswith("-") else column.asc()
    total = conn.execute(sa.select(sa.func.count()).select_from(registered_models).where(*where)).scalar_one()
    rows = conn.execute(
        sa.select(registered_models).where(*where).order_by(order, M.name).limit(limit).offset(offset)
    ).all()
    alias_maps = _alias_maps(conn, [r.id for r in rows])
    return [_model_record(r, alias_maps.get(r.id, {})) for r in rows], total


def delete_model(conn: Connection, model_pk: int) -> None:
    conn.execute(registered_models.delete().where(M.id == model_pk))


# -- versions ---------------------------------------------------------------------------------------


def insert_version(conn: Connection, *, model_pk: int, version: int, values: dict[str, Any]) -> int:
    return conn.execute(
        model_versions.insert().values(model_id=model_pk, version=version, **values).returning(V.id)
    ).scalar_one()


_VERSION_COLUMNS = (registered_models.c.name, *model_versions.c)


def _version_query() -> sa.Select[Any]:
    return sa.select(*_VERSION_COLUMNS).join(registered_models, M.id == V.model_id)


# The hot lookups are built once, with bound parameters, so each call skips statement construction
# and SQLAlchemy's cache-key work: resolving name@alias is on every SDK and CLI path.
_BY_ALIAS = (
    _version_query()
    .join(aliases, sa.and_(A.version_id == V.id, A.name == sa.bindparam("alias")))
    .where(M.name == sa.bindparam("name"))
)
_BY_VERSION = _version_query().where(M.name == sa.bindparam("name"), V.version == sa.bindparam("version"))
_LATEST = _version_query().where(M.name == sa.bindparam("name"), V.version == M.latest_version)
_ALIASES_OF_VERSION = sa.select(A.name).where(A.version_id == sa.bindparam("version_pk")).order_by(A.name)
_LINKS_OF_VERSION = (
    sa.select(VD.role, D.name, D.content_hash, D.row_count)
    .join(datasets, D.id == VD.dataset_id)
    .where(VD.version_id == sa.bindparam("version_pk"))
    .order_by(VD.role, D.name)
)


def find_version(conn: Connection, name: str, *, version: int | None, alias: str | None) -> Row[Any] | None:
    """The row of ``name/version``, ``name@alias`` or (neither given) the latest version."""
    if alias is not None:
        return conn.execute(_BY_ALIAS, {"name": name, "alias": alias}).first()
    if version is not None:
        return conn.execute(_BY_VERSION, {"name": name, "version": version}).first()
    return conn.execute(_LATEST, {"name": name}).first()


_BY_PK = _version_query().where(V.id == sa.bindparam("version_pk"))
_RESOLVERS: dict[tuple[str, str], sa.Select[Any]] = {}


def _resolver(dialect: str, by: str) -> sa.Select[Any]:
    """One statement answering "which version, and which aliases does it carry now?"."""
    key = (dialect, by)
    if key not in _RESOLVERS:
        others = aliased(aliases, name="others")
        agg = sa.func.string_agg if dialect == "postgresql" else sa.func.group_concat
        names = sa.select(agg(others.c.name, ",")).where(others.c.version_id == V.id).scalar_subquery()
        query = sa.select(V.id, names.label("alias_names")).join(registered_models, M.id == V.model_id)
        if by == "alias":
            query = query.join(aliases, sa.and_(A.version_id == V.id, A.name == sa.bindparam("alias")))
        elif by == "version":
            query = query.where(V.version == sa.bindparam("version"))
        else:
            query = query.where(V.version == M.latest_version)
        _RESOLVERS[key] = query.where(M.name == sa.bindparam("name"))
    return _RESOLVERS[key]


def resolve(conn: Connection, name: str, *, version: int | None, alias: str | None) -> tuple[int, list[str]] | None:
    """The id of the version a reference names and its current aliases (sorted), in one statement."""
    by = "alias" if alias is not None else "version" if version is not None else "latest"
    row = conn.execute(_resolver(conn.dialect.name, by), {"name": name, "alias": alias, "version": version}).first()
    if row is None:
        return None
    return row[0], sorted(row[1].split(",")) if row[1] else []


def version_by_pk(conn: Connection, version_pk: int) -> ModelVersion:
    return version_record(conn, conn.execute(_BY_PK, {"version_pk": version_pk}).one())


def version_record(conn: Connection, row: Row[Any]) -> ModelVersion:
    version_aliases = conn.execute(_ALIASES_OF_VERSION, {"version_pk": row.id}).scalars().all()
    links = conn.execute(_LINKS_OF_VERSION, {"version_pk": row.id}).all()
    return _version_from_row(
        row,
        list(version_aliases),
        [DatasetLink(role=r, name=n, content_hash=h, row_count=c) for r, n, h, c in links],
    )


def _version_from_row(row: Row[Any], version_aliases: list[str], links: list[DatasetLink]) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "name": row.name,
            "version": row.version,
            "kind": row.kind,
            "artifact": ArtifactInfo(
                sha256=row.artifact_sha256,
                size=row.artifact_size,
                format=row.artifact_format,
                metadata=row.artifact_meta,
            ),
            "signature": row.signature,
            "metrics": row.metrics,
            "params": row.params,
            "datasets": links,
            "source": row.source,
            "requirements": row.requirements,
            "description": row.description,
            "tags": row.tags,
            "aliases": version_aliases,
            "input_example": row.input_example,
            "created_by": row.created_by,
            "created_at": utc(row.created_at),
        }
    )


_SUMMARY_COLUMNS = (
    M.name,
    V.id,
    V.version,
    V.kind,
    V.artifact_sha256,
    V.artifact_size,
    V.artifact_format,
    V.metrics,
    V.description,
    V.tags,
    V.created_by,
    V.created_at,
)


def list_versions(
    conn: Connection, *, name: str | None, limit: int | None, offset: int = 0
) -> tuple[list[VersionSummary], int]:
    """Version summaries, by model name then newest first, and the total count."""
    where = [M.name == name] if name is not None else []
    total = conn.execute(
        sa.select(sa.func.count()).select_from(model_versions.join(registered_models)).where(*where)
    ).scalar_one()
    if limit == 0:
        return [], total
    query = (
        sa.select(*_SUMMARY_COLUMNS)
        .join(registered_models, M.id == V.model_id)
        .where(*where)
        .order_by(M.name, V.version.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    ids = [r[1] for r in rows]
    alias_by_version: dict[int, list[str]] = {}
    links_by_version: dict[int, list[DatasetLink]] = {}
    # Batched in chunks so that 10,000 versions cost a handful of queries, not 20,000.
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for version_pk, alias in conn.execute(
            sa.select(A.version_id, A.name).where(A.version_id.in_(chunk)).order_by(A.name)
        ):
            alias_by_version.setdefault(version_pk, []).append(alias)
        for version_pk, role, dname, dhash, drows in conn.execute(
            sa.select(VD.version_id, VD.role, D.name, D.content_hash, D.row_count)
            .join(datasets, D.id == VD.dataset_id)
            .where(VD.version_id.in_(chunk))
            .order_by(VD.role, D.name)
        ):
            links_by_version.setdefault(version_pk, []).append(
                DatasetLink(role=role, name=dname, content_hash=dhash, row_count=drows)
            )
    # Thousands of small objects in a row make the cyclic collector rescan the growing list over
    # and over; none of them form cycles, so it can rest while they are built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        summaries = [
            VersionSummary(
                name=name,
                version=version,
                kind=kind,
                artifact=ArtifactInfo(sha256=sha256, size=size, format=fmt),
                metrics=metrics,
                datasets=links_by_version.get(pk, []),
                description=description,
                tags=tags,
                aliases=alias_by_version.get(pk, []),
                created_by=created_by,
                created_at=utc(created_at),
            )
            for name, pk, version, kind, sha256, size, fmt, metrics, description, tags, created_by, created_at in map(
                tuple, rows
            )
        ]
    finally:
        if collecting:
            gc.enable()
    return summaries, total


# -- aliases ----------------------------------------------------------------------------------------


def current_alias(conn: Connection, model_pk: int, alias: str) -> int | None:
    """The version number an alias points at, or None."""
    return conn.execute(_CURRENT_ALIAS, {"model_pk": model_pk, "alias": alias}).scalar()


_CURRENT_ALIAS = (
    sa.select(V.version)
    .join(aliases, A.version_id == V.id)
    .where(A.model_id == sa.bindparam("model_pk"), A.name == sa.bindparam("alias"))
)
_TARGET_VERSION = aliased(model_versions, name="target")
_ALIAS_TARGET = (
    sa.select(
        M.id.label("model_pk"),
        _TARGET_VERSION.c.id.label("target_pk"),
        sa.select(V.version)
        .join(aliases, A.version_id == V.id)
        .where(A.model_id == M.id, A.name == sa.bindparam("alias"))
        .scalar_subquery()
        .label("current"),
    )
    .select_from(registered_models)
    .outerjoin(
        _TARGET_VERSION,
        sa.and_(_TARGET_VERSION.c.model_id == M.id, _TARGET_VERSION.c.version == sa.bindparam("version")),
    )
    .where(M.name == sa.bindparam("name"))
)
_LOCK_MODEL = sa.select(M.id).where(M.name == sa.bindparam("name")).with_for_update()
_UPDATE_ALIAS = (
    aliases.update()
    .where(A.model_id == sa.bindparam("model_pk"), A.name == sa.bindparam("alias"))
    .values(version_id=sa.bindparam("version_pk"), updated_by=sa.bindparam("actor"), updated_at=sa.bindparam("at"))
)


def alias_target(conn: Connection, *, name: str, alias: str, version: int) -> Row[Any] | None:
    """One locked read for an alias move: the model's id, the target version's id (None if there is
    no such version) and the version the alias points at now (None if unset)."""
    if conn.dialect.name == "postgresql":
        # Lock first, read second: under READ COMMITTED a statement that waited for the lock would
        # still answer from its old snapshot; the next statement sees the winner's committed alias.
        if conn.execute(_LOCK_MODEL, {"name": name}).first() is None:
            return None
    return conn.execute(_ALIAS_TARGET, {"name": name, "alias": alias, "version": version}).first()


def set_alias(
    conn: Connection, *, model_pk: int, model: str, alias: str, version_pk: int, version: int, actor: str
) -> Alias:
    at = now()
    params = {"model_pk": model_pk, "alias": alias, "version_pk": version_pk, "actor": actor, "at": at}
    if not conn.execute(_UPDATE_ALIAS, params).rowcount:
        conn.execute(
            aliases.insert().values(
                model_id=model_pk, name=alias, version_id=version_pk, updated_by=actor, updated_at=at
            )
        )
    return Alias(model=model, alias=alias, version=version, updated_by=actor, updated_at=at)


def delete_alias(conn: Connection, model_pk: int, alias: str) -> bool:
    return bool(conn.execute(aliases.delete().where(A.model_id == model_pk, A.name == alias)).rowcount)


def list_aliases(conn: Connection, name: str) -> list[Alias]:
    rows = conn.execute(
        sa.select(M.name, A.name.label("alias"), V.version, A.updated_by, A.updated_at)
        .select_from(aliases.join(registered_models, M.id == A.model_id).join(model_versions, V.id == A.version_id))
        .where(M.name == name)
        .order_by(A.name)
    )
    return [
        Alias(
            model=r.name,
            alias=r.alias,
            version=r.version,
            updated_by=r.updated_by,
            updated_at=utc(r.updated_at),
        )
        for r in rows
    ]


# -- data sets and lineage --------------------------------------------------------------------------


def upsert_dataset(conn: Connection, *, name: str, uri: str | None, fingerprint: DatasetFingerprint) -> int:
    """The id of the data set with this content hash, recording it first if it is new."""
    existing = conn.execute(sa.select(D.id).where(D.content_hash == fingerprint.content_hash)).scalar()
    if existing is not None:
        return existing
    return conn.execute(
        datasets.insert()
        .values(
            content_hash=fingerprint.content_hash,
            name=name,
            uri=uri,
            row_count=fingerprint.row_count,
            fingerprint=fingerprint.model_dump(mode="json"),
            created_at=now(),
        )
        .returning(D.id)
    ).scalar_one()


def link_dataset(conn: Connection, *, version_pk: int, dataset_pk: int, role: str) -> None:
    conn.execute(version_datasets.insert().values(version_id=version_pk, dataset_id=dataset_pk, role=role))


def get_dataset(conn: Connection, content_hash: str) -> Dataset | None:
    row = conn.execute(sa.select(datasets).where(D.content_hash == content_hash)).first()
    if row is None:
        return None
    return Dataset(
        name=row.name,
        uri=row.uri,
        fingerprint=DatasetFingerprint.model_validate(row.fingerprint),
        created_at=utc(row.created_at),
    )


def lineage(conn: Connection, row: Row[Any]) -> Lineage:
    ref = f"{row.name}/{row.version}"
    upstream = [
        LineageEdge(
            source_type="dataset",
            source=f"{dname}@{dhash[:12]}",
            target_type="version",
            target=ref,
            relation=f"{role}_data",
            created_at=utc(row.created_at),
        )
        for role, dname, dhash in conn.execute(
            sa.select(VD.role, D.name, D.content_hash)
            .join(datasets, D.id == VD.dataset_id)
            .where(VD.version_id == row.id)
            .order_by(VD.role, D.name)
        )
    ]
    return Lineage(version=ref, upstream=upstream, downstream=[])
