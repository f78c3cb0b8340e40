"""The job queue in SQL: enqueue, claim (row locks, so replicas never share a job), finish."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import JobRow, ReportRow
from app.core.errors import NotFound
from app.core.text import safe_text
from app.reports.model import Report
from app.reports.store import delete_reports, fallback_report, storable_report, write_report

log = logging.getLogger(__name__)
JobStatus = str  # queued | running | done | error


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: str | None
    spec: str
    callback_url: str | None


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        error=row.error,
        spec=row.spec,
        callback_url=row.callback_url,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class JobQueue:
    def __init__(self, sessions: sessionmaker[Session], *, owner: str) -> None:
        self._sessions = sessions
        self.owner = owner

    def enqueue(self, job_id: str, spec: str, *, callback_url: str | None = None) -> None:
        """Commit the job; when this returns, the job survives any crash."""
        with self._sessions.begin() as session:
            session.add(
                JobRow(
                    id=job_id,
                    status="queued",
                    created_at=_now(),
                    attempts=0,
                    spec=spec,
                    callback_url=callback_url,
                )
            )

    def get(self, job_id: str) -> Job:
        with self._sessions() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"validation job {job_id!r} does not exist")
            return _job(row)

    def queued_count(self) -> int:
        with self._sessions() as session:
            count = session.scalar(
                select(func.count()).select_from(JobRow).where(JobRow.status == "queued")
            )
            return int(count or 0)

    def claim(self) -> Job | None:
        """Take the oldest queued job for this replica, or None when there is none.

        PostgreSQL: the candidate row is locked with SKIP LOCKED, so two replicas never pick the
        same one. SQLite (one process): the status guard in the UPDATE is enough.
        """
        with self._sessions.begin() as session:
            candidate = session.scalar(
                select(JobRow.id)
                .where(JobRow.status == "queued")
                .order_by(JobRow.created_at, JobRow.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if candidate is None:
                return None
            now = _now()
            claimed = session.execute(
                update(JobRow)
                .where(JobRow.id == candidate, JobRow.status == "queued")
                .values(
                    status="running",
                    owner=self.owner,
                    attempts=JobRow.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                )
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = session.get(JobRow, candidate, populate_existing=True)
            assert row is not None
            return _job(row)

    def heartbeat(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(job_ids), JobRow.owner == self.owner)
                .values(heartbeat_at=_now())
            )

    def finish(self, job_id: str, report: Report) -> Report | None:
        """Store the report and end the job in one transaction: never one without the other.

        Returns the report as stored; None when this replica no longer holds the job (released
        at shutdown, or taken over as stale) and nothing was written. A report the database
        refuses (any error) is replaced by a minimal error report: the job ends either way, so
        that it is never run again only to fail the same way.
        """
        try:
            return self._finish(job_id, report)
        except Exception as exc:
            log.exception("job %s: its report could not be stored; storing a minimal one", job_id)
            return self._finish(job_id, fallback_report(report, exc))

    def _finish(self, job_id: str, report: Report) -> Report | None:
        report = storable_report(report)
        with self._sessions.begin() as session:
            ended = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == self.owner, JobRow.status == "running")
                .values(
                    status="error" if report.status == "error" else "done",
                    finished_at=_now(),
                    error=report.error,
                    owner=None,
                )
            )
            if ended.rowcount != 1:  # type: ignore[attr-defined]
                return None
            write_report(session, report)
            return report

    def release(self, job_id: str) -> None:
        """Give a running job back to the queue (shutdown); the attempt does not count."""
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.owner == self.owner, JobRow.status == "running")
                .values(status="queued", owner=None, attempts=JobRow.attempts - 1)
            )

    def requeue_or_fail(
        self,
        job_id: str,
        reason: str,
        *,
        max_attempts: int,
        error_report: Callable[[str, str, str], Report],
        stale_owner: bool = False,
        stale_after: timedelta = timedelta(0),
    ) -> str:
        """After a crash: queue again while attempts remain, else end in error. Returns status.

        `stale_owner`: the job belongs to a replica that stopped sending heartbeats; it is taken
        only if its heartbeat is still older than `stale_after` under the row lock. An error
        report the database refuses is replaced by a minimal one, as in `finish`.
        """
        args = (job_id, safe_text(reason), max_attempts, stale_owner, stale_after)
        try:
            return self._requeue_or_fail(*args, error_report)
        except Exception as exc:
            log.exception("job %s: its error report could not be stored; storing another", job_id)
            refused = exc  # the `except` name is gone once the block ends

        def minimal(job_id: str, spec: str, message: str) -> Report:
            return fallback_report(error_report(job_id, spec, message), refused)

        return self._requeue_or_fail(*args, minimal)

    def _requeue_or_fail(
        self,
        job_id: str,
        reason: str,
        max_attempts: int,
        stale_owner: bool,
        stale_after: timedelta,
        error_report: Callable[[str, str, str], Report],
    ) -> str:
        with self._sessions.begin() as session:
            row = session.get(JobRow, job_id, with_for_update=True, populate_existing=True)
            if row is None or row.status != "running":
                return "missing" if row is None else row.status
            if not stale_owner and row.owner != self.owner:
                return row.status
            # Between `stale()` and this lock another replica may have taken the job over and
            # claimed it again: its fresh heartbeat says hands off, or it would run twice.
            heartbeat = row.heartbeat_at
            if stale_owner and heartbeat is not None and heartbeat >= _now() - stale_after:
                return row.status
            if row.attempts >= max_attempts:
                row.status, row.finished_at = "error", _now()
                row.error = f"gave up after {row.attempts} attempt(s): {reason}"
                failed = storable_report(error_report(row.id, row.spec, row.error))
                write_report(session, failed)
            else:
                row.status, row.error = "queued", reason
            row.owner = None
            return row.status

    def stale(self, older_than: timedelta) -> list[str]:
        """Running jobs whose replica stopped sending heartbeats (killed, crashed, partitioned)."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(JobRow.id).where(
                        JobRow.status == "running", JobRow.heartbeat_at < _now() - older_than
                    )
                )
            )

    def purge_reports(self, older_than: timedelta) -> list[str]:
        """Delete reports (and finished jobs) past retention; returns the deleted report ids."""
        cutoff = _now() - older_than
        with self._sessions.begin() as session:
            ids = list(session.scalars(select(ReportRow.id).where(ReportRow.created_at < cutoff)))
            if ids:
                delete_reports(session, ids)
                session.query(JobRow).filter(
                    JobRow.id.in_(ids), JobRow.status.in_(("done", "error"))
                ).delete()
            return ids
