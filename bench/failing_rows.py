"""Failing rows (issue 16, item 1): the time the rows of failed expectations add to a report, at
1M rows x 20 columns, in the worker's own code path (run_suite, then keep_frame_rows); and on a
SQLite table, the bounded queries that read them, timed inside validate_sql_batch.

Usage: uv run python -m bench.failing_rows [--rows 1000000] [--repeats 3] [--sql-repeats 1]
       [--skip-frame] [--skip-sql]
Prints one Markdown table per path; figures go to bench/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from app.checks.expectations import LoadedSuite, parse_suite, run_suite
from app.checks.failing_rows import keep_frame_rows
from bench.common import synthetic_frame


def suite(failing: str, *, ids: bool) -> LoadedSuite:
    """The bench suite's 20 expectations with `failing` of them made to fail:
    "none", "one" (num_0 > 3: 0.1% of rows), "three" (plus cat_0 in a 4-value set: 20%, and
    `maybe` not null: 1%), "half" (num_0 < mean: 50% of rows)."""
    expectations: list[dict[str, Any]] = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": f"num_{i}", "min_value": -100, "max_value": 100},
        }
        for i in range(12)
    ] + [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": f"cat_{i}", "value_set": list("abcde")},
        }
        for i in range(4)
    ]
    expectations += [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "count", "min_value": 0},
        },
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "num_1", "min_value": -9},
        },
    ]
    if failing in ("one", "three"):
        expectations[0]["kwargs"]["max_value"] = 3
    if failing == "three":
        expectations[12]["kwargs"]["value_set"] = list("abcd")
        expectations[16] = {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "maybe"},
        }
    if failing == "half":
        expectations[0]["kwargs"]["max_value"] = 0
    meta = {"datagate": {"id_columns": ["id"]}} if ids else {}
    text = json.dumps({"name": "bench", "expectations": expectations, "meta": meta})
    return parse_suite("bench", text, "inline")


def timed(action: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def frame_path(rows: int, repeats: int) -> None:
    frame = synthetic_frame(rows)
    print(f"\n### DataFrame, {rows:,} rows x {frame.shape[1]} columns (median of {repeats})\n")
    print(
        "| failing expectations | unexpected rows | suite (s) | rows kept "
        "| + failing rows (s) | added |"
    )
    print("|---|---|---|---|---|---|")
    run_suite(frame.head(1000), suite("one", ids=False), sample_values=20)  # warm GE up
    for failing in ("none", "one", "three", "half"):
        for ids in (False, True):
            loaded = suite(failing, ids=ids)
            checks = run_suite(frame, loaded, sample_values=20)
            base = timed(lambda: run_suite(frame, loaded, sample_values=20), repeats)  # noqa: B023
            with tempfile.TemporaryDirectory() as folder:

                def keep(checks: list[Any] = checks, loaded: LoadedSuite = loaded) -> None:
                    for check in checks:
                        check.details.pop("failing_rows", None)
                    keep_frame_rows(frame, loaded, checks, Path(folder), limit=10_000)

                extra = timed(keep, repeats)
            kept = [c.details["failing_rows"] for c in checks if "failing_rows" in c.details]
            unexpected = sum(int(i["total"]) for i in kept)
            rows_kept = sum(int(i["rows"]) for i in kept)
            label = f"{failing}{' (id_columns)' if ids else ''}"
            print(
                f"| {label} | {unexpected:,} | {base:.2f} | {rows_kept:,} | {extra:.2f} | "
                f"{100 * extra / base:.0f}% |"
            )


def sql_path(rows: int, repeats: int) -> None:
    """The suite in SQLite with failing rows on; the time spent listing and writing the rows is
    read inside the run (keep_sql_rows wrapped), so that it is not the difference of two noisy
    whole runs."""
    from app.checks import sql_engine
    from app.ingest.references import BatchReference, resolve_reference
    from tests.conftest import make_settings

    spent: list[float] = []
    keep = sql_engine.keep_sql_rows

    def timed_keep(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        keep(*args, **kwargs)
        spent.append(time.perf_counter() - started)

    sql_engine.keep_sql_rows = timed_keep  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as root:
        url = f"sqlite:///{root}/bench.db"
        engine = sa.create_engine(url)
        frame = synthetic_frame(rows)
        with engine.begin() as conn:
            frame.to_sql("features", conn, index=False, chunksize=100_000)
        engine.dispose()
        settings = make_settings(Path(root), connections={"warehouse": url})
        resolved = resolve_reference(
            BatchReference.model_validate({"connection": "warehouse", "table": "features"}),
            settings,
        )
        print(f"\n### SQLite table, {rows:,} rows (median of {repeats})\n")
        print("| failing expectations | whole run (s) | of which failing rows (s) | added |")
        print("|---|---|---|---|")
        for failing in ("one", "three", "half"):
            loaded = suite(failing, ids=True)
            totals, extras = [], []
            for _ in range(repeats):
                spent.clear()
                started = time.perf_counter()
                sql_engine.validate_sql_batch(
                    resolved,
                    loaded,
                    settings,
                    sample_values=20,
                    rows_folder=Path(root) / "rows",
                    max_failing_rows=10_000,
                )
                totals.append(time.perf_counter() - started)
                extras.append(sum(spent))
            total, extra = statistics.median(totals), statistics.median(extras)
            share = 100 * extra / (total - extra)
            print(f"| {failing} | {total:.2f} | {extra:.2f} | {share:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sql-repeats", type=int, default=1)
    parser.add_argument("--skip-sql", action="store_true")
    parser.add_argument("--skip-frame", action="store_true")
    args = parser.parse_args()
    np.random.seed(7)
    pd.set_option("display.width", 200)
    if not args.skip_frame:
        frame_path(args.rows, args.repeats)
    if not args.skip_sql:
        sql_path(args.rows, args.sql_repeats)


if __name__ == "__main__":
    main()
