"""Shared fixtures: store backends (SQLite and PostgreSQL), embedded and remote facades, demo data."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from modelsteward.settings import Settings

# In CI the PostgreSQL server must be there: a missing server fails the run instead of skipping.
PG_ADMIN_URL = os.environ.get("STEWARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own STEWARD_* settings must not leak into tests.
    for key in list(os.environ):
        if key.startswith("STEWARD_") and key != "STEWARD_TEST_PG_URL":
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session, dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"steward_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {type(e).__name__}: {str(e).splitlines()[0]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message + " (these tests run in CI)")
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        has_schema = conn.execute(sa.text("SELECT to_regclass('public.catalog_state')")).scalar()
        if has_schema:
            tables = (
                conn.execute(
                    sa.text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename NOT IN ('alembic_version', 'catalog_state')"
                    )
                )
                .scalars()
                .all()
            )
            if tables:
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            conn.execute(sa.text(f"UPDATE catalog_state SET generation = 0, head_hash = '{'0' * 64}'"))
    engine.dispose()


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    _reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data", user="tester")
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return Settings(data_dir=tmp_path / "data", database_url=url, user="tester")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``steward up`` in a thread: a real uvicorn serving the API on a free port."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from modelsteward.api.app import create_server

        self.app = create_server(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.steward.close()


@pytest.fixture
def server_factory() -> type[LiveServer]:
    """``with server_factory(settings) as server:`` runs a real server for the block."""
    return LiveServer


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(data_dir=tmp_path / "server-data", user="server")) as server:
        yield server


@pytest.fixture(params=["embedded", "remote"])
def steward(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """The facade, once embedded and once remote against a live server: the SDK tests run on both."""
    from modelsteward import Steward

    if request.param == "embedded":
        st = Steward(data_dir=tmp_path / "data")
        yield st
        st.close()
        return
    with LiveServer(Settings(data_dir=tmp_path / "server-data", user="server")) as server:
        st = Steward(url=server.url)
        yield st
        st.close()


@pytest.fixture(scope="session")
def credit_data() -> tuple[pd.DataFrame, pd.Series]:
    """A small credit-like table with numeric and categorical columns and a binary target."""
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "income": rng.normal(52_000, 15_000, n).round(0),
            "debt_to_income": rng.uniform(0.05, 0.8, n).round(3),
            "age": rng.integers(21, 75, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    logit = -2 + 4 * frame["debt_to_income"] - frame["income"] / 50_000 + (frame["region"] == "south") * 0.5
    target = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int), name="defaulted")
    return frame, target


@pytest.fixture(scope="session")
def numeric_model(credit_data: tuple[pd.DataFrame, pd.Series]) -> tuple[object, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    frame, target = credit_data
    numeric = frame[["income", "debt_to_income", "age"]]
    return LogisticRegression(max_iter=500).fit(numeric, target), numeric
