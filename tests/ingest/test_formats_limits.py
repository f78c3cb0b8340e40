"""Decoding bounds: each test performs the attack (a bomb, a wide or deep file) on the reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet
import pytest

from app.checks.inference import infer_suite
from app.core.errors import InvalidData, PayloadTooLarge
from app.ingest import formats
from app.ingest.formats import DataFormat, DecodeLimits, read_dataframe

F = DataFormat
LIMITS = DecodeLimits(columns=2_000, decoded_bytes=4 * 1024**3, nesting_depth=64)
MIB = 1024**2


def small(**changes: int) -> DecodeLimits:
    return LIMITS.model_copy(update=changes)


def _write_string_bomb_parquet(path: Path, rows: int) -> None:
    # The finding's file in small: one 1,000-character string repeated, dictionary + zstd.
    table = pa.table({"text": pa.array(["x" * 1000] * rows)})
    pa_parquet.write_table(table, path, compression="zstd", use_dictionary=True)


# --- decoded bytes --------------------------------------------------------------------------


def test_parquet_string_bomb_is_refused_after_the_first_batches_naming_file_and_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.parquet"
    _write_string_bomb_parquet(path, rows=50_000)  # 50 MB decoded
    assert path.stat().st_size < 50_000
    monkeypatch.setattr(formats, "_PARQUET_BATCH_ROWS", 1_000)  # 1 MB a batch
    batches_read = 0
    real_iter = pa_parquet.ParquetFile.iter_batches

    def counting(self: pa_parquet.ParquetFile, *args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal batches_read
        for batch in real_iter(self, *args, **kwargs):
            batches_read += 1
            yield batch

    monkeypatch.setattr(pa_parquet.ParquetFile, "iter_batches", counting)

    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(
            path, F.PARQUET, max_rows=10**7, limits=small(decoded_bytes=2 * MIB), name="b.pq"
        )

    message = caught.value.message
    assert "b.pq" in message and str(2 * MIB) in message and "DATAGATE_MAX_DECODED_BYTES" in message
    assert batches_read == 3  # 3 MB decoded of 50: reading stopped at the batch over the limit


def test_parquet_declaring_more_uncompressed_bytes_than_the_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plain.parquet"
    values = pa.array([f"{i:0>100}" for i in range(20_000)])  # 2 MB, no repeats
    pa_parquet.write_table(pa.table({"v": values}), path, compression="none")

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read")

    monkeypatch.setattr(pa_parquet.ParquetFile, "iter_batches", no_read)
    with pytest.raises(PayloadTooLarge, match=r"declares .* bytes of uncompressed data"):
        read_dataframe(path, F.PARQUET, max_rows=10**7, limits=small(decoded_bytes=MIB))


def test_parquet_under_the_limit_reads_in_batches_with_its_pandas_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_PARQUET_BATCH_ROWS", 7)
    frame = pd.DataFrame({"a": range(50), "b": [f"s{i}" for i in range(50)]}, index=range(50))
    frame["c"] = pd.Categorical(["x", "y"] * 25)
    path = tmp_path / "ok.parquet"
    frame.to_parquet(path)

    read = read_dataframe(path, F.PARQUET, max_rows=50, limits=LIMITS)

    pd.testing.assert_frame_equal(read, frame)


def test_compressed_arrow_ipc_bomb_stops_at_the_batch_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.arrow"
    batch = pa.record_batch({"text": pa.array(["y" * 1000] * 1_000)})  # 1 MB a batch
    options = pa_ipc.IpcWriteOptions(compression="zstd")
    with pa_ipc.new_file(path, batch.schema, options=options) as writer:
        for _ in range(40):
            writer.write_batch(batch)
    assert path.stat().st_size < 200_000  # 40 MB decoded

    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(path, F.ARROW, max_rows=10**7, limits=small(decoded_bytes=3 * MIB))

    assert "reading stopped after 4000 rows" in caught.value.message


def test_csv_over_the_decoded_limit_stops_the_streaming_reader_early(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 1_000_000)  # 16 MB as two int64 columns

    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(path, F.CSV, max_rows=10**7, limits=small(decoded_bytes=2 * MIB))

    stopped = int(caught.value.message.split("reading stopped after ")[1].split(" rows")[0])
    assert stopped < 500_000


@pytest.mark.parametrize("fmt", [F.NDJSON, F.JSON])
def test_json_whose_every_record_brings_a_new_key_is_refused_part_way(
    tmp_path: Path, fmt: DataFormat
) -> None:
    # 60,000 records over 1,500 keys: 2.4 MB on disk, 90M cells (0.8 GB) once combined.
    records = [f'{{"k{i % 1500}": 1}}' for i in range(60_000)]
    path = tmp_path / f"sparse.{fmt.value}"
    path.write_text("\n".join(records) if fmt is F.NDJSON else "[" + ",".join(records) + "]")

    with pytest.raises(PayloadTooLarge) as caught:
        read_dataframe(path, fmt, max_rows=10**7, limits=small(decoded_bytes=32 * MIB))

    stopped = int(caught.value.message.split("reading stopped after ")[1].split(" rows")[0])
    assert stopped < 10_000


@pytest.mark.parametrize("fmt", [F.NDJSON, F.JSON])
def test_json_read_in_parts_combines_types_and_keys_like_one_read(
    tmp_path: Path, fmt: DataFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_JSON_RECORDS_PER_PART", 2)
    monkeypatch.setattr(formats, "_JSON_PART_BYTES", 16)
    records = [{"a": 1}, {"a": None}, {"a": 2.5, "b": "x"}, {"a": 3, "c": {"d": True}}]
    path = tmp_path / f"parts.{fmt.value}"
    lines = [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n" if fmt is F.NDJSON else "[" + ", ".join(lines) + "]")

    read = read_dataframe(path, fmt, max_rows=10, limits=small(columns=3, decoded_bytes=1000))

    assert list(read.columns) == ["a", "b", "c"]
    assert read["a"].tolist()[::2] == [1.0, 2.5]
    assert read["b"].tolist() == [None, None, "x", None]


def test_json_array_column_changing_type_between_parts_names_the_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_JSON_RECORDS_PER_PART", 2)
    path = tmp_path / "mixed.json"
    path.write_text('[{"a": 1}, {"a": 2}, {"a": "three"}]')

    with pytest.raises(InvalidData, match="JSON column 'a' mixes types"):
        read_dataframe(path, F.JSON, max_rows=10, limits=LIMITS)


# --- columns --------------------------------------------------------------------------------


def _wide_frame(columns: int) -> pd.DataFrame:
    return pd.DataFrame({f"c{i}": [i] for i in range(columns)})


def _write(frame: pd.DataFrame, path: Path, fmt: DataFormat) -> None:
    match fmt:
        case F.CSV:
            frame.to_csv(path, index=False)
        case F.TSV:
            frame.to_csv(path, index=False, sep="\t")
        case F.PARQUET:
            frame.to_parquet(path)
        case F.JSON:
            frame.to_json(path, orient="records")
        case F.NDJSON:
            frame.to_json(path, orient="records", lines=True)
        case F.ARROW:
            frame.to_feather(path)


@pytest.mark.parametrize("fmt", list(DataFormat))
def test_file_with_more_columns_than_the_limit_is_422_naming_count_and_limit(
    tmp_path: Path, fmt: DataFormat
) -> None:
    path = tmp_path / f"wide.{fmt.value}"
    _write(_wide_frame(101), path, fmt)

    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, fmt, max_rows=10, limits=small(columns=100), name="wide")

    assert caught.value.message == (
        "wide has 101 columns; the limit is 100 columns (DATAGATE_MAX_COLUMNS)"
    )
    assert caught.value.status_code == 422


@pytest.mark.parametrize("fmt", list(DataFormat))
def test_file_with_as_many_columns_as_the_limit_reads(tmp_path: Path, fmt: DataFormat) -> None:
    path = tmp_path / f"wide.{fmt.value}"
    _write(_wide_frame(100), path, fmt)

    assert read_dataframe(path, fmt, max_rows=10, limits=small(columns=100)).shape == (1, 100)


def test_csv_of_100000_columns_is_refused_from_its_header_before_any_row_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The finding: a 100,000-column CSV took 32 s and made a 6.7 MB report.
    path = tmp_path / "wide.csv"
    path.write_text(
        ",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join(["1"] * 100_000) + "\n"
    )

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rows were parsed")

    monkeypatch.setattr(pa_csv, "open_csv", no_parse)
    monkeypatch.setattr(pa_csv, "read_csv", no_parse)
    with pytest.raises(InvalidData, match="has 100000 columns; the limit is 2000 columns"):
        read_dataframe(path, F.CSV, max_rows=10, limits=LIMITS)


def test_csv_header_count_skips_delimiters_and_newlines_inside_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 3)  # the quote state crosses chunks
    path = tmp_path / "quoted.csv"
    path.write_text('"a,b","c\n""d"",e",f\n1,2,3\n')

    read = read_dataframe(path, F.CSV, max_rows=10, limits=small(columns=3))

    assert list(read.columns) == ["a,b", 'c\n"d",e', "f"]


def test_suite_inference_refuses_a_frame_wider_than_the_limit() -> None:
    with pytest.raises(InvalidData, match="101 columns; suites are inferred from at most 100"):
        infer_suite(_wide_frame(101), "wide", max_columns=100)


# --- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [F.NDJSON, F.JSON])
def test_json_nested_100000_deep_is_refused_before_pyarrow_sees_it(
    tmp_path: Path, fmt: DataFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The finding: pyarrow segfaults on this; it must never be handed the file.
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / f"deep.{fmt.value}"
    path.write_text('{"a": 1}\n' + deep + "\n" if fmt is F.NDJSON else f'[{{"a": 1}}, {deep}]')

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(pa_json, "read_json", no_parse)
    with pytest.raises(InvalidData) as caught:
        read_dataframe(path, fmt, max_rows=10, limits=LIMITS)

    line = 2 if fmt is F.NDJSON else 1
    assert caught.value.message == (
        f"{fmt.value.upper()} line {line} nests arrays and objects more than 64 levels deep "
        "(DATAGATE_MAX_NESTING_DEPTH)"
    )


def test_brackets_and_escaped_quotes_inside_strings_do_not_count_as_nesting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_CHUNK_BYTES", 2)  # escapes and strings cross chunks
    value = '[[[ \\" {{{ \\\\'  # brackets, an escaped quote, an escaped backslash
    path = tmp_path / "strings.ndjson"
    path.write_text(json.dumps({"a": value, "b": [[1]]}) + "\n")

    read = read_dataframe(path, F.NDJSON, max_rows=10, limits=small(nesting_depth=3))

    assert read["a"].tolist() == [value]


def test_nesting_one_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "four.ndjson"
    path.write_text('{"a": [[[1]]]}\n')  # depth 4

    with pytest.raises(InvalidData, match="more than 3 levels"):
        read_dataframe(path, F.NDJSON, max_rows=10, limits=small(nesting_depth=3))


# --- rows while reading ---------------------------------------------------------------------


def test_ndjson_over_max_rows_is_refused_before_pyarrow_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\n')

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(pa_json, "read_json", no_parse)
    with pytest.raises(PayloadTooLarge, match="has 3 rows; the limit is 2 rows"):
        read_dataframe(path, F.NDJSON, max_rows=2, limits=LIMITS, name="rows.ndjson")


def test_json_array_over_max_rows_is_refused_before_any_record_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rows.json"
    path.write_text('[{"a": [{"nested": 1}]}, {"a": []}, {"a": "]"}]')

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a record was parsed")

    monkeypatch.setattr(json.JSONDecoder, "raw_decode", no_parse)
    with pytest.raises(PayloadTooLarge, match="has 3 rows; the limit is 2 rows"):
        read_dataframe(path, F.JSON, max_rows=2, limits=LIMITS)


def test_arrow_stream_over_max_rows_stops_at_the_batch_that_passes_it(tmp_path: Path) -> None:
    path = tmp_path / "rows.arrows"
    batch = pa.record_batch({"a": list(range(100))})
    with pa_ipc.new_stream(path, batch.schema) as writer:
        for _ in range(50):
            writer.write_batch(batch)

    with pytest.raises(PayloadTooLarge, match=r"at least 300 rows .* the limit is 250 rows"):
        read_dataframe(path, F.ARROW, max_rows=250, limits=LIMITS)


# --- long rows ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [F.CSV, F.NDJSON])
def test_a_2_mb_cell_after_many_rows_reads(tmp_path: Path, fmt: DataFormat) -> None:
    # The finding: pyarrow's 1 MB blocks gave "straddles two block boundaries" on valid files.
    big = "y" * 2_000_000
    path = tmp_path / f"big.{fmt.value}"
    if fmt is F.CSV:
        path.write_text("a,b\n" + "1,z\n" * 300_000 + f'2,"{big}"\n3,z\n')
    else:
        path.write_text('{"a": 1, "b": "z"}\n' * 300_000 + json.dumps({"a": 2, "b": big}) + "\n")

    read = read_dataframe(path, fmt, max_rows=10**6, limits=LIMITS)

    assert len(read) == 300_001 + (fmt is F.CSV)
    assert read["b"].str.len().max() == 2_000_000


def test_csv_row_longer_than_the_largest_block_names_that_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_MAX_BLOCK_BYTES", 2 * MIB)
    path = tmp_path / "huge.csv"
    path.write_text("a,b\n" + "1,z\n" * 300_000 + "2," + "y" * (3 * MIB) + "\n")

    with pytest.raises(InvalidData, match=f"a row longer than {2 * MIB} bytes"):
        read_dataframe(path, F.CSV, max_rows=10**6, limits=LIMITS)


def test_csv_header_with_a_stray_quote_is_still_counted_as_pyarrow_parses_it(
    tmp_path: Path,
) -> None:
    # The quote opens nothing for pyarrow (it is not at a field's start), but pairs wrongly in
    # a naive scan, which would then count one field for the whole header.
    path = tmp_path / "stray.csv"
    path.write_text('x"y,' + ",".join(f"c{i}" for i in range(200)) + "\n" + "1," * 200 + "1\n")

    with pytest.raises(InvalidData, match="has 201 columns; the limit is 100 columns"):
        read_dataframe(path, F.CSV, max_rows=10, limits=small(columns=100))
