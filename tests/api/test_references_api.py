"""POST /v1/validations with a JSON body that names where the data lives: files, S3, SQL."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ingest.references import ConnectionRefused
from app.main import create_app
from tests.conftest import (
    EXAMPLES,
    RunningApp,
    fresh_postgres_database,
    make_settings,
    reader_role,
)

pytestmark = pytest.mark.anyio

PENGUINS = EXAMPLES / "penguins.csv"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lake")
    (folder / "penguins.csv").write_bytes(PENGUINS.read_bytes())
    engine = sa.create_engine(f"sqlite:///{folder / 'warehouse.db'}")
    with engine.begin() as conn:
        pd.read_csv(PENGUINS).to_sql("penguins", conn, index=False)
    engine.dispose()
    return folder


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="datasets")
    client.put_object(Bucket="datasets", Key="penguins.csv", Body=PENGUINS.read_bytes())
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def pg_reader() -> Iterator[str]:
    """A PostgreSQL database holding the penguins, and the URL of a read-only role on it."""
    with fresh_postgres_database() as admin_url:
        engine = sa.create_engine(admin_url)
        with engine.begin() as conn:
            pd.read_csv(PENGUINS).to_sql("penguins", conn, index=False)
        engine.dispose()
        with reader_role(admin_url) as url:
            yield url


@pytest.fixture(scope="module")
def reference_app(
    tmp_path_factory: pytest.TempPathFactory, lake: Path, s3_endpoint: str, pg_reader: str
) -> Iterator[RunningApp]:
    # The worker processes read connections and S3 credentials from the environment they
    # inherit, as in production: set it before the app spawns them.
    connections = {
        "warehouse": f"sqlite:///{lake / 'warehouse.db'}",
        "pg": pg_reader,
        "gone": f"sqlite:///{lake / 'gone.db'}",
    }
    environment = {
        "DATAGATE_DATA_ROOTS": str(lake),
        "DATAGATE_CONNECTIONS": json.dumps(connections),
        "DATAGATE_ALLOWED_BUCKETS": '["datasets"]',
        "DATAGATE_S3_ENDPOINT_URL": s3_endpoint,
        "DATAGATE_S3_KEY": "test-key",
        "DATAGATE_S3_SECRET": "test-secret",
        "DATAGATE_S3_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        running = RunningApp(create_app(make_settings(tmp_path_factory.mktemp("service"))))
        yield running
        running.close()


@pytest.fixture
async def client(reference_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with reference_app.client() as http:
        yield http


async def post(client: AsyncClient, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/validations", json=body, **kwargs)
    return response.status_code, response.json()


async def test_file_reference_is_validated_where_it_lives(client: AsyncClient, lake: Path) -> None:
    uri = f"file://{lake}/penguins.csv"
    status, report = await post(client, {"data": {"uri": uri}, "suite": "penguins"})
    assert status == 200, report
    assert report["status"] == "passed"
    assert report["dataset"]["name"] == "penguins.csv"
    assert report["dataset"]["rows"] == 344
    assert report["dataset"]["source"] == {"uri": uri}
    assert report["dataset"]["bytes"] == PENGUINS.stat().st_size
    assert (lake / "penguins.csv").exists()


async def test_sql_table_is_validated_in_the_database(client: AsyncClient, lake: Path) -> None:
    body = {"data": {"connection": "warehouse", "table": "penguins"}, "suite": "penguins"}
    response = await client.post("/v1/validations", json=body)
    report = response.json()
    assert response.status_code == 200, report
    assert report["dataset"]["format"] == "sql"
    assert report["dataset"]["rows"] == 344
    assert report["dataset"]["source"] == {"connection": "warehouse", "table": "penguins"}
    assert "warehouse.db" not in response.text  # the connection URL never reaches a report
    range_checks = [
        c for c in report["checks"] if c["name"] == "expect_column_values_to_be_between"
    ]
    assert range_checks and all(c["outcome"] == "passed" for c in range_checks)


async def test_sql_query_with_parameters_is_validated(client: AsyncClient) -> None:
    body = {
        "data": {
            "connection": "warehouse",
            "query": "select * from penguins where island = :island",
            "params": {"island": "Dream"},
            "name": "dream-penguins",
        },
        "suite": "penguins",
    }
    status, report = await post(client, body)
    assert status == 200, report
    assert report["dataset"]["name"] == "dream-penguins"
    assert report["dataset"]["rows"] == 124
    assert report["dataset"]["source"]["params"] == {"island": "Dream"}


async def test_s3_reference_is_read_through_the_configured_store(client: AsyncClient) -> None:
    body = {"data": {"uri": "s3://datasets/penguins.csv"}, "suite": "penguins"}
    status, report = await post(client, body)
    assert status == 200, report
    assert report["status"] == "passed"
    assert report["dataset"]["source"] == {"uri": "s3://datasets/penguins.csv"}


async def wait_for_job(client: AsyncClient, status_url: str) -> dict[str, Any]:
    for _ in range(600):
        state = (await client.get(status_url)).json()
        if state["status"] in ("done", "error"):
            return dict(state)
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {status_url} did not finish")


@pytest.mark.parametrize(
    ("body_extra", "headers", "query"),
    [
        ({"wait": False}, {}, ""),
        ({}, {"Prefer": "respond-async"}, ""),
        ({}, {}, "?wait=false"),
    ],
)
async def test_reference_can_be_queued_and_is_not_moved(
    client: AsyncClient,
    lake: Path,
    body_extra: dict[str, Any],
    headers: dict[str, str],
    query: str,
) -> None:
    uri = f"{lake}/penguins.csv"
    body = {"data": {"uri": uri}, "suite": "penguins", **body_extra}
    response = await client.post(f"/v1/validations{query}", json=body, headers=headers)
    assert response.status_code == 202, response.text
    state = await wait_for_job(client, response.json()["status_url"])
    assert state["status"] == "done", state
    assert state["report"]["dataset"]["source"] == {"uri": uri}
    assert state["report"]["dataset"]["rows"] == 344
    assert (lake / "penguins.csv").exists()


async def test_queued_sql_reference_runs_in_the_database(client: AsyncClient) -> None:
    body = {
        "data": {"connection": "warehouse", "table": "penguins"},
        "suite": "penguins",
        "wait": False,
    }
    status, accepted = await post(client, body)
    assert status == 202
    state = await wait_for_job(client, accepted["status_url"])
    assert state["report"]["dataset"]["format"] == "sql"
    assert state["report"]["dataset"]["rows"] == 344


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ({"uri": "/etc/passwd"}, 403, "allowed roots"),
        ({"uri": "LAKE/../etc/passwd"}, 403, "'..'"),
        ({"uri": "LAKE/missing.csv"}, 404, "no file or folder"),
        ({"uri": "ftp://host/x.csv"}, 422, "scheme 'ftp'"),
        ({"uri": "s3://other-bucket/x.csv"}, 403, "allowed buckets: datasets"),
        ({"uri": "s3://datasets/missing.csv"}, 404, "no object"),
        ({"connection": "nope", "table": "t"}, 422, "configured connections: gone, pg, warehouse"),
        ({"connection": "warehouse", "table": "missing"}, 404, "no table 'missing'"),
        ({"connection": "warehouse", "query": "delete from penguins"}, 422, "SELECT or WITH"),
        ({"connection": "warehouse", "query": "select * from nowhere"}, 422, "data.query"),
    ],
)
async def test_bad_references_answer_a_clear_client_error(
    client: AsyncClient, lake: Path, data: dict[str, Any], status: int, words: str
) -> None:
    data = {k: v.replace("LAKE", str(lake)) for k, v in data.items()}
    got, body = await post(client, {"data": data, "suite": "penguins"})
    assert got == status, body
    assert words in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": {"uri": "/x.csv"}, "suite": "penguins", "colour": "red"}, "colour"),
        ({"data": {"uri": "/x.csv", "table": "t"}, "suite": "penguins"}, "data"),
        ({"data": {"uri": "/x.csv"}}, "suite"),
        ({"suite": "penguins"}, "data"),
        ({"data": {"uri": "/x.csv", "extra": 1}, "suite": "penguins"}, "data.extra"),
        ({"data": {"uri": "/x.csv"}, "suite": "penguins", "thresholds": {"a": "x"}}, "thresholds"),
    ],
)
async def test_malformed_json_body_names_the_field(
    client: AsyncClient, body: dict[str, Any], field: str
) -> None:
    status, answer = await post(client, body)
    assert status == 422
    assert answer["error"]["code"] == "invalid_request"
    assert f"{field}:" in answer["error"]["message"] or f"{field}." in answer["error"]["message"]


async def test_unknown_suite_is_not_found_for_references(client: AsyncClient, lake: Path) -> None:
    status, body = await post(client, {"data": {"uri": f"{lake}/penguins.csv"}, "suite": "nope"})
    assert status == 404
    assert body["error"]["code"] == "suite_not_found"


async def test_invalid_json_text_is_a_client_error(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/validations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_openapi_documents_the_json_body(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    content = document["paths"]["/v1/validations"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in content
    schema = content["application/json"]["schema"]
    assert {"data", "suite"} <= set(schema["required"])
    assert "$ref" not in json.dumps(schema)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
reference_bodies = st.fixed_dictionaries(
    {},
    optional={
        "data": st.dictionaries(
            st.sampled_from(["uri", "connection", "table", "query", "params", "format", "schema"]),
            json_values,
        ),
        "suite": json_values,
        "wait": json_values,
        "label": json_values,
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=reference_bodies)
async def test_no_json_body_makes_the_service_answer_500(
    client: AsyncClient, body: dict[str, Any]
) -> None:
    body = {**body, "wait": True} if "wait" in body else body
    response = await client.post("/v1/validations", json=body)
    assert response.status_code < 500, response.text


async def test_referenced_data_and_reference_get_leakage_and_drift_checks(
    client: AsyncClient, lake: Path
) -> None:
    body = {
        "data": {"connection": "warehouse", "table": "penguins"},
        "reference": {"uri": f"file://{lake}/penguins.csv"},
        "suite": "penguins",
        "label": "species",
    }
    status, report = await post(client, body)
    assert status == 200, report
    rows = [c for c in report["checks"] if c["source"] == "deepchecks"]
    mix = next(r for r in rows if r["name"] == "TrainTestSamplesMix")
    # The same penguins on both sides: every data row also sits in the reference.
    assert mix["outcome"] == "failed"
    assert report["dataset"]["sampled"] is True
    assert report["reference"]["source"] == {"uri": f"file://{lake}/penguins.csv"}
    assert report["roles"]["label"] == "species"


# --- SQL hardening: the role, the statement, the session ---------------------------------------


async def test_readiness_names_each_sql_connection_and_its_state(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    states = response.json()["sql_connections"]
    assert states["warehouse"] == "read-only"
    assert states["pg"] == "read-only"
    # A missing SQLite file did not stop the start; readiness says why it is unusable.
    assert states["gone"] == (
        "not checked: the SQLite database file of connection 'gone' does not exist"
    )


async def test_table_on_a_read_only_role_is_validated(client: AsyncClient) -> None:
    body = {"data": {"connection": "pg", "table": "penguins"}, "suite": "penguins"}
    status, report = await post(client, body)
    assert status == 200, report
    assert report["dataset"]["rows"] == 344
    # The queued path runs in a worker process, which checks the role itself on first use.
    status, accepted = await post(client, {**body, "wait": False})
    assert status == 202
    state = await wait_for_job(client, accepted["status_url"])
    assert state["status"] == "done", state
    assert state["report"]["dataset"]["rows"] == 344


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("select pg_read_file('/etc/passwd') as line", "'pg_read_file'"),
        ("select set_config('statement_timeout', '0', false) as s", "'set_config'"),
        ("select pg_advisory_lock(7) as l", "'pg_advisory_lock'"),
        ("select pg_cancel_backend(pg_backend_pid()) as c", "'pg_cancel_backend'"),
        ("select * from penguins; delete from penguins", "one statement only"),
    ],
)
async def test_query_reaching_past_the_data_answers_422_naming_the_reference(
    client: AsyncClient, query: str, words: str
) -> None:
    for field in ("data", "reference"):
        body: dict[str, Any] = {"data": {"connection": "pg", "table": "penguins"}}
        body[field] = {"connection": "pg", "query": query}
        response = await client.post("/v1/validations", json={**body, "suite": "penguins"})
        assert response.status_code == 422, response.text
        message = response.json()["error"]["message"]
        assert message.startswith(f"{field}.query: ")
        assert words in message
        assert "root:" not in response.text


async def test_missing_sqlite_file_is_not_found_and_not_created(
    client: AsyncClient, lake: Path
) -> None:
    status, body = await post(client, {"data": {"connection": "gone", "table": "t"}, "suite": "x"})
    assert status == 404, body
    assert body["error"]["message"] == (
        "data.connection: the SQLite database file of connection 'gone' does not exist"
    )
    assert not (lake / "gone.db").exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"uri": "LAKE/penguins.csv\x00.txt"}, "data.uri"),
        ({"uri": "s3://datasets/pen\x00guins.csv"}, "data.uri"),
        ({"connection": "pg", "query": "select * from penguins -- \x00"}, "data.query"),
        ({"connection": "pg", "table": "pen\x00guins"}, "data.table"),
        ({"connection": "pg", "table": "penguins", "schema": "public\x00"}, "data.schema"),
        ({"connection": "p\x00g", "table": "penguins"}, "data.connection"),
        ({"uri": "LAKE/penguins.csv", "format": "csv\x00"}, "data.format"),
        (
            {
                "connection": "pg",
                "query": "select * from penguins where island = :i",
                "params": {"i": "Dream\x00"},
            },
            "data.params",
        ),
    ],
)
async def test_nul_in_a_reference_field_answers_422_naming_it(
    client: AsyncClient, lake: Path, data: dict[str, Any], field: str
) -> None:
    data = {k: v.replace("LAKE", str(lake)) if isinstance(v, str) else v for k, v in data.items()}
    status, body = await post(client, {"data": data, "suite": "penguins"})
    assert status == 422, body
    assert body["error"]["code"] == "invalid_request"
    assert f"{field}: " in body["error"]["message"]
    assert "NUL" in body["error"]["message"]


async def test_start_is_refused_for_a_superuser_connection(
    tmp_path: Path, postgres_url: str
) -> None:
    app = create_app(make_settings(tmp_path, connections={"dw": postgres_url}))
    with pytest.raises(ConnectionRefused) as caught:
        async with app.router.lifespan_context(app):
            raise AssertionError("the service started with a superuser connection")
    message = str(caught.value)
    assert "dw (role 'postgres' is a superuser)" in message
    assert "DATAGATE_SQL_ALLOW_WRITABLE_ROLE=true" in message
    assert not (tmp_path / "data").exists()  # refused before anything was set up


async def test_set_checks_over_sql_batches_are_exact_in_the_database_or_streamed(
    client: AsyncClient, lake: Path
) -> None:
    # Data and reference on one connection: the set checks run in the database.
    body = {
        "data": {"connection": "pg", "table": "penguins"},
        "reference": {"connection": "pg", "query": "select * from penguins"},
        "suite": "penguins",
        "label": "species",
    }
    status, report = await post(client, body)
    assert status == 200, report
    rows = {c["name"]: c for c in report["checks"] if c["source"] == "deepchecks"}
    for name in ("TrainTestSamplesMix", "NewLabelTrainTest", "DataDuplicates"):
        assert rows[name]["details"]["method"] == "exact", name
        assert rows[name]["details"]["computed_in"] == "database", name
    assert rows["TrainTestSamplesMix"]["details"]["rows_used"] == {"data": 344, "reference": 344}
    assert rows["TrainTestSamplesMix"]["observed"]["ratio"] == 1.0
    assert rows["TrainTestSamplesMix"]["outcome"] == "failed"

    # A file's data against a SQL reference: the reference streams past the file's rows.
    body["data"] = {"uri": f"file://{lake}/penguins.csv"}
    body["reference"] = {"connection": "warehouse", "table": "penguins"}
    status, report = await post(client, body)
    assert status == 200, report
    mix = next(c for c in report["checks"] if c["name"] == "TrainTestSamplesMix")
    assert mix["details"]["method"] == "exact"
    assert mix["details"]["computed_in"] == "stream"
    assert mix["details"]["rows_used"] == {"data": 344, "reference": 344}
    assert mix["outcome"] == "failed"
    # A set check not answered over a SQL batch still names the side it saw a sample of.
    mismatch = [
        c
        for c in report["checks"]
        if c["name"] == "StringMismatchComparison" and c["outcome"] != "skipped"
    ]
    assert {c["details"]["method"] for c in mismatch} == {"sampled"}
    assert mismatch[0]["details"]["sampled_before_the_check"] == ["reference"]

    body["reference"] = {"uri": f"file://{lake}/penguins.csv"}
    status, report = await post(client, body)
    assert status == 200, report
    mix = next(c for c in report["checks"] if c["name"] == "TrainTestSamplesMix")
    assert mix["details"]["method"] == "exact"
    assert mix["details"]["computed_in"] == "memory"
    assert mix["details"]["rows_used"] == {"data": 344, "reference": 344}
    assert mix["observed"]["ratio"] == 1.0
