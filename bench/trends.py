"""The dataset page and its JSON with 10,000 stored runs of one dataset (issue 16, item 3).

Stores `--runs` realistic reports (20 columns with profiles, a null check and a range check
per column, FeatureDrift per column, a row-count check) straight into a fresh store with bulk
inserts (reports and their figures, as ReportStore.save writes them), then starts
`datagate serve` on it and times the pages and JSON through HTTP.

    .venv/bin/python -m bench.trends                 # SQLite, 10,000 runs
    .venv/bin/python -m bench.trends --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from sqlalchemy import delete, insert

from app.core.db import MetricRow, ReportRow, make_engine, make_sessionmaker, migrate
from app.reports.model import (
    CheckResult,
    ColumnInfo,
    ColumnProfile,
    DatasetInfo,
    DatasetProfile,
    HistogramBin,
    Report,
    SuiteInfo,
    summarise,
)
from app.reports.run_metrics import report_metrics
from app.reports.store import report_row
from bench.common import REPO, running_server

DATASET = "warehouse/orders daily.parquet"
COLUMNS = [f"num_{i}" for i in range(16)] + [f"cat_{i}" for i in range(4)]
BATCH = 500


def make_report(index: int, start: datetime, rng: np.random.Generator) -> Report:
    """Run `index` of the dataset: a slow trend in num_0's nulls, a drift episode on num_1."""
    rows = int(rng.integers(90_000, 110_000))
    checks: list[CheckResult] = []
    columns: list[ColumnInfo] = []
    profiles: list[ColumnProfile] = []
    for name in COLUMNS:
        numeric = name.startswith("num")
        null_share = float(rng.uniform(0, 0.004)) + (index / 200_000 if name == "num_0" else 0)
        nulls = int(rows * null_share)
        columns.append(
            ColumnInfo(name=name, dtype="float64" if numeric else "object", null_count=nulls)
        )
        fails = null_share > 0.01
        checks.append(
            CheckResult(
                source="great_expectations",
                category="missing",
                name="expect_column_values_to_not_be_null",
                column=name,
                success=not fails,
                outcome="failed" if fails else "passed",
                observed={"unexpected_count": nulls, "unexpected_percent": null_share * 100},
                expected={"column": name, "mostly": 0.99},
            )
        )
        if numeric:
            out = float(rng.uniform(0, 0.002))
            checks.append(
                CheckResult(
                    source="great_expectations",
                    category="range",
                    name="expect_column_values_to_be_between",
                    column=name,
                    success=True,
                    outcome="passed",
                    observed={"unexpected_count": int(rows * out), "unexpected_percent": out * 100},
                    expected={"column": name, "min_value": -10, "max_value": 50, "mostly": 0.99},
                )
            )
            score = float(rng.uniform(0, 0.06)) + (
                0.2 if name == "num_1" and 4000 < index < 4300 else 0
            )
            checks.append(
                CheckResult(
                    source="deepchecks",
                    category="drift",
                    name="FeatureDrift",
                    column=name,
                    success=score <= 0.1,
                    outcome="passed" if score <= 0.1 else "failed",
                    observed={"drift_score": score, "method": "Wasserstein"},
                    expected={"max_feature_drift": 0.1},
                )
            )
            mean = float(rng.normal(5, 0.1))
            profiles.append(
                ColumnProfile(
                    name=name,
                    kind="number",
                    count=rows,
                    nulls=nulls,
                    distinct=rows - nulls,
                    distinct_exact=False,
                    min=mean - 4,
                    max=mean + 4,
                    mean=mean,
                    std=1.0,
                    quantiles={"p01": mean - 2.3, "p50": mean, "p99": mean + 2.3},
                    histogram=[
                        HistogramBin(low=mean - 4 + b, high=mean - 3 + b, count=rows // 8)
                        for b in range(8)
                    ],
                )
            )
        else:
            profiles.append(
                ColumnProfile(name=name, kind="string", count=rows, nulls=nulls, distinct=5)
            )
    checks.append(
        CheckResult(
            source="great_expectations",
            category="volume",
            name="expect_table_row_count_to_be_between",
            success=True,
            outcome="passed",
            observed={"observed_value": rows},
            expected={"min_value": 1000},
        )
    )
    status, summary = summarise(checks)
    return Report(
        id=uuid.uuid4().hex,
        status=status,
        success=status == "passed",
        created_at=start + timedelta(hours=index),
        duration_ms=int(rng.integers(800, 3000)),
        dataset=DatasetInfo(name=DATASET, format="parquet", rows=rows, columns=columns),
        suite=SuiteInfo(name="orders", sha256="0" * 64, expectations=37),
        summary=summary,
        checks=checks,
        profiles={"data": DatasetProfile(rows=rows, columns=profiles)},
    )


def fill(database_url: str, runs: int) -> tuple[float, int]:
    """Bulk-insert `runs` reports and their figures; returns seconds taken and figure rows."""
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    rng = np.random.default_rng(16)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    began, figures = time.perf_counter(), 0
    with sessions.begin() as session:  # a rerun on the same database starts over
        session.execute(delete(MetricRow).where(MetricRow.dataset_name == DATASET))
        session.execute(delete(ReportRow).where(ReportRow.dataset_name == DATASET))
    for first in range(0, runs, BATCH):
        reports = [make_report(i, start, rng) for i in range(first, min(first + BATCH, runs))]
        report_rows: list[dict[str, Any]] = []
        metric_rows: list[dict[str, Any]] = []
        for report in reports:
            row = report_row(report)
            report_rows.append({c.key: getattr(row, c.key) for c in ReportRow.__table__.columns})
            for m in report_metrics(report):
                metric_rows.append(
                    {
                        "report_id": report.id,
                        "dataset_name": report.dataset.name,
                        "created_at": report.created_at,
                        "metric": m.metric,
                        "subject": m.subject,
                        "value": m.value,
                        "threshold": m.threshold,
                        "outcome": m.outcome,
                    }
                )
        with sessions.begin() as session:
            session.execute(insert(ReportRow), report_rows)
            session.execute(insert(MetricRow), metric_rows)
        figures += len(metric_rows)
    with engine.begin() as connection:  # planner statistics, as autovacuum would gather them
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - began, figures


def timed(client: httpx.Client, url: str, repeat: int) -> tuple[float, float, int]:
    """Median and worst seconds of `repeat` GETs (after one warm-up), and the body's bytes."""
    client.get(url).raise_for_status()
    seconds, size = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - began)
        response.raise_for_status()
        size = len(response.content)
    return statistics.median(seconds), max(seconds), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the runs a previous run stored at that URL"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-trends-"))
    try:
        shutil.copytree(REPO / "expectations", workdir / "expectations")
        (workdir / "data").mkdir()
        url = args.database_url or f"sqlite:///{workdir / 'data' / 'datagate.db'}"
        took, figures = (0.0, 0) if args.reuse else fill(url, args.runs)
        print(
            f"stored {args.runs:,} reports and {figures:,} figures in {took:.1f} s "
            f"({url.split(':')[0]})"
        )
        env = {"DATAGATE_DATABASE_URL": url} if args.database_url else {}
        with (
            running_server(workdir, ready_within_s=300, **env) as (base, _),
            httpx.Client(base_url=base, timeout=60) as client,
        ):
            name = quote(DATASET, safe="")
            latest = client.get(f"/v1/datasets/{name}/trends", params={"limit": 2}).json()[
                "verdicts"
            ]
            a, b = latest[0]["report_id"], latest[1]["report_id"]
            for label, path in (
                ("dataset page (500 runs, default)", f"/datasets/{name}"),
                ("trends JSON (500 runs, default)", f"/v1/datasets/{name}/trends"),
                ("dataset page (limit=2000, max)", f"/datasets/{name}?limit=2000"),
                ("trends JSON (limit=2000, max)", f"/v1/datasets/{name}/trends?limit=2000"),
                ("report page (with previous-run lookup)", f"/reports/{b}"),
                ("compare page", f"/reports/{a}/compare/{b}"),
                ("compare JSON", f"/v1/reports/{a}/compare/{b}"),
            ):
                median, worst, size = timed(client, path, args.repeat)
                print(
                    f"{label:42s} median {median * 1000:7.1f} ms  "
                    f"worst {worst * 1000:7.1f} ms  {size / 1024:8.1f} KiB"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
