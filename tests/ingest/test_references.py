"""Batch references to files and S3 objects: what may be read, how it is read, how it fails."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pa_parquet
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.core.config import Settings
from app.core.errors import (
    Forbidden,
    InvalidData,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedFormat,
    UpstreamTimeout,
)
from app.ingest.references import (
    BatchReference,
    ConnectionRefused,
    check_connections_at_start,
    configured_connections,
    connection_states,
    read_reference,
    read_sample,
    resolve_reference,
)
from tests.conftest import make_settings

FRAME = pd.DataFrame({"id": [1, 2, 3], "city": ["oslo", "rome", "lima"], "temp": [4.5, 21.0, 18.2]})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "lake"
    folder.mkdir()
    FRAME.to_csv(folder / "day.csv", index=False)
    return folder


@pytest.fixture
def settings(tmp_path: Path, root: Path) -> Settings:
    return make_settings(tmp_path, data_roots=[root], max_rows=1000)


def ref(**fields: Any) -> BatchReference:
    return BatchReference.model_validate(fields)


def read(reference: BatchReference, settings: Settings) -> pd.DataFrame:
    return read_reference(reference, settings, max_rows=settings.max_rows).frame


# --- the request model ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"table": "t"},
        {"uri": "/x.csv", "connection": "w", "table": "t"},
        {"connection": "w"},
        {"connection": "w", "table": "t", "query": "select 1"},
        {"connection": "w", "table": "t", "params": {"a": 1}},
        {"uri": "/x.csv", "colour": "red"},
    ],
)
def test_a_reference_names_exactly_one_location(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ref(**fields)


def test_reference_errors_name_the_fields_involved() -> None:
    with pytest.raises(ValidationError) as caught:
        ref(uri="/x.csv", table="t")
    assert "'uri' cannot be combined with 'table'" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        ref(uri="/x.csv", colour="red")
    assert "colour" in str(caught.value)


def test_report_source_records_the_reference_without_credentials() -> None:
    query = ref(connection="warehouse", query="select * from f where day = :day", params={"day": 1})
    assert query.describe() == {
        "connection": "warehouse",
        "query": "select * from f where day = :day",
        "params": {"day": 1},
    }
    assert ref(connection="w", table="t", schema="s").describe() == {
        "connection": "w",
        "schema": "s",
        "table": "t",
    }


# --- local files ---------------------------------------------------------------------------------


def test_file_uri_under_an_allowed_root_is_read(root: Path, settings: Settings) -> None:
    batch = read_reference(ref(uri=f"file://{root}/day.csv"), settings, max_rows=100)
    assert batch.frame.shape == (3, 3)
    assert batch.frame["city"].tolist() == ["oslo", "rome", "lima"]
    assert batch.resolved.name == "day.csv"
    assert batch.resolved.bytes == (root / "day.csv").stat().st_size
    assert batch.resolved.source == {"uri": f"file://{root}/day.csv"}


def test_plain_path_reads_like_a_file_uri(root: Path, settings: Settings) -> None:
    assert read(ref(uri=str(root / "day.csv")), settings).equals(
        read(ref(uri=f"file://{root}/day.csv"), settings)
    )


def test_path_outside_the_roots_is_forbidden_naming_the_roots(
    tmp_path: Path, root: Path, settings: Settings
) -> None:
    outside = tmp_path / "secret.csv"
    FRAME.to_csv(outside, index=False)
    with pytest.raises(Forbidden) as caught:
        resolve_reference(ref(uri=str(outside)), settings)
    assert str(root) in caught.value.message
    assert caught.value.status_code == 403


def test_dot_dot_is_forbidden_even_when_it_lands_inside(root: Path, settings: Settings) -> None:
    (root / "sub").mkdir()
    with pytest.raises(Forbidden, match=r"'\.\.'"):
        resolve_reference(ref(uri=f"{root}/sub/../day.csv"), settings)


def test_symlink_leaving_a_root_is_forbidden(
    tmp_path: Path, root: Path, settings: Settings
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    FRAME.to_csv(outside / "x.csv", index=False)
    (root / "link.csv").symlink_to(outside / "x.csv")
    (root / "linked_folder").symlink_to(outside)
    for uri in (root / "link.csv", root / "linked_folder", root / "linked_folder" / "x.csv"):
        with pytest.raises(Forbidden, match="allowed roots"):
            resolve_reference(ref(uri=str(uri)), settings)


def test_symlink_inside_a_folder_that_leaves_the_root_is_forbidden(
    tmp_path: Path, root: Path, settings: Settings
) -> None:
    folder = root / "parts"
    folder.mkdir()
    FRAME.to_parquet(folder / "a.parquet")
    FRAME.to_parquet(tmp_path / "b.parquet")
    (folder / "b.parquet").symlink_to(tmp_path / "b.parquet")
    with pytest.raises(Forbidden):
        resolve_reference(ref(uri=str(folder)), settings)


def test_symlink_within_the_root_is_followed(root: Path, settings: Settings) -> None:
    (root / "latest.csv").symlink_to(root / "day.csv")
    assert len(read(ref(uri=str(root / "latest.csv")), settings)) == 3


def test_no_roots_configured_forbids_every_file(tmp_path: Path, root: Path) -> None:
    with pytest.raises(Forbidden, match="DATAGATE_DATA_ROOTS is empty"):
        resolve_reference(ref(uri=str(root / "day.csv")), make_settings(tmp_path))


def test_missing_file_is_not_found(root: Path, settings: Settings) -> None:
    with pytest.raises(NotFound) as caught:
        resolve_reference(ref(uri=f"file://{root}/nope.csv"), settings)
    assert caught.value.status_code == 404


def test_unknown_scheme_is_a_malformed_reference(settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="scheme 'http'"):
        resolve_reference(ref(uri="http://example.com/x.csv"), settings)


def test_relative_path_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="absolute"):
        resolve_reference(ref(uri="lake/day.csv"), settings)


def test_glob_reads_every_matching_file_as_one_dataset(root: Path, settings: Settings) -> None:
    for day in ("2026-11-23", "2026-11-24", "2026-12-01"):
        FRAME.assign(day=day).to_parquet(root / f"{day}.parquet")
    frame = read(ref(uri=f"file://{root}/2026-11-*.parquet"), settings)
    assert len(frame) == 6
    assert sorted(frame["day"].unique()) == ["2026-11-23", "2026-11-24"]


def test_glob_matching_nothing_is_not_found(root: Path, settings: Settings) -> None:
    with pytest.raises(NotFound, match="no file matches"):
        resolve_reference(ref(uri=f"{root}/1999-*.parquet"), settings)


def test_glob_outside_the_roots_is_forbidden_before_listing(settings: Settings) -> None:
    with pytest.raises(Forbidden):
        resolve_reference(ref(uri="/etc/*.conf"), settings)


def test_hive_partitioned_folder_reads_as_one_dataset(root: Path, settings: Settings) -> None:
    for year, month in (("2025", "12"), ("2026", "01"), ("2026", "02")):
        part = root / "events" / f"year={year}" / f"month={month}"
        part.mkdir(parents=True)
        FRAME.to_parquet(part / "part-0.parquet")
    (root / "events" / "_SUCCESS").write_text("")
    batch = read_reference(ref(uri=f"file://{root}/events/"), settings, max_rows=100)
    assert batch.frame.shape == (9, 5)
    assert set(batch.frame.columns) == {"id", "city", "temp", "year", "month"}
    assert sorted(batch.frame["year"].unique().tolist()) == [2025, 2026]
    assert batch.resolved.format.value == "parquet"


def test_explicit_format_overrides_the_extension(root: Path, settings: Settings) -> None:
    (root / "export.txt").write_text((root / "day.csv").read_text())
    with pytest.raises(UnsupportedFormat):
        resolve_reference(ref(uri=str(root / "export.txt")), settings)
    assert len(read(ref(uri=str(root / "export.txt"), format="csv"), settings)) == 3


def test_unknown_explicit_format_names_the_field(root: Path, settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match=r"data\.format"):
        resolve_reference(ref(uri=str(root / "day.csv"), format="xlsx"), settings)


def test_read_sample_of_a_file_is_bounded_and_seeded(root: Path, settings: Settings) -> None:
    pd.DataFrame({"x": range(500)}).to_parquet(root / "big.parquet")
    reference = ref(uri=str(root / "big.parquet"))
    first = read_sample(reference, 50, seed=7, settings=settings)
    assert len(first) == 50
    assert first.equals(read_sample(reference, 50, seed=7, settings=settings))
    assert not first.equals(read_sample(reference, 50, seed=8, settings=settings))
    assert len(read_sample(reference, 5000, seed=7, settings=settings)) == 500


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ['["datasets", "raw"]', "datasets, raw", "datasets,raw"])
def test_allowed_buckets_accept_a_json_list_or_commas(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DATAGATE_ALLOWED_BUCKETS", value)
    assert Settings().allowed_buckets == ["datasets", "raw"]


def test_connections_come_from_the_environment_and_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATAGATE_CONNECTIONS", json.dumps({"a": "sqlite:///a.db"}))
    yaml_file = tmp_path / "connections.yaml"
    yaml_file.write_text("b: sqlite:///b.db\n")
    monkeypatch.setenv("DATAGATE_CONNECTIONS_FILE", str(yaml_file))
    settings = Settings()
    assert configured_connections(settings) == {"a": "sqlite:///a.db", "b": "sqlite:///b.db"}
    # A URL holds credentials: it must not show in the settings' repr (logs, tracebacks).
    assert "a.db" not in repr(settings)


def test_unknown_connection_names_the_configured_ones(settings: Settings) -> None:
    configured = settings.model_copy(update={"connections": {}})
    with pytest.raises(InvalidRequest, match=r"data\.connection: unknown connection 'dw'"):
        resolve_reference(ref(connection="dw", table="t"), configured)


# --- S3 (moto's server on loopback) --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    for name in ("datasets", "private"):
        client.create_bucket(Bucket=name)
    client.put_object(Bucket="datasets", Key="daily/day.csv", Body=FRAME.to_csv(index=False))
    client.put_object(Bucket="private", Key="day.csv", Body=FRAME.to_csv(index=False))
    for day in ("01", "02"):
        client.put_object(
            Bucket="datasets",
            Key=f"train/v12/day={day}/part-0.parquet",
            Body=FRAME.to_parquet(),
        )
    client.put_object(Bucket="datasets", Key="train/v12/_SUCCESS", Body=b"")
    return "datasets"


@pytest.fixture
def s3_settings(tmp_path: Path, s3_endpoint: str, bucket: str) -> Settings:
    return make_settings(
        tmp_path,
        s3_endpoint_url=s3_endpoint,
        s3_key="test-key",
        s3_secret="test-secret",
        s3_region="us-east-1",
        allowed_buckets=[bucket],
        s3_read_timeout_s=5,
    )


def test_s3_object_is_read_through_the_configured_endpoint(s3_settings: Settings) -> None:
    batch = read_reference(ref(uri="s3://datasets/daily/day.csv"), s3_settings, max_rows=100)
    assert batch.frame.shape == (3, 3)
    assert batch.resolved.bytes == len(FRAME.to_csv(index=False))
    assert batch.resolved.source == {"uri": "s3://datasets/daily/day.csv"}


def test_s3_prefix_reads_as_one_partitioned_dataset(s3_settings: Settings) -> None:
    frame = read(ref(uri="s3://datasets/train/v12/"), s3_settings)
    assert frame.shape == (6, 4)
    assert sorted(frame["day"].unique().tolist()) == [1, 2]


def test_s3_bucket_not_allowed_is_forbidden_naming_allowed(s3_settings: Settings) -> None:
    with pytest.raises(Forbidden, match="allowed buckets: datasets"):
        resolve_reference(ref(uri="s3://private/day.csv"), s3_settings)


def test_missing_s3_object_is_not_found(s3_settings: Settings) -> None:
    with pytest.raises(NotFound, match=r"s3://datasets/daily/nope\.csv"):
        resolve_reference(ref(uri="s3://datasets/daily/nope.csv"), s3_settings)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A server that accepts connections and never answers: a stalled object store."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_stalled_object_store_answers_upstream_timeout(
    tmp_path: Path, silent_endpoint: str
) -> None:
    settings = make_settings(
        tmp_path,
        s3_endpoint_url=silent_endpoint,
        s3_key="k",
        s3_secret="s",
        allowed_buckets=["datasets"],
        s3_read_timeout_s=0.5,
    )
    with pytest.raises(UpstreamTimeout) as caught:
        resolve_reference(ref(uri="s3://datasets/day.csv"), settings)
    assert caught.value.status_code == 504


def test_reading_never_needs_the_aws_environment(
    monkeypatch: pytest.MonkeyPatch, s3_settings: Settings
) -> None:
    # Endpoint and credentials come from DATAGATE_ settings only.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    assert len(read(ref(uri="s3://datasets/daily/day.csv"), s3_settings)) == 3


# --- the SQL connections' roles, at start-up and at first use (the local PostgreSQL) -------------


def _grant(database_url: str, *statements: str) -> None:
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_superuser_connection_is_refused_at_first_use_naming_why(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = make_settings(tmp_path, connections={"dw": postgres_url})
    _grant(postgres_url, "create table t (x integer)")
    with pytest.raises(Forbidden) as caught:
        resolve_reference(ref(connection="dw", table="t"), settings)
    assert caught.value.status_code == 403
    assert caught.value.message.startswith(
        "data.connection: connection 'dw' is refused: role 'postgres' is a superuser"
    )
    assert "DATAGATE_SQL_ALLOW_WRITABLE_ROLE=true" in caught.value.message
    # /readyz is open without a key: it says why, but names no role.
    assert connection_states(settings) == {"dw": "refused: the role is a superuser"}


def test_start_up_refuses_a_role_that_can_write_one_table(
    tmp_path: Path, postgres_url: str, postgres_reader_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reader = sa.engine.make_url(postgres_reader_url).username
    _grant(postgres_url, "create table t (x integer)", f'grant insert on t to "{reader}"')
    settings = make_settings(tmp_path, connections={"dw": postgres_reader_url})
    with (
        caplog.at_level(logging.ERROR, logger="datagate"),
        pytest.raises(ConnectionRefused) as caught,
    ):
        check_connections_at_start(settings)
    assert f"dw (role '{reader}' can write to 1 table(s))" in str(caught.value)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"SQL connection dw refused: role '{reader}' can write to 1 table(s)"
    ]


def test_start_up_passes_a_read_only_role_and_it_reads(
    tmp_path: Path, postgres_url: str, postgres_reader_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _grant(postgres_url, "create table t (x integer)", "insert into t values (1)")
    settings = make_settings(tmp_path, connections={"dw": postgres_reader_url})
    with caplog.at_level(logging.INFO, logger="datagate"):
        check_connections_at_start(settings)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert connection_states(settings) == {"dw": "read-only"}
    assert resolve_reference(ref(connection="dw", table="t"), settings).columns == ["x"]


def test_override_starts_a_writable_role_with_an_error_logged(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, connections={"dw": postgres_url}, sql_allow_writable_role=True
    )
    with caplog.at_level(logging.ERROR, logger="datagate"):
        check_connections_at_start(settings)
    assert [r.getMessage() for r in caplog.records] == [
        "SQL connection dw: role 'postgres' is a superuser; used anyway because "
        "DATAGATE_SQL_ALLOW_WRITABLE_ROLE=true"
    ]
    assert connection_states(settings)["dw"].startswith("writable, allowed by")


def test_unreachable_connection_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:{port}/none"
    settings = make_settings(tmp_path, connections={"dw": url})
    with caplog.at_level(logging.ERROR, logger="datagate"):
        check_connections_at_start(settings)
    assert connection_states(settings) == {
        "dw": "not checked: unreachable at start-up (the log says why)"
    }
    assert "SQL connection dw not checked at start: connection 'dw' failed" in caplog.text
    assert "s3cret-pw" not in caplog.text


# --- decoding limits -----------------------------------------------------------------------------


def test_file_reference_wider_than_the_column_limit_is_refused_naming_it(
    root: Path, tmp_path: Path
) -> None:
    wide = pd.DataFrame({f"c{i}": [i] for i in range(11)})
    wide.to_csv(root / "wide.csv", index=False)
    settings = make_settings(tmp_path, data_roots=[root], max_columns=10)

    with pytest.raises(InvalidData, match=r"wide\.csv has 11 columns; the limit is 10 columns"):
        read(ref(uri=f"file://{root}/wide.csv"), settings)


def test_folder_of_parquet_bombs_is_refused_at_the_batch_over_the_decoded_limit(
    root: Path, tmp_path: Path
) -> None:
    folder = root / "bombs"
    folder.mkdir()
    for day in range(3):
        table = pa.table({"text": pa.array(["x" * 1000] * 20_000)})  # 20 MB decoded each
        pa_parquet.write_table(table, folder / f"day={day}.parquet", compression="zstd")
    settings = make_settings(tmp_path, data_roots=[root], max_decoded_bytes=4 * 1024**2)

    with pytest.raises(PayloadTooLarge) as caught:
        read(ref(uri=f"file://{folder}/"), settings)

    assert "bombs decodes to more than 4194304 bytes" in caught.value.message


def test_glob_of_csv_files_shares_one_decoded_limit(root: Path, tmp_path: Path) -> None:
    for day in range(4):
        (root / f"part-{day}.csv").write_bytes(b"a,b\n" + b"1,2\n" * 100_000)  # 1.6 MB each
    settings = make_settings(tmp_path, data_roots=[root], max_decoded_bytes=4 * 1024**2)

    with pytest.raises(PayloadTooLarge, match="DATAGATE_MAX_DECODED_BYTES"):
        read(ref(uri=f"file://{root}/part-*.csv"), settings)
