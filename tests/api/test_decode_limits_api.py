"""Decoding bounds through the service: the settings' limits reach the worker that reads."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
from httpx import AsyncClient

from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = pytest.mark.anyio

DECODED_LIMIT = 2 * 1024**2
PENGUINS = EXAMPLES / "penguins.csv"


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    settings = make_settings(
        tmp_path_factory.mktemp("limits"),
        max_decoded_bytes=DECODED_LIMIT,
        max_columns=50,
        max_nesting_depth=64,
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(limited_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with limited_app.client() as http:
        yield http


async def validate(client: AsyncClient, name: str, content: bytes) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = await client.post(
        "/v1/validations", files={"data": (name, content)}, data={"suite": "penguins"}
    )
    return response.status_code, response.json()


async def test_parquet_string_bomb_is_413_naming_the_file_and_the_limit(
    client: AsyncClient,
) -> None:
    buffer = io.BytesIO()
    table = pa.table({"text": pa.array(["x" * 1000] * 100_000)})  # 100 MB decoded
    pa_parquet.write_table(table, buffer, compression="zstd", use_dictionary=True)
    assert len(buffer.getvalue()) < 50_000

    status, body = await validate(client, "bomb.parquet", buffer.getvalue())

    assert status == 413, body
    message = body["error"]["message"]
    assert "bomb.parquet" in message and str(DECODED_LIMIT) in message


async def test_ndjson_nested_100000_deep_is_422_and_the_worker_lives_on(
    client: AsyncClient, limited_app: RunningApp
) -> None:
    pool = limited_app.app.state.pool
    restarts = pool.restarts
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n"

    status, body = await validate(client, "deep.ndjson", ('{"a": 1}\n' + deep).encode())

    assert status == 422, body
    assert body["error"]["message"] == (
        "NDJSON line 2 nests arrays and objects more than 64 levels deep "
        "(DATAGATE_MAX_NESTING_DEPTH)"
    )
    assert pool.restarts == restarts  # no worker crashed and was replaced
    status, report = await validate(client, "penguins.csv", PENGUINS.read_bytes())
    assert status == 200 and report["status"] == "passed"


async def test_csv_wider_than_the_column_limit_is_422_for_validation_and_inference(
    client: AsyncClient,
) -> None:
    wide = (",".join(f"c{i}" for i in range(51)) + "\n" + ",".join(["1"] * 51) + "\n").encode()

    status, body = await validate(client, "wide.csv", wide)
    inferred = await client.post("/v1/suites/infer", files={"data": ("wide.csv", wide)})

    expected = "wide.csv has 51 columns; the limit is 50 columns (DATAGATE_MAX_COLUMNS)"
    assert status == 422 and body["error"]["message"] == expected
    assert inferred.status_code == 422
    assert inferred.json()["error"]["message"] == expected


async def test_data_within_the_limits_still_validates(client: AsyncClient) -> None:
    status, report = await validate(client, "penguins.csv", PENGUINS.read_bytes())

    assert status == 200 and report["dataset"]["rows"] == 344
