"""The Python client: reports as models, typed errors, retries, and the request bodies it builds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pandas as pd
import pytest

from app.client import (
    AsyncDatagateClient,
    DatagateClient,
    NotFound,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    ValidationRejected,
    ValidationRequest,
    request_body,
)
from app.reports.model import Report
from tests.conftest import EXAMPLES

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]

PENGUINS = EXAMPLES / "penguins.csv"
PENGUINS_BAD = EXAMPLES / "penguins_bad.csv"
NO_WAIT = RetryPolicy(attempts=3, backoff=0)


@pytest.fixture
def client(datagate_server: Server) -> Iterator[DatagateClient]:
    with DatagateClient(datagate_server.url, api_key=datagate_server.write_key) as http:
        yield http


def test_validate_returns_the_report_model_with_the_verdict(client: DatagateClient) -> None:
    report = client.validate(PENGUINS, suite="penguins")
    assert isinstance(report, Report)
    assert report.status == "passed" and report.dataset.rows == 344
    assert report.report_url and report.report_url.endswith(report.id)
    assert client.get_report(report.id) == report


def test_links_lead_to_the_server_the_client_called(
    client: DatagateClient, datagate_server: Server
) -> None:
    """The service sends relative links (it never builds them from the Host header); the client
    makes them absolute against its own server URL, so a printed link opens."""
    report = client.validate(PENGUINS, suite="penguins")
    assert report.report_url == f"{datagate_server.url}/reports/{report.id}"
    assert (
        httpx.get(
            report.report_url, headers={"Authorization": f"Bearer {datagate_server.read_key}"}
        ).status_code
        == 200
    )
    job = client.submit(PENGUINS, suite="penguins")
    assert job.status_url == f"{datagate_server.url}/v1/validations/{job.id}"
    assert job.report_url == f"{datagate_server.url}/reports/{job.id}"
    done = client.wait_for(job.id, timeout=120)
    assert done.report_url == f"{datagate_server.url}/reports/{job.id}"


def test_planted_defects_fail_with_the_failed_checks_named(client: DatagateClient) -> None:
    report = client.validate(PENGUINS_BAD, suite="penguins")
    assert report.status == "failed"
    failed = {c.column for c in report.checks if c.outcome == "failed"}
    assert {"species", "body_mass_g"} <= failed


def test_submit_and_wait_for_give_the_same_verdict(client: DatagateClient) -> None:
    job = client.submit(PENGUINS_BAD, suite="penguins")
    assert job.status == "queued" and job.status_url.endswith(job.id)
    seen: list[str] = []
    report = client.wait_for(job.id, timeout=120, on_wait=lambda j, _: seen.append(j.status))
    assert report.id == job.id and report.status == "failed"
    assert seen[-1] == "done"


def test_a_dataframe_is_sent_as_parquet_and_validated(client: DatagateClient) -> None:
    frame = pd.read_csv(PENGUINS)
    report = client.validate(frame, suite="penguins", dataset_name="features")
    assert report.status == "passed"
    assert report.dataset.format == "parquet" and report.dataset.name == "features"


def test_errors_are_typed_with_the_service_code(client: DatagateClient, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_report("0" * 32)
    assert missing.value.status_code == 404
    with pytest.raises(NotFound) as unknown_suite:
        client.validate(PENGUINS, suite="no-such-suite")
    assert unknown_suite.value.code == "suite_not_found"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ValidationRejected) as rejected:
        client.validate(empty, suite="penguins")
    assert rejected.value.code == "invalid_data" and "empty" in rejected.value.message


def test_a_read_key_cannot_validate(datagate_server: Server) -> None:
    with (
        DatagateClient(datagate_server.url, api_key=datagate_server.read_key) as reader,
        pytest.raises(ValidationRejected) as refused,
    ):
        reader.validate(PENGUINS, suite="penguins")
    assert refused.value.status_code == 403


@pytest.mark.parametrize(
    ("environment", "called"),
    [
        (None, "http://127.0.0.1:8000/v1/suites"),
        ("http://gate:9000/", "http://gate:9000/v1/suites"),
    ],
    ids=["default-local-server", "from-DATAGATE_URL"],
)
def test_without_a_url_the_client_calls_DATAGATE_URL_else_the_local_server(
    monkeypatch: pytest.MonkeyPatch, environment: str | None, called: str
) -> None:
    if environment is None:
        monkeypatch.delenv("DATAGATE_URL", raising=False)
    else:
        monkeypatch.setenv("DATAGATE_URL", environment)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"items": [], "broken": []})

    with DatagateClient(transport=httpx.MockTransport(answer)) as client:
        assert client.list_suites() == {"items": [], "broken": []}
    assert seen == [called]


def test_an_unreachable_service_is_reported_as_unavailable() -> None:
    with (
        DatagateClient("http://127.0.0.1:9", retry=NO_WAIT) as nowhere,
        pytest.raises(ServiceUnavailable, match="cannot reach"),
    ):
        nowhere.get_report("x")


@pytest.mark.anyio
async def test_async_client_validates_and_waits(datagate_server: Server) -> None:
    key = datagate_server.write_key
    async with AsyncDatagateClient(datagate_server.url, api_key=key) as client:
        report = await client.validate(PENGUINS, suite="penguins")
        assert report.status == "passed"
        job = await client.submit(PENGUINS_BAD, suite="penguins")
        assert (await client.wait_for(job.id, timeout=120)).status == "failed"


# --- retries, on a mock transport --------------------------------------------------------------


def scripted(*answers: int | type[Exception]) -> tuple[httpx.MockTransport, list[str]]:
    """A transport answering each request with the next status (or raising the next error)."""
    calls: list[str] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        answer = queue.pop(0)
        if isinstance(answer, type):
            raise answer("scripted", request=request)
        body = {"error": {"code": f"c{answer}", "message": "scripted"}}
        if answer == 200:
            body = {"items": [], "broken": []}
        return httpx.Response(answer, json=body, headers={"Retry-After": "0"})

    return httpx.MockTransport(handle), calls


def test_get_is_retried_on_503_and_502() -> None:
    transport, calls = scripted(503, 502, 200)
    with DatagateClient("http://x", transport=transport, retry=NO_WAIT) as client:
        assert client.list_suites() == {"items": [], "broken": []}
    assert calls == ["GET"] * 3


def test_post_is_not_retried_on_a_server_error() -> None:
    transport, calls = scripted(500, 200)
    with (
        DatagateClient("http://x", transport=transport, retry=NO_WAIT) as client,
        pytest.raises(ServerError),
    ):
        client.request("POST", "/v1/validations")
    assert calls == ["POST"]


def test_post_is_retried_on_503_and_on_connection_errors_before_sending() -> None:
    transport, calls = scripted(httpx.ConnectError, 503, 200)
    with DatagateClient("http://x", transport=transport, retry=NO_WAIT) as client:
        assert client.request("POST", "/v1/validations").status_code == 200
    assert calls == ["POST"] * 3


def test_post_is_not_resent_after_a_read_timeout() -> None:
    transport, calls = scripted(httpx.ReadTimeout, 200)
    with (
        DatagateClient("http://x", transport=transport, retry=NO_WAIT) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.request("POST", "/v1/validations")
    assert calls == ["POST"]


def test_503_after_the_last_attempt_carries_retry_after() -> None:
    transport, calls = scripted(503, 503, 503)
    with (
        DatagateClient("http://x", transport=transport, retry=NO_WAIT) as client,
        pytest.raises(ServiceUnavailable) as busy,
    ):
        client.request("POST", "/v1/validations")
    assert busy.value.retry_after == 0 and busy.value.code == "c503"
    assert len(calls) == 3


def test_retry_after_sets_the_delay_and_backoff_doubles_without_it() -> None:
    policy = RetryPolicy(backoff=0.5, max_delay=3)
    waiting = httpx.Response(503, headers={"Retry-After": "7"})
    assert policy.delay(0, waiting) == 7
    assert [policy.delay(n, None) for n in range(4)] == [0.5, 1.0, 2.0, 3]


# --- request bodies ------------------------------------------------------------------------------


def test_references_are_sent_as_a_json_body() -> None:
    request = ValidationRequest(
        data="s3://bucket/batch.parquet",
        reference="warehouse:train_features",
        suite="penguins",
        label="species",
        categorical=["island", "sex"],
        thresholds={"max_feature_drift": 0.3},
    )
    with request_body(request, wait=False) as body:
        assert body == {
            "json": {
                "suite": "penguins",
                "label": "species",
                "categorical": ["island", "sex"],
                "thresholds": {"max_feature_drift": 0.3},
                "wait": False,
                "data": {"uri": "s3://bucket/batch.parquet"},
                "reference": {"connection": "warehouse", "table": "train_features"},
            }
        }


def test_per_check_is_sent_as_json_in_a_form_and_as_an_object_in_a_body() -> None:
    per_check = {"DataDuplicates": {"severity": "critical"}}
    upload = ValidationRequest(data=str(PENGUINS), suite="penguins", per_check=per_check)
    with request_body(upload, wait=True) as body:
        assert json.loads(body["data"]["per_check"]) == per_check
    referenced = ValidationRequest(data="s3://bucket/b.parquet", suite="p", per_check=per_check)
    with request_body(referenced, wait=True) as body:
        assert body["json"]["per_check"] == per_check


def test_local_files_are_uploaded_as_multipart_with_form_fields() -> None:
    request = ValidationRequest(data=str(PENGUINS), suite="penguins", categorical=["island"])
    with request_body(request, wait=True) as body:
        assert set(body["files"]) == {"data"}
        assert body["files"]["data"][0] == "penguins.csv"
        assert body["data"] == {"wait": "true", "suite": "penguins", "categorical": "island"}
        built = httpx.Request("POST", "http://x/v1/validations", **body)
        assert built.headers["content-type"].startswith("multipart/form-data")


def test_a_local_file_with_a_reference_uri_is_refused_before_sending() -> None:
    request = ValidationRequest(data=str(PENGUINS), reference="s3://b/ref.csv", suite="p")
    with pytest.raises(ValueError, match="both"), request_body(request, wait=True):
        pass


def test_a_name_that_is_neither_file_nor_reference_is_refused() -> None:
    with (
        pytest.raises(FileNotFoundError, match="not a file"),
        request_body(ValidationRequest(data="no/such/file.csv", suite="p"), wait=True),
    ):
        pass


def test_upload_progress_reports_bytes_sent(datagate_server: Server) -> None:
    seen: list[tuple[int, int | None]] = []
    with DatagateClient(datagate_server.url, api_key=datagate_server.write_key) as client:
        client.validate(PENGUINS, suite="penguins", on_upload=lambda s, t: seen.append((s, t)))
    size = PENGUINS.stat().st_size
    assert seen and seen[-1] == (size, size)
    assert json.loads(json.dumps(seen))  # plain numbers, ready for any display
