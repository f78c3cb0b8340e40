"""Reading stored reports back: by id, and the paginated, filtered history."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.anyio


async def upload(client: AsyncClient, path: str, name: str) -> dict:  # type: ignore[type-arg]
    response = await client.post(
        "/v1/validations",
        files={"data": (path, (EXAMPLES / path).read_bytes())},
        data={"suite": "penguins", "dataset_name": name},
    )
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_history_is_newest_first_and_filters_by_status_and_dataset(
    client: AsyncClient,
) -> None:
    good = await upload(client, "penguins.csv", "history-good")
    bad = await upload(client, "penguins_bad.csv", "history-bad")

    page = (await client.get("/v1/reports", params={"limit": 2})).json()
    assert [item["id"] for item in page["items"]] == [bad["id"], good["id"]]
    assert page["total"] >= 2 and page["limit"] == 2

    failed = (await client.get("/v1/reports", params={"status": "failed"})).json()
    assert bad["id"] in [i["id"] for i in failed["items"]]
    assert all(i["status"] == "failed" for i in failed["items"])

    by_name = (await client.get("/v1/reports", params={"dataset": "history-good"})).json()
    assert [i["id"] for i in by_name["items"]] == [good["id"]]


async def test_unknown_report_is_404_with_the_error_shape(client: AsyncClient) -> None:
    response = await client.get("/v1/reports/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_bad_status_filter_is_422(client: AsyncClient) -> None:
    response = await client.get("/v1/reports", params={"status": "maybe"})
    assert response.status_code == 422
    assert "status" in response.json()["error"]["message"]
