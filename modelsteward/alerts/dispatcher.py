"""The dispatcher: sends the deliveries outbox, retries with back-off, and gives up visibly, never silently."""

from __future__ import annotations

import logging
import os
import random
import threading
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import httpx

from modelsteward.alerts.channels import DeliveryError, Notice, Sender, default_senders
from modelsteward.alerts.service import AlertService
from modelsteward.domain.monitoring import Alert, Delivery
from modelsteward.errors import InvalidArgument, StewardError
from modelsteward.store import alert_repo, event_repo
from modelsteward.store.catalog_repo import now as utc_now
from modelsteward.store.database import Database

log = logging.getLogger("modelsteward.alerts")


def _utc(value: datetime) -> datetime:
    # Stored times are UTC; a naive time given by a caller is taken as UTC too.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Dispatcher:
    """Sends pending deliveries: at least once, never twice at the same time, and never dropped.

    ``run_once()`` claims the due deliveries in a short transaction (on PostgreSQL with
    ``FOR UPDATE SKIP LOCKED``, so any number of dispatchers share the work), sends each outside
    the transaction and records the outcome. A claim is a lease: if a dispatcher dies mid-send,
    the delivery is due again after ``lease`` seconds. Failed attempts wait
    ``min(max_delay, base_delay * 2**(attempts-1))``, scaled by a random factor in [0.5, 1] so
    receivers that come back are not hit by every worker at once; after ``max_attempts`` the
    delivery is ``failed``, kept and listed, with an audit event, until retried by hand.

    >>> dispatcher = Dispatcher(db, base_url="https://steward.example.com/ui")
    >>> dispatcher.start()   # a background thread calling run_once() every second
    >>> dispatcher.stop()
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_attempts: int = 10,
        base_delay: float = 10.0,
        max_delay: float = 3600.0,
        timeout: float = 5.0,
        lease: float = 120.0,
        batch_size: int = 50,
        interval: float = 1.0,
        base_url: str | None = None,
        senders: Mapping[str, Sender] | None = None,
        env: Mapping[str, str] | None = None,
        actor: str = "dispatcher",
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1 or base_delay <= 0 or max_delay < base_delay or batch_size < 1:
            raise InvalidArgument(
                "the dispatcher needs max_attempts >= 1, 0 < base_delay <= max_delay and batch_size >= 1",
                details={"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay},
            )
        if lease < 2 * timeout:
            raise InvalidArgument("lease must be at least twice the send timeout", details={"lease": lease})
        self.db = db
        self.clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.batch_size = batch_size
        self.interval = interval
        self.base_url = base_url.rstrip("/") if base_url else None
        self.env = env if env is not None else os.environ
        self.actor = actor
        self.timeout = timeout
        self._rng = rng or random.Random()
        self._given_senders = dict(senders) if senders is not None else None
        self._senders: dict[str, Sender] | None = self._given_senders
        self._http: httpx.Client | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """Send every delivery due at ``now`` (default: the clock), one batch at a time; returns how
        many were sent successfully. Failures are recorded on the deliveries, not raised."""
        at = _utc(now) if now is not None else _utc(self.clock())
        sent = 0
        with self.db.read(single_statement=True) as conn:
            if not alert_repo.any_due(conn, now=at):
                return 0
        while True:
            with self.db.write() as conn:
                claims = alert_repo.claim_due(
                    conn, now=at, lease_until=at + timedelta(seconds=self.lease), limit=self.batch_size
                )
            for claim in claims:
                sent += self._deliver(claim, at if now is not None else _utc(self.clock()))
            if len(claims) < self.batch_size or self._halting():
                break
        return sent

    def _halting(self) -> bool:
        # Only the background thread stops between batches; a direct call always drains what is due.
        return self._thread is not None and self._stop.is_set()

    @property
    def senders(self) -> dict[str, Sender]:
        if self._senders is None:
            self._http = httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False)
            self._senders = dict(default_senders(self._http, timeout=self.timeout))
        return self._senders

    def _deliver(self, claim: alert_repo.Claim, at: datetime) -> int:
        try:
            self._send(claim)
        except DeliveryError as e:
            self._record_failure(claim, e.message, at)
            return 0
        except Exception as e:  # noqa: BLE001 - a broken sender must not stop the others
            self._record_failure(claim, f"internal error in the {claim.channel!r} sender: {type(e).__name__}", at)
            # Where it broke, but not the exception's text: that may quote a secret.
            where = "".join(traceback.format_tb(e.__traceback__))
            log.error("alert delivery %s: the sender raised %s\n%s", claim.id, type(e).__name__, where)
            return 0
        with self.db.write() as conn:
            recorded = alert_repo.record_sent(conn, claim, at=at)
        if not recorded:
            log.warning("alert delivery %s was sent after its claim lapsed; it may be sent again", claim.id)
        return 1

    def _send(self, claim: alert_repo.Claim) -> None:
        with self.db.read() as conn:
            channel = alert_repo.get_channel(conn, claim.channel)
        if channel is None:
            raise DeliveryError(f"channel {claim.channel!r} no longer exists")
        sender = self.senders.get(channel.type)
        if sender is None:
            raise DeliveryError(f"no sender for channel type {channel.type!r}")
        alert = Alert.model_validate(claim.payload["alert"])
        url = f"{self.base_url}/alerts/{alert.id}" if self.base_url else None
        event = "resolve" if claim.event == "resolve" else "fire"
        sender.send(channel, Notice(claim.id, event, alert, url), self.env)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure: exponential, capped, with jitter."""
        delay = min(self.max_delay, self.base_delay * 2 ** min(attempts - 1, 60))
        return delay * (0.5 + 0.5 * self._rng.random())

    def _record_failure(self, claim: alert_repo.Claim, error: str, at: datetime) -> None:
        attempts = claim.attempts + 1
        give_up = attempts >= self.max_attempts
        next_at = None if give_up else at + timedelta(seconds=self.backoff(attempts))
        with self.db.write() as conn:
            recorded = alert_repo.record_failure(conn, claim, error=error, next_attempt_at=next_at)
            if recorded and give_up:
                event_repo.append_event(
                    conn,
                    actor=self.actor,
                    action="delivery.failed",
                    details={
                        "delivery": claim.id,
                        "alert": claim.alert_id,
                        "channel": claim.channel,
                        "event": claim.event,
                        "attempts": attempts,
                        "last_error": error,
                    },
                )
        if give_up:
            log.error(
                "alert delivery %s to %s failed for good after %d attempts: %s",
                claim.id,
                claim.channel,
                attempts,
                error,
            )
        else:
            log.warning("alert delivery %s to %s failed (attempt %d): %s", claim.id, claim.channel, attempts, error)

    def retry(self, delivery_id: int, *, actor: str = "dispatcher") -> Delivery:
        """Make a failed delivery due now (see ``AlertService.retry_delivery``)."""
        return AlertService(self.db, clock=self.clock).retry_delivery(delivery_id, actor)

    # -- background thread ---------------------------------------------------------------------------

    def start(self) -> None:
        """Call ``run_once()`` every ``interval`` seconds in a daemon thread until ``stop()``."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="steward-alert-dispatcher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except StewardError as e:  # the database is busy or away: try again next tick
                log.warning("alert dispatcher: %s", e.message)
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad pass
                log.exception("alert dispatcher: unexpected error")
            self._stop.wait(self.interval)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread and wait for it (the batch in hand is finished first), then close connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def close(self) -> None:
        """Close the HTTP connection pool (it is opened again when needed)."""
        if self._http is not None:
            self._http.close()
            self._http = None
            self._senders = self._given_senders
