"""Steward's own problems as alerts: a change of state reported once, and recorded later when the store cannot."""

from __future__ import annotations

import logging
import threading
from typing import Any

from modelsteward.alerts.service import AlertService

log = logging.getLogger(__name__)


class SystemAlarm:
    """Raises and clears the alerts of Steward's own conditions (a worker cannot write its prediction log).

    ``report`` is meant for a change of state, from a background thread (a log's writer thread), never per
    request. When the metadata store cannot record it (the database is down, or shares the full disk), the
    latest state per (source, subject) is kept and ``retry`` records it: call it when the condition is seen
    again (each failed write), so nothing waits on a timer and nothing is recorded twice.

    >>> alarm = SystemAlarm(alerts)                                                    # doctest: +SKIP
    >>> alarm.report("prediction-log", "host-12", problem=True, title="disk full", details={})   # doctest: +SKIP
    """

    def __init__(self, alerts: AlertService) -> None:
        self.alerts = alerts
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}

    def report(self, source: str, subject: str, *, problem: bool, title: str, details: dict[str, Any]) -> None:
        """Raise (``problem``) or clear ``source`` for ``subject``; never raises."""
        with self._lock:
            self._pending[source, subject] = {"problem": problem, "title": title, "details": details}
            self._record(source, subject, first=True)

    def retry(self) -> None:
        """Record the states the store could not take before (cheap when there are none)."""
        if not self._pending:
            return
        with self._lock:
            for source, subject in list(self._pending):
                self._record(source, subject, first=False)

    @property
    def pending(self) -> int:
        """States not recorded yet."""
        return len(self._pending)

    def _record(self, source: str, subject: str, *, first: bool) -> None:
        state = self._pending[source, subject]
        try:
            self.alerts.evaluate_system(source, subject=subject, **state)
        except Exception as e:  # noqa: BLE001 - the caller is a writer thread that must go on
            log.log(
                logging.ERROR if first else logging.DEBUG,
                "could not record the %s alert of %s (%s: %s); it is kept and recorded when the store answers",
                source,
                subject,
                type(e).__name__,
                e,
            )
            return
        del self._pending[source, subject]
        if not first:
            log.warning("recorded the %s alert of %s that the store could not take before", source, subject)
