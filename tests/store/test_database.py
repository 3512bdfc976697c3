"""The metadata database: migrations at start-up, schema agreement, transactions and clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelsteward.errors import StoreUnavailable
from modelsteward.settings import Settings
from modelsteward.store.database import HEAD_REVISION, MIGRATIONS_DIR, Database
from modelsteward.store.tables import metadata


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrations_create_exactly_the_declared_schema(backend: Settings) -> None:
    db = Database(backend.resolved_database_url())
    db.migrate()
    assert db.current_revision() == HEAD_REVISION
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    # Type-affinity noise aside, the migration and tables.py must agree on tables, columns and indexes.
    structural = [
        d
        for d in diff
        if d[0] in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")
    ]
    assert structural == []
    db.dispose()


def test_migrate_is_idempotent_across_processes(backend: Settings) -> None:
    first = Database(backend.resolved_database_url())
    first.migrate()
    second = Database(backend.resolved_database_url())
    second.migrate()
    with second.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM catalog_state")).scalar() == 1
    first.dispose()
    second.dispose()


def test_sqlite_uses_wal_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    db = Database(settings.resolved_database_url())
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "d" / "steward.db").exists()
    db.dispose()


def test_write_rolls_back_on_error(backend: Settings) -> None:
    db = Database(backend.resolved_database_url())
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(sa.text("UPDATE catalog_state SET generation = 99"))
        raise RuntimeError("boom")
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT generation FROM catalog_state")).scalar() == 0
    db.dispose()


def test_unreachable_database_is_a_clear_store_error() -> None:
    db = Database("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable) as info:
        db.migrate()
    assert "unreachable" in info.value.message
    assert "secret" not in info.value.message  # the password never appears in errors


def test_invalid_url_is_a_clear_store_error() -> None:
    with pytest.raises(StoreUnavailable, match="invalid database URL"):
        Database("not a url")
