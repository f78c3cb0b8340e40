"""Failing rows through the API: an upload's failed checks keep their rows, downloadable as
Parquet and as spreadsheet-safe CSV, cut at DATAGATE_MAX_FAILING_ROWS; clear 404s and 422s."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from httpx import AsyncClient

from app.main import create_app
from tests.conftest import RunningApp, make_settings

pytestmark = pytest.mark.anyio

LIMIT = 5

SUITE: dict[str, Any] = {
    "expectations": [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "country", "value_set": ["FR", "DE"]},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "amount", "min_value": 0, "max_value": 100},
        },
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "amount", "max_value": 1},
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
    ],
    "meta": {"datagate": {"id_columns": ["order_id"]}},
}


def orders_csv() -> bytes:
    """30 orders: 3 bad countries (two of them formulas), 12 amounts out of range."""
    rows = []
    for i in range(30):
        country = {4: '=HYPERLINK("http://x")', 9: "@SUM(A1)", 17: "US"}.get(i, "FR")
        amount = 150 + i if i % 5 < 2 else i
        order_id = "-2+3" if i == 9 else f"o{i:02d}"
        rows.append({"order_id": order_id, "country": country, "amount": amount})
    return pd.DataFrame(rows).to_csv(index=False).encode()


@pytest.fixture(scope="module")
def rows_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The service with DATAGATE_MAX_FAILING_ROWS=5 and a SQLite connection `wh` holding the
    same orders as table `orders` (the workers read connections from the environment)."""
    root = tmp_path_factory.mktemp("rows")
    url = f"sqlite:///{root / 'warehouse.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        pd.read_csv(io.BytesIO(orders_csv())).to_sql("orders", conn, index=False)
    engine.dispose()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATAGATE_CONNECTIONS", json.dumps({"wh": url}))
        patch.setenv("DATAGATE_MAX_FAILING_ROWS", str(LIMIT))
        settings = make_settings(root, max_failing_rows=LIMIT, connections={"wh": url})
        running = RunningApp(create_app(settings))
        yield running
        running.close()


@pytest.fixture
async def client(rows_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with rows_app.client() as http:
        yield http


async def put_suite(client: AsyncClient, definition: dict[str, Any]) -> str:
    name = f"rows-{uuid.uuid4().hex[:8]}"
    response = await client.put(f"/v1/suites/{name}", json=definition)
    assert response.status_code == 201, response.text
    return name


async def validate(client: AsyncClient, suite: str) -> Any:
    return await client.post(
        "/v1/validations", files={"data": ("orders.csv", orders_csv())}, data={"suite": suite}
    )


@pytest.fixture
async def report(client: AsyncClient) -> dict[str, Any]:
    response = await validate(client, await put_suite(client, SUITE))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_failed_checks_say_which_rows_were_kept(report: dict[str, Any]) -> None:
    in_set, between, mean, not_null = report["checks"][:4]
    assert in_set["details"]["failing_rows"] == {
        "check": "0",
        "rows": 3,
        "total": 3,
        "truncated": False,
        "artifact": "failing-rows-0.parquet",
    }
    assert between["details"]["failing_rows"] == {
        "check": "1",
        "rows": LIMIT,
        "total": 12,
        "truncated": True,
        "artifact": "failing-rows-1.parquet",
    }
    assert mean["outcome"] == "failed" and "failing_rows" not in mean["details"]
    assert not_null["outcome"] == "passed" and "failing_rows" not in not_null["details"]


async def test_parquet_download_holds_the_ids_and_the_checked_column(
    client: AsyncClient, report: dict[str, Any]
) -> None:
    response = await client.get(
        f"/v1/reports/{report['id']}/failing-rows", params={"check": "0", "format": "parquet"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in response.headers["content-disposition"]
    rows = pd.read_parquet(io.BytesIO(response.content))
    assert list(rows.columns) == ["order_id", "country"]
    assert list(rows["order_id"]) == ["o04", "-2+3", "o17"]
    assert list(rows["country"]) == ['=HYPERLINK("http://x")', "@SUM(A1)", "US"]

    cut = await client.get(f"/v1/reports/{report['id']}/failing-rows", params={"check": "1"})
    assert cut.status_code == 200
    kept = pd.read_parquet(io.BytesIO(cut.content))
    assert list(kept["order_id"]) == ["o00", "o01", "o05", "o06", "o10"]


async def test_csv_download_defuses_cells_a_spreadsheet_would_run(
    client: AsyncClient, report: dict[str, Any]
) -> None:
    response = await client.get(
        f"/v1/reports/{report['id']}/failing-rows", params={"check": "0", "format": "csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["order_id", "country"],
        ["o04", '\'=HYPERLINK("http://x")'],
        ["'-2+3", "'@SUM(A1)"],
        ["o17", "US"],
    ]


async def test_unknown_check_or_a_check_without_rows_is_404_naming_it(
    client: AsyncClient, report: dict[str, Any]
) -> None:
    url = f"/v1/reports/{report['id']}/failing-rows"
    for key in ("2", "3", "99", "deepchecks"):
        response = await client.get(url, params={"check": key})
        assert response.status_code == 404, key
        message = response.json()["error"]["message"]
        assert f"no failing rows for check '{key}'" in message
        assert "'0', '1'" in message
    missing = await client.get("/v1/reports/nope/failing-rows", params={"check": "0"})
    assert missing.status_code == 404


async def test_bad_format_or_no_check_is_422(client: AsyncClient, report: dict[str, Any]) -> None:
    url = f"/v1/reports/{report['id']}/failing-rows"
    bad = await client.get(url, params={"check": "0", "format": "xlsx"})
    assert bad.status_code == 422
    assert "format" in bad.json()["error"]["message"]
    unnamed = await client.get(url)
    assert unnamed.status_code == 422
    assert "check" in unnamed.json()["error"]["message"]


async def test_id_column_the_data_lacks_is_422_naming_it(client: AsyncClient) -> None:
    suite = await put_suite(
        client, {**SUITE, "meta": {"datagate": {"id_columns": ["order_id", "ticket"]}}}
    )
    response = await validate(client, suite)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "id_columns" in message and '"ticket"' in message


async def test_malformed_id_columns_are_refused_when_the_suite_is_put(client: AsyncClient) -> None:
    response = await client.put(
        "/v1/suites/rows-bad-ids", json={**SUITE, "meta": {"datagate": {"id_columns": "order_id"}}}
    )
    assert response.status_code == 422
    assert "meta.datagate.id_columns" in response.json()["error"]["message"]


async def test_a_sql_batch_keeps_its_rows_from_a_bounded_query(client: AsyncClient) -> None:
    suite = await put_suite(client, SUITE)
    response = await client.post(
        "/v1/validations", json={"data": {"connection": "wh", "table": "orders"}, "suite": suite}
    )
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks[0]["details"]["failing_rows"]["rows"] == 3
    assert checks[1]["details"]["failing_rows"] == {
        "check": "1",
        "rows": LIMIT,
        "total": 12,
        "truncated": True,
        "artifact": "failing-rows-1.parquet",
    }
    rows = await client.get(
        f"/v1/reports/{response.json()['id']}/failing-rows", params={"check": "0"}
    )
    assert rows.status_code == 200, rows.text
    table = pd.read_parquet(io.BytesIO(rows.content))
    assert list(table.columns) == ["order_id", "country"]
    assert sorted(table["order_id"]) == ["-2+3", "o04", "o17"]
