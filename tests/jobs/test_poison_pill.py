"""The poison pill of issue 18, on the real PostgreSQL store: jobs whose report cannot be stored
as it is end (escaped, or in error with a minimal report), and the jobs behind them still run."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from httpx import AsyncClient

from app.checks.runner import DataInput
from app.ingest.formats import DataFormat
from app.jobs.dispatcher import job_inputs_dir
from app.jobs.queue import Job
from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

PENGUINS = EXAMPLES / "penguins.csv"


@pytest.fixture
def pg_app(tmp_path: Path, postgres_url: str) -> Iterator[RunningApp]:
    settings = make_settings(
        tmp_path, database_url=postgres_url, job_poll_s=0.2, job_heartbeat_s=0.5
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(pg_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with pg_app.client() as http:
        yield http


def enqueue_upload(app: RunningApp, name: str) -> str:
    """Queue a penguins job named `name` straight into the queue, past the edge's checks."""
    service = app.app.state.validations
    job = service.build_job(
        DataInput(path=PENGUINS, format=DataFormat.CSV, name="placeholder"), suite_name="penguins"
    )
    folder = job_inputs_dir(app.app.state.settings, job.id)
    folder.mkdir(parents=True)
    target = folder / "data.csv"
    shutil.copy(PENGUINS, target)
    data = job.data.model_copy(update={"path": target, "name": name})
    job = job.model_copy(update={"data": data})
    app.app.state.jobs.enqueue(job.id, job.model_dump_json())
    return str(job.id)


def wait_until_ended(app: RunningApp, job_id: str, timeout: float = 180) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: Job = app.app.state.jobs.get(job_id)
        if job.status in ("done", "error"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def test_poison_pills_end_and_the_good_jobs_behind_them_run(pg_app: RunningApp) -> None:
    dispatcher = pg_app.app.state.validations.dispatcher
    store = pg_app.app.state.store
    dispatcher.capacity = 0  # queue everything first: the pills are claimed before the good jobs
    try:
        too_long = enqueue_upload(pg_app, "n" * 600)  # the dataset_name column holds 512
        nul = enqueue_upload(pg_app, "poison\x00pill")
        pg_app.app.state.jobs.enqueue("0" * 32, '{"not": "a validation job"}')
        good = [enqueue_upload(pg_app, f"good-{i}.csv") for i in range(2)]
    finally:
        dispatcher.capacity = 1
        dispatcher.notify()

    ended = {job_id: wait_until_ended(pg_app, job_id) for job_id in [too_long, nul, *good]}
    unreadable = wait_until_ended(pg_app, "0" * 32)
    for job_id in good:
        assert ended[job_id].status == "done"
        assert store.get(job_id).status == "passed"

    assert ended[too_long].status == "error" and ended[too_long].attempts == 1
    refused = store.get(too_long)
    assert refused.status == "error" and refused.dataset.name == "n" * 512
    assert refused.error is not None and "could not be stored (DataError)" in refused.error

    # A NUL in a name that got past the edge is escaped, not a reason to lose the report.
    assert ended[nul].status == "done"
    assert store.get(nul).dataset.name == "poison\ufffdpill"

    assert unreadable.status == "error" and unreadable.attempts == 1
    assert store.get("0" * 32).dataset.name == "(unreadable job)"

    assert dispatcher.dispatch_failures == 0, "no job may make the dispatch loop fail"
    assert pg_app.app.state.jobs.queued_count() == 0
    assert not any((Path(pg_app.app.state.settings.data_dir) / "jobs").iterdir())


async def test_data_with_nul_in_a_column_name_and_a_cell_is_stored_escaped(
    client: AsyncClient,
) -> None:
    header, *rows = PENGUINS.read_text().splitlines()
    columns = header.split(",")
    records = [dict(zip(columns, row.split(","), strict=True)) for row in rows]
    records[0]["species"] = "Ade\x00lie"
    for record in records:
        record["no\x00te"] = record.pop("year")
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.json", json.dumps(records).encode())},
        data={"suite": "penguins"},
    )
    assert response.status_code == 200, response.text[:300]
    report = response.json()
    stored = (await client.get(f"/v1/reports/{report['id']}")).json()
    assert stored["status"] == "failed" and stored == report
    names = [c["name"] for c in stored["dataset"]["columns"]]
    assert "no\ufffdte" in names
    samples = [
        value
        for check in stored["checks"]
        for value in check["observed"].get("partial_unexpected_list", [])
    ]
    assert "Ade\ufffdlie" in samples


@pytest.mark.parametrize(
    ("suite", "where"),
    [
        (
            {"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a\u0000"}}]},
            "expectations[0].kwargs.column",
        ),
        (
            {
                "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}],
                "meta": {"note\u0000": "x"},
            },
            "meta.note",
        ),
    ],
)
async def test_suite_put_with_nul_is_422_naming_where_and_the_store_still_lists(
    client: AsyncClient, suite: dict[str, object], where: str
) -> None:
    # PostgreSQL text cannot hold NUL: before, the PUT answered 500 from the driver.
    response = await client.put("/v1/suites/nul_suite", content=json.dumps(suite))
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert where in message
    assert "NUL" in message
    listing = await client.get("/v1/suites")
    assert listing.status_code == 200
    assert "nul_suite" not in [s["name"] for s in listing.json()["items"]]


async def test_a_nul_in_a_read_is_a_422_naming_the_parameter_not_a_500(
    client: AsyncClient,
) -> None:
    # PostgreSQL refuses a NUL even as a value to compare with: these reads answered 500.
    reads = {
        "/v1/reports?q=a%00": "query.q",
        "/v1/reports?dataset=a%00": "query.dataset",
        "/v1/reports?suite=%00": "query.suite",
        "/v1/reports/a%00b": "path.report_id",
        "/v1/reports/a%00b/artifacts/x.html": "path.report_id",
        "/v1/validations/a%00b": "path.job_id",
        "/reports/a%00b": "path.report_id",
    }
    for path, field in reads.items():
        response = await client.get(path)
        assert response.status_code == 422, (path, response.text[:300])
        message = response.json()["error"]["message"]
        assert field in message and "NUL" in message, (path, message)

    page = await client.get("/reports?q=a%00")
    assert page.status_code == 422
    assert "q must not contain NUL" in page.text
    assert (await client.get("/v1/reports?q=a")).status_code == 200
