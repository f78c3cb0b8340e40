"""Format detection and reading: every format round-trips, every bad file gets a clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as pa_feather
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pa_parquet
import pytest

from app.core.errors import InvalidData, InvalidRequest, PayloadTooLarge, UnsupportedFormat
from app.ingest import formats
from app.ingest.formats import DataFormat, describe_columns, detect_format, read_dataframe

F = DataFormat


# --- detect_format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type", "explicit", "expected"),
    [
        ("train.csv", None, None, F.CSV),
        ("TRAIN.CSV", None, None, F.CSV),
        ("data.tsv", None, None, F.TSV),
        ("data.tab", None, None, F.TSV),
        ("part-0.parquet", None, None, F.PARQUET),
        ("part-0.pq", None, None, F.PARQUET),
        ("rows.json", None, None, F.JSON),
        ("rows.ndjson", None, None, F.NDJSON),
        ("rows.jsonl", None, None, F.NDJSON),
        ("table.arrow", None, None, F.ARROW),
        ("table.feather", None, None, F.ARROW),
        ("table.ipc", None, None, F.ARROW),
        (None, "text/csv; charset=utf-8", None, F.CSV),
        ("blob", "text/tab-separated-values", None, F.TSV),
        (None, "application/vnd.apache.parquet", None, F.PARQUET),
        (None, "application/x-parquet", None, F.PARQUET),
        (None, "application/json", None, F.JSON),
        (None, "application/x-ndjson", None, F.NDJSON),
        (None, "application/vnd.apache.arrow.file", None, F.ARROW),
        (None, "application/vnd.apache.arrow.stream", None, F.ARROW),
        # The extension beats the content type a client library guessed.
        ("train.parquet", "application/octet-stream", None, F.PARQUET),
        ("train.csv", "application/json", None, F.CSV),
        # An explicit format beats both, in any case, by name or alias.
        ("train.csv", "text/csv", "Parquet", F.PARQUET),
        ("x.bin", None, "feather", F.ARROW),
        ("x.bin", None, "IPC", F.ARROW),
        ("x.bin", None, "jsonl", F.NDJSON),
        (None, None, " tsv ", F.TSV),
    ],
)
def test_detect_format_prefers_explicit_then_extension_then_content_type(
    filename: str | None, content_type: str | None, explicit: str | None, expected: DataFormat
) -> None:
    assert detect_format(filename, content_type, explicit) is expected


def test_unknown_explicit_format_is_invalid_request_listing_accepted_values() -> None:
    with pytest.raises(InvalidRequest) as caught:
        detect_format("train.csv", None, "xlsx")
    assert "'xlsx'" in caught.value.message
    for name in ("csv", "parquet", "ndjson", "arrow", "feather"):
        assert name in caught.value.message


def test_file_with_no_known_extension_or_type_is_unsupported_naming_file() -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        detect_format("report.xlsx", "application/octet-stream")
    assert "report.xlsx" in caught.value.message
    assert ".csv" in caught.value.message and ".parquet" in caught.value.message


def test_nothing_to_go_on_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormat):
        detect_format(None, None)


def test_compressed_file_is_unsupported_with_reason() -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        detect_format("train.csv.gz", "application/gzip")
    assert "compressed" in caught.value.message


# --- round trips ----------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series([1, 2, 3], dtype="int64"),
            "price": [1.5, np.nan, 3.25],
            "name": ["apple", "pear, ripe", 'say "hi"'],
            "in_stock": [True, False, True],
        }
    )


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False)


def _write_tsv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, sep="\t")


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    pa_parquet.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def _write_json(df: pd.DataFrame, path: Path) -> None:
    df.to_json(path, orient="records")


def _write_ndjson(df: pd.DataFrame, path: Path) -> None:
    df.to_json(path, orient="records", lines=True)


def _write_arrow_file(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pa_ipc.new_file(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)


def _write_arrow_stream(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    with pa_ipc.new_stream(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)


def _write_feather_v2(df: pd.DataFrame, path: Path) -> None:
    pa_feather.write_feather(df, path)  # lz4-compressed by default


def _write_feather_v1(df: pd.DataFrame, path: Path) -> None:
    pa_feather.write_feather(df, path, version=1)


WRITERS: list[tuple[str, DataFormat, Callable[[pd.DataFrame, Path], None]]] = [
    ("csv", F.CSV, _write_csv),
    ("tsv", F.TSV, _write_tsv),
    ("parquet", F.PARQUET, _write_parquet),
    ("json", F.JSON, _write_json),
    ("ndjson", F.NDJSON, _write_ndjson),
    ("arrow-file", F.ARROW, _write_arrow_file),
    ("arrow-stream", F.ARROW, _write_arrow_stream),
    ("feather-v2", F.ARROW, _write_feather_v2),
    ("feather-v1", F.ARROW, _write_feather_v1),
]


@pytest.mark.parametrize(("label", "fmt", "write"), WRITERS, ids=[w[0] for w in WRITERS])
def test_every_format_round_trips_columns_dtypes_and_values(
    tmp_path: Path, label: str, fmt: DataFormat, write: Callable[[pd.DataFrame, Path], None]
) -> None:
    original = _frame()
    path = tmp_path / f"data.{label}"
    write(original, path)

    read = read_dataframe(path, fmt, max_rows=100)

    assert list(read.columns) == list(original.columns)
    assert [read[c].dtype.kind for c in read.columns] == ["i", "f", "O", "b"]
    pd.testing.assert_frame_equal(read, original)


def test_csv_with_header_and_no_rows_reads_as_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty_rows.csv"
    path.write_text("id,price,name\n")

    read = read_dataframe(path, F.CSV, max_rows=10)

    assert read.shape == (0, 3)
    assert list(read.columns) == ["id", "price", "name"]


def test_csv_value_spanning_lines_keeps_its_row(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    pd.DataFrame({"id": [1, 2], "note": ["two\nlines", "one"]}).to_csv(path, index=False)

    read = read_dataframe(path, F.CSV, max_rows=10)

    assert read["note"].tolist() == ["two\nlines", "one"]


def test_json_records_with_differing_keys_keep_every_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"a": 1}, {"a": 2, "b": "x"}]')

    read = read_dataframe(path, F.JSON, max_rows=10)

    assert list(read.columns) == ["a", "b"]
    assert read["b"].tolist() == [None, "x"]


def test_palmerpenguins_csv_reads_with_its_missing_values(tmp_path: Path) -> None:
    source = resources.files("palmerpenguins") / "data" / "penguins.csv"
    path = tmp_path / "penguins.csv"
    path.write_bytes(source.read_bytes())

    read = read_dataframe(path, F.CSV, max_rows=1000)

    assert read.shape == (344, 8)
    nulls = {c.name: c.null_count for c in describe_columns(read)}
    assert nulls["bill_length_mm"] == 2
    assert nulls["sex"] == 11
    assert read["year"].dtype.kind == "i"


def test_describe_columns_gives_name_dtype_and_null_count() -> None:
    columns = describe_columns(_frame())

    assert [(c.name, c.dtype, c.null_count) for c in columns] == [
        ("id", "int64", 0),
        ("price", "float64", 1),
        ("name", "object", 0),
        ("in_stock", "bool", 0),
    ]


# --- row limit ------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "fmt", "write"), WRITERS, ids=[w[0] for w in WRITERS])
def test_rows_over_max_rows_is_payload_too_large_naming_limit_and_count(
    tmp_path: Path, label: str, fmt: DataFormat, write: Callable[[pd.DataFrame, Path], None]
) -> None:
    path = tmp_path / f"data.{label}"
    write(_frame(), path)

    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(path, fmt, max_rows=2)

    assert "3 rows" in caught.value.message
    assert "limit is 2" in caught.value.message


def test_parquet_over_max_rows_is_refused_from_metadata_without_reading_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.parquet"
    _write_parquet(_frame(), path)

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read")

    monkeypatch.setattr(formats.pa_parquet.ParquetFile, "read", no_read)
    with pytest.raises(PayloadTooLarge):
        read_dataframe(path, F.PARQUET, max_rows=2)


def test_rows_equal_to_max_rows_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _write_csv(_frame(), path)

    assert len(read_dataframe(path, F.CSV, max_rows=3)) == 3


# --- unhappy paths --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(DataFormat))
def test_empty_file_is_invalid_data_in_every_format(tmp_path: Path, fmt: DataFormat) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    with pytest.raises(InvalidData, match="the file is empty"):
        read_dataframe(path, fmt, max_rows=10)


def test_csv_ragged_row_names_its_row_and_field_counts(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n")

    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, F.CSV, max_rows=10)

    message = caught.value.message
    assert "row 4" in message
    assert "4 fields" in message and "header has 3" in message
    assert "7,8,9,10" in message


def test_tsv_short_row_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "short.tsv"
    path.write_text("a\tb\n1\t2\n3\n")

    with pytest.raises(InvalidData, match="row 3"):
        read_dataframe(path, F.TSV, max_rows=10)


def test_csv_ragged_row_far_down_names_its_row(tmp_path: Path) -> None:
    # Far enough to be in a later block, where the threaded reader does not know row numbers.
    path = tmp_path / "late.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 300_000 + b"1,2,3\n")

    with pytest.raises(InvalidData, match="row 300002"):
        read_dataframe(path, F.CSV, max_rows=1_000_000)


def test_csv_with_invalid_utf8_names_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,b\n1,2\n3,café\n".encode("latin-1"))

    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, F.CSV, max_rows=10)

    message = caught.value.message
    assert "UTF-8" in message
    assert "0xe9" in message and "offset 13" in message and "line 3" in message


def test_invalid_utf8_split_across_read_chunks_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 4)
    path = tmp_path / "split.csv"
    # "é" is two bytes; its lead byte ends a chunk and a bad continuation starts the next.
    path.write_bytes(b"a,b\n1,\xc3(\n")

    with pytest.raises(InvalidData, match="offset 6 \\(line 2\\)"):
        read_dataframe(path, F.CSV, max_rows=10)


def test_binary_junk_given_as_csv_is_invalid_data(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 4)

    with pytest.raises(InvalidData, match="not CSV text"):
        read_dataframe(path, F.CSV, max_rows=10)


def test_parquet_given_as_csv_says_it_looks_like_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _write_parquet(_frame(), path)

    with pytest.raises(InvalidData, match="looks like a Parquet file"):
        read_dataframe(path, F.CSV, max_rows=10)


def test_duplicate_column_names_are_invalid_data_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("id,x,id,y,x\n1,2,3,4,5\n")

    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, F.CSV, max_rows=10)

    assert caught.value.message == "duplicate column names: 'id', 'x'"


def test_truncated_parquet_is_not_a_valid_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    _write_parquet(_frame(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    with pytest.raises(InvalidData, match="not a valid Parquet file"):
        read_dataframe(path, F.PARQUET, max_rows=10)


@pytest.mark.parametrize(
    "write", [_write_arrow_file, _write_arrow_stream, _write_feather_v2, _write_feather_v1]
)
def test_truncated_arrow_is_invalid_data(
    tmp_path: Path, write: Callable[[pd.DataFrame, Path], None]
) -> None:
    path = tmp_path / "cut.arrow"
    write(_frame(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])

    with pytest.raises(InvalidData, match="not a valid Arrow IPC or Feather file"):
        read_dataframe(path, F.ARROW, max_rows=10)


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"a": 1},\n {"a": 2,}]')

    with pytest.raises(InvalidData, match="line 2, column 10"):
        read_dataframe(path, F.JSON, max_rows=10)


@pytest.mark.parametrize(
    "text",
    [
        '[{"a": 1}\n {"a": 2}]',  # no comma
        '[{"a": 1},]',  # trailing comma
        '[{"a": 1}',  # never closed
        "[",
        '[{"a": 1}] []',  # extra data
        '[{"a": 1}, {"a": tru}]',
    ],
)
def test_json_array_read_record_by_record_reports_syntax_errors_where_json_loads_does(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)

    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, F.JSON, max_rows=10)

    error = expected.value
    assert caught.value.message == (
        f"JSON syntax error at line {error.lineno}, column {error.colno}: {error.msg}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2]}', "got an object"),
        ('"rows"', "got a string"),
        ('[{"a": 1}, 3]', "item 1 is a number"),
        ('[{"a": 1}, [1]]', "item 1 is an array"),
    ],
)
def test_json_that_is_not_an_array_of_records_is_invalid_data(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "shape.json"
    path.write_text(text)

    with pytest.raises(InvalidData, match=expected):
        read_dataframe(path, F.JSON, max_rows=10)


def test_json_column_mixing_number_and_text_is_invalid_data_naming_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([{"price": 1}, {"price": "cheap"}]))

    with pytest.raises(InvalidData, match="'price'"):
        read_dataframe(path, F.JSON, max_rows=10)


def test_json_with_invalid_utf8_names_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"a": "café"}]'.encode("latin-1"))

    with pytest.raises(InvalidData, match="not valid UTF-8: byte 0xe9 at offset 11"):
        read_dataframe(path, F.JSON, max_rows=10)


def test_ndjson_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3,\n')

    with pytest.raises(InvalidData, match="NDJSON line 3, column"):
        read_dataframe(path, F.NDJSON, max_rows=10)


def test_ndjson_line_that_is_not_an_object_is_invalid_data(tmp_path: Path) -> None:
    path = tmp_path / "arr.ndjson"
    path.write_text('{"a": 1}\n[1, 2]\n')

    with pytest.raises(InvalidData, match="line 2 is an array"):
        read_dataframe(path, F.NDJSON, max_rows=10)


def test_ndjson_value_changing_type_names_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_text('{"a": 1}\n{"a": null}\n{"a": "x"}\n')

    with pytest.raises(InvalidData, match="line 3: 'a' is a string"):
        read_dataframe(path, F.NDJSON, max_rows=10)


def test_ndjson_with_invalid_utf8_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ndjson"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')

    with pytest.raises(InvalidData, match="line 2"):
        read_dataframe(path, F.NDJSON, max_rows=10)


def test_parquet_with_corrupt_pandas_metadata_still_reads_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    table = pa.Table.from_pandas(_frame(), preserve_index=False)
    broken = b'{"columns": [{"name": "id"}], "index_columns": [], "column_indexes": []}'
    pa_parquet.write_table(table.replace_schema_metadata({b"pandas": broken}), path)

    read = read_dataframe(path, F.PARQUET, max_rows=10)

    assert list(read.columns) == list(_frame().columns)
    assert read["id"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("fmt", [F.PARQUET, F.ARROW])
def test_a_large_table_reads_back_as_written(tmp_path: Path, fmt: DataFormat) -> None:
    # Over LARGE_TABLE_CELLS values the table converts column by column, freeing Arrow's
    # copy as it goes: the frame must still hold every value, null and type.
    rows = formats.LARGE_TABLE_CELLS // 4 + 1
    rng = np.random.default_rng(3)
    written = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "n": rng.integers(0, 1000, size=rows),
            "s": rng.choice(["a", "b", None], size=rows),
            "maybe": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows)),
        }
    )
    path = tmp_path / f"large.{fmt.value}"
    if fmt is F.PARQUET:
        written.to_parquet(path)
    else:
        pa_feather.write_feather(pa.Table.from_pandas(written), path)

    read = read_dataframe(path, fmt, max_rows=rows)

    pd.testing.assert_frame_equal(read, written)
    assert [c.null_count for c in describe_columns(read)] == written.isna().sum().tolist()


def test_a_large_table_with_corrupt_pandas_metadata_still_reads(tmp_path: Path) -> None:
    rows = formats.LARGE_TABLE_CELLS // 2 + 1
    table = pa.table({"id": np.arange(rows), "v": np.ones(rows)})
    broken = b'{"columns": [{"name": "id"}], "index_columns": [], "column_indexes": []}'
    path = tmp_path / "odd.parquet"
    pa_parquet.write_table(table.replace_schema_metadata({b"pandas": broken}), path)

    read = read_dataframe(path, F.PARQUET, max_rows=rows)

    assert list(read.columns) == ["id", "v"]
    assert int(read["id"].sum()) == rows * (rows - 1) // 2


def test_csv_whose_column_type_changes_after_the_first_block_keeps_every_value(
    tmp_path: Path,
) -> None:
    # CSV is read block by block with types fixed by the first block; a float far down an
    # integer column must not be refused or lost.
    path = tmp_path / "late.csv"
    rows = 200_000  # well past pyarrow's first 1 MiB block
    path.write_text("n,s\n" + "".join(f"{i},x\n" for i in range(rows)) + "1.5,y\n")

    read = read_dataframe(path, F.CSV, max_rows=rows + 1)

    assert len(read) == rows + 1
    assert read["n"].dtype == np.float64
    assert read["n"].iloc[-1] == 1.5
    assert read["s"].iloc[-1] == "y"


def test_csv_over_max_rows_is_refused_before_the_end_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(300_000)) + "not a number\n")

    # The count stops at the first block past the limit: the bad last line is never parsed.
    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(path, F.CSV, max_rows=100)
    assert "reading stopped there" in caught.value.message
    assert "the limit is 100 rows" in caught.value.message


def test_an_uncompressed_arrow_file_does_not_stay_in_memory_behind_its_frame(
    tmp_path: Path,
) -> None:
    # One uncompressed IPC batch keeps all columns in one buffer of the whole body; a frame
    # that kept a zero-copy view of one column would keep all of it allocated.
    rows = formats.LARGE_TABLE_CELLS
    table = pa.table({"n": np.arange(rows), "s": [f"value {i % 1000}" for i in range(rows)]})
    path = tmp_path / "one.arrow"
    with pa_ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    body = path.stat().st_size
    del table

    before = pa.total_allocated_bytes()
    frame = read_dataframe(path, F.ARROW, max_rows=rows)
    held = pa.total_allocated_bytes() - before

    assert len(frame) == rows
    assert held < body / 2, f"{held} bytes of Arrow memory held for a {body}-byte file"
