"""Dataset formats: tell which format a file is in, and read it into a pandas DataFrame.

Every failure becomes a domain error that names what was wrong and, where known, where.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import pyarrow.ipc as pa_ipc
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet
from pydantic import BaseModel, ConfigDict

from app.core.config import Settings, get_settings
from app.core.errors import InvalidData, InvalidRequest, PayloadTooLarge, UnsupportedFormat
from app.reports.model import ColumnInfo


class DataFormat(StrEnum):
    CSV = "csv"
    TSV = "tsv"
    PARQUET = "parquet"
    JSON = "json"  # one JSON array of objects
    NDJSON = "ndjson"  # one JSON object per line
    ARROW = "arrow"  # Arrow IPC file or stream; Feather v2 is the IPC file, v1 is read too


# Names a client may give for a format, and the file extensions that imply one.
_ALIASES: dict[str, DataFormat] = {
    "csv": DataFormat.CSV,
    "tsv": DataFormat.TSV,
    "tab": DataFormat.TSV,
    "parquet": DataFormat.PARQUET,
    "pq": DataFormat.PARQUET,
    "json": DataFormat.JSON,
    "ndjson": DataFormat.NDJSON,
    "jsonl": DataFormat.NDJSON,
    "jsonlines": DataFormat.NDJSON,
    "arrow": DataFormat.ARROW,
    "ipc": DataFormat.ARROW,
    "feather": DataFormat.ARROW,
}
_EXTENSIONS: dict[str, DataFormat] = {
    ".csv": DataFormat.CSV,
    ".tsv": DataFormat.TSV,
    ".tab": DataFormat.TSV,
    ".parquet": DataFormat.PARQUET,
    ".pq": DataFormat.PARQUET,
    ".json": DataFormat.JSON,
    ".ndjson": DataFormat.NDJSON,
    ".jsonl": DataFormat.NDJSON,
    ".arrow": DataFormat.ARROW,
    ".feather": DataFormat.ARROW,
    ".ipc": DataFormat.ARROW,
}
_CONTENT_TYPES: dict[str, DataFormat] = {
    "text/csv": DataFormat.CSV,
    "application/csv": DataFormat.CSV,
    "text/tab-separated-values": DataFormat.TSV,
    "application/vnd.apache.parquet": DataFormat.PARQUET,
    "application/x-parquet": DataFormat.PARQUET,
    "application/json": DataFormat.JSON,
    "application/x-ndjson": DataFormat.NDJSON,
    "application/jsonl": DataFormat.NDJSON,
    "application/vnd.apache.arrow.file": DataFormat.ARROW,
    "application/vnd.apache.arrow.stream": DataFormat.ARROW,
}
_COMPRESSED_EXTENSIONS = (".gz", ".gzip", ".bz2", ".zst", ".zip", ".xz")

# Leading bytes of binary formats, to say what a file is when it is given as text.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "a Parquet file"),
    (b"ARROW1", "an Arrow IPC file"),
    (b"FEA1", "a Feather v1 file"),
    (b"\xff\xff\xff\xff", "an Arrow IPC stream"),
    (b"\x1f\x8b", "gzip-compressed; send it uncompressed"),
    (b"PK\x03\x04", "a zip archive; send the file inside it"),
    (b"(\xb5/\xfd", "zstd-compressed; send it uncompressed"),
)
_SNIFF_BYTES = 8192
_CHUNK_BYTES = 1 << 20


def accepted_formats() -> list[str]:
    """The names `detect_format` accepts as an explicit format, for error messages and docs."""
    return sorted(_ALIASES)


def detect_format(
    filename: str | None, content_type: str | None, explicit: str | None = None
) -> DataFormat:
    """The format to read: the explicit one if given, else the file extension, else the type."""
    if explicit is not None and explicit.strip():
        key = explicit.strip().lower().lstrip(".")
        if key in _ALIASES:
            return _ALIASES[key]
        raise InvalidRequest(
            f"unknown format {explicit!r}; accepted: {', '.join(accepted_formats())}"
        )
    if filename:
        lower = filename.lower()
        for suffix, fmt in _EXTENSIONS.items():
            if lower.endswith(suffix):
                return fmt
        if lower.endswith(_COMPRESSED_EXTENSIONS):
            raise UnsupportedFormat(
                f"{filename!r} is compressed; datagate reads uncompressed files only "
                f"(Parquet and Arrow compress internally): {', '.join(sorted(_EXTENSIONS))}"
            )
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type in _CONTENT_TYPES:
            return _CONTENT_TYPES[media_type]
    shown = repr(filename) if filename else "the upload (no file name)"
    raise UnsupportedFormat(
        f"cannot tell the format of {shown}"
        + (f" with content type {content_type!r}" if content_type else "")
        + f"; use one of the extensions {', '.join(sorted(_EXTENSIONS))} "
        f"or give the format explicitly ({', '.join(accepted_formats())})"
    )


class DecodeLimits(BaseModel):
    """What reading one dataset may produce beside its rows: columns, decoded bytes, nesting.

    A file's size on disk says little about its size once decoded (a 227 KB Parquet file of
    one repeated string decodes to 2.6 GB), so each bound is checked while reading.
    """

    model_config = ConfigDict(frozen=True)

    columns: int
    decoded_bytes: int
    nesting_depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        return cls(
            columns=settings.max_columns,
            decoded_bytes=settings.max_decoded_bytes,
            nesting_depth=settings.max_nesting_depth,
        )


class DecodeBudget:
    """Running totals of one read (rows, decoded bytes, columns), refused past a limit.

    `name` is the file as the client knows it, for the messages.
    """

    def __init__(self, name: str, max_rows: int, limits: DecodeLimits) -> None:
        self.name = name
        self.max_rows = max_rows
        self.limits = limits
        self.rows = 0
        self.bytes = 0
        # Columns seen so far and what one missing value costs in each: tables read in parts
        # (JSON) are combined with nulls where a part lacks a column, and those nulls count.
        self._fill_widths: dict[str, int] = {}

    def check_columns(self, count: int) -> None:
        """Refuse a file with more columns than the limit, before its rows are read."""
        if count > self.limits.columns:
            raise InvalidData(
                f"{self.name} has {count} columns; the limit is {self.limits.columns} columns "
                "(DATAGATE_MAX_COLUMNS)"
            )

    def check_rows(self, rows: int) -> None:
        """Refuse a row count known before reading (a Parquet footer, a count of lines)."""
        _check_rows(rows, self.max_rows)

    def check_declared_bytes(self, nbytes: int) -> None:
        """Refuse a file whose metadata declares more decoded bytes than the limit."""
        if nbytes > self.limits.decoded_bytes:
            raise PayloadTooLarge(
                f"{self.name} declares {nbytes} bytes of uncompressed data; the limit is "
                f"{self.limits.decoded_bytes} decoded bytes (DATAGATE_MAX_DECODED_BYTES)"
            )

    def add(self, rows: int, nbytes: int) -> None:
        """Count one decoded part; raise as soon as a total passes its limit."""
        self.rows += rows
        self.bytes += nbytes
        if self.rows > self.max_rows:
            raise PayloadTooLarge(
                f"{self.name} has at least {self.rows} rows (reading stopped there); "
                f"the limit is {self.max_rows} rows"
            )
        if self.bytes > self.limits.decoded_bytes:
            raise PayloadTooLarge(
                f"{self.name} decodes to more than {self.limits.decoded_bytes} bytes "
                f"(DATAGATE_MAX_DECODED_BYTES); reading stopped after {self.rows} rows and "
                f"{self.bytes} decoded bytes"
            )

    def add_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.add(batch.num_rows, batch.nbytes)

    def add_part(self, table: pa.Table) -> None:
        """Count a part of a table read in parts, with the nulls that combining will add."""
        rows_before = self.rows
        fill = 0
        for field in table.schema:
            if field.name not in self._fill_widths:
                self._fill_widths[field.name] = _fill_width(field.type)
                fill += rows_before * self._fill_widths[field.name]  # earlier parts lack it
        self.check_columns(len(self._fill_widths))
        missing = set(self._fill_widths) - set(table.schema.names)
        fill += table.num_rows * sum(self._fill_widths[name] for name in missing)
        self.add(table.num_rows, table.nbytes + fill)


def _fill_width(data_type: pa.DataType) -> int:
    """Bytes one null costs in a column of this type once parts are combined (a bound)."""
    try:
        return max(1, int(data_type.bit_width) // 8) + 1
    except ValueError:  # variable width: an offset and a validity byte
        return 9


def read_dataframe(
    path: Path,
    fmt: DataFormat,
    *,
    max_rows: int,
    limits: DecodeLimits | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Read `path` as `fmt`. Raises InvalidData for unreadable data, PayloadTooLarge for rows
    or decoded bytes over the limits (default: the settings' limits); `name` is how messages
    name the file (default its file name)."""
    budget = DecodeBudget(
        name or path.name, max_rows, limits or DecodeLimits.from_settings(get_settings())
    )
    try:
        if path.stat().st_size == 0:
            raise InvalidData("the file is empty")
        match fmt:
            case DataFormat.CSV | DataFormat.TSV:
                table = _read_delimited(path, fmt, budget)
            case DataFormat.NDJSON:
                table = _read_ndjson(path, budget)
            case DataFormat.JSON:
                table = _read_json_array(path, budget)
            case DataFormat.PARQUET:
                table = _read_parquet(path, budget)
            case DataFormat.ARROW:
                table = _read_arrow(path, budget)
        _refuse_duplicate_columns(table.schema.names)
        # An uncompressed Arrow IPC batch keeps every column in one buffer of the whole body:
        # a zero-copy column would hold all of it for as long as the frame lives.
        return _to_pandas(table, zero_copy=fmt is not DataFormat.ARROW)
    except (pa.ArrowException, OSError, ValueError, UnicodeDecodeError) as exc:
        # A last net: the specific readers say more where they can, but pyarrow has many
        # error paths (bad footers, odd types, out-of-range timestamps in to_pandas).
        raise InvalidData(f"could not read the file as {fmt.value}: {_arrow_message(exc)}") from exc


def describe_columns(df: pd.DataFrame) -> list[ColumnInfo]:
    """Name, pandas dtype and null count of every column, in order."""
    nulls = df.isna().sum()
    return [
        ColumnInfo(name=str(name), dtype=str(df[name].dtype), null_count=int(nulls.iloc[i]))
        for i, name in enumerate(df.columns)
    ]


# --- delimited text -------------------------------------------------------------------------


def _read_delimited(path: Path, fmt: DataFormat, budget: DecodeBudget) -> pa.Table:
    label = "TSV" if fmt is DataFormat.TSV else "CSV"
    delimiter = "\t" if fmt is DataFormat.TSV else ","
    _refuse_binary(path, label)
    _refuse_invalid_utf8(path)
    budget.check_columns(_header_fields(path, delimiter.encode()))
    # Quoted values may hold newlines (pandas writes them so); pyarrow refuses them by default.
    parse = pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    block = _DEFAULT_BLOCK_BYTES
    while True:
        try:
            return _read_delimited_blocks(path, parse, label, budget, block)
        except _RowOverBlock:
            # pyarrow cannot parse a row longer than its block: read again with larger blocks
            # (a few times larger each time, so a file is read at most a few times).
            if block >= _MAX_BLOCK_BYTES or block > path.stat().st_size:
                raise InvalidData(
                    f"{label} has a row longer than {_MAX_BLOCK_BYTES} bytes, the longest "
                    "row datagate reads"
                ) from None
            block = min(block * _BLOCK_GROWTH, _MAX_BLOCK_BYTES)
            budget = DecodeBudget(budget.name, budget.max_rows, budget.limits)


def _read_delimited_blocks(
    path: Path, parse: pa_csv.ParseOptions, label: str, budget: DecodeBudget, block: int
) -> pa.Table:
    read = pa_csv.ReadOptions(block_size=block)
    try:
        return _stream_delimited(path, parse, read, budget)
    except pa.ArrowInvalid as exc:
        if _STRADDLING in str(exc):
            raise _RowOverBlock from exc
    # The streaming reader fixes each column's type from the first block, so a later value of
    # another type (an int column with "1.5" further down) stops it; the whole-file reader
    # infers types over every block, and it also gives the errors their description. Its
    # decoded size is bounded by the file's (a few times the bytes on disk) and is checked
    # once read.
    try:
        table = pa_csv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=_CSV_CONVERT
        )
    except pa.ArrowInvalid as exc:
        if _STRADDLING in str(exc):
            raise _RowOverBlock from exc
        raise InvalidData(_describe_csv_error(path, parse, label, exc)) from exc
    whole = DecodeBudget(budget.name, budget.max_rows, budget.limits)
    whole.check_columns(table.num_columns)
    whole.add_batch(table)
    return table


def _stream_delimited(
    path: Path, parse: pa_csv.ParseOptions, read: pa_csv.ReadOptions, budget: DecodeBudget
) -> pa.Table:
    # Block by block, the parser holds one block's buffers instead of the whole file's: at 1M
    # rows x 20 columns the read peaks at 185 MiB over the table instead of about 450; and a
    # file over max_rows or the decoded-bytes limit is refused as soon as a total passes it.
    reader = pa_csv.open_csv(
        path, read_options=read, parse_options=parse, convert_options=_CSV_CONVERT
    )
    # Again as pyarrow parsed the header: a stray quote inside an unquoted header value could
    # make the count from the bytes too low.
    budget.check_columns(len(reader.schema.names))
    batches: list[pa.RecordBatch] = []
    for batch in reader:
        budget.add_batch(batch)
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)


class _RowOverBlock(Exception):
    """A row longer than pyarrow's block: read again with larger blocks."""


_STRADDLING = "straddles two block boundaries"
_DEFAULT_BLOCK_BYTES = 1 << 20  # pyarrow's default
_BLOCK_GROWTH = 8
_MAX_BLOCK_BYTES = 512 << 20  # pyarrow's block size is an int32; leave room for the parser


def _header_fields(path: Path, delimiter: bytes) -> int:
    """Fields in the first record, counted in the bytes before any row is decoded.

    Quotes are paired as a CSV parser pairs them (a doubled quote inside a quoted value opens
    and closes at once), so delimiters and newlines inside quoted values do not count. Stops
    as soon as the count is known, so a header of a million fields costs one scan of it.
    """
    fields = 1
    quotes = 0  # quote characters seen so far; odd means inside a quoted value
    with path.open("rb") as handle:
        for chunk in _chunks(handle):
            view = np.frombuffer(chunk, dtype=np.uint8)
            quoted = (np.cumsum(view == _QUOTE) + quotes) % 2 == 1
            outside = ~quoted
            ends = np.flatnonzero(outside & ((view == _NEWLINE) | (view == _RETURN)))
            stop = int(ends[0]) if ends.size else len(view)
            fields += int(np.count_nonzero(outside[:stop] & (view[:stop] == delimiter[0])))
            if ends.size:
                break
            quotes += int(np.count_nonzero(view == _QUOTE))
    return fields


_QUOTE = ord('"')
_NEWLINE = ord("\n")
_RETURN = ord("\r")


# As pandas does, read "", "NA", "null", "NaN"... as missing in text columns too; pyarrow's
# default keeps them as text, so a missing-values check would pass on "NA".
_CSV_CONVERT = pa_csv.ConvertOptions(strings_can_be_null=True)
_RAGGED = re.compile(r"Expected (\d+) columns?, got (\d+)")


def _describe_csv_error(
    path: Path, parse: pa_csv.ParseOptions, label: str, exc: pa.ArrowInvalid
) -> str:
    message = _arrow_message(exc)
    if "Empty CSV file" in message:
        return f"the {label} file has no header line (it is empty or blank)"
    ragged = _RAGGED.search(message)
    if ragged is None:
        return f"{label} could not be parsed: {message}"
    expected, got = ragged.groups()
    line = _ragged_row(path, parse)
    # pyarrow counts records, not physical lines: they differ only after a quoted newline.
    where = f"row {line} (counting the header as row 1)" if line is not None else "a row"
    row_text = message[ragged.end() :].removeprefix(": ")[:200]
    return f"{label} {where} has {got} fields but the header has {expected}: {row_text!r}"


def _ragged_row(path: Path, parse: pa_csv.ParseOptions) -> int | None:
    """Row number of the first ragged row, counting the header as 1.

    The threaded reader cannot know row numbers, so the error path reads again serially.
    """
    found: list[int | None] = []

    def note(row: Any) -> str:
        found.append(row.number)
        return "error"

    serial_parse = pa_csv.ParseOptions(
        delimiter=parse.delimiter, newlines_in_values=True, invalid_row_handler=note
    )
    with contextlib.suppress(pa.ArrowInvalid):
        pa_csv.read_csv(
            path, read_options=pa_csv.ReadOptions(use_threads=False), parse_options=serial_parse
        )
    return found[0] if found else None


def _refuse_binary(path: Path, label: str) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InvalidData(f"the file is not {label} text: it looks like {what}")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        line = head.count(b"\n", 0, offset) + 1
        raise InvalidData(
            f"the file is not {label} text: it contains a NUL byte at offset {offset} "
            f"(line {line}); it looks like binary data"
        )


def _refuse_invalid_utf8(path: Path) -> None:
    """Raise InvalidData naming the byte offset and line of the first byte that is not UTF-8.

    pyarrow does not refuse such bytes: it turns a CSV column into `binary` and puts U+FFFD in
    NDJSON strings, so the check is ours, done in one streaming pass.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = 0  # bytes handed to the decoder before this chunk
    lines = 1
    with path.open("rb") as handle:
        for chunk in _chunks(handle):
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.start counts from the bytes the decoder still held from the last chunk.
                offset = consumed - len(pending) + exc.start
                within = exc.start - len(pending)
                line = lines + chunk.count(b"\n", 0, max(within, 0))
                bad = exc.object[exc.start : exc.start + 1].hex()
                raise InvalidData(
                    f"the file is not valid UTF-8: byte 0x{bad} at offset {offset} (line {line})"
                ) from exc
            consumed += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InvalidData(
                f"the file is not valid UTF-8: it ends inside a multi-byte character "
                f"(offset {consumed - len(decoder.getstate()[0])}, line {lines})"
            ) from exc


def _chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK_BYTES):
        yield chunk


# --- JSON -----------------------------------------------------------------------------------


def _read_ndjson(path: Path, budget: DecodeBudget) -> pa.Table:
    _refuse_binary(path, "NDJSON")
    _refuse_invalid_utf8(path)
    # Every record is an object on its line: the objects at depth 1 are the rows, counted
    # before pyarrow reads anything.
    budget.check_rows(_scan_json(path, "NDJSON", budget.limits.nesting_depth).containers[0])
    parts: list[pa.Table] = []
    largest = _DEFAULT_BLOCK_BYTES
    try:
        # Parts of whole lines, each read and counted before the next: a file whose lines
        # each bring new keys (a column of nulls for every other line) is refused as its
        # combined size passes the limit, not once it is all in memory.
        for data in _line_parts(path, _lines_per_part(budget.limits)):
            largest = max(largest, len(data) + 1)
            table = _read_json_part(data)
            budget.add_part(table)
            parts.append(table)
        if parts:
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
                return pa.concat_tables(parts, promote_options="permissive")
        # Parts inferred types that do not combine (a column of ISO dates in one part, other
        # text in another): the whole-file reader infers over all of it. Its size is known now.
        parts.clear()
        return pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=largest))
    except pa.ArrowInvalid as exc:
        raise InvalidData(_describe_ndjson_error(path, exc)) from exc


def _line_parts(path: Path, max_lines: int) -> Iterator[memoryview]:
    """The file in parts of whole lines, at most `max_lines` lines or about _JSON_PART_BYTES."""
    rest = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_JSON_PART_BYTES):
            data = memoryview(rest + chunk)  # parts are views of it, not copies
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE) + 1
            start = 0
            for cut in ends[max_lines - 1 :: max_lines]:
                yield data[start : int(cut)]
                start = int(cut)
            last = int(ends[-1]) if ends.size else 0
            if last > start:
                yield data[start:last]
                start = last
            rest = bytes(data[start:])
    if rest.strip():
        yield memoryview(rest)


def _lines_per_part(limits: DecodeLimits) -> int:
    """Records parsed at a time, so that one part stays small however sparse its keys.

    A part of r records with c distinct keys decodes to about r x c cells (a null wherever a
    record lacks a key): eight-byte lines could make each byte of input 2,000 cells.
    """
    cap = min(limits.decoded_bytes, _JSON_PART_DECODED_BYTES)
    return max(1, cap // (limits.columns * _fill_width(pa.string())))


def _read_json_part(data: memoryview) -> pa.Table:
    try:
        return pa_json.read_json(pa.BufferReader(data))
    except pa.ArrowInvalid as exc:
        if _STRADDLING not in str(exc):
            raise
    # A line longer than pyarrow's block: one block the size of the part holds it.
    if len(data) >= _MAX_BLOCK_BYTES:
        raise InvalidData(
            f"NDJSON has a line longer than {_MAX_BLOCK_BYTES} bytes, the longest line "
            "datagate reads"
        )
    return pa_json.read_json(
        pa.BufferReader(data), read_options=pa_json.ReadOptions(block_size=len(data) + 1)
    )


_JSON_PART_BYTES = 16 << 20
_JSON_PART_DECODED_BYTES = 256 << 20
_JSON_RECORDS_PER_PART = 10_000


class _JsonShape:
    """What a scan of a JSON text found: containers opened at depth 1 and 2 (records)."""

    def __init__(self) -> None:
        self.containers = [0, 0]


def _scan_json(path: Path, label: str, max_depth: int) -> _JsonShape:
    """Refuse JSON nested deeper than `max_depth`, in one streaming pass over the bytes.

    pyarrow's JSON parser recurses once per level and crashes the process past some depth
    (100,000 levels in one line segfault it), so the depth is counted first, outside
    strings (quotes escaped by an odd run of backslashes do not end a string), vectorised
    over each chunk. Also counts the arrays and objects opened at depth 1 and 2: the
    records of NDJSON and of a JSON array, for the row limit before parsing.
    """
    shape = _JsonShape()
    depth = 0
    in_string = 0
    backslashes = 0  # length of the run of backslashes that ended the previous chunk
    lines = 1
    with path.open("rb") as handle:
        for chunk in _chunks(handle):
            view = np.frombuffer(chunk, dtype=np.uint8)
            # Only quotes and brackets matter: pick them out first ([]{} and four other bytes
            # share (byte & 0xD9) == 0x59), then count over those positions alone.
            at = np.flatnonzero(((view & 0xD9) == 0x59) | (view == _QUOTE))
            chars = view[at]
            keep = np.isin(chars, _STRUCTURAL)
            at, chars = at[keep], chars[keep]
            quote = chars == _QUOTE
            if backslashes or _BACKSLASH_BYTE in chunk:
                quote &= ~_escaped(view, backslashes)[at]
            inside = (np.cumsum(quote, dtype=np.int64) + in_string) % 2 == 1
            opens = ~inside & ((chars == _OPEN_ARRAY) | (chars == _OPEN_OBJECT))
            closes = ~inside & ((chars == _CLOSE_ARRAY) | (chars == _CLOSE_OBJECT))
            levels = depth + np.cumsum(
                opens.astype(np.int64) - closes.astype(np.int64), dtype=np.int64
            )
            if levels.size and int(levels.max()) > max_depth:
                first = int(at[int(np.argmax(levels > max_depth))])
                line = lines + chunk.count(b"\n", 0, first)
                raise InvalidData(
                    f"{label} line {line} nests arrays and objects more than {max_depth} "
                    "levels deep (DATAGATE_MAX_NESTING_DEPTH)"
                )
            shape.containers[0] += int(np.count_nonzero(opens & (levels == 1)))
            shape.containers[1] += int(np.count_nonzero(opens & (levels == 2)))
            if levels.size:
                depth = int(levels[-1])
                in_string = int(inside[-1])
            backslashes = _trailing_backslashes(chunk, backslashes)
            lines += chunk.count(b"\n")
    return shape


def _escaped(view: np.ndarray[Any, Any], carried: int) -> np.ndarray[Any, Any]:
    """True where a byte follows an odd run of backslashes (`carried` end the last chunk)."""
    backslash = view == _BACKSLASH
    if carried == 0 and not backslash.any():
        return np.zeros(view.shape, dtype=bool)
    positions = np.arange(view.size)
    # Index of the last byte that is not a backslash, at or before each position.
    last_other = np.maximum.accumulate(np.where(backslash, -1, positions))
    run = positions - last_other  # backslashes ending at each position (0 if not one)
    run = np.where(last_other < 0, run + carried, run)
    before = np.concatenate(([carried], run[:-1]))
    result: np.ndarray[Any, Any] = before % 2 == 1
    return result


def _trailing_backslashes(chunk: bytes, carried: int) -> int:
    trailing = len(chunk) - len(chunk.rstrip(_BACKSLASH_BYTE))
    return carried + trailing if trailing == len(chunk) else trailing


_BACKSLASH = ord("\\")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_OPEN_OBJECT, _CLOSE_OBJECT = ord("{"), ord("}")
_BACKSLASH_BYTE = b"\\"
_STRUCTURAL = np.array([_QUOTE, _OPEN_ARRAY, _CLOSE_ARRAY, _OPEN_OBJECT, _CLOSE_OBJECT], np.uint8)


def _describe_ndjson_error(path: Path, exc: pa.ArrowInvalid) -> str:
    """pyarrow's row numbers count per block; find the bad line with the json module instead."""
    kinds: dict[str, str] = {}  # the JSON kind first seen in each key, to find a type change
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as err:
                return f"NDJSON line {number}, column {err.colno}: {err.msg}"
            if not isinstance(value, dict):
                return f"NDJSON line {number} is {_json_kind(value)}, not an object"
            for key, item in value.items():
                if item is None:
                    continue
                kind = kinds.setdefault(key, _json_kind(item))
                if kind != _json_kind(item):
                    return (
                        f"NDJSON line {number}: {key!r} is {_json_kind(item)}, "
                        f"but earlier lines have {kind}"
                    )
    return f"NDJSON could not be read: {_arrow_message(exc)}"


def _read_json_array(path: Path, budget: DecodeBudget) -> pa.Table:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidData(
            f"the file is not valid UTF-8: byte 0x{raw[exc.start : exc.start + 1].hex()} "
            f"at offset {exc.start} (line {line})"
        ) from exc
    del raw
    shape = _scan_json(path, "JSON", budget.limits.nesting_depth)
    start = _WHITESPACE.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", start):
        # Not an array: parsed only to say what it is.
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidData(
                f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
        raise InvalidData(f"expected a JSON array of records (objects), got {_json_kind(value)}")
    # The objects one level into the array are its records: the row limit holds before any
    # of them is parsed, and they are parsed and decoded a part at a time.
    budget.check_rows(shape.containers[1])
    return _combine_json_parts(_json_record_parts(text, start + 1, budget))


def _json_record_parts(text: str, index: int, budget: DecodeBudget) -> list[pa.Table]:
    decoder = json.JSONDecoder()
    per_part = min(_JSON_RECORDS_PER_PART, _lines_per_part(budget.limits))
    parts: list[pa.Table] = []
    records: list[dict[str, Any]] = []
    count = 0
    index = _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
    closed = text.startswith("]", index)
    if closed:
        index += 1
    while not closed:
        index = _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
        try:
            record, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise InvalidData(
                f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from exc
        if not isinstance(record, dict):
            raise InvalidData(
                f"expected a JSON array of records (objects), "
                f"but item {count} is {_json_kind(record)}"
            )
        records.append(record)
        count += 1
        if len(records) == per_part:
            parts.append(_table_from_records(records, budget))
            records = []
        index = _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
        if text.startswith(",", index):
            index += 1
        elif text.startswith("]", index):
            index += 1
            closed = True
        else:
            _raise_json_syntax(text, index, "Expecting ',' delimiter")
    index = _WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
    if index != len(text):
        _raise_json_syntax(text, index, "Extra data")
    if records or not parts:
        parts.append(_table_from_records(records, budget))
    return parts


def _raise_json_syntax(text: str, index: int, message: str) -> None:
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    raise InvalidData(f"JSON syntax error at line {line}, column {column}: {message}")


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MERGE_CONFLICT = re.compile(r"Field (.+?) has incompatible types: (\S+) vs (\S+)")


def _combine_json_parts(parts: list[pa.Table]) -> pa.Table:
    if len(parts) == 1:
        return parts[0]
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        conflict = _MERGE_CONFLICT.search(str(exc))
        if conflict is None:
            raise InvalidData(f"JSON records could not be combined: {_arrow_message(exc)}") from exc
        name, first, second = conflict.groups()
        raise InvalidData(
            f"JSON column {name!r} mixes types that cannot share a column: "
            f"{first} in some records, {second} in later ones"
        ) from exc


def _table_from_records(records: list[dict[str, Any]], budget: DecodeBudget) -> pa.Table:
    # Table.from_pylist takes its columns from the first record only; keep every key seen.
    names = list(dict.fromkeys(key for record in records for key in record))
    budget.check_columns(len(names))
    columns = {}
    for name in names:
        try:
            columns[name] = pa.array([record.get(name) for record in records])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidData(
                f"JSON column {name!r} mixes types that cannot share a column: "
                f"{_arrow_message(exc)}"
            ) from exc
    table = pa.table(columns) if columns else pa.table({})
    budget.add_part(table)
    return table


def _json_kind(value: object) -> str:
    """'an object', 'a string' ...: the JSON name of a parsed value, for messages."""
    if value is None:
        return "null"
    kinds: dict[type, str] = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
    }
    return kinds.get(type(value), "a number")


# --- binary columnar ------------------------------------------------------------------------


def _read_parquet(path: Path, budget: DecodeBudget) -> pa.Table:
    try:
        parquet = pa_parquet.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidData(f"not a valid Parquet file: {_arrow_message(exc)}") from exc
    with parquet:
        metadata = parquet.metadata
        # The footer knows the row and column counts and the uncompressed size of the pages,
        # so a file over those limits is refused unread.
        budget.check_columns(max(metadata.num_columns, len(parquet.schema_arrow.names)))
        budget.check_rows(metadata.num_rows)
        budget.check_declared_bytes(
            sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        )
        # Dictionary-encoded, compressed pages say nothing of the decoded size (2M copies of
        # one 1,000-character string fit in 227 KB): read in batches and count each.
        batches: list[pa.RecordBatch] = []
        try:
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
                budget.add_batch(batch)
                batches.append(batch)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidData(f"not a valid Parquet file: {_arrow_message(exc)}") from exc
        return pa.Table.from_batches(batches, schema=parquet.schema_arrow)


# Rows decoded at a time: small enough that one batch of long values stays far below the
# decoded-bytes limit, large enough that reading costs the same as one whole-file read.
_PARQUET_BATCH_ROWS = 65_536


def _read_arrow(path: Path, budget: DecodeBudget) -> pa.Table:
    with path.open("rb") as handle:
        head = handle.read(8)
    try:
        if head.startswith(b"FEA1"):
            # Feather v1 is never compressed: its decoded size is its size on disk.
            table = pa_feather.read_table(path)
            budget.check_columns(table.num_columns)
            budget.add_batch(table)
            return table
        with pa.OSFile(str(path)) as source:
            if head.startswith(b"ARROW1"):
                reader: Any = pa_ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                reader = pa_ipc.open_stream(source)
                batches = iter(reader)
            budget.check_columns(len(reader.schema.names))
            return _collect_batches(reader.schema, batches, budget)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidData(f"not a valid Arrow IPC or Feather file: {_arrow_message(exc)}") from exc


def _collect_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], budget: DecodeBudget
) -> pa.Table:
    # Each batch is counted as it is decoded (IPC buffers may be compressed), so an oversized
    # file is refused at the batch that passes a limit.
    kept: list[pa.RecordBatch] = []
    for batch in batches:
        budget.add_batch(batch)
        kept.append(batch)
    table = pa.Table.from_batches(kept, schema=schema)
    # IPC bytes are taken on trust by the reader; a forged offset must fail here, not crash later.
    table.validate(full=True)
    return table


# --- shared ---------------------------------------------------------------------------------


# From this many values (rows x columns; 8 MiB as float64) a table is "large": it converts to
# pandas column by column, releasing Arrow's copy as it goes, and run_suite validates column
# expectations on their own columns. Measured break-even for both: about 600,000 values.
LARGE_TABLE_CELLS = 1_000_000


def _to_pandas(table: pa.Table, *, zero_copy: bool = True) -> pd.DataFrame:
    # The "pandas" schema metadata (index, dtypes) comes from the file and may be corrupt; it
    # only restores pandas niceties, so a table whose metadata fails on an empty slice is read
    # without it.
    ignore_metadata = False
    try:
        table.slice(0, 0).to_pandas()
    except (KeyError, TypeError, IndexError, AttributeError):
        ignore_metadata = True
    large = table.num_rows * table.num_columns >= LARGE_TABLE_CELLS
    try:
        # A large table's Arrow columns are released as they convert, so the data is not held
        # twice; its columns stay unconsolidated (numeric ones without nulls are zero-copy and
        # read-only), which the engines only read. A small one is consolidated: pandas copies
        # a frame of 20 blocks slower than one of a few, and GE copies it per expectation.
        frame: pd.DataFrame = table.to_pandas(
            self_destruct=large,
            split_blocks=large and zero_copy,
            ignore_metadata=ignore_metadata,
        )
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidData(f"the file's pandas metadata does not match its columns: {exc}") from exc
    return frame


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise PayloadTooLarge(f"the dataset has {rows} rows; the limit is {max_rows} rows")


def _refuse_duplicate_columns(names: list[str]) -> None:
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    if duplicates:
        raise InvalidData(f"duplicate column names: {', '.join(repr(name) for name in duplicates)}")


def _arrow_message(exc: BaseException) -> str:
    # pyarrow prefixes parse errors with the parser's name; our messages already say which file.
    text = str(exc).strip() or type(exc).__name__
    return text.removeprefix("CSV parse error: ").removeprefix("JSON parse error: ")
