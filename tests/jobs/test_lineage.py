"""OpenLineage run events (DATAGATE_OPENLINEAGE_URL) received by a collector on loopback and held
to the OpenLineage JSON schema: one event per stored report, data quality facets on the input
dataset, delivery that never fails or holds up a validation.

The schema: `openlineage_run_event.schema.json` beside this file states the OpenLineage spec's
rules for the parts datagate sends (RunEvent of spec 2-0-2; the DataQualityAssertions 1-1-0,
DataQualityMetricsInput 1-0-3 and ErrorMessage 1-0-1 facets). It is written for these tests, not a
copy of the published files at https://openlineage.io/spec/ (Apache-2.0): no PyPI package ships
them (openlineage-python 1.54 carries classes generated from them, not the JSON) and this machine
cannot download them. Dropping the published files in its place is the way to tighten it. The
events these tests send were checked once against the published files as the OpenLineage
repository holds them (see docs/integrations/openlineage.md): all valid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from app.core.config import Settings
from app.jobs.lineage import dataset_identity, run_event
from app.main import create_app
from app.reports.model import CheckResult, DatasetInfo, Report
from tests.conftest import EXAMPLES, RunningApp, make_settings
from tests.jobs.test_notifications import Receiver, counted, free_port

pytestmark = pytest.mark.anyio

SCHEMA = json.loads((Path(__file__).parent / "openlineage_run_event.schema.json").read_text())
API_KEY = "lineage-key-for-tests"
NAMESPACE = "ml-platform"


def valid_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event`, after checking it against the OpenLineage schema (formats included)."""
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
    assert not problems, problems
    return event


def test_the_schema_refuses_what_the_spec_refuses() -> None:
    """The checker is not a rubber stamp: each of these breaks a rule of the spec."""
    report = Report(
        id=uuid.uuid4().hex,
        status="passed",
        success=True,
        dataset=DatasetInfo(name="d.csv", format="csv", rows=1),
    )
    good = run_event(report, NAMESPACE)
    valid_event(good)
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    broken: list[dict[str, Any]] = []
    for change in (
        lambda e: e["run"].update(runId="report-1"),
        lambda e: e.update(eventTime="yesterday"),
        lambda e: e.pop("producer"),
        lambda e: e["inputs"][0]["inputFacets"]["dataQualityAssertions"].pop("_producer"),
        lambda e: e["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"].append(
            {"assertion": "x", "success": "yes"}
        ),
        lambda e: e["inputs"][0]["inputFacets"]["dataQualityMetrics"].update(rowCount=1.5),
        lambda e: e.update(eventType="DONE"),
    ):
        event = json.loads(json.dumps(good))
        change(event)
        broken.append(event)
    assert all(not validator.is_valid(event) for event in broken)


@pytest.fixture(scope="module")
def collector() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.close()


@pytest.fixture(scope="module")
def lineage_app(
    tmp_path_factory: pytest.TempPathFactory, collector: Receiver
) -> Iterator[RunningApp]:
    settings = make_settings(
        tmp_path_factory.mktemp("lineage"),
        openlineage_url=collector.url,
        openlineage_api_key=API_KEY,
        openlineage_namespace=NAMESPACE,
        job_poll_s=0.2,
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(lineage_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with lineage_app.client() as http:
        yield http


async def validate(client: AsyncClient, example: str, **fields: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/validations",
        files={"data": (example, (EXAMPLES / example).read_bytes())},
        data={"suite": "penguins", **fields},
    )
    return response.status_code, response.json()


async def received(collector: Receiver, report_id: str, wait_s: float = 30) -> dict[str, Any]:
    """The one event the collector got for the report, its headers checked on the way."""
    run_id = str(uuid.UUID(report_id))
    [(headers, body)] = await asyncio.to_thread(collector.posts, "/api/v1/lineage", run_id, wait_s)
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["content-type"] == "application/json"
    event: dict[str, Any] = json.loads(body)
    return valid_event(event)


async def test_failed_report_is_a_complete_run_with_one_assertion_per_check_that_ran(
    client: AsyncClient, collector: Receiver
) -> None:
    status, report = await validate(client, "penguins_bad.csv")
    assert status == 200 and report["status"] == "failed"
    event = await received(collector, report["id"])

    assert event["eventType"] == "COMPLETE"  # the run completed; its assertions failed
    assert event["run"]["runId"] == str(uuid.UUID(report["id"]))
    assert event["job"] == {"namespace": NAMESPACE, "name": "validate.penguins", "facets": {}}
    [dataset] = event["inputs"]
    assert (dataset["namespace"], dataset["name"]) == (NAMESPACE, "penguins_bad.csv")
    assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    ran = [c for c in report["checks"] if c["outcome"] != "skipped"]
    assert len(assertions) == len(ran) == report["summary"]["evaluated"]
    for check, assertion in zip(ran, assertions, strict=True):
        assert assertion["assertion"] == check["name"]
        assert assertion["success"] is (check["outcome"] == "passed")
        assert assertion.get("column") == check["column"]
    failed = {(a["assertion"], a.get("column")) for a in assertions if not a["success"]}
    assert ("expect_column_values_to_be_in_set", "species") in failed

    metrics = dataset["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == report["dataset"]["rows"] == 344
    assert metrics["columnMetrics"] == {
        c["name"]: {"nullCount": c["null_count"]} for c in report["dataset"]["columns"]
    }
    assert any(m["nullCount"] > 0 for m in metrics["columnMetrics"].values())


async def test_passed_reports_and_async_jobs_are_sent_too(
    client: AsyncClient, collector: Receiver
) -> None:
    status, accepted = await validate(client, "penguins.csv", wait="false")
    assert status == 202
    event = await received(collector, accepted["id"], wait_s=120)
    assertions = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert event["eventType"] == "COMPLETE" and assertions
    assert all(a["success"] for a in assertions)


def test_an_error_report_is_a_fail_event_carrying_the_error() -> None:
    report = Report(
        id=uuid.uuid4().hex,
        status="error",
        success=False,
        dataset=DatasetInfo(name="d.parquet", format="parquet", rows=0),
        error="the data could not be read: truncated file",
    )
    event = valid_event(run_event(report, NAMESPACE))
    assert event["eventType"] == "FAIL"
    facet = event["run"]["facets"]["errorMessage"]
    assert facet["message"] == "the data could not be read: truncated file"
    assert event["job"]["name"] == "validate"


def test_warned_and_errored_rows_are_unsuccessful_assertions_with_their_severity() -> None:
    def row(outcome: str, severity: str) -> CheckResult:
        return CheckResult(
            source="great_expectations",
            category="missing",
            name=f"check_{outcome}",
            success=outcome == "passed",
            outcome=outcome,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
        )

    report = Report(
        id="not-a-uuid",
        status="passed",
        success=True,
        dataset=DatasetInfo(name="d.csv", format="csv", rows=3),
        checks=[row("passed", "critical"), row("warned", "warning"), row("error", "info")],
    )
    event = valid_event(run_event(report, NAMESPACE))
    assertions = event["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert [(a["success"], a["severity"]) for a in assertions] == [
        (True, "error"),
        (False, "warn"),
        (False, "warn"),
    ]
    # Not a UUID: a stable UUID derived from it, the same for every delivery.
    assert run_event(report, NAMESPACE)["run"]["runId"] == event["run"]["runId"]


@pytest.mark.parametrize(
    ("source", "identity"),
    [
        ({"uri": "s3://lake/sales/2024.parquet"}, ("s3://lake", "sales/2024.parquet")),
        ({"uri": "file:///data/train.csv"}, ("file", "/data/train.csv")),
        (
            {"connection": "dw", "schema": "mart", "table": "orders"},
            (f"{NAMESPACE}.connection.dw", "mart.orders"),
        ),
        (None, (NAMESPACE, "upload.csv")),
    ],
)
def test_dataset_names_follow_openlineage_naming(
    source: dict[str, Any] | None, identity: tuple[str, str]
) -> None:
    report = Report(
        id="r",
        status="passed",
        success=True,
        dataset=DatasetInfo(name="upload.csv", format="csv", rows=1, source=source),
    )
    assert dataset_identity(report, NAMESPACE) == identity


@pytest.fixture
def dead_collector_app(tmp_path: Path) -> Iterator[tuple[RunningApp, int]]:
    """An app whose collector is a loopback port nobody listens on. Built in set-up, so that
    the app's logging set-up precedes the log capture of the test's call."""
    port = free_port()
    running = RunningApp(
        create_app(make_settings(tmp_path, openlineage_url=f"http://127.0.0.1:{port}/"))
    )
    running.app.state.notifier.first_delay_s = 0.05
    running.app.state.notifier.attempts = 2
    yield running, port
    running.close()


async def test_a_dead_collector_is_counted_logged_by_host_and_never_blocks(
    dead_collector_app: tuple[RunningApp, int], caplog: pytest.LogCaptureFixture
) -> None:
    running, port = dead_collector_app
    caplog.set_level(logging.ERROR, logger="app.jobs.notifications")
    async with running.client() as client:
        status, report = await validate(client, "penguins.csv")
        assert status == 200 and report["status"] == "passed"
        for _ in range(200):
            metrics = (await client.get("/metrics")).text
            if counted(metrics, "openlineage", "undelivered"):
                break
            await asyncio.sleep(0.05)
    assert counted(metrics, "openlineage", "undelivered") == 1
    assert counted(metrics, "openlineage", "sent") == 0
    logged = [r.getMessage() for r in caplog.records if report["id"] in r.getMessage()]
    assert any(f"openlineage event to http://127.0.0.1:{port} " in m for m in logged), logged


def test_lineage_settings_are_read_from_the_environment_and_a_bad_url_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATAGATE_OPENLINEAGE_URL", "http://marquez:5000/")
    monkeypatch.setenv("DATAGATE_OPENLINEAGE_API_KEY", "k")
    settings = Settings()
    assert settings.openlineage_events_url == "http://marquez:5000/api/v1/lineage"
    assert settings.openlineage_namespace == "datagate"
    assert "k" not in repr(settings.openlineage_api_key)
    assert Settings(openlineage_url=None).openlineage_events_url is None
    with pytest.raises(ValidationError) as refused:
        Settings(openlineage_url="marquez:5000")
    assert refused.value.errors()[0]["loc"] == ("openlineage_url",)
