"""Properties of read_dataframe: pandas CSVs round-trip, and no bytes make it raise a 500."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from app.core.errors import InvalidData, PayloadTooLarge
from app.ingest import formats
from app.ingest.formats import DataFormat, read_dataframe

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)

_names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
# Control characters are left out: pandas leaves a bare carriage return unquoted (so it ends
# the row for any CSV reader), and datagate refuses NUL bytes as a sign of binary data.
_short_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=6
)


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    # The first column is always an int: a row of only empty text would be a blank CSV line,
    # which CSV cannot tell from no row at all.
    kinds = ["int"] + [draw(st.sampled_from(["int", "float", "text"])) for _ in names[1:]]
    columns = []
    for name, kind in zip(names, kinds, strict=True):
        if kind == "int":
            columns.append(column(name, elements=st.integers(-(2**53), 2**53), dtype="int64"))
        elif kind == "float":
            columns.append(column(name, elements=st.floats(width=64), dtype="float64"))
        else:
            columns.append(column(name, elements=_short_text, dtype=object))
    return draw(data_frames(columns, index=range_indexes(max_size=20)))


@PROPERTY_SETTINGS
@given(frame=_frames())
def test_any_pandas_csv_round_trips_rows_names_and_ints(frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.csv"
        frame.to_csv(path, index=False)

        read = read_dataframe(path, DataFormat.CSV, max_rows=1000)

    assert len(read) == len(frame)
    assert list(read.columns) == list(frame.columns)
    if len(frame):
        for name in frame.columns:
            if frame[name].dtype.kind == "i":
                assert read[name].tolist() == frame[name].tolist()


# Real leading bytes, so that the readers get past their first check now and then.
_PREFIXES = [b"", b"PAR1", b"ARROW1\x00\x00", b"\xff\xff\xff\xff", b"FEA1", b"a,b\n", b'[{"a":']
_SUFFIXES = [b"", b"PAR1", b"ARROW1"]
_bytes = st.builds(
    lambda head, body, tail: head + body + tail,
    st.sampled_from(_PREFIXES),
    st.binary(max_size=512),
    st.sampled_from(_SUFFIXES),
)


@PROPERTY_SETTINGS
@given(content=_bytes, fmt=st.sampled_from(list(DataFormat)))
def test_arbitrary_bytes_read_or_raise_only_domain_errors(content: bytes, fmt: DataFormat) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "blob"
        path.write_bytes(content)
        try:
            read = read_dataframe(path, fmt, max_rows=5)
        except (InvalidData, PayloadTooLarge):
            return
    assert isinstance(read, pd.DataFrame)
    assert len(read) <= 5


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ a,:\n'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ a', max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@PROPERTY_SETTINGS
@given(value=_json_values, chunk=st.integers(1, 9))
def test_nesting_scan_measures_the_true_depth_whatever_the_strings_hold(
    value: object, chunk: int
) -> None:
    # Strings full of brackets, quotes and backslashes, cut into chunks anywhere: the scan
    # counts what a JSON parser nests, no more and no less.
    depth = _depth({"v": value})
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(formats, "_CHUNK_BYTES", chunk)
        path = Path(folder) / "value.ndjson"
        path.write_text(json.dumps({"v": value}) + "\n")
        formats._scan_json(path, "NDJSON", depth)  # the true depth is allowed
        with pytest.raises(InvalidData, match=f"more than {depth - 1} levels"):
            formats._scan_json(path, "NDJSON", depth - 1)
