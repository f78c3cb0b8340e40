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

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import pyarrow.ipc as pa_ipc
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet

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


def read_dataframe(path: Path, fmt: DataFormat, *, max_rows: int) -> pd.DataFrame:
    """Read `path` as `fmt`. Raises InvalidData for unreadable data, PayloadTooLarge for rows."""
    try:
        if path.stat().st_size == 0:
            raise InvalidData("the file is empty")
        match fmt:
            case DataFormat.CSV | DataFormat.TSV:
                table = _read_delimited(path, fmt, max_rows)
            case DataFormat.NDJSON:
                table = _read_ndjson(path, max_rows)
            case DataFormat.JSON:
                table = _read_json_array(path, max_rows)
            case DataFormat.PARQUET:
                table = _read_parquet(path, max_rows)
            case DataFormat.ARROW:
                table = _read_arrow(path, max_rows)
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


def _read_delimited(path: Path, fmt: DataFormat, max_rows: int) -> pa.Table:
    label = "TSV" if fmt is DataFormat.TSV else "CSV"
    _refuse_binary(path, label)
    _refuse_invalid_utf8(path)
    # Quoted values may hold newlines (pandas writes them so); pyarrow refuses them by default.
    parse = pa_csv.ParseOptions(
        delimiter="\t" if fmt is DataFormat.TSV else ",", newlines_in_values=True
    )
    with contextlib.suppress(pa.ArrowInvalid):
        return _stream_delimited(path, parse, max_rows)
    # The streaming reader fixes each column's type from the first block, so a later value of
    # another type (an int column with "1.5" further down) stops it; the whole-file reader
    # infers types over every block, and it also gives the errors their description.
    try:
        table = pa_csv.read_csv(path, parse_options=parse, convert_options=_CSV_CONVERT)
    except pa.ArrowInvalid as exc:
        raise InvalidData(_describe_csv_error(path, parse, label, exc)) from exc
    _check_rows(table.num_rows, max_rows)
    return table


def _stream_delimited(path: Path, parse: pa_csv.ParseOptions, max_rows: int) -> pa.Table:
    # Block by block, the parser holds one block's buffers instead of the whole file's: at 1M
    # rows x 20 columns the read peaks at 185 MiB over the table instead of about 450; and a
    # file over max_rows is refused as soon as the count passes it.
    reader = pa_csv.open_csv(path, parse_options=parse, convert_options=_CSV_CONVERT)
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        rows += batch.num_rows
        if rows > max_rows:
            raise PayloadTooLarge(
                f"the dataset has at least {rows} rows (reading stopped there); "
                f"the limit is {max_rows} rows"
            )
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)


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


def _read_ndjson(path: Path, max_rows: int) -> pa.Table:
    _refuse_binary(path, "NDJSON")
    _refuse_invalid_utf8(path)
    try:
        table = pa_json.read_json(path)
    except pa.ArrowInvalid as exc:
        raise InvalidData(_describe_ndjson_error(path, exc)) from exc
    _check_rows(table.num_rows, max_rows)
    return table


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


def _read_json_array(path: Path, max_rows: int) -> pa.Table:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidData(
            f"the file is not valid UTF-8: byte 0x{raw[exc.start : exc.start + 1].hex()} "
            f"at offset {exc.start} (line {line})"
        ) from exc
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidData(
            f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise InvalidData("the JSON is nested too deeply to read") from exc
    if not isinstance(records, list):
        raise InvalidData(f"expected a JSON array of records (objects), got {_json_kind(records)}")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidData(
                f"expected a JSON array of records (objects), "
                f"but item {index} is {_json_kind(record)}"
            )
    _check_rows(len(records), max_rows)
    return _table_from_records(records)


def _table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    # Table.from_pylist takes its columns from the first record only; keep every key seen.
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {}
    for name in names:
        try:
            columns[name] = pa.array([record.get(name) for record in records])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidData(
                f"JSON column {name!r} mixes types that cannot share a column: "
                f"{_arrow_message(exc)}"
            ) from exc
    return pa.table(columns) if columns else pa.table({})


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


def _read_parquet(path: Path, max_rows: int) -> pa.Table:
    try:
        parquet = pa_parquet.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidData(f"not a valid Parquet file: {_arrow_message(exc)}") from exc
    with parquet:
        # The footer knows the row count, so an oversized file is refused unread.
        _check_rows(parquet.metadata.num_rows, max_rows)
        try:
            return parquet.read()
        except (pa.ArrowException, OSError) as exc:
            raise InvalidData(f"not a valid Parquet file: {_arrow_message(exc)}") from exc


def _read_arrow(path: Path, max_rows: int) -> pa.Table:
    with path.open("rb") as handle:
        head = handle.read(8)
    try:
        if head.startswith(b"FEA1"):
            table = pa_feather.read_table(path)
            _check_rows(table.num_rows, max_rows)
            return table
        with pa.OSFile(str(path)) as source:
            if head.startswith(b"ARROW1"):
                reader: Any = pa_ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                reader = pa_ipc.open_stream(source)
                batches = iter(reader)
            return _collect_batches(reader.schema, batches, max_rows)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidData(f"not a valid Arrow IPC or Feather file: {_arrow_message(exc)}") from exc


def _collect_batches(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], max_rows: int
) -> pa.Table:
    # Batches are kept only while under the limit, so an oversized file is counted, not held.
    kept: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        if rows <= max_rows:
            kept.append(batch)
        else:
            kept.clear()
    _check_rows(rows, max_rows)
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
