"""Receive a multipart/form-data upload by streaming each file part to a temporary file.

This replaces Starlette's `request.form()`, which cannot refuse an oversized file until it has
spooled all of it: here the byte limit is enforced while the body arrives.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from app.core.errors import InvalidRequest, PayloadTooLarge, UnsupportedFormat

# Part headers and boundaries cost a little on top of the field values themselves.
_PART_OVERHEAD_BYTES = 1024


@dataclass
class ReceivedFile:
    field: str
    path: Path
    filename: str | None
    content_type: str | None
    size: int
    sha256: str


@dataclass
class ReceivedForm:
    """Text fields and spooled files of one request; `with form:` removes the files after."""

    fields: dict[str, str] = field(default_factory=dict)  # a repeated field keeps its last value
    field_lists: dict[str, list[str]] = field(default_factory=dict)  # every value, in order
    files: dict[str, ReceivedFile] = field(default_factory=dict)

    def cleanup(self) -> None:
        """Remove every temporary file; safe to call more than once."""
        for received in self.files.values():
            received.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()


async def receive_form(
    request: Request,
    *,
    max_bytes: int,
    spool_dir: Path,
    max_fields: int = 50,
    max_field_bytes: int = 64 * 1024,
    max_files: int = 2,
) -> ReceivedForm:
    """Parse the request body as multipart/form-data, each file part written to `spool_dir`.

    `max_bytes` limits each file; `max_files` file parts are accepted (a dataset and its
    reference). On any error every file already written is removed before the error is raised.
    """
    boundary = _boundary(request.headers.get("content-type"))
    body_limit = max_files * max_bytes + max_fields * (max_field_bytes + _PART_OVERHEAD_BYTES)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise PayloadTooLarge(
            f"the request body is {int(declared)} bytes; the limit is {max_bytes} bytes per file "
            f"({body_limit} bytes for the whole form)"
        )
    receiver = _FormReceiver(
        spool_dir=spool_dir,
        max_bytes=max_bytes,
        max_files=max_files,
        max_fields=max_fields,
        max_field_bytes=max_field_bytes,
    )
    try:
        await receiver.feed(request, boundary, body_limit)
    except BaseException:
        receiver.discard()
        raise
    return receiver.form


def _boundary(content_type: str | None) -> bytes:
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        shown = repr(content_type) if content_type else "no Content-Type"
        raise UnsupportedFormat(f"expected a multipart/form-data request body, got {shown}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidRequest("the multipart/form-data Content-Type has no boundary parameter")
    return boundary


class _Part:
    """The part being parsed: its headers, then either a text value or a spooled file."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.text = bytearray()
        self.file: ReceivedFile | None = None
        self.handle: BinaryIO | None = None
        self.digest = hashlib.sha256()


class _FormReceiver:
    """Callbacks for `MultipartParser`; file bytes are queued and written off the event loop."""

    def __init__(
        self,
        *,
        spool_dir: Path,
        max_bytes: int,
        max_files: int,
        max_fields: int,
        max_field_bytes: int,
    ) -> None:
        self.form = ReceivedForm()
        self.spool_dir = spool_dir
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.max_fields = max_fields
        self.max_field_bytes = max_field_bytes
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.field_count = 0
        self.spooled: list[_Part] = []  # every part that opened a file, for cleanup
        self.pending: list[tuple[_Part, bytes]] = []

    async def feed(self, request: Request, boundary: bytes, body_limit: int) -> None:
        try:
            parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self.on_part_begin,
                    "on_header_field": self.on_header_field,
                    "on_header_value": self.on_header_value,
                    "on_header_end": self.on_header_end,
                    "on_headers_finished": self.on_headers_finished,
                    "on_part_data": self.on_part_data,
                    "on_part_end": self.on_part_end,
                },
            )
            received = 0
            async for chunk in request.stream():
                received += len(chunk)
                if received > body_limit:
                    # Only junk outside the parts can get here; the parts have their own limits.
                    raise PayloadTooLarge(f"the request body is over {body_limit} bytes")
                parser.write(chunk)
                if self.pending:
                    await anyio.to_thread.run_sync(self.write_pending)
        except FormParserError as exc:
            raise InvalidRequest(f"malformed multipart/form-data body: {exc}") from exc
        if parser.state != MultipartState.END:
            raise InvalidRequest(
                "malformed multipart/form-data body: it ended before the closing boundary"
            )
        for part in self.spooled:
            self.close(part)

    # --- parser callbacks -------------------------------------------------------------------

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.header_name.strip().lower()] = self.header_value.strip()
        self.header_name = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        part = self.part
        disposition, options = parse_options_header(part.headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in options:
            raise InvalidRequest(
                "malformed multipart/form-data body: a part has no "
                'Content-Disposition: form-data; name="..." header'
            )
        # parse_options_header hands back latin-1 bytes; browsers send UTF-8 names.
        part.name = options[b"name"].decode("utf-8", errors="replace")
        if b"filename" not in options:
            self.field_count += 1
            if self.field_count > self.max_fields:
                raise InvalidRequest(f"the form has more than {self.max_fields} text fields")
            return
        if part.name in self.form.files:
            raise InvalidRequest(f"file field {part.name!r} was sent more than once")
        if len(self.form.files) >= self.max_files:
            raise InvalidRequest(f"the form has more than {self.max_files} files")
        descriptor, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.spool_dir)
        part.handle = os.fdopen(descriptor, "wb")
        self.spooled.append(part)
        content_type = part.headers.get(b"content-type")
        part.file = ReceivedFile(
            field=part.name,
            path=Path(name),
            filename=options[b"filename"].decode("utf-8", errors="replace") or None,
            content_type=content_type.decode("latin-1") if content_type else None,
            size=0,
            sha256="",
        )
        self.form.files[part.name] = part.file

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.file is None:
            part.text += data[start:end]
            if len(part.text) > self.max_field_bytes:
                raise InvalidRequest(
                    f"form field {part.name!r} is longer than {self.max_field_bytes} bytes"
                )
            return
        part.file.size += end - start
        if part.file.size > self.max_bytes:
            raise PayloadTooLarge(
                f"file field {part.name!r} is over the limit of {self.max_bytes} bytes"
            )
        self.pending.append((part, data[start:end]))

    def on_part_end(self) -> None:
        part = self.part
        if part.file is not None:
            return
        try:
            value = part.text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"form field {part.name!r} is not valid UTF-8") from exc
        self.form.fields[part.name] = value
        self.form.field_lists.setdefault(part.name, []).append(value)

    # --- files ------------------------------------------------------------------------------

    def write_pending(self) -> None:
        for part, data in self.pending:
            assert part.handle is not None
            part.handle.write(data)
            part.digest.update(data)
        self.pending.clear()

    def close(self, part: _Part) -> None:
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        if part.file is not None:
            part.file.sha256 = part.digest.hexdigest()

    def discard(self) -> None:
        for part in self.spooled:
            if part.handle is not None:
                part.handle.close()
                part.handle = None
            if part.file is not None:
                part.file.path.unlink(missing_ok=True)
        self.pending.clear()
