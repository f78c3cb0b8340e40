"""Throughput of the real service: small synchronous validations at 1, 4 and 16 concurrent
clients, and the time 1 or 2 replicas (on one PostgreSQL database) take to drain 100 queued jobs.

Usage: uv run python -m bench.bench_throughput [--requests 64] [--jobs 100]
Prints Markdown tables for bench/RESULTS.md. Needs PostgreSQL on 127.0.0.1:5432 for
the drain measurements (DATAGATE_TEST_POSTGRES_URL overrides the admin URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.common import REPO, running_server

PENGUINS = REPO / "examples" / "penguins.csv"
ADMIN_URL = os.environ.get(
    "DATAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def workdir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="datagate-bench-"))
    shutil.copytree(REPO / "expectations", root / "expectations")
    return root


@contextmanager
def fresh_database() -> Iterator[str]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"datagate_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def sync_load(
    url: str, body: bytes, clients: int, requests: int
) -> tuple[float, list[float]]:
    """`clients` concurrent callers share `requests` validations; returns (wall s, latencies)."""
    latencies: list[float] = []
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def caller() -> None:
            for _ in remaining:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/validations",
                    files={"data": ("penguins.csv", body)},
                    data={"suite": "penguins"},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def bench_sync(requests: int) -> None:
    body = PENGUINS.read_bytes()
    print("| clients | validations | validations/s | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- |")
    with running_server(workdir(), DATAGATE_WORKERS="2", DATAGATE_MAX_QUEUE="100") as (url, _):
        asyncio.run(sync_load(url, body, 2, 8))  # warm both workers' engines
        for clients in (1, 4, 16):
            wall, latencies = asyncio.run(sync_load(url, body, clients, requests))
            print(
                f"| {clients} | {requests} | {requests / wall:.1f} | "
                f"{percentile(latencies, 50) * 1000:.0f} | {percentile(latencies, 95) * 1000:.0f} |"
            )


def drain(urls: list[str], body: bytes, jobs: int) -> tuple[float, float]:
    """Queue `jobs` through the first server; returns (submit s, submit-to-all-done s)."""
    with httpx.Client(base_url=urls[0], timeout=120) as client:
        started = time.perf_counter()
        ids = []
        for i in range(jobs):
            response = client.post(
                "/v1/validations",
                files={"data": (f"medium-{i}.csv", body)},
                data={"suite": "penguins", "wait": "false"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])
        submitted = time.perf_counter() - started
        pending = set(ids)
        while pending:
            for job_id in list(pending):
                state = client.get(f"/v1/validations/{job_id}").json()
                if state["status"] in ("done", "error"):
                    assert state["status"] == "done", state
                    pending.discard(job_id)
            time.sleep(0.2)
        return submitted, time.perf_counter() - started


def bench_drain(jobs: int) -> None:
    header, *rows = PENGUINS.read_text().splitlines(keepends=True)
    body = (header + "".join(rows) * 30).encode()  # 10,320 rows, 0.5 MB
    print("| replicas | workers each | jobs | submit s | drain s | jobs/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for replicas, workers in ((1, 1), (2, 1), (1, 2)):
        root = workdir()
        with fresh_database() as database, ExitStack() as stack:
            env = {
                "DATAGATE_DATABASE_URL": database,
                "DATAGATE_WORKERS": str(workers),
                "DATAGATE_MAX_QUEUE": str(jobs + 10),
                "DATAGATE_JOB_POLL_S": "0.2",
            }
            urls = [stack.enter_context(running_server(root, **env))[0] for _ in range(replicas)]
            submitted, total = drain(urls, body, jobs)
        print(
            f"| {replicas} | {workers} | {jobs} | {submitted:.1f} | {total:.1f} | "
            f"{jobs / total:.2f} |"
        )
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    bench_sync(args.requests)
    print()
    bench_drain(args.jobs)


if __name__ == "__main__":
    main()
