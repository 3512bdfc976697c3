"""The dispatcher: retries with back-off, gives up visibly, retries by hand, never sends twice, never leaks secrets."""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alert_helpers import Clock, Receiver, add_rule, add_webhook, free_port, result

from modelsteward.alerts import AlertService, Dispatcher
from modelsteward.domain.monitoring import Channel
from modelsteward.errors import Conflict, InvalidArgument
from modelsteward.store import alert_repo, event_repo
from modelsteward.store.catalog_repo import now as utc_now
from modelsteward.store.database import Database
from modelsteward.store.tables import deliveries, events


@pytest.fixture
def make(db: Database, clock: Clock) -> Iterator[Callable[..., Dispatcher]]:
    """``make(**options)``: a dispatcher on the test's store and clock, closed after the test."""
    made: list[Dispatcher] = []

    def build(**options: Any) -> Dispatcher:
        options.setdefault("clock", clock)
        made.append(Dispatcher(db, **options))
        return made[-1]

    yield build
    for dispatcher in made:
        dispatcher.stop()


def fire(service: AlertService, url: str, **channel: object) -> int:
    add_webhook(service, "ops", url, **channel)
    add_rule(service, channels=["ops"])
    [alert] = service.evaluate_result(result())
    return alert.id


def test_a_receiver_failing_twice_gets_the_third_attempt(
    service: AlertService, db: Database, clock: Clock, receiver_factory: type[Receiver], make: Callable[..., Dispatcher]
) -> None:
    receiver = receiver_factory(statuses=[500, 503])
    fire(service, receiver.url)
    dispatcher = make(base_delay=10, max_delay=600, rng=random.Random(7))
    t = clock.now

    assert dispatcher.run_once(now=t) == 0
    [first] = service.list_deliveries()
    assert first.status == "pending" and first.attempts == 1
    assert first.last_error == "HTTP 500 from 127.0.0.1: error"
    assert t + timedelta(seconds=5) <= first.next_attempt_at <= t + timedelta(seconds=10)
    assert dispatcher.run_once(now=first.next_attempt_at - timedelta(seconds=1)) == 0  # not due yet
    assert len(receiver.requests) == 1

    assert dispatcher.run_once(now=first.next_attempt_at) == 0
    [second] = service.list_deliveries()
    assert second.attempts == 2 and second.last_error.startswith("HTTP 503")
    wait = second.next_attempt_at - first.next_attempt_at
    assert timedelta(seconds=10) <= wait <= timedelta(seconds=20)  # doubled, with jitter

    assert dispatcher.run_once(now=second.next_attempt_at) == 1
    [done] = service.list_deliveries()
    assert done.status == "sent" and done.attempts == 3 and done.sent_at == second.next_attempt_at
    assert done.last_error is None and done.next_attempt_at is None
    assert len(receiver.requests) == 3
    assert {r.headers["x-steward-delivery"] for r in receiver.requests} == {str(done.id)}


def test_backoff_is_exponential_capped_and_jittered(db: Database) -> None:
    dispatcher = Dispatcher(db, base_delay=10, max_delay=100, rng=random.Random(3))
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (40, 100)]:
        delays = [dispatcher.backoff(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    with pytest.raises(InvalidArgument):
        Dispatcher(db, base_delay=10, max_delay=1)


def test_a_receiver_down_for_good_fails_visibly_and_can_be_retried_by_hand(
    service: AlertService, db: Database, clock: Clock, receiver: Receiver, make: Callable[..., Dispatcher]
) -> None:
    alert_id = fire(service, f"http://127.0.0.1:{free_port()}/hook")  # nobody listens there
    dispatcher = make(max_attempts=4, base_delay=1, max_delay=10, timeout=1.0)
    now = clock.now
    for _ in range(8):
        dispatcher.run_once(now=now)
        now += timedelta(minutes=5)

    [failed] = service.list_deliveries(status="failed")
    assert failed.alert_id == alert_id and failed.attempts == 4 and failed.next_attempt_at is None
    assert "ConnectError" in (failed.last_error or "")
    assert service.delivery_counts() == {"pending": 0, "sent": 0, "failed": 1}
    with db.read() as conn:
        [given_up] = [e for e in event_repo.list_events(conn) if e.action == "delivery.failed"]
    assert given_up.details["delivery"] == failed.id and given_up.details["attempts"] == 4

    # The receiver is fixed; someone retries by hand: one more attempt, now.
    service.put_channel(Channel(name="ops", type="webhook", url=receiver.url), actor="ana")
    clock.now = now
    retried = dispatcher.retry(failed.id, actor="bob")
    assert retried.status == "pending" and retried.next_attempt_at == now
    assert dispatcher.run_once(now=now) == 1
    done = service.list_deliveries(alert_id=alert_id)[0]
    assert done.status == "sent" and done.attempts == 5
    with pytest.raises(Conflict, match="already sent"):
        service.retry_delivery(done.id, actor="bob")


def test_a_claimed_delivery_whose_dispatcher_died_is_sent_after_the_lease(
    service: AlertService, db: Database, clock: Clock, receiver: Receiver, make: Callable[..., Dispatcher]
) -> None:
    fire(service, receiver.url)
    with db.write() as conn:  # a dispatcher claims the delivery, then dies before sending
        [claim] = alert_repo.claim_due(conn, now=clock.now, lease_until=clock.now + timedelta(seconds=120), limit=10)
    dispatcher = make(lease=120)
    assert dispatcher.run_once(now=clock.now + timedelta(seconds=60)) == 0
    assert dispatcher.run_once(now=clock.now + timedelta(seconds=121)) == 1
    assert service.list_deliveries()[0].status == "sent" and len(receiver.requests) == 1
    with db.write() as conn:  # the dead dispatcher's late write-back changes nothing
        assert not alert_repo.record_sent(conn, claim, at=clock.now)


def test_two_dispatchers_never_send_a_delivery_twice(
    service: AlertService, db: Database, clock: Clock, receiver_factory: type[Receiver]
) -> None:
    receiver = receiver_factory(delay=0.002)
    names = [f"hook-{i}" for i in range(8)]
    for name in names:
        add_webhook(service, name, receiver.url)
    add_rule(service, channels=names)
    for _ in range(3):
        service.evaluate_result(result())
        service.evaluate_result(result(status="ok"))
    expected = {str(d.id) for d in service.list_deliveries(limit=1000)}
    assert len(expected) == 48

    workers = [Database(db.url) for _ in range(2)]
    dispatchers = [Dispatcher(w, clock=clock, batch_size=3) for w in workers]
    start = threading.Barrier(2)
    sent: list[int] = []

    def work(dispatcher: Dispatcher) -> None:
        start.wait()
        sent.append(dispatcher.run_once(now=clock.now))

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for dispatcher, worker in zip(dispatchers, workers, strict=True):
        dispatcher.close()
        worker.dispose()

    counts = Counter(r.headers["x-steward-delivery"] for r in receiver.requests)
    assert set(counts) == expected and max(counts.values()) == 1
    assert sum(sent) == 48 and all(n > 0 for n in sent)  # both did part of the work
    assert service.delivery_counts() == {"pending": 0, "sent": 48, "failed": 0}


def test_secrets_never_reach_stored_errors_events_or_logs(
    service: AlertService,
    db: Database,
    clock: Clock,
    receiver_factory: type[Receiver],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    make: Callable[..., Dispatcher],
) -> None:
    secrets = {"JIRA_AUTH": "jira-bot:S3CRET-token-123", "HOOK_PATH": "T0/B0/S3CRET-path-456", "HMAC": "S3CRET-hmac"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    echo = receiver_factory(statuses=[401] * 10, echo_headers=True)  # its error page repeats our headers
    channels = [
        Channel(name="jira", type="ticket", url=echo.url, project="OPS", secret_env="JIRA_AUTH"),
        Channel(name="slack", type="slack", url=f"http://127.0.0.1:{free_port()}/${{HOOK_PATH}}"),
        Channel(name="hook", type="webhook", url=echo.url, secret_env="HMAC"),
    ]
    for channel in channels:
        service.put_channel(channel, actor="ana")
    add_rule(service, channels=["jira", "slack", "hook"])
    service.evaluate_result(result())
    dispatcher = make(max_attempts=2, base_delay=1, max_delay=2, timeout=1.0)
    with caplog.at_level(logging.DEBUG, logger="modelsteward"):
        dispatcher.run_once(now=clock.now)
        dispatcher.run_once(now=clock.now + timedelta(minutes=1))

    assert service.delivery_counts()["failed"] == 3
    basic = base64.b64encode(secrets["JIRA_AUTH"].encode()).decode()
    assert len(echo.requests) == 4 and f"Basic {basic}" in [r.headers.get("authorization") for r in echo.requests]
    with db.read() as conn:
        stored = [str(v) for row in conn.execute(sa.select(deliveries)) for v in row]
        stored += [str(v) for row in conn.execute(sa.select(events)) for v in row]
    errors = [d.last_error or "" for d in service.list_deliveries()]
    assert all(errors) and any("***" in e for e in errors)
    assert any(e.startswith("HTTP 401 from 127.0.0.1: denied: Basic ***") for e in errors)
    for text in [*stored, caplog.text]:
        for value in [*secrets.values(), basic]:
            assert value not in text
        assert "S3CRET" not in text


def test_a_broken_sender_is_a_recorded_failure_not_a_crash(
    service: AlertService, db: Database, clock: Clock, make: Callable[..., Dispatcher]
) -> None:
    class Exploding:
        def render(self, channel: Channel, notice: object) -> object:
            return {}

        def send(self, channel: Channel, notice: object, env: object) -> None:
            raise KeyError("boom")

    fire(service, "http://127.0.0.1:9/hook")
    dispatcher = make(senders={"webhook": Exploding()})
    assert dispatcher.run_once(now=clock.now) == 0
    [delivery] = service.list_deliveries()
    assert delivery.attempts == 1 and "internal error" in (delivery.last_error or "")


def test_the_background_thread_sends_and_stops(
    service: AlertService, db: Database, receiver: Receiver, make: Callable[..., Dispatcher]
) -> None:
    fire(service, receiver.url)
    dispatcher = make(interval=0.02, clock=utc_now)
    dispatcher.start()
    try:
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        dispatcher.stop()
    assert len(receiver.requests) == 1
    assert service.list_deliveries()[0].status == "sent"
    assert not any(t.name == "steward-alert-dispatcher" for t in threading.enumerate())
