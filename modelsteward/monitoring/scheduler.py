"""The in-process scheduler of ``steward up``: runs due monitors, the life-cycle engine's round and
alert notifications.

Restart-safe and exactly-once by construction: a monitor is due when its schedule's next fire time
after its LAST STORED RUN has passed, so a restarted process resumes where the store stands, and a
lease row in the metadata database lets only one process at a time (of several workers or machines)
run scheduled work. Missed fires during downtime collapse into one run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from modelsteward.domain.monitoring import Monitor, parse_duration
from modelsteward.errors import InvalidArgument, StewardError
from modelsteward.monitoring.service import MonitorService
from modelsteward.store.catalog_repo import utc
from modelsteward.store.database import Database
from modelsteward.store.tables import scheduler_lease

log = logging.getLogger("modelsteward.scheduler")


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first time after ``after`` that ``schedule`` (cron ``"*/15 * * * *"`` or an interval
    ``"15m"``) fires."""
    try:
        return after + parse_duration(schedule)
    except ValueError:
        pass
    from apscheduler.triggers.cron import CronTrigger

    try:
        trigger = CronTrigger.from_crontab(schedule, timezone=UTC)
    except ValueError as e:
        raise InvalidArgument(
            f"invalid schedule {schedule!r}: use cron ('*/15 * * * *') or an interval ('15m'): {e}",
            details={"field": "schedule"},
        ) from e
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    assert fire is not None
    return fire


class Scheduler:
    """Ticks every ``interval`` seconds; the lease holder runs what is due."""

    def __init__(
        self,
        db: Database,
        monitors: MonitorService,
        *,
        holder: str,
        dispatcher: Any = None,
        interval: float = 1.0,
        lease: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rounds: list[Callable[[datetime], Any]] | None = None,
    ) -> None:
        """``rounds``: more work for the lease holder each round (the life-cycle engine's tick)."""
        self.rounds = list(rounds or [])
        self.db = db
        self.monitors = monitors
        self.holder = holder
        self.dispatcher = dispatcher
        self.interval = interval
        self.lease = lease
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # -- the lease ----------------------------------------------------------------------------------

    def hold_lease(self, now: datetime | None = None) -> bool:
        """Take or renew the lease; False while another live process holds it."""
        now = now or self.clock()
        expires = now + timedelta(seconds=self.lease)
        table = scheduler_lease
        with self.db.write() as conn:
            taken = conn.execute(
                table.update()
                .where(table.c.id == 1, sa.or_(table.c.holder == self.holder, table.c.expires_at < now))
                .values(holder=self.holder, expires_at=expires)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(sa.select(table.c.holder).where(table.c.id == 1)).first()
            if exists is None:
                conn.execute(table.insert().values(id=1, holder=self.holder, expires_at=expires))
                return True
        return False

    @contextlib.contextmanager
    def _lease_kept(self, now: datetime, round_started: datetime) -> Iterator[None]:
        """Renews the lease from a side thread while one piece of work runs: a single monitor that takes
        longer than the lease (a large window on Dask) must not let another process take over and run it
        again. Renewals keep the round's timeline (``now`` plus the time elapsed since it started)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    if not self.hold_lease(now + (self.clock() - round_started)):
                        log.warning("scheduler lease lost while work ran (this process stalled past it)")
                        return
                except StewardError as e:  # the database away for a moment: the next beat tries again
                    log.warning("scheduler lease not renewed: %s", e.message)

        thread = threading.Thread(target=beat, name="steward-scheduler-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def release_lease(self) -> None:
        with self.db.write() as conn:
            conn.execute(
                scheduler_lease.update()
                .where(scheduler_lease.c.id == 1, scheduler_lease.c.holder == self.holder)
                .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
            )

    # -- what is due ---------------------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> list[Monitor]:
        now = now or self.clock()
        return [m for m in self.monitors.list() if self._is_due(m, now)]

    def _is_due(self, monitor: Monitor, now: datetime) -> bool:
        if not monitor.enabled or not monitor.spec.schedule:
            return False
        last = self.monitors.results(monitor.name, limit=1)
        after = last[0].window_end if last else utc(monitor.created_at)
        try:
            return next_fire(monitor.spec.schedule, after) <= now
        except InvalidArgument as e:
            self.last_error = f"{monitor.name}: {e.message}"
            return False

    def tick(self, now: datetime | None = None) -> list[str]:
        """One round: if this process holds the lease, run the due monitors and send notifications.
        Returns the monitors it ran. A failure is recorded and never stops the loop."""
        now = now or self.clock()
        round_started = self.clock()
        ran: list[str] = []
        try:
            if not self.hold_lease(now):
                return ran
            for monitor in self.due(now):
                # A round can outlast the lease (many monitors, slow ones): renew it before each monitor, at
                # the round's time plus what has elapsed, else another process takes it over and runs the
                # same fires again. Lost meanwhile (this process stalled), the round stops; and a fire that
                # another holder ran meanwhile is no longer due.
                if not self.hold_lease(now + (self.clock() - round_started)):
                    log.warning("scheduler lease lost during a round; %s left to its new holder", monitor.name)
                    return ran
                if not self._is_due(monitor, now):
                    continue
                try:
                    with self._lease_kept(now, round_started):
                        self.monitors.run(monitor.name, at=now, actor="scheduler")
                    ran.append(monitor.name)
                except StewardError as e:
                    self.last_error = f"{monitor.name}: {e.message}"
                    log.warning("scheduled run of %s failed: %s", monitor.name, e.message)
            for extra in self.rounds:
                try:
                    with self._lease_kept(now, round_started):
                        extra(now)
                except StewardError as e:
                    self.last_error = e.message
                    log.warning("scheduler round %s failed: %s", getattr(extra, "__qualname__", extra), e.message)
            if self.dispatcher is not None:
                self.dispatcher.run_once(now)
        except StewardError as e:  # e.g. the database is unreachable for a moment
            self.last_error = e.message
            log.warning("scheduler round failed: %s", e.message)
        return ran

    # -- the thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="steward-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("scheduler round crashed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        try:
            self.release_lease()
        except StewardError:
            pass
