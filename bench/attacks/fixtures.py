"""What the attacks run against: PostgreSQL databases and a read-only role, a callback receiver
that records every request and connection, and the hostile files (bombs, deep JSON, wide CSV)."""

from __future__ import annotations

import io
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Databases:
    """A fresh report store, a victim warehouse with a table, and a read-only role on it."""

    store_url: str
    victim_url: str
    reader_url: str


@contextmanager
def databases() -> Iterator[Databases]:
    tag = uuid.uuid4().hex[:10]
    store, victim, role = f"dg_attack_store_{tag}", f"dg_attack_victim_{tag}", f"dg_attack_r_{tag}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{store}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{victim}"'))
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
    victim_url = make_url(ADMIN_URL).set(database=victim).render_as_string(hide_password=False)
    engine = sa.create_engine(victim_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE features (id int, name text, score float)"))
        conn.execute(
            sa.text(
                "INSERT INTO features SELECT i, 'n' || i, i / 10.0 FROM generate_series(1, 50) i"
            )
        )
        conn.execute(sa.text("CREATE TABLE victim (note text)"))
        for statement in (
            f'GRANT CONNECT ON DATABASE "{victim}" TO "{role}"',
            f'GRANT USAGE ON SCHEMA public TO "{role}"',
            f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
            f'ALTER ROLE "{role}" SET default_transaction_read_only = on',
        ):
            conn.execute(sa.text(statement))
    engine.dispose()
    try:
        yield Databases(
            store_url=make_url(ADMIN_URL).set(database=store).render_as_string(hide_password=False),
            victim_url=victim_url,
            reader_url=make_url(victim_url)
            .set(username=role)
            .render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as conn:
            for db in (store, victim):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def victim_rows(victim_url: str) -> tuple[int, list[str]]:
    """Rows in the victim table and the tables of `public`: what a write would change."""
    engine = sa.create_engine(victim_url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("select count(*) from victim")).scalar_one()
        tables = conn.execute(
            sa.text("select tablename from pg_tables where schemaname='public' order by 1")
        ).scalars()
        result = (int(count), list(tables))
    engine.dispose()
    return result


@dataclass
class Receiver:
    """An HTTP server that records each request's path; `/redirect` answers 307 to `trap`."""

    port: int
    trap_port: int
    hits: list[str] = field(default_factory=list)
    trap_connections: list[bytes] = field(default_factory=list)


@contextmanager
def callback_receiver() -> Iterator[Receiver]:
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(16)
    receiver = Receiver(port=0, trap_port=trap.getsockname()[1])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            self.rfile.read(length)
            receiver.hits.append(self.path)
            if self.path.startswith("/redirect"):
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{receiver.trap_port}/stolen")
            else:
                self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]

    def accept_trap() -> None:
        while True:
            try:
                conn, _ = trap.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                receiver.trap_connections.append(conn.recv(4096))
            except OSError:
                receiver.trap_connections.append(b"")
            conn.close()

    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=accept_trap, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        trap.close()


def parquet_bomb(rows: int = 2_000_000, width: int = 1000) -> bytes:
    """A few hundred KB of Parquet (one repeated long string, dictionary + zstd) that decodes
    to rows x width bytes."""
    value = "x" * width
    table = pa.table({"s": pa.array([value] * 1000).dictionary_encode()})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, compression="zstd", use_dictionary=True) as writer:
        for _ in range(rows // 1000):
            writer.write_table(table)
    return sink.getvalue()


def arrow_bomb(rows: int = 2_000_000, width: int = 1000) -> bytes:
    """The same expansion in Arrow IPC (zstd buffers), a format with its own reader."""
    value = "x" * width
    table = pa.table({"s": pa.array([value] * 10_000)})
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        for _ in range(rows // 10_000):
            writer.write_table(table)
    return sink.getvalue()


def deep_ndjson(depth: int = 100_000) -> bytes:
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}\n"


def deep_json_array(depth: int = 100_000) -> bytes:
    return b'[{"a": ' + b"[" * depth + b"]" * depth + b"}]"


def wide_csv(columns: int = 100_000) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join("1" for _ in range(columns))
    return f"{header}\n{row}\n".encode()


def wide_parquet(columns: int = 20_000) -> bytes:
    table = pa.table({f"c{i}": pa.array([1], pa.int8()) for i in range(columns)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def wide_json_records(columns: int = 100_000) -> bytes:
    body = ",".join(f'"c{i}": 1' for i in range(columns))
    return ("[{" + body + "}]").encode()
