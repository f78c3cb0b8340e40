"""Texts a client sends that get stored are refused at the edge when no database could hold them.

A NUL in a dataset name once made a job unfinishable on PostgreSQL (the poison pill of issue
18): every field, form or JSON, that ends up in a job or a report answers 422 naming itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.reports.store import ReportFilter
from tests.conftest import EXAMPLES, RunningApp

pytestmark = pytest.mark.anyio

PENGUINS = EXAMPLES / "penguins.csv"


def reports_and_jobs(running_app: RunningApp) -> tuple[int, int]:
    _, reports = running_app.app.state.store.list(ReportFilter(), limit=1)
    return reports, running_app.app.state.jobs.queued_count()


def uploads_left(running_app: RunningApp) -> list[Path]:
    return list(running_app.app.state.settings.uploads_dir.iterdir())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dataset_name", "poison\x00pill"),
        ("label", "spe\x00cies"),
        ("datetime", "\x00"),
        ("index", "id\x00"),
        ("categorical", "island,\x00sex"),
        ("features", "bill_length_mm\x00"),
        ("suite", "pengu\x00ins"),
        ("callback_url", "http://127.0.0.1/\x00hook"),
        ("thresholds", '{"max_feature_drift\x00": 0.3}'),
    ],
)
async def test_form_field_with_nul_is_422_naming_the_field(
    client: AsyncClient, running_app: RunningApp, field: str, value: str
) -> None:
    before = reports_and_jobs(running_app)
    data = {"suite": "penguins", "wait": "false", field: value}
    response = await client.post(
        "/v1/validations", files={"data": ("penguins.csv", PENGUINS.read_bytes())}, data=data
    )
    assert response.status_code == 422, response.text[:300]
    message = response.json()["error"]["message"]
    assert repr(field) in message or field in message
    assert "NUL" in message
    assert reports_and_jobs(running_app) == before, "nothing may be stored or queued"
    assert uploads_left(running_app) == []


BOUNDARY = "datagate-test-boundary"


def raw_form(filename: bytes, **fields: bytes) -> bytes:
    """A multipart body written by hand: httpx would percent-encode a NUL in a file name."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="'.encode()
        + filename
        + b'"\r\n\r\n'
        + PENGUINS.read_bytes()
    )
    for name, value in fields.items():
        body += (
            f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        ).encode() + value
    return body + f"\r\n--{BOUNDARY}--\r\n".encode()


async def post_raw(client: AsyncClient, body: bytes) -> tuple[int, str]:
    response = await client.post(
        "/v1/validations",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return response.status_code, response.json()["error"]["message"]


async def test_file_name_with_nul_is_422_when_it_would_name_the_dataset(
    client: AsyncClient, running_app: RunningApp
) -> None:
    before = reports_and_jobs(running_app)
    status, message = await post_raw(client, raw_form(b"pen\x00guins.csv", suite=b"penguins"))
    assert status == 422
    assert "'data (its file name)' must not contain NUL" in message
    assert reports_and_jobs(running_app) == before
    assert uploads_left(running_app) == []


async def test_form_field_that_is_not_utf8_is_422_naming_the_field(client: AsyncClient) -> None:
    body = raw_form(b"penguins.csv", suite=b"penguins", dataset_name=b"caf\xe9\xff")
    status, message = await post_raw(client, body)
    assert status == 422
    assert "'dataset_name' is not valid UTF-8" in message


async def test_over_long_dataset_name_is_422(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.csv", PENGUINS.read_bytes())},
        data={"suite": "penguins", "dataset_name": "n" * 513},
    )
    assert response.status_code == 422
    assert "'dataset_name'" in response.json()["error"]["message"]
    assert "at most 512" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"data": {"uri": "/lake/a.csv", "name": "poison\u0000pill"}}, "data.name:"),
        ({"data": {"uri": "/lake/\u0000a.csv"}}, "data.uri:"),
        (
            {"data": {"uri": "/a.csv"}, "reference": {"uri": "/b.csv", "name": "\u0000"}},
            "reference.name:",
        ),
        ({"data": {"uri": "/a.csv"}, "label": "spe\u0000cies"}, "label:"),
        ({"data": {"uri": "/a.csv"}, "datetime": "\u0000"}, "datetime:"),
        ({"data": {"uri": "/a.csv"}, "categorical": ["ok", "\u0000"]}, "categorical.1:"),
        ({"data": {"uri": "/a.csv"}, "thresholds": {"max_\u0000": 0.1}}, "thresholds."),
        ({"data": {"uri": "/a.csv"}, "callback_url": "http://h/\u0000"}, "callback_url:"),
        ({"data": {"uri": "/a.csv"}, "suite": "pen\u0000guins"}, "suite:"),
        (
            {"data": {"connection": "w", "query": "select :p", "params": {"p": "\u0000"}}},
            "data.params: parameter 'p'",
        ),
    ],
)
async def test_json_body_text_with_nul_is_422_naming_the_field(
    client: AsyncClient, running_app: RunningApp, body: dict[str, Any], where: str
) -> None:
    before = reports_and_jobs(running_app)
    response = await client.post("/v1/validations", json={"suite": "penguins", **body})
    assert response.status_code == 422, response.text[:300]
    message = response.json()["error"]["message"]
    assert message.startswith("invalid JSON body:")
    assert where in message and "NUL" in message
    assert reports_and_jobs(running_app) == before


async def test_json_body_with_a_lone_surrogate_is_422(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/validations",
        content=b'{"suite": "penguins", "data": {"uri": "/a.csv", "name": "\\ud800"}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "invalid JSON body" in response.json()["error"]["message"]
