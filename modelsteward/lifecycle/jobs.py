"""Retraining jobs: a subprocess per job, watched by a thread of the process that started it.

The job's record is written before the process starts and kept current (heartbeat, log tail) while
it runs; the thread records how it ended (exit status, duration, the version it registered) and hands
the job back to the engine. A job whose process died with its parent is found by its stale heartbeat
and marked failed: it is never started twice on its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from modelsteward.catalog.service import CatalogService
from modelsteward.domain.lifecycle import Job, RetrainSpec
from modelsteward.domain.monitoring import parse_duration
from modelsteward.errors import NotFound
from modelsteward.store import event_repo, lifecycle_repo
from modelsteward.store.database import Database

log = logging.getLogger("modelsteward.jobs")

LOG_TAIL = 64 * 1024


def tail(path: Path, limit: int = LOG_TAIL) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return ("[... earlier output cut ...]\n" + text) if size > limit else text


class JobRunner:
    def __init__(
        self,
        db: Database,
        catalog: CatalogService,
        *,
        environment: dict[str, str],
        log_dir: Path,
        holder: str,
        heartbeat: float = 2.0,
        on_done: Callable[[Job], None] | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.environment = environment
        self.log_dir = log_dir
        self.holder = holder
        self.heartbeat = heartbeat
        self.on_done = on_done
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, *, model: str, spec: RetrainSpec, run_id: int | None, step: str | None, actor: str) -> Job:
        """Record the job, then start its process; a run's step gets one job, however often it asks."""
        body = spec.model_dump(mode="json", exclude_none=True)
        with self.db.write() as conn:
            if run_id is not None and step is not None:
                existing = lifecycle_repo.job_for_step(conn, run_id, step)
                if existing is not None:
                    return existing
            job_id = lifecycle_repo.create_job(
                conn, kind="retrain", model=model, run_id=run_id, step=step, spec=body, holder=self.holder, actor=actor
            )
            event_repo.append_event(
                conn, actor=actor, action="job.started", model=model,
                details={"job": job_id, "run": run_id, "kind": "retrain"},
            )  # fmt: skip
        thread = threading.Thread(target=self._watch, args=(job_id, model, spec), name=f"steward-job-{job_id}",
                                  daemon=True)  # fmt: skip
        with self._lock:
            self._threads[job_id] = thread
        thread.start()
        return self.get(job_id)

    def get(self, job_id: int) -> Job:
        with self.db.read() as conn:
            job = lifecycle_repo.get_job(conn, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", details={"job": job_id})
        return job

    def list(self, *, model: str | None = None, status: str | None = None, limit: int = 50) -> list[Job]:
        with self.db.read() as conn:
            return lifecycle_repo.list_jobs(conn, model=model, status=status, limit=limit)

    def running_here(self) -> list[int]:
        with self._lock:
            return [i for i, t in self._threads.items() if t.is_alive()]

    def wait(self, timeout: float | None = None) -> None:
        """Wait for this process's jobs to end (a closing steward must not orphan them)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- one job ------------------------------------------------------------------------------------

    def _argv(self, spec: RetrainSpec) -> list[str]:
        if spec.command is not None:
            return list(spec.command)
        return [sys.executable, "-m", "modelsteward.cli.retrain_job"]

    def _watch(self, job_id: int, model: str, spec: RetrainSpec) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"job-{job_id}.log"
        env = {**os.environ, **self.environment, **spec.env}
        env.update({
            "STEWARD_JOB_ID": str(job_id),
            "STEWARD_MODEL": model,
            "STEWARD_USER": f"job-{job_id}",
            "STEWARD_RETRAIN_SPEC": spec.model_dump_json(),
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        limit = parse_duration(spec.timeout).total_seconds()
        started = time.monotonic()
        status, error, code = "failed", None, None
        try:
            with log_path.open("wb") as out:
                proc = subprocess.Popen(  # noqa: S603 - the command comes from a definition an admin applied
                    self._argv(spec), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    cwd=spec.cwd or None, start_new_session=True, preexec_fn=_die_with_parent,
                )  # fmt: skip
                while True:
                    try:
                        code = proc.wait(timeout=self.heartbeat)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if time.monotonic() - started > limit:
                        _kill(proc)
                        code = proc.wait()
                        status, error = (
                            "timed_out",
                            f"the job ran longer than its timeout ({spec.timeout}) and was stopped",
                        )
                        break
                    self._beat(job_id, log_path)
        except OSError as e:
            error = f"the job could not start: {e}"
        version = self._produced(model, job_id)
        if status != "timed_out" and error is None:
            if code != 0:
                error = f"the job exited with status {code}"
            elif version is None:
                error = "the job ended without registering a version"
            else:
                status = "succeeded"
        with self.db.write() as conn:
            lifecycle_repo.update_job(
                conn, job_id, status=status, finished_at=datetime.now(UTC), exit_code=code, version=version,
                error=error, log=tail(log_path), heartbeat_at=datetime.now(UTC),
            )  # fmt: skip
            event_repo.append_event(
                conn, actor=f"job-{job_id}", action=f"job.{status}", model=model, version=version,
                details={"job": job_id, "exit_code": code, "error": error,
                         "duration_s": round(time.monotonic() - started, 3)},
            )  # fmt: skip
        job = self.get(job_id)
        if self.on_done is not None:
            try:
                self.on_done(job)
            except Exception:  # noqa: BLE001 - the engine records its own failures; the thread must end
                log.exception("after job %s", job_id)

    def _beat(self, job_id: int, log_path: Path) -> None:
        try:
            with self.db.write() as conn:
                lifecycle_repo.update_job(conn, job_id, heartbeat_at=datetime.now(UTC), log=tail(log_path))
        except Exception as e:  # noqa: BLE001 - a busy database must not kill the watcher
            log.warning("job %s heartbeat not stored: %s", job_id, e)

    def _produced(self, model: str, job_id: int) -> int | None:
        try:
            versions, _ = self.catalog.list_versions(model)
        except NotFound:
            return None
        made = [v.version for v in versions if v.tags.get("steward.job") == str(job_id)]
        return max(made) if made else None

    # -- jobs whose process is gone -----------------------------------------------------------------

    def reap(self, now: datetime, *, stale_after: float = 60.0) -> list[Job]:
        """Running jobs no process watches any more (their heartbeat stopped): marked failed."""
        limit = now - timedelta(seconds=stale_after)
        mine = set(self.running_here())
        reaped = []
        for job in self.list(status="running", limit=1000):
            if job.id in mine:
                continue
            with self.db.write() as conn:
                row = lifecycle_repo.get_job(conn, job.id)
                beat = _heartbeat(conn, job.id)
                if row is None or row.status != "running" or beat is None or beat > limit:
                    continue
                error = f"the process watching the job stopped (last heartbeat {beat.isoformat()})"
                lifecycle_repo.update_job(conn, job.id, status="failed", finished_at=now, error=error)
                event_repo.append_event(
                    conn, actor="lifecycle", action="job.failed", model=job.model,
                    details={"job": job.id, "error": error},
                )  # fmt: skip
            reaped.append(self.get(job.id))
        return reaped


def _heartbeat(conn: Any, job_id: int) -> datetime | None:
    import sqlalchemy as sa

    from modelsteward.store.catalog_repo import utc
    from modelsteward.store.tables import jobs

    value = conn.execute(sa.select(jobs.c.heartbeat_at).where(jobs.c.id == job_id)).scalar_one_or_none()
    return utc(value) if value is not None else None


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be killed when the watching process dies, so that a job
    the engine marks failed (its watcher is gone) cannot register a version behind its back."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
