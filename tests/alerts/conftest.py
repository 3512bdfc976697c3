"""Alerting fixtures: a migrated store on each backend, a hand-driven clock, a local HTTP receiver and SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alert_helpers import Clock, MailCollector, Receiver, free_port

from modelsteward.alerts import AlertService
from modelsteward.settings import Settings
from modelsteward.store.database import Database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(backend: Settings) -> Iterator[Database]:
    database = Database(backend.resolved_database_url())
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def service(db: Database, clock: Clock) -> AlertService:
    return AlertService(db, clock=clock)


@pytest.fixture
def receiver_factory() -> Iterator[type[Receiver]]:
    """``receiver_factory(statuses=[500, 500])`` starts a receiver that is shut down after the test."""
    made: list[Receiver] = []

    class Made(Receiver):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    yield Made
    for server in made:
        server.close()


@pytest.fixture
def receiver(receiver_factory: type[Receiver]) -> Receiver:
    return receiver_factory()


@pytest.fixture
def smtp_server() -> Iterator[tuple[MailCollector, int]]:
    from aiosmtpd.controller import Controller

    collector = MailCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield collector, controller.port
    controller.stop()
