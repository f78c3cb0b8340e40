"""A SQL table validated inside PostgreSQL against the same rows pulled into pandas, both through
a real `datagate serve`: time and peak memory (VmHWM) of the server and its worker.

Usage: uv run python -m bench.bench_sql [--sizes 1000000,5000000] [--skip-pandas]
Needs PostgreSQL on 127.0.0.1:5432 (DATAGATE_TEST_POSTGRES_URL to change it). Creates a
database `datagate_bench_<random>` with generate_series, and drops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import peak_rss_mib, running_server, suite_for, synthetic_frame

ADMIN_URL = os.environ.get(
    "DATAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NORMAL = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"  # Box-Muller: PG 15 has none


def create_table_sql(rows: int) -> str:
    """The bench frame's 20 columns (bench.common.synthetic_frame), generated inside PostgreSQL."""
    columns = [f"{i} + {1 + i / 10} * {NORMAL} AS num_{i}" for i in range(12)]
    columns += [
        f"(array['a','b','c','d','e'])[1 + floor(random() * 5)::int] AS cat_{i}" for i in range(4)
    ]
    columns += [
        "g AS id",
        "floor(random() * 100)::bigint AS count",
        "random() < 0.5 AS flag",
        f"CASE WHEN random() < 0.01 THEN NULL ELSE {NORMAL} END AS maybe",
    ]
    return (
        f"CREATE TABLE features AS SELECT {', '.join(columns)} "
        f"FROM generate_series(0, {rows - 1}) AS g"
    )


@contextmanager
def bench_database() -> Iterator[str]:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"datagate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def load(url: str, rows: int) -> float:
    engine = sa.create_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS features"))
        conn.execute(sa.text("SELECT setseed(0.42)"))
        conn.execute(sa.text(create_table_sql(rows)))
        conn.execute(sa.text("ANALYZE features"))
    engine.dispose()
    return time.perf_counter() - started


def export_parquet(url: str, path: Path) -> None:
    """COPY the table out as CSV, then write Parquet: the pandas path's input, same rows."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    csv_path = path.with_suffix(".csv")
    statement = "COPY features TO STDOUT WITH (FORMAT csv, HEADER)"
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cursor,
        csv_path.open("wb") as out,
        cursor.copy(statement) as copy,
    ):
        for block in copy:
            out.write(block)
    pa_parquet.write_table(pa_csv.read_csv(csv_path), path)
    csv_path.unlink()


def process_peaks(pid: int) -> tuple[float, float]:
    """(server + workers, largest single worker) peak RSS in MiB."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    return peak_rss_mib(pid), max((peak_rss_mib(p) for p in workers), default=0.0)


def run(workdir: Path, body: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    with running_server(workdir, DATAGATE_WORKERS="1", **env) as (url, process):
        # One small request first, so that the figures are not the cost of GE's first import.
        warm_up = {"connection": "bench", "query": "select * from features limit 100"}
        response = httpx.post(
            f"{url}/v1/validations", json={"data": warm_up, "suite": "bench"}, timeout=600
        )
        assert response.status_code == 200, response.text[:1000]
        base_total, base_worker = process_peaks(process.pid)
        started = time.perf_counter()
        response = httpx.post(f"{url}/v1/validations", json=body, timeout=7200)
        seconds = time.perf_counter() - started
        total, worker = process_peaks(process.pid)
    assert response.status_code == 200, response.text[:1000]
    report = response.json()
    failed = [c["name"] for c in report["checks"] if c["outcome"] not in ("passed", "warned")]
    return {
        "seconds": seconds,
        "total": total,
        "worker": worker,
        "idle_worker": base_worker,
        "idle_total": base_total,
        "rows": report["dataset"]["rows"],
        "status": report["status"],
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    suite = suite_for(synthetic_frame(10))
    print(
        "| rows | path | status | seconds | worker peak MiB (after warm-up) "
        "| server + worker peak MiB |"
    )
    print("|---|---|---|---|---|---|")
    with bench_database() as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "expectations").mkdir()
        (workdir / "expectations" / "bench.json").write_text(json.dumps(suite))
        lake = workdir / "lake"
        lake.mkdir()
        env = {
            "DATAGATE_CONNECTIONS": json.dumps({"bench": url}),
            "DATAGATE_DATA_ROOTS": str(lake),
            "DATAGATE_MAX_ROWS": str(50_000_000),
            # The bench loads its table as the local superuser; a deployment uses a reader role.
            "DATAGATE_SQL_ALLOW_WRITABLE_ROLE": "true",
        }
        for rows in [int(s) for s in args.sizes.split(",")]:
            loaded = load(url, rows)
            print(f"<!-- {rows:,} rows generated in {loaded:.1f} s -->", flush=True)
            paths: list[tuple[str, dict[str, Any]]] = [
                ("in-database", {"data": {"connection": "bench", "table": "features"}}),
            ]
            if not args.skip_pandas:
                parquet = lake / f"features-{rows}.parquet"
                export_parquet(url, parquet)
                paths.append(("pandas (Parquet reference)", {"data": {"uri": str(parquet)}}))
            for label, body in paths:
                result = run(workdir, {**body, "suite": "bench"}, env)
                assert result["rows"] == rows, result
                print(
                    f"| {rows:,} | {label} | {result['status']} | {result['seconds']:.1f} | "
                    f"{result['worker']:.0f} ({result['idle_worker']:.0f}) | "
                    f"{result['total']:.0f} |"
                    + (f" failed: {', '.join(result['failed'])}" if result["failed"] else ""),
                    flush=True,
                )


if __name__ == "__main__":
    main()
