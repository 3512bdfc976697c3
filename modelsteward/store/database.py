"""The metadata database: engine set-up, migrations at start-up, and transactions that fail clearly."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from modelsteward.errors import StoreUnavailable

#: The newest migration; a test checks it is the head of ``store/migrations``.
HEAD_REVISION = "0007"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _json_dumps(value: object) -> str:
    # orjson is several times faster than json.dumps on the JSON columns (signatures, profiles...).
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _redact(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<invalid url>"


class Database:
    """One engine per process; ``read()`` and ``write()`` hand out connections inside a transaction.

    On SQLite, writes start with ``BEGIN IMMEDIATE`` so that two writers queue on the lock
    (up to ``busy_timeout`` seconds) instead of failing half-way; the journal is WAL so readers
    never wait for a writer.
    """

    def __init__(self, url: str, *, busy_timeout: float = 10.0) -> None:
        self.url = url
        self.safe_url = _redact(url)
        try:
            parsed = sa.make_url(url)
        except exc.ArgumentError as e:
            raise StoreUnavailable(f"invalid database URL {self.safe_url}", details={"field": "database_url"}) from e
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._migrated = False
        self._lock = threading.Lock()
        if self.is_sqlite:
            db_path = parsed.database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                url,
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
                pool_size=8,
                max_overflow=16,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
            )
            self._configure_sqlite(self.engine, busy_timeout)
        else:
            try:
                self.engine = sa.create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=5,
                    max_overflow=10,
                    json_serializer=_json_dumps,
                    json_deserializer=orjson.loads,
                    connect_args={"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {},
                )
            except (exc.ArgumentError, ImportError, exc.NoSuchModuleError) as e:
                raise StoreUnavailable(
                    f"cannot use the database {self.safe_url}: {e}. For PostgreSQL install "
                    "'modelsteward[postgres]' and use postgresql+psycopg://...",
                    details={"field": "database_url"},
                ) from e

    @staticmethod
    def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Let SQLAlchemy's "begin" hook below decide how transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get("steward_autocommit"):
                return  # each statement runs in its own implicit transaction
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("steward_write") else "BEGIN")

    # -- transactions -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self, *, single_statement: bool = False) -> Iterator[Connection]:
        """A read-only transaction. ``single_statement`` promises that one statement's own snapshot
        is enough (or that the rows read cannot change), which spares SQLite its BEGIN/COMMIT."""
        self.migrate()
        with self._translate_errors(), self.engine.connect() as conn:
            if single_statement:
                conn = conn.execution_options(steward_autocommit=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back on any error."""
        self.migrate()
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(steward_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except exc.OperationalError as e:
            text = str(e.orig) if e.orig is not None else str(e)
            if "locked" in text or "busy" in text:
                raise StoreUnavailable(
                    "the metadata database is busy (another writer holds the lock); try again",
                    details={"database": self.safe_url},
                ) from e
            raise StoreUnavailable(
                f"the metadata database {self.safe_url} is unreachable: {text.strip().splitlines()[0]}",
                details={"database": self.safe_url},
            ) from e
        except exc.InterfaceError as e:
            raise StoreUnavailable(
                f"the metadata database {self.safe_url} is unreachable", details={"database": self.safe_url}
            ) from e

    # -- schema --------------------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        with self._translate_errors(), self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Bring the schema to the newest revision once per process (cheap when already there)."""
        if self._migrated:
            return
        with self._lock:
            if self._migrated:
                return
            if self.current_revision() != HEAD_REVISION:
                self._run_alembic()
            self._migrated = True

    def _run_alembic(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(steward_write=True)
            with conn.begin():
                if not self.is_sqlite:
                    # Several workers may start at once: one migrates, the others wait and find it done.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7311022419)"))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    def ping(self) -> None:
        with self._translate_errors(), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
