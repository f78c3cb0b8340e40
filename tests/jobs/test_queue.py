"""The job queue: durable on enqueue, one owner per job, stale jobs taken over, bounded retries."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from app.core.db import make_engine, make_sessionmaker, migrate
from app.jobs.queue import JobQueue
from app.reports.model import CheckResult, ColumnInfo, DatasetInfo, Report
from app.reports.store import ReportStore


def error_report(job_id: str, spec: str, message: str) -> Report:
    return Report(
        id=job_id,
        status="error",
        success=False,
        dataset=DatasetInfo(name=spec, format="csv", rows=0),
        error=message,
    )


def done_report(job_id: str) -> Report:
    return Report(
        id=job_id,
        status="passed",
        success=True,
        dataset=DatasetInfo(name="d", format="csv", rows=3),
    )


def queues(url: str, *owners: str) -> list[JobQueue]:
    engine = make_engine(url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    return [JobQueue(sessions, owner=owner) for owner in owners]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def test_claims_oldest_first_and_each_job_once(sqlite_url: str) -> None:
    (queue,) = queues(sqlite_url, "a")
    queue.enqueue("j1", "spec1")
    queue.enqueue("j2", "spec2")
    first, second = queue.claim(), queue.claim()
    assert first is not None and second is not None
    assert (first.id, second.id) == ("j1", "j2")
    assert first.status == "running" and first.attempts == 1
    assert queue.claim() is None


def test_finish_stores_the_report_with_the_job_state(sqlite_url: str) -> None:
    (queue,) = queues(sqlite_url, "a")
    queue.enqueue("j1", "spec")
    queue.claim()
    assert queue.finish("j1", done_report("j1"))
    assert queue.get("j1").status == "done"
    assert queue.get("j1").finished_at is not None


def test_another_replica_cannot_finish_a_job_it_does_not_hold(sqlite_url: str) -> None:
    a, b = queues(sqlite_url, "a", "b")
    a.enqueue("j1", "spec")
    a.claim()
    assert not b.finish("j1", done_report("j1"))
    assert a.get("j1").status == "running"


def test_released_job_is_queued_again_without_spending_an_attempt(sqlite_url: str) -> None:
    (queue,) = queues(sqlite_url, "a")
    queue.enqueue("j1", "spec")
    queue.claim()
    queue.release("j1")
    job = queue.get("j1")
    assert job.status == "queued" and job.attempts == 0


def test_stale_job_is_requeued_then_fails_after_max_attempts(sqlite_url: str) -> None:
    dead, alive = queues(sqlite_url, "dead", "alive")
    dead.enqueue("j1", "data.csv")
    for attempt in (1, 2):
        claimed = dead.claim()
        assert claimed is not None and claimed.attempts == attempt
        assert alive.stale(timedelta(seconds=-1)) == ["j1"]
        status = alive.requeue_or_fail(
            "j1", "replica stopped", max_attempts=2, error_report=error_report, stale_owner=True
        )
        assert status == ("queued" if attempt == 1 else "error")
    job = alive.get("j1")
    assert job.status == "error"
    assert "gave up after 2 attempt(s): replica stopped" in (job.error or "")


def test_fresh_heartbeat_is_not_stale(sqlite_url: str) -> None:
    (queue,) = queues(sqlite_url, "a")
    queue.enqueue("j1", "spec")
    queue.claim()
    queue.heartbeat(["j1"])
    assert queue.stale(timedelta(seconds=60)) == []


@pytest.mark.postgres
def test_two_replicas_on_postgres_never_claim_the_same_job(postgres_url: str) -> None:
    a, b = queues(postgres_url, "a", "b")
    for i in range(60):
        a.enqueue(f"job{i:03d}", "spec")
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def drain(queue: JobQueue) -> None:
        while (job := queue.claim()) is not None:
            claimed[queue.owner].append(job.id)

    threads = [threading.Thread(target=drain, args=(q,)) for q in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = claimed["a"] + claimed["b"]
    assert sorted(everything) == [f"job{i:03d}" for i in range(60)]
    assert len(set(everything)) == 60


def test_a_late_replica_does_not_take_over_a_job_already_taken_over_and_running(
    sqlite_url: str,
) -> None:
    dead, first, late = queues(sqlite_url, "dead", "first", "late")
    dead.enqueue("j1", "spec")
    dead.claim()
    assert late.stale(timedelta(seconds=-1)) == ["j1"]  # the late replica saw it stale...
    first.requeue_or_fail(
        "j1", "stopped", max_attempts=3, error_report=error_report, stale_owner=True
    )
    claimed = first.claim()  # ...but the first replica took it over and runs it, heartbeating
    assert claimed is not None and claimed.attempts == 2
    status = late.requeue_or_fail(
        "j1",
        "stopped",
        max_attempts=3,
        error_report=error_report,
        stale_owner=True,
        stale_after=timedelta(seconds=60),
    )
    assert status == "running"
    job = late.get("j1")
    assert job.status == "running" and job.attempts == 2
    assert first.finish("j1", done_report("j1")), "the running replica still owns the job"


def named_report(job_id: str, name: str, *, sample: str = "Adelie") -> Report:
    """A failed report whose texts came from the data: a column and a sample value."""
    return Report(
        id=job_id,
        status="failed",
        success=False,
        dataset=DatasetInfo(
            name=name, format="json", rows=2, columns=[ColumnInfo(name="spe\x00cies", dtype="o")]
        ),
        checks=[
            CheckResult(
                source="great_expectations",
                category="set",
                name="expect_column_values_to_be_in_set",
                column="spe\x00cies",
                success=False,
                outcome="failed",
                observed={"partial_unexpected_list": [sample], "why\x00": "\ud800"},
            )
        ],
        error="cell \x00",
    )


@pytest.mark.postgres
def test_report_texts_from_the_data_with_nul_are_escaped_and_stored_on_postgres(
    postgres_url: str,
) -> None:
    (queue,) = queues(postgres_url, "a")
    queue.enqueue("j1", "spec")
    queue.claim()
    stored = queue.finish("j1", named_report("j1", "d.json", sample="Ade\x00lie"))
    assert stored is not None and stored.status == "failed"
    assert queue.get("j1").status == "done"
    report = ReportStore(queue._sessions).get("j1")
    assert report.status == "failed", "escaping keeps the verdict"
    assert report.dataset.columns[0].name == "spe\ufffdcies"
    assert report.checks[0].observed["partial_unexpected_list"] == ["Ade\ufffdlie"]
    assert report.checks[0].observed["why\ufffd"] == "\ufffd"
    assert report.error == "cell \ufffd"


@pytest.mark.postgres
def test_report_the_database_refuses_ends_the_job_in_error_with_a_minimal_report(
    postgres_url: str,
) -> None:
    # 600 characters do not fit the searchable dataset_name column: PostgreSQL refuses the row.
    (queue,) = queues(postgres_url, "a")
    queue.enqueue("j1", "spec")
    queue.claim()
    stored = queue.finish("j1", named_report("j1", "n" * 600))
    assert stored is not None and stored.status == "error"
    job = queue.get("j1")
    assert job.status == "error" and job.finished_at is not None
    report = ReportStore(queue._sessions).get("j1")
    assert report.status == "error" and report.dataset.name == "n" * 512
    assert report.error is not None and "could not be stored (DataError)" in report.error
    assert "its verdict was failed" in report.error
    assert queue.claim() is None, "the job is not run again"


@pytest.mark.postgres
def test_stale_take_over_stores_a_minimal_error_report_when_the_full_one_is_refused(
    postgres_url: str,
) -> None:
    dead, alive = queues(postgres_url, "dead", "alive")
    dead.enqueue("j1", "n" * 800)  # this test's error report names the dataset by the spec
    dead.claim()
    status = alive.requeue_or_fail(
        "j1", "replica \x00stopped", max_attempts=1, error_report=error_report, stale_owner=True
    )
    assert status == "error"
    job = alive.get("j1")
    assert job.status == "error"
    assert job.error == "gave up after 1 attempt(s): replica \ufffdstopped"
    report = ReportStore(alive._sessions).get("j1")
    assert report.status == "error" and report.dataset.name == "n" * 512
    assert report.error is not None and "could not be stored (DataError)" in report.error


@pytest.mark.postgres
def test_sync_path_save_of_a_refused_report_stores_a_minimal_one(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    migrate(engine)
    store = ReportStore(make_sessionmaker(engine))
    stored = store.save(named_report("r1", "n" * 600))
    assert stored.status == "error" and store.get("r1") == stored
