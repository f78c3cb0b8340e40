"""POST /v1/validations through the whole service: upload, parse, validate, store, respond."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, RunningApp

pytestmark = pytest.mark.anyio

PENGUINS = EXAMPLES / "penguins.csv"
PENGUINS_BAD = EXAMPLES / "penguins_bad.csv"


async def post(
    client: AsyncClient,
    content: bytes,
    filename: str = "data.csv",
    suite: str | None = "penguins",
    **fields: str,
) -> tuple[int, dict]:  # type: ignore[type-arg]
    data = dict(fields)
    if suite is not None:
        data["suite"] = suite
    response = await client.post("/v1/validations", files={"data": (filename, content)}, data=data)
    return response.status_code, response.json()


def uploads_left(running_app: RunningApp) -> list[Path]:
    return list(running_app.app.state.settings.uploads_dir.iterdir())


async def test_clean_example_dataset_passes_and_is_stored(client: AsyncClient) -> None:
    status, report = await post(client, PENGUINS.read_bytes(), "penguins.csv")
    assert status == 200
    assert report["status"] == "passed" and report["success"] is True
    assert report["schema_version"] == "1.0"
    assert report["dataset"]["name"] == "penguins.csv"
    assert report["dataset"]["rows"] == 344
    assert len(report["dataset"]["sha256"]) == 64
    assert {"name": "species", "dtype": "object", "null_count": 0} in report["dataset"]["columns"]
    assert report["suite"]["name"] == "penguins"
    assert report["summary"]["failed"] == 0 and report["summary"]["evaluated"] > 0
    stored = (await client.get(f"/v1/reports/{report['id']}")).json()
    assert stored == report


async def test_a_keyless_service_refuses_a_validation_posted_from_another_origin(
    client: AsyncClient, running_app: RunningApp
) -> None:
    """Without keys (loopback) any page the developer opens could post a form here: a browser's
    cross-origin write is refused before the upload is read; clients send no Origin."""
    before = (await client.get("/v1/reports")).json()["total"]
    response = await client.post(
        "/v1/validations",
        headers={"Origin": "http://127.0.0.1:9999"},
        files={"data": ("penguins.csv", PENGUINS.read_bytes())},
        data={"suite": "penguins"},
    )
    assert response.status_code == 403
    assert "cross-origin" in response.json()["error"]["message"]
    assert (await client.get("/v1/reports")).json()["total"] == before
    assert uploads_left(running_app) == []


async def test_planted_defects_fail_naming_column_and_offending_values(
    client: AsyncClient,
) -> None:
    status, report = await post(client, PENGUINS_BAD.read_bytes(), "penguins_bad.csv")
    assert status == 200
    assert report["status"] == "failed" and report["success"] is False
    failed = [c for c in report["checks"] if c["outcome"] == "failed"]
    assert failed, "the planted defects must fail at least one check"
    by_column = {c["column"] for c in failed}
    assert "species" in by_column
    species = next(c for c in failed if c["column"] == "species")
    assert species["name"] == "expect_column_values_to_be_in_set"
    assert species["observed"]["unexpected_count"] >= 1
    assert species["observed"]["partial_unexpected_list"]
    assert "value_set" in species["expected"]


@pytest.mark.parametrize("fmt", ["parquet", "json", "ndjson", "arrow", "tsv"])
async def test_every_upload_format_gives_the_same_verdict(client: AsyncClient, fmt: str) -> None:
    frame = pd.read_csv(PENGUINS)
    buffer = io.BytesIO()
    if fmt == "parquet":
        frame.to_parquet(buffer)
    elif fmt == "json":
        buffer.write(frame.to_json(orient="records").encode())
    elif fmt == "ndjson":
        buffer.write(frame.to_json(orient="records", lines=True).encode())
    elif fmt == "arrow":
        feather.write_feather(pa.Table.from_pandas(frame), buffer)
    else:
        buffer.write(frame.to_csv(sep="\t", index=False).encode())
    status, report = await post(client, buffer.getvalue(), f"penguins.{fmt}")
    assert status == 200, report
    assert report["dataset"]["format"] == fmt
    assert report["dataset"]["rows"] == 344
    assert report["status"] == "passed", [c for c in report["checks"] if not c["success"]]


async def test_format_field_overrides_the_file_name(client: AsyncClient) -> None:
    status, report = await post(client, PENGUINS.read_bytes(), "upload.bin", format="csv")
    assert status == 200
    assert report["dataset"]["format"] == "csv"


async def test_dataset_name_field_names_the_dataset(client: AsyncClient) -> None:
    _, report = await post(client, PENGUINS.read_bytes(), dataset_name="penguins-2026-11-26")
    assert report["dataset"]["name"] == "penguins-2026-11-26"


async def test_unknown_suite_is_404_naming_it(client: AsyncClient) -> None:
    status, body = await post(client, PENGUINS.read_bytes(), suite="no_such_suite")
    assert status == 404
    assert body["error"]["code"] == "suite_not_found"
    assert "no_such_suite" in body["error"]["message"]


@pytest.mark.parametrize("suite", ["broken_json", "unknown_type"])
async def test_broken_suite_is_a_4xx_and_the_service_stays_up(
    client: AsyncClient, suite: str
) -> None:
    status, body = await post(client, PENGUINS.read_bytes(), suite=suite)
    assert status == 422
    assert body["error"]["code"] == "suite_invalid"
    assert suite in body["error"]["message"] or "expect_magic" in body["error"]["message"]
    assert (await client.get("/healthz")).status_code == 200


async def test_missing_data_field_is_422(client: AsyncClient) -> None:
    response = await client.post("/v1/validations", data={"suite": "penguins"}, files={})
    assert response.status_code in (415, 422)
    assert response.json()["error"]["message"]


async def test_missing_suite_field_is_422_naming_it(client: AsyncClient) -> None:
    status, body = await post(client, PENGUINS.read_bytes(), suite=None)
    assert status == 422
    assert "suite" in body["error"]["message"]


async def test_unknown_field_is_422_naming_it(client: AsyncClient) -> None:
    status, body = await post(client, PENGUINS.read_bytes(), suiet="penguins")
    assert status == 422
    assert "suiet" in body["error"]["message"]


async def test_empty_file_is_422_saying_it_is_empty(
    client: AsyncClient, running_app: RunningApp
) -> None:
    status, body = await post(client, b"", "empty.csv")
    assert status == 422
    assert "empty" in body["error"]["message"]
    assert uploads_left(running_app) == []


async def test_ragged_csv_is_422_naming_the_row(client: AsyncClient) -> None:
    status, body = await post(client, b"a,b\n1,2\n3,4,5\n", "ragged.csv", suite="penguins")
    assert status == 422
    assert body["error"]["code"] == "invalid_data"
    assert "row 3" in body["error"]["message"]


async def test_truncated_parquet_is_422(client: AsyncClient) -> None:
    buffer = io.BytesIO()
    pd.read_csv(PENGUINS).to_parquet(buffer)
    status, body = await post(client, buffer.getvalue()[:500], "cut.parquet")
    assert status == 422
    assert "parquet" in body["error"]["message"].lower()


async def test_unrecognised_format_is_415(client: AsyncClient) -> None:
    status, body = await post(client, b"\x00\x01", "data.xlsx")
    assert status == 415
    assert "data.xlsx" in body["error"]["message"]


async def test_upload_over_the_byte_limit_is_413_and_leaves_no_file(
    client: AsyncClient, running_app: RunningApp
) -> None:
    big = b"a,b\n" + b"1,2\n" * 1_600_000  # 6.4 MB against a 5 MB limit
    status, body = await post(client, big, "big.csv")
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert uploads_left(running_app) == []


async def test_dataset_over_the_row_limit_is_413(client: AsyncClient) -> None:
    rows = b"a\n" + b"1\n" * 100_001
    status, body = await post(client, rows, "rows.csv")
    assert status == 413
    assert "100000" in body["error"]["message"].replace(",", "").replace("_", "")


async def test_upload_files_are_removed_after_success(
    client: AsyncClient, running_app: RunningApp
) -> None:
    await post(client, PENGUINS.read_bytes(), "penguins.csv")
    assert uploads_left(running_app) == []


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    content=st.binary(max_size=2000),
    filename=st.sampled_from(["x.csv", "x.tsv", "x.parquet", "x.json", "x.ndjson", "x.arrow"]),
)
async def test_no_upload_makes_the_service_answer_500(
    client: AsyncClient, content: bytes, filename: str
) -> None:
    status, body = await post(client, content, filename)
    assert status < 500, body
    if status >= 400:
        assert body["error"]["message"]


async def test_refused_validations_are_counted_by_error_code(client: AsyncClient) -> None:
    await post(client, b"", "empty.csv")
    text = (await client.get("/metrics")).text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith('datagate_requests_rejected_total{code="invalid_data"}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1
