"""Column profiles (issue 16): what profiling costs against the whole report, at 1M rows.

Usage (by hand, on a quiet machine; about 2 minutes per scenario on 2 cores):
  uv run python -m bench.profiles [--rows 1000000] [--repeat 2]
  uv run python -m bench.profiles --sql [--rows 1000000] [--repeat 2]   (PostgreSQL on :5432)

Two runs of the worker's own `run_validation` (the same code a job runs), in this process, on a
Parquet file of `--rows` rows and 10 mixed columns (4 floats, one with 5% nulls and a few inf; an
integer; two low-cardinality strings; a unique string id; a boolean; a datetime):
  suite       the file against a 12-expectation suite, no reference;
  reference   the same with a reference file of the same size (deepchecks' default checks).
`profile_frames` is wrapped while the report runs, so the profile's time is measured inside the
report it belongs to. Then `service`: the data file uploaded to a real `datagate serve` (one
worker) with the same suite, timed from request to report as a client sees it, against the
profile of the same frame timed in this process. `--sql` instead: bench.bench_sql's 20-column
table of `--rows` rows generated in PostgreSQL, validated in the database by the worker's
`run_validation` against bench.common's suite, timing the profile's part (the bounded sample it
reads when deepchecks does not run, the profile of it, and the aggregate query). Prints Markdown
for bench/RESULTS.md, with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from app.checks import runner
from app.checks.expectations import LoadedSuite
from app.checks.runner import DataInput, ValidationJob, run_validation, warm_up
from app.ingest.formats import DataFormat, read_dataframe
from app.reports.profiles import profile_frames
from bench.common import running_server


def mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    with_nulls = rng.lognormal(size=rows)
    with_nulls[rng.random(rows) < 0.05] = np.nan
    with_nulls[rng.random(rows) < 1e-5] = np.inf
    return pd.DataFrame(
        {
            "amount": rng.normal(100, 15, rows),
            "ratio": rng.random(rows),
            "score": rng.normal(0, 1, rows),
            "spend": with_nulls,
            "count": rng.integers(0, 500, rows),
            "country": rng.choice(["FR", "DE", "IT", "ES", "NL", "BE", "PL"], rows),
            "city": rng.choice([f"city_{i}" for i in range(3000)], rows),
            "id": np.char.add("row-", np.arange(rows).astype(str)),
            "active": rng.random(rows) < 0.4,
            "seen_at": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 300 * 86400, rows), unit="s"),
        }
    )


def suite() -> LoadedSuite:
    expectations: list[dict[str, Any]] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "country", "value_set": ["FR", "DE", "IT", "ES", "NL", "BE"]},
        },
    ]
    for column, low, high in (
        ("amount", 0, 200),
        ("ratio", 0, 1),
        ("score", -6, 6),
        ("count", 0, 499),
    ):
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": low, "max_value": high},
            }
        )
    for column in ("amount", "city", "active", "seen_at"):
        expectations.append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}}
        )
    definition = {"name": "bench_profiles", "expectations": expectations, "meta": {}}
    return LoadedSuite(
        name="bench_profiles",
        definition=definition,
        sha256="2" * 64,
        origin="inline",
        expectation_count=len(expectations),
    )


HEADER = (
    "| scenario | rows | report (s) | profile (s) | profile share |",
    "| --- | ---: | ---: | ---: | ---: |",
)


def run(folder: Path, rows: int, with_reference: bool) -> tuple[float, float]:
    data_path = folder / "data.parquet"
    reference_path = folder / "reference.parquet"
    job = ValidationJob(
        id="bench",
        data=DataInput(path=data_path, format=DataFormat.PARQUET, name="data.parquet"),
        reference=DataInput(
            path=reference_path, format=DataFormat.PARQUET, name="reference.parquet"
        )
        if with_reference
        else None,
        suite=suite(),
        max_rows=rows * 2,
    )
    spent: list[float] = []
    original = runner.profile_frames
    runner.profile_frames = timed(original, spent)  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        report = run_validation(job)
        total = time.perf_counter() - started
    finally:
        runner.profile_frames = original  # type: ignore[assignment]
    assert "data" in report.profiles and (("reference" in report.profiles) == with_reference)
    return total, sum(spent)


def through_service(folder: Path, rows: int, repeat: int) -> tuple[float, float]:
    """Median request time of an upload through the service, and median in-process profile
    time of the same frame."""
    workdir = folder / "service"
    (workdir / "expectations").mkdir(parents=True, exist_ok=True)
    (workdir / "expectations" / "bench_profiles.json").write_text(json.dumps(suite().definition))
    data_path = folder / "data.parquet"
    warm = folder / "warm.parquet"
    pd.read_parquet(data_path).head(100).to_parquet(warm, index=False)
    totals = []
    with running_server(workdir, DATAGATE_WORKERS="1") as (
        url,
        _,
    ):
        for path in [warm] + [data_path] * repeat:
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/v1/validations",
                files={"data": (path.name, path.read_bytes())},
                data={"suite": "bench_profiles"},
                timeout=3600,
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text[:500]
            assert "data" in response.json()["profiles"]
            if path == data_path:
                totals.append(elapsed)
    frame = read_dataframe(data_path, DataFormat.PARQUET, max_rows=rows * 2, name="data")
    profiles = []
    for _ in range(repeat):
        started = time.perf_counter()
        profile_frames(frame, None)
        profiles.append(time.perf_counter() - started)
    return statistics.median(totals), statistics.median(profiles)


def sql_scenario(rows: int, repeat: int) -> str:
    from app.core.config import get_settings
    from app.ingest.references import BatchReference, SqlFormat
    from bench.bench_sql import bench_database, load
    from bench.common import suite_for, synthetic_frame

    definition = suite_for(synthetic_frame(10))
    loaded = LoadedSuite(
        name="bench",
        definition={**definition, "meta": definition.get("meta", {})},
        sha256="3" * 64,
        origin="inline",
        expectation_count=len(definition["expectations"]),
    )
    totals, profiles = [], []
    with bench_database() as url:
        load(url, rows)
        os.environ["DATAGATE_CONNECTIONS"] = json.dumps({"bench": url})
        # The bench loads its table as the local superuser; a deployment uses a reader role.
        os.environ["DATAGATE_SQL_ALLOW_WRITABLE_ROLE"] = "true"
        get_settings.cache_clear()
        job = ValidationJob(
            id="bench-sql",
            data=DataInput(
                format=SqlFormat.SQL,
                name="features",
                location=BatchReference(connection="bench", table="features"),
            ),
            suite=loaded,
            max_rows=rows * 2,
        )
        for _ in range(repeat):
            spent: list[float] = []
            originals = (runner._sql_sample, runner._profiles)
            runner._sql_sample = timed(runner._sql_sample, spent)  # type: ignore[assignment]
            runner._profiles = timed(runner._profiles, spent)  # type: ignore[assignment]
            try:
                started = time.perf_counter()
                report = run_validation(job)
                totals.append(time.perf_counter() - started)
            finally:
                runner._sql_sample, runner._profiles = originals  # type: ignore[assignment]
            assert report.profiles["data"].rows == rows, report.profiles["data"].rows
            profiles.append(sum(spent))
    total, profile = statistics.median(totals), statistics.median(profiles)
    sampled = report.profiles["data"].sampled_rows
    sample = f"sample {sampled:,} rows" if sampled else "whole table read"
    return (
        f"| sql (PostgreSQL, 20 columns; {sample}) | {rows:,} | {total:.2f} "
        f"| {profile:.2f} | {profile / total:.1%} |"
    )


def timed(function: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sql", action="store_true")
    args = parser.parse_args()
    warm_up()
    if args.sql:
        print("\n".join(HEADER))
        print(sql_scenario(args.rows, args.repeat))
        print(f"<!-- load average {os.getloadavg()[0]:.1f} -->")
        return
    lines = list(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mixed_frame(args.rows, 1).to_parquet(folder / "data.parquet", index=False)
        mixed_frame(args.rows, 2).to_parquet(folder / "reference.parquet", index=False)
        for name, with_reference in (("suite", False), ("reference", True)):
            totals, profiles = [], []
            for _ in range(args.repeat):
                total, profile = run(folder, args.rows, with_reference)
                totals.append(total)
                profiles.append(profile)
            total, profile = statistics.median(totals), statistics.median(profiles)
            sizes = f"{args.rows:,}" + (f" + {args.rows:,}" if with_reference else "")
            lines.append(
                f"| {name} | {sizes} | {total:.2f} | {profile:.2f} | {profile / total:.1%} |"
            )
            print(lines[-1], flush=True)
        total, profile = through_service(folder, args.rows, args.repeat)
        lines.append(
            f"| service (upload) | {args.rows:,} | {total:.2f} | {profile:.2f} "
            f"| {profile / total:.1%} |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))
    print(f"<!-- load average {os.getloadavg()[0]:.1f} -->")


if __name__ == "__main__":
    main()
