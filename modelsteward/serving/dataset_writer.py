"""The background writer behind the prediction and feedback logs: a per-process queue flushed as Parquet parts.

``append`` only puts a reference to the caller's batch on a list under a lock held for a few hundred nanoseconds;
a daemon thread swaps the list out every ``flush_interval`` seconds (or as soon as ``max_buffer_rows`` rows wait),
converts the batches to Arrow, and writes one part per (deployment, date). Nothing crosses processes: each process
(server worker) owns its writers, and part names carry the worker name and a per-run id so they never collide.
"""

from __future__ import annotations

import abc
import atexit
import logging
import math
import os
import re
import secrets
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from modelsteward.domain.refs import check_name
from modelsteward.errors import InvalidArgument, StoreUnavailable
from modelsteward.serving.log_columns import DAY_NS, TS_TYPES, ts_to_ns, unify_tables
from modelsteward.serving.log_storage import PART_SUFFIX, open_storage
from modelsteward.settings import strip_credentials

log = logging.getLogger(__name__)

_WORKER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EPOCH = date(1970, 1, 1)
_time_ns = time.time_ns

ErrorCallback = Callable[[BaseException], None]


@dataclass(frozen=True)
class LogHealth:
    """A change of a log's health, passed to ``on_health`` on the writer thread, once per change.

    ``failing`` turns true when ``alert_after_failures`` writes in a row have failed (the rows are kept and
    retried), and false again once every kept row is written. Everything here is plain data, for an alert's
    details, a metric or a log line.
    """

    what: str  # "prediction" or "feedback"
    worker: str
    root: str  # the log's directory or URL, without credentials
    failing: bool
    error: str | None  # the last failure, "OSError: [Errno 28] No space left on device"
    errno: int | None
    failed_attempts: int  # in a row, in this episode
    since: datetime | None  # when the first of them failed (UTC)
    queue_depth: int
    max_queue_rows: int
    rows_rejected: int  # refused with LogFull since this process started

    def describe(self) -> str:
        """One line for people: which log, where, and why it fails."""
        where = f"the {self.what} log of worker {self.worker} at {self.root}"
        if not self.failing:
            return f"{where} is written again ({self.failed_attempts} failed attempts before)"
        return (
            f"{where} cannot be written ({self.failed_attempts} attempts in a row failed; "
            f"{self.queue_depth:,} rows waiting, limit {self.max_queue_rows:,}): {self.error}"
        )


HealthCallback = Callable[[LogHealth], None]


class LogUnavailable(StoreUnavailable):
    """A log cannot take or keep rows right now: it is closed, or its writes keep failing (HTTP 503)."""


class LogFull(LogUnavailable):
    """Back-pressure: more than ``max_queue_rows`` rows wait to be written, so this batch was refused (HTTP 503).

    Nothing was queued: the caller should answer 503 (the client retries later) rather than serve an unlogged
    prediction. It happens only when the writer falls behind or its writes fail (see ``last_error``).
    """


def default_worker_name() -> str:
    """``<host>-<pid>``: unique among the processes writing to one dataset at a time."""
    import socket

    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40].strip("-._") or "host"
    return f"{host}-{os.getpid()}"


def day_string(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


class DatasetWriter(abc.ABC):
    """One process's writer of one hive-partitioned Parquet dataset; subclasses say what a batch looks like.

    Subclasses set ``batch_type`` (a NamedTuple with a ``ts`` field) and implement ``_rows`` (validate a batch on
    the caller's thread, return its row count) and ``_table`` (on the writer thread).
    """

    batch_type: type = tuple
    what = "dataset"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        fields = getattr(cls.batch_type, "_fields", ())
        if "ts" in fields:
            cls._ts_field = fields.index("ts")

    _ts_field = -1

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        worker: str,
        flush_interval: float = 1.0,
        max_buffer_rows: int = 50_000,
        max_queue_rows: int = 1_000_000,
        on_error: ErrorCallback | None = None,
        on_health: HealthCallback | None = None,
        alert_after_failures: int = 3,
        # Fresh parts favour speed (LZ4 costs a third of zstd's CPU on the request-serving process);
        # the compactor rewrites them with zstd when it merges them.
        compression: str = "lz4",
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if not isinstance(worker, str) or not _WORKER.fullmatch(worker):
            raise InvalidArgument(
                f"invalid worker name {worker!r}: use 1-64 letters, digits, '.', '_' or '-'",
                details={"field": "worker", "value": str(worker)},
            )
        if flush_interval <= 0 or max_buffer_rows < 1 or max_queue_rows < max_buffer_rows or alert_after_failures < 1:
            raise InvalidArgument(
                "need flush_interval > 0, 1 <= max_buffer_rows <= max_queue_rows and alert_after_failures >= 1",
                details={"flush_interval": flush_interval, "max_buffer_rows": max_buffer_rows},
            )
        self.root = os.fspath(root)
        self.worker = worker
        self.flush_interval = float(flush_interval)
        self.max_buffer_rows = int(max_buffer_rows)
        self.max_queue_rows = int(max_queue_rows)
        self.on_error = on_error
        self.on_health = on_health
        self.alert_after_failures = int(alert_after_failures)
        self.display_root = strip_credentials(self.root)  # safe for logs, alerts and metrics
        self.compression = compression
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._storage = open_storage(self.root)
        # The run id keeps part names unique when a worker name comes back after a restart.
        self._run_id = f"{int(time.time()):08x}{secrets.token_hex(2)}"
        self._seq = 0
        self._deployments: set[str] = set()

        self._lock = threading.Lock()  # guards the pending lists, _depth, _since_flush, _closed, _requested, _stopping
        self._wake = threading.Event()
        self._done = threading.Condition(threading.Lock())
        # Pending appends as three parallel lists: no tuple per append (cheaper, and less work for the GC).
        self._deps: list[str] = []
        self._batches: list[Any] = []
        self._nows: list[int] = []
        self._depth = 0
        self._since_flush = 0
        self._closed = False
        self._stopping = False
        self._forked = False
        self._requested = 0
        self._completed = 0

        # Writer-thread state: tables not written yet (their write failed; retried with backoff).
        self._unwritten: dict[tuple[str, int], list[pa.Table]] = {}
        self._backoff = 0.0
        self._streak = 0  # failed writes in a row
        self._streak_since: datetime | None = None
        self._errors_before = 0  # write_errors when this episode of failures began
        self._refusing = False  # set by append when it refuses a batch, cleared once the queue is written
        self.failing = False

        self.rows_written = 0
        self.files_written = 0
        self.write_errors = 0
        self.rows_rejected = 0
        self.rows_dropped = 0
        self.last_error: BaseException | None = None

        self._thread = threading.Thread(target=self._loop, name=f"{type(self).__name__}[{worker}]", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    # -- the caller's side -------------------------------------------------------------------------------------

    def append(self, deployment: str, batch: Any) -> None:
        """Queue one request's rows for ``deployment``; returns at once (no I/O, no Arrow work).

        The log takes ownership of the batch: do not mutate its arrays afterwards. Raises
        :class:`~modelsteward.errors.InvalidArgument` for a malformed batch, :class:`LogFull` (503) when more than
        ``max_queue_rows`` rows already wait to be written (nothing is queued then), and :class:`LogUnavailable`
        (503) once the log is closed.
        """
        if deployment not in self._deployments:
            self._check_deployment(deployment)
        n = self._rows(batch)
        if not n:
            return
        with self._lock:
            if self._closed:
                raise self._closed_error()
            depth = self._depth
            if depth and depth + n > self.max_queue_rows:
                self.rows_rejected += n
                self._refusing = True
                full = True
            else:
                full = False
                self._depth = depth + n
                self._deps.append(deployment)
                self._batches.append(batch)
                self._nows.append(_time_ns())
                self._since_flush += n
                wake = self._since_flush >= self.max_buffer_rows
        if full:
            raise LogFull(
                f"the {self.what} log is {depth:,} rows behind (limit {self.max_queue_rows:,}); try again later",
                details={
                    "worker": self.worker,
                    "queue_depth": depth,
                    "max_queue_rows": self.max_queue_rows,
                    "last_error": self._error_text(),
                    "retry_after": self.retry_after,
                },
            )
        if wake and not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every row appended before this call is on disk.

        Raises :class:`LogUnavailable` when that does not happen within ``timeout`` seconds (writes failing); the
        rows stay queued and the writer keeps retrying.
        """
        if threading.current_thread() is self._thread:
            return  # from on_error: the writer cannot wait for itself
        with self._lock:
            if not self._thread.is_alive():
                if self._depth:
                    raise self._lost_error()
                return
            self._requested += 1
            ticket = self._requested
        self._wake.set()
        with self._done:
            done = self._done.wait_for(lambda: self._completed >= ticket or not self._thread.is_alive(), timeout)
        if not done or self._completed < ticket:
            raise LogUnavailable(
                f"the {self.what} log could not write {self.queue_depth:,} rows in time: {self._error_text()}",
                details={"queue_depth": self.queue_depth, "last_error": self._error_text()},
            )

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new rows, flush, and stop the writer thread. Idempotent.

        If the rows cannot be written within ``timeout`` seconds, raises :class:`LogUnavailable` saying how many
        rows are lost (they were also reported through ``on_error`` as each write failed).
        """
        with self._lock:
            self._closed = True
        if self._forked or not self._thread.is_alive():
            return
        try:
            self.flush(timeout)
        finally:
            with self._lock:
                self._stopping = True
            self._wake.set()
            self._thread.join(timeout=max(5.0, 2 * self.flush_interval))
            _LIVE.discard(self)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queue_depth(self) -> int:
        """Rows appended and not yet on disk (buffered, being written, or waiting for a retry)."""
        return self._depth

    @property
    def refusing(self) -> bool:
        """True from a batch refused with :class:`LogFull` until the queue is written: this worker cannot take
        predictions now (readiness probes say so, and a load balancer sends the traffic elsewhere)."""
        return self._refusing

    @property
    def retry_after(self) -> int:
        """Whole seconds after which a refused caller may try again: the next write attempt, at least 1."""
        wait = self._backoff if self._unwritten else self.flush_interval
        return max(1, math.ceil(wait))

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics."""
        return {
            "queue_depth": self._depth,
            "rows_written": self.rows_written,
            "files_written": self.files_written,
            "write_errors": self.write_errors,
            "rows_rejected": self.rows_rejected,
            "rows_dropped": self.rows_dropped,
            "failing": self.failing,
            "refusing": self._refusing,
            "last_error": self._error_text(),
        }

    # -- hooks ---------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _rows(self, batch: Any) -> int:
        """Check a batch and return its row count (raise InvalidArgument when it is malformed)."""

    @abc.abstractmethod
    def _table(self, fields: Sequence[tuple[Any, ...]], ts_ns: np.ndarray) -> pa.Table:
        """The Arrow table of some batches of one partition, given field-wise (``fields[i]``: field ``i`` of each)."""

    # -- helpers -------------------------------------------------------------------------------------------

    def _check_deployment(self, deployment: str) -> None:
        check_name(deployment, field="deployment")
        self._deployments.add(deployment)

    def _check_ts(self, ts: Any) -> None:
        if ts is not None and (not isinstance(ts, TS_TYPES) or isinstance(ts, bool | np.bool_)):
            raise InvalidArgument(
                f"invalid ts {ts!r}: use a datetime (UTC), epoch nanoseconds (int) or None for now",
                details={"field": "ts"},
            )

    def _error_text(self) -> str | None:
        e = self.last_error
        return None if e is None else f"{type(e).__name__}: {e}"

    def _closed_error(self) -> LogUnavailable:
        if self._forked:
            return LogUnavailable(
                f"this {self.what} log was created before the process forked: create it in each worker process",
                details={"worker": self.worker},
            )
        return LogUnavailable(f"the {self.what} log is closed", details={"worker": self.worker})

    def _lost_error(self) -> LogUnavailable:
        return LogUnavailable(
            f"the {self.what} log stopped with {self._depth:,} rows unwritten: {self._error_text()}",
            details={"queue_depth": self._depth, "last_error": self._error_text()},
        )

    # -- the writer thread ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            failing = bool(self._unwritten)
            self._wake.wait(self._backoff if failing else self.flush_interval)
            self._wake.clear()
            with self._lock:
                items = (self._deps, self._batches, self._nows)
                self._deps, self._batches, self._nows = [], [], []
                self._since_flush = 0
                ticket = self._requested
                stopping = self._stopping
            try:
                self._write(items)
            except BaseException as e:  # noqa: BLE001 - the writer must survive anything
                self._failed(e)
            if not self._unwritten:
                if self._refusing:
                    with self._lock:
                        self._refusing = False
                if self.failing:
                    self._recovered()
                with self._done:
                    self._completed = max(self._completed, ticket)
                    self._done.notify_all()
            if stopping:
                with self._done:
                    self._done.notify_all()
                return

    def _write(self, items: tuple[list[str], list[Any], list[int]]) -> None:
        if items[0]:
            try:
                built = self._build(*items)
            except Exception:  # noqa: BLE001 - converting is pure computation: isolate the batch that cannot be
                built = self._build_each(*items)
            for key, table in built:
                self._unwritten.setdefault(key, []).append(table)
        for key in list(self._unwritten):
            tables = self._unwritten[key]
            table = unify_tables(tables)
            self._unwritten[key] = [table]
            deployment, day = key
            self._seq += 1
            name = f"part-{self.worker}-{self._run_id}-{self._seq:06d}{PART_SUFFIX}"
            try:
                self._storage.write_parquet(
                    self._storage.partition(deployment, day_string(day)), name, table, self.compression
                )
            except Exception as e:  # noqa: BLE001 - disk full, permissions, network: retry with backoff
                self._failed(e)
                return
            del self._unwritten[key]
            rows = table.num_rows
            with self._lock:
                self._depth -= rows
            self.rows_written += rows
            self.files_written += 1
            self._backoff = 0.0
            self.last_error = None
            self._streak = 0

    def _build(
        self, deployments: list[str], batches: list[Any], nows: list[int]
    ) -> list[tuple[tuple[str, int], pa.Table]]:
        # Transpose at C speed (one tuple per field over all batches); Python loops over the batches only when a
        # flush spans several partitions, to pick each one's batches.
        fields = list(zip(*batches, strict=True))
        n = len(batches)
        stamps = fields[self._ts_field]
        if stamps.count(None) == n:
            ns = np.array(nows, dtype=np.int64)
        else:
            ns = np.fromiter(
                (now if ts is None else ts_to_ns(ts) for ts, now in zip(stamps, nows, strict=True)), np.int64, n
            )
        days = ns // DAY_NS
        one_day = bool((days == days[0]).all())
        if one_day and deployments.count(deployments[0]) == n:
            return [((deployments[0], int(days[0])), self._table(fields, ns))]
        groups: dict[Any, list[int]] = defaultdict(list)
        if one_day:
            for i, deployment in enumerate(deployments):
                groups[deployment].append(i)
            keys = [(deployment, int(days[0])) for deployment in groups]
        else:
            for i, key in enumerate(zip(deployments, days.tolist(), strict=True)):
                groups[key].append(i)
            keys = list(groups)
        return [
            (key, self._table(subset(fields, index), ns[index]))
            for key, index in zip(keys, groups.values(), strict=True)
        ]

    def _build_each(
        self, deployments: list[str], batches: list[Any], nows: list[int]
    ) -> list[tuple[tuple[str, int], pa.Table]]:
        # A conversion that fails fails again: retrying would block the log for good. Convert batch by batch and
        # drop, loudly, only the batches that cannot be converted even alone (arrays mutated after append...).
        built = []
        for deployment, batch, now in zip(deployments, batches, nows, strict=True):
            try:
                built.extend(self._build([deployment], [batch], [now]))
            except Exception as e:  # noqa: BLE001
                rows = len(batch.prediction_ids)
                with self._lock:
                    self._depth -= rows
                self.rows_dropped += rows
                self._failed(e, dropped=rows)
        return built

    def _failed(self, error: BaseException, dropped: int = 0) -> None:
        self.last_error = error
        if dropped:
            log.error(
                "%s log %s: dropped %d rows of a batch that cannot be stored: %s",
                self.what,
                self.root,
                dropped,
                self._error_text(),
            )
        else:
            self.write_errors += 1
            self._backoff = min(self._retry_max, max(self._retry_initial, 2 * self._backoff))
            self._streak += 1
            if self._streak == 1 and not self.failing:
                self._streak_since = datetime.now(UTC)
                self._errors_before = self.write_errors - 1
            # One line per change of state, not one per retry: the first failure of an episode is a warning,
            # the retries are debug, and the episode becomes an error (and on_health) once it persists.
            log.log(
                logging.WARNING if self._streak == 1 else logging.DEBUG,
                "%s log %s (worker %s): write failed (%d rows kept, retry in %.1f s): %s",
                self.what,
                self.display_root,
                self.worker,
                self._depth,
                self._backoff,
                self._error_text(),
            )
            if not self.failing and self._streak >= self.alert_after_failures:
                self.failing = True
                health = self.health()
                log.error("%s; rows are kept and retried, and refused beyond the limit", health.describe())
                self._tell(health)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # noqa: BLE001 - an alerting hook must not stop the writer
                log.exception("%s log: on_error callback failed", self.what)

    def health(self) -> LogHealth:
        """The log's state now (what ``on_health`` receives when it changes)."""
        error = self.last_error
        return LogHealth(
            what=self.what,
            worker=self.worker,
            root=self.display_root,
            failing=self.failing,
            error=self._error_text(),
            errno=getattr(error, "errno", None) if isinstance(error, OSError) else None,
            failed_attempts=self.write_errors - self._errors_before,
            since=self._streak_since,
            queue_depth=self._depth,
            max_queue_rows=self.max_queue_rows,
            rows_rejected=self.rows_rejected,
        )

    def _recovered(self) -> None:
        self.failing = False
        health = self.health()
        log.warning("%s; nothing was lost", health.describe())
        self._tell(health)

    def _tell(self, health: LogHealth) -> None:
        if self.on_health is None:
            return
        try:
            self.on_health(health)
        except Exception:  # noqa: BLE001 - an alerting hook must not stop the writer
            log.exception("%s log: on_health callback failed", self.what)

    def _after_fork(self) -> None:
        # The writer thread does not exist in a forked child, and the lock may have been held at fork time.
        self._lock = threading.Lock()
        self._deps, self._batches, self._nows = [], [], []
        self._depth = 0
        self._closed = True
        self._forked = True


def subset(fields: Sequence[tuple[Any, ...]], index: list[int]) -> list[tuple[Any, ...]]:
    """The batches at ``index`` of field-wise ``fields``, still field-wise."""
    if len(index) == 1:
        return [(f[index[0]],) for f in fields]
    pick = itemgetter(*index)
    return [pick(f) for f in fields]


_LIVE: weakref.WeakSet[DatasetWriter] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for writer in list(_LIVE):
        try:
            writer.close(timeout=10.0)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit; the error was reported
            log.exception("%s log %s: rows lost at exit", writer.what, writer.root)


def _forget_after_fork() -> None:
    for writer in list(_LIVE):
        writer._after_fork()
    _LIVE.clear()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
