"""receive_form through a tiny Starlette app: files spooled and hashed, limits, no leftovers."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.errors import DatagateError
from app.ingest.upload import ReceivedForm, receive_form

BOUNDARY = "datagate-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


class Upload:
    """An app that calls receive_form and keeps the forms it received for the test to inspect."""

    def __init__(self, spool_dir: Path, *, max_bytes: int = 1024, **limits: int) -> None:
        self.spool_dir = spool_dir
        self.forms: list[ReceivedForm] = []

        async def endpoint(request: Request) -> JSONResponse:
            try:
                form = await receive_form(
                    request, max_bytes=max_bytes, spool_dir=spool_dir, **limits
                )
            except DatagateError as exc:
                return JSONResponse(
                    {"code": exc.code, "message": exc.message}, status_code=exc.status_code
                )
            self.forms.append(form)
            return JSONResponse({"files": sorted(form.files), "fields": form.fields})

        self.app = Starlette(routes=[Route("/upload", endpoint, methods=["POST"])])

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test"
        )

    def leftovers(self) -> list[Path]:
        return list(self.spool_dir.iterdir())


def _part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _in_chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    # A generator body has no Content-Length: it arrives chunked, as from a streaming client.
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.mark.anyio
async def test_fields_and_file_are_received_with_size_and_sha256(spool: Path) -> None:
    upload = Upload(spool)
    content = b"id,price\n1,2.5\n2,3.0\n"

    async with upload.client() as client:
        response = await client.post(
            "/upload",
            data={"suite": "orders", "tag": ["a", "b"]},
            files={"dataset": ("orders.csv", content, "text/csv")},
        )

    assert response.status_code == 200
    form = upload.forms[0]
    assert form.fields == {"suite": "orders", "tag": "b"}
    assert form.field_lists == {"suite": ["orders"], "tag": ["a", "b"]}
    received = form.files["dataset"]
    assert received.field == "dataset"
    assert received.filename == "orders.csv"
    assert received.content_type == "text/csv"
    assert received.size == len(content)
    assert received.sha256 == hashlib.sha256(content).hexdigest()
    assert received.path.parent == spool
    assert received.path.read_bytes() == content


@pytest.mark.anyio
async def test_file_arriving_in_small_chunks_is_written_whole(spool: Path) -> None:
    upload = Upload(spool, max_bytes=1 << 20)
    content = random.Random(7).randbytes(200_000)
    body = _body(_part("train", content, "train.parquet"), _part("note", b"x"))

    async with upload.client() as client:
        response = await client.post(
            "/upload", content=_in_chunks(body, 997), headers={"content-type": MULTIPART}
        )

    assert response.status_code == 200
    received = upload.forms[0].files["train"]
    assert received.size == len(content)
    assert received.sha256 == hashlib.sha256(content).hexdigest()
    assert received.path.read_bytes() == content
    assert upload.forms[0].fields == {"note": "x"}


@pytest.mark.anyio
async def test_dataset_and_reference_files_are_both_received(spool: Path) -> None:
    upload = Upload(spool)

    async with upload.client() as client:
        response = await client.post(
            "/upload",
            files={"dataset": ("a.csv", b"a\n1\n"), "reference": ("b.csv", b"a\n2\n")},
        )

    assert response.json()["files"] == ["dataset", "reference"]
    assert len(upload.leftovers()) == 2


@pytest.mark.anyio
async def test_file_over_max_bytes_while_streaming_is_413_and_leaves_no_file(
    spool: Path,
) -> None:
    upload = Upload(spool, max_bytes=1000)
    body = _body(_part("dataset", b"x" * 1001, "big.csv"))

    async with upload.client() as client:
        response = await client.post(
            "/upload", content=_in_chunks(body, 100), headers={"content-type": MULTIPART}
        )

    assert response.status_code == 413
    assert "'dataset'" in response.json()["message"]
    assert "1000 bytes" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.anyio
async def test_second_file_over_limit_removes_the_first_file_too(spool: Path) -> None:
    upload = Upload(spool, max_bytes=100)
    body = _body(_part("dataset", b"a\n1\n", "a.csv"), _part("reference", b"y" * 101, "b.csv"))

    async with upload.client() as client:
        response = await client.post(
            "/upload", content=_in_chunks(body, 50), headers={"content-type": MULTIPART}
        )

    assert response.status_code == 413
    assert "'reference'" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.anyio
async def test_declared_content_length_over_limit_is_413_before_reading(spool: Path) -> None:
    upload = Upload(spool, max_bytes=1000, max_fields=1, max_field_bytes=10)

    async with upload.client() as client:
        response = await client.post(
            "/upload", files={"dataset": ("big.csv", b"x" * 5000, "text/csv")}
        )

    assert response.status_code == 413
    assert "request body is" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.parametrize(
    "body",
    [
        # No closing boundary: the client stopped mid-file.
        _part("dataset", b"a,b\n1,2\n", "a.csv"),
        # Not multipart at all.
        b"this is not a multipart body",
        # A part without a Content-Disposition name.
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{BOUNDARY}--\r\n".encode(),
        # Nothing at all.
        b"",
    ],
    ids=["unterminated", "garbage", "nameless-part", "empty"],
)
@pytest.mark.anyio
async def test_malformed_body_is_422_and_leaves_no_file(spool: Path, body: bytes) -> None:
    upload = Upload(spool)

    async with upload.client() as client:
        response = await client.post("/upload", content=body, headers={"content-type": MULTIPART})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert "multipart" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.anyio
async def test_body_that_is_not_multipart_is_415(spool: Path) -> None:
    upload = Upload(spool)

    async with upload.client() as client:
        response = await client.post("/upload", json={"dataset": "s3://bucket/x.csv"})

    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["message"]
    assert "application/json" in response.json()["message"]


@pytest.mark.anyio
async def test_multipart_without_boundary_is_422(spool: Path) -> None:
    upload = Upload(spool)

    async with upload.client() as client:
        response = await client.post(
            "/upload", content=b"x", headers={"content-type": "multipart/form-data"}
        )

    assert response.status_code == 422
    assert "boundary" in response.json()["message"]


@pytest.mark.anyio
async def test_too_many_fields_is_422_and_leaves_no_file(spool: Path) -> None:
    upload = Upload(spool, max_fields=2)
    body = _body(
        _part("dataset", b"a\n1\n", "a.csv"),
        *(_part(f"f{i}", b"v") for i in range(3)),
    )

    async with upload.client() as client:
        response = await client.post("/upload", content=body, headers={"content-type": MULTIPART})

    assert response.status_code == 422
    assert "more than 2 text fields" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.anyio
async def test_field_over_max_field_bytes_is_422_naming_it(spool: Path) -> None:
    upload = Upload(spool, max_field_bytes=8)

    async with upload.client() as client:
        response = await client.post(
            "/upload", content=_body(_part("suite", b"x" * 9)), headers={"content-type": MULTIPART}
        )

    assert response.status_code == 422
    assert "'suite'" in response.json()["message"]
    assert "8 bytes" in response.json()["message"]


@pytest.mark.anyio
async def test_same_file_field_twice_is_422_and_leaves_no_file(spool: Path) -> None:
    upload = Upload(spool)
    body = _body(_part("dataset", b"a\n1\n", "a.csv"), _part("dataset", b"a\n2\n", "b.csv"))

    async with upload.client() as client:
        response = await client.post("/upload", content=body, headers={"content-type": MULTIPART})

    assert response.status_code == 422
    assert "'dataset'" in response.json()["message"]
    assert upload.leftovers() == []


@pytest.mark.anyio
async def test_cleanup_and_context_manager_remove_the_spooled_files(spool: Path) -> None:
    upload = Upload(spool)

    async with upload.client() as client:
        await client.post("/upload", files={"dataset": ("a.csv", b"a\n1\n")})
        await client.post("/upload", files={"dataset": ("b.csv", b"a\n2\n")})

    first, second = upload.forms
    assert len(upload.leftovers()) == 2
    first.cleanup()
    first.cleanup()  # a second call is harmless
    assert upload.leftovers() == [second.files["dataset"].path]
    with second:
        assert second.files["dataset"].path.read_bytes() == b"a\n2\n"
    assert upload.leftovers() == []
