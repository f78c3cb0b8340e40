"""Exact set-based leakage checks (issue 12): what they cost, and what sampling hid.

Usage (by hand; each part stays under ~5 minutes on the 2-core machine):
  uv run python -m bench.exact_leakage scenario [--rows 1000000] [--before <commit>]
      [--engines before,after]
  uv run python -m bench.exact_leakage clean [--rows 1000000]
  uv run python -m bench.exact_leakage speedup [--rows 100000]
  uv run python -m bench.exact_leakage big [--rows 10000000] [--folder DIR]
  uv run python -m bench.exact_leakage sql [--rows 1000000] [--paths database,stream,across]
      (PostgreSQL on 127.0.0.1:5432)

`scenario`: the issue's contaminated pair (12 columns; 10% copied rows, 5% shared ids, 1%
look-ahead dates, 20 rows of a new category), every deepchecks check, timed in-process and
through the service (both files uploaded as Parquet), once with the engine of `--before` (default:
the commit this branch started from, exported with `git archive` into a temporary folder) and once
with this tree. `speedup`: the exact TrainTestSamplesMix against deepchecks' own check run on every
row. `sql`: the contaminated pair as two PostgreSQL tables, the exact checks run in the database,
then with the data streamed in chunks past the reference held in memory (as a file's would be),
then `across`: the data as a SQLite table and the reference on PostgreSQL, two connections, both
streamed; each in a fresh worker-like process (time, peak RSS). `clean`: the clean pair with rare
reference categories, exact checks only: nothing may fail. `big`: the contaminated pair written
as two Parquet files and validated as file references (`{"uri": ...}` under DATAGATE_DATA_ROOTS)
by a real `datagate serve` with one worker: time of the request and peak memory of the worker
against the two frames' in-memory size. Prints Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from bench.common import REPO

BASE_COMMIT = "74c0d54"

# Run inside each tree (this one or the exported baseline): the engine in-process, then the
# service, on the Parquet pair written once. Prints one JSON line.
_MEASURE = r"""
import json, sys, time, warnings
from pathlib import Path
import pandas as pd
warnings.simplefilter("ignore")
from app.checks.deepchecks_engine import DeepchecksSettings, run_deepchecks
from app.checks.roles import ColumnRoles
from bench.leakage_drift_path import service

folder = Path(sys.argv[1])
reference = pd.read_parquet(folder / "reference.parquet")
data = pd.read_parquet(folder / "data.parquet")
roles = ColumnRoles(label="label", datetime="day", index="id", categorical=["cat_0", "cat_1"])
settings = DeepchecksSettings()
run_deepchecks(data.head(500), reference.head(500), roles, settings)
started = time.perf_counter()
outcome = run_deepchecks(data, reference, roles, settings)
seconds = time.perf_counter() - started
rows = {}
for row in outcome.checks:
    if row.name in ("TrainTestSamplesMix", "IndexTrainTestLeakage", "DateTrainTestLeakageOverlap",
                    "DateTrainTestLeakageDuplicates") or (
                    row.name == "NewCategoryTrainTest" and row.column == "cat_0"):
        rows[row.name] = {"outcome": row.outcome, "observed": row.observed,
                          "method": row.details.get("method", "sampled")}
service_seconds, peak = (
    service(folder / "service", reference, data) if sys.argv[2] == "service" else (0.0, 0.0)
)
print(json.dumps({"seconds": seconds, "durations_ms": outcome.durations_ms, "rows": rows,
                  "service_seconds": service_seconds, "service_peak_mib": peak}))
"""

EXACT = (
    "TrainTestSamplesMix",
    "IndexTrainTestLeakage",
    "DateTrainTestLeakageOverlap",
    "DateTrainTestLeakageDuplicates",
    "NewCategoryTrainTest",
    "NewLabelTrainTest",
    "StringMismatchComparison",
    "DataDuplicates",
    "ConflictingLabels",
    "IsSingleValue",
    "MixedDataTypes",
    "MixedNulls",
)


def _measure(tree: Path, folder: Path, with_service: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(folder), "service" if with_service else "-"],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {tree} engine failed:\n{done.stderr[-3000:]}")
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def scenario(rows: int, before: str, engines: tuple[str, ...], with_service: bool) -> None:
    from tests.checks.leakage_scenario import contaminated_pair

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference, data, truth = contaminated_pair(rows)
        reference.to_parquet(folder / "reference.parquet", index=False)
        data.to_parquet(folder / "data.parquet", index=False)
        del reference, data
        baseline = folder / "before"
        baseline.mkdir()
        archive = subprocess.run(
            ["git", "archive", before, "app", "bench", "expectations", "pyproject.toml"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        trees = {f"before ({before})": baseline, "after (exact)": REPO}
        results = {
            name: _measure(tree, folder, with_service)
            for name, tree in trees.items()
            if name.split()[0] in engines
        }
    print(f"truth: {truth}\n")
    print("| engine | in-process s | exact checks s (share) | service s | service peak MiB |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        exact_ms = sum(ms for check, ms in result["durations_ms"].items() if check in EXACT)
        share = exact_ms / 1000 / result["seconds"]
        print(
            f"| {name} | {result['seconds']:.1f} | {exact_ms / 1000:.1f} ({share:.0%}) | "
            f"{result['service_seconds']:.1f} | {result['service_peak_mib']:.0f} |"
        )
    print("\n| engine | check | outcome | method | observed |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        for check, row in result["rows"].items():
            observed = json.dumps(row["observed"])[:120]
            print(f"| {name} | {check} | {row['outcome']} | {row['method']} | `{observed}` |")
    print("\nper-check ms:")
    for name, result in results.items():
        print(f"- {name}: {json.dumps(result['durations_ms'])}")


def clean(rows: int) -> None:
    """The clean pair (rare reference categories in the data, nothing shared): no set check
    may fail, at the full size."""
    from app.checks.deepchecks_engine import DeepchecksSettings, run_deepchecks
    from tests.checks.leakage_scenario import ROLES, clean_pair

    reference, data = clean_pair(rows)
    settings = DeepchecksSettings(checks=list(EXACT))
    started = time.perf_counter()
    outcome = run_deepchecks(data, reference, ROLES, settings)
    seconds = time.perf_counter() - started
    not_passed = [(r.name, r.column, r.outcome) for r in outcome.checks if r.outcome != "passed"]
    methods = sorted({str(r.details.get("method")) for r in outcome.checks})
    print(
        f"clean {rows:,} + {rows:,}: {len(outcome.checks)} rows in {seconds:.1f} s, methods "
        f"{methods}, not passed: {not_passed or 'none'}"
    )
    print(f"per-check ms: {json.dumps(outcome.durations_ms)}")


def speedup(rows: int) -> None:
    from deepchecks.tabular import Dataset, checks

    from app.checks.exact_checks import ExactInputs, samples_mix
    from tests.checks.leakage_scenario import FEATURES, contaminated_pair

    reference, data, truth = contaminated_pair(rows)
    inputs = ExactInputs(data, reference, FEATURES, ["cat_0", "cat_1"], "label", "id", "day")
    started = time.perf_counter()
    exact = samples_mix(inputs, 0.05)
    exact_s = time.perf_counter() - started

    def dataset(frame: Any) -> Any:
        return Dataset(frame, label="label", features=FEATURES, cat_features=["cat_0", "cat_1"])

    check = checks.TrainTestSamplesMix(n_samples=10**9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, test = dataset(reference), dataset(data)
        started = time.perf_counter()
        theirs = check.run(train, test, with_display=False)
        theirs_s = time.perf_counter() - started
    print(
        "| rows (each) | exact s | deepchecks unsampled s | speed-up | ratio exact / deepchecks |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {rows:,} | {exact_s:.2f} | {theirs_s:.1f} | {theirs_s / exact_s:.0f}x | "
        f"{exact.value['ratio']:.4f} / {theirs.value['ratio']:.4f} (truth {truth.samples_mix}) |"
    )


def big(rows: int, folder: Path | None) -> None:
    import httpx

    from bench.common import peak_rss_parts_mib, running_server
    from tests.checks.leakage_scenario import ROLES, contaminated_pair

    with tempfile.TemporaryDirectory() as tmp:
        files = folder or Path(tmp)
        files.mkdir(parents=True, exist_ok=True)
        sizes = files / f"sizes-{rows}.json"
        if not sizes.exists():
            reference, data, truth = contaminated_pair(rows)
            reference.to_parquet(files / "reference.parquet", index=False)
            data.to_parquet(files / "data.parquet", index=False)
            frames = {
                "reference_mib": reference.memory_usage(deep=True).sum() / 2**20,
                "data_mib": data.memory_usage(deep=True).sum() / 2**20,
                "truth": truth.__dict__,
            }
            sizes.write_text(json.dumps(frames))
            del reference, data
        frames = json.loads(sizes.read_text())
        work = Path(tmp) / "server"
        (work / "expectations").mkdir(parents=True)
        (work / "expectations" / "empty.json").write_text(
            json.dumps({"name": "empty", "expectations": []})
        )
        body = {
            "data": {"uri": f"file://{files / 'data.parquet'}"},
            "reference": {"uri": f"file://{files / 'reference.parquet'}"},
            "suite": "empty",
            "label": ROLES.label,
            "datetime": ROLES.datetime,
            "index": ROLES.index,
            "categorical": ROLES.categorical,
        }
        with (
            running_server(
                work,
                DATAGATE_WORKERS="1",
                DATAGATE_DATA_ROOTS=str(files),
                DATAGATE_MAX_ROWS=str(max(rows, 10_000_000)),
                DATAGATE_MAX_DECODED_BYTES=str(64 * 1024**3),
                DATAGATE_JOB_TIMEOUT_S="3600",
            ) as (url, process),
            httpx.Client(timeout=7200) as client,
        ):
            started = time.perf_counter()
            response = client.post(f"{url}/v1/validations", json=body)
            seconds = time.perf_counter() - started
            api_mib, worker_mib = peak_rss_parts_mib(process.pid)
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text[:2000]}")
    report = response.json()
    both = frames["reference_mib"] + frames["data_mib"]
    print(f"truth: {frames['truth']}\n")
    print(
        "| rows (each) | frames MiB (reference + data) | request s | worker peak MiB | "
        "worker peak / frames | API peak MiB | verdict |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {rows:,} | {both:,.0f} ({frames['reference_mib']:,.0f} + {frames['data_mib']:,.0f}) "
        f"| {seconds:.1f} | {worker_mib:,.0f} | {worker_mib / both:.2f} | {api_mib:,.0f} | "
        f"{report['status']} |"
    )
    print("\n| check | column | outcome | method | observed |")
    print("|---|---|---|---|---|")
    for row in report["checks"]:
        if row["name"] in EXACT[:5] and row["outcome"] != "passed":
            method = (row.get("details") or {}).get("method")
            observed = json.dumps(row.get("observed"))[:100]
            print(
                f"| {row['name']} | {row.get('column')} | {row['outcome']} | {method} | "
                f"`{observed}` |"
            )


# Run in a fresh process, the worker's part of a run whose data and reference are SQL tables: on
# one PostgreSQL connection (the exact checks in the database); the data streamed past the
# reference held in memory; or (`across`) the data on a SQLite file and the reference on
# PostgreSQL, two connections, both streamed. Against a 1,000-row sample for the roles (the
# frames the engine holds of a SQL batch). Prints one JSON line.
_IN_DATABASE = r"""
import json, sys, time
import pandas as pd
import sqlalchemy as sa
from app.checks.exact_checks import ExactInputs
from app.checks.exact_sql import DATA_ALONE, TRAIN_TEST, SqlBatch, SqlExactChecks
from app.ingest.references import BatchReference
from app.ingest.sql_safety import read_only_url
from bench.common import own_peak_rss_mib
from tests.checks.leakage_scenario import FEATURES

url, where = sys.argv[1], sys.argv[2]
data_url = read_only_url(sys.argv[3], "lite") if where == "across" else url
engine, data_engine = sa.create_engine(url), sa.create_engine(data_url)
with data_engine.connect() as conn:
    sample = pd.read_sql(sa.text("select * from test_rows limit 1000"), conn)
with engine.connect() as conn:
    reference = pd.read_sql(sa.text("select * from train_rows"), conn) if where == "stream" else (
        pd.read_sql(sa.text("select * from train_rows limit 1000"), conn))
data = sample
engine.dispose()
data_engine.dispose()
columns = list(sample.columns)
def batch(table, field, at, name):
    return SqlBatch(BatchReference(connection=name, table=table), columns, at, field)
loaded_mib = own_peak_rss_mib()
data_batch = batch("test_rows", "data", data_url, "lite" if where == "across" else "bench")
checks = SqlExactChecks(data_batch, None if where == "stream" else (
    batch("train_rows", "reference", url, "bench")), 600)
inputs = ExactInputs(data, reference, FEATURES, ["cat_0", "cat_1"], "label", "id", "day")
limits = {"TrainTestSamplesMix": 0.05}
out = {}
started = time.perf_counter()
for name in (*TRAIN_TEST, *DATA_ALONE):
    began = time.perf_counter()
    run = checks.run(name, inputs, limits.get(name, 0.0))
    value = run.result.value
    if name == "NewCategoryTrainTest":
        value = float(value.loc["cat_0", "Ratio of New Categories"])
    elif name == "TrainTestSamplesMix":
        value = value["ratio"]
    elif name == "ConflictingLabels":
        value = value["percent_of_conflicting_samples"]
    elif name == "IsSingleValue":
        value = min(value.values())
    out[name] = {"value": value, "passed": run.result.passed, "where": run.where,
                 "rows_used": run.rows_used, "s": round(time.perf_counter() - began, 2)}
checks.close()
print(json.dumps({"seconds": time.perf_counter() - started, "peak_mib": own_peak_rss_mib(),
                  "loaded_mib": loaded_mib, "checks": out}))
"""


def sql(rows: int, paths: tuple[str, ...]) -> None:
    """The contaminated pair as two PostgreSQL tables: the exact checks in the database, and
    streamed (the reference held whole as a file's would be, the data in chunks); and
    `across`: the data as a SQLite table, the reference on PostgreSQL, both streamed."""
    import io
    import os

    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from bench.bench_sql import bench_database
    from tests.checks.leakage_scenario import contaminated_pair

    reference, data, truth = contaminated_pair(rows)
    with bench_database() as url:
        started = time.perf_counter()
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo) as conn:
            for table, frame in (("train_rows", reference), ("test_rows", data)):
                empty = sa.create_engine(url)
                frame.head(0).to_sql(table, empty, index=False)
                empty.dispose()
                buffer = io.StringIO()
                frame.to_csv(buffer, index=False, header=False)
                with conn.cursor().copy(f"COPY {table} FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buffer.getvalue())
                conn.execute(f"ANALYZE {table}")
        load_s = time.perf_counter() - started
        print(f"loaded {rows:,} + {rows:,} rows in {load_s:.0f} s", file=sys.stderr)
        lite = Path(tempfile.mkdtemp(prefix="datagate-bench-")) / "test.db"
        if "across" in paths:
            started = time.perf_counter()
            writer = sa.create_engine(f"sqlite:///{lite}")
            data.to_sql("test_rows", writer, index=False, chunksize=50_000)
            writer.dispose()
            lite_s = time.perf_counter() - started
            print(f"wrote {rows:,} data rows to SQLite in {lite_s:.0f} s", file=sys.stderr)
        del reference, data
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        print(
            "| path | rows (each) | s (train-test checks s) | worker peak MiB (frames held) | "
            "samples mix | index | date overlap | new category | duplicates |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for where in paths:
            line = (
                subprocess.run(
                    [sys.executable, "-c", _IN_DATABASE, url, where, f"sqlite:///{lite}"],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=REPO,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            result = json.loads(line)
            checks = result["checks"]
            for name, row in checks.items():
                print(f"<!-- {where} {name}: {row} -->", file=sys.stderr)
            train_test_s = sum(row["s"] for name, row in checks.items() if name in EXACT[:6])
            print(
                f"| {where} | {rows:,} | {result['seconds']:.1f} ({train_test_s:.1f}) | "
                f"{result['peak_mib']:.0f} "
                f"({result['loaded_mib']:.0f} before the checks) | "
                f"{checks['TrainTestSamplesMix']['value']:.4f} ({truth.samples_mix}) | "
                f"{checks['IndexTrainTestLeakage']['value']:.4f} ({truth.index_leakage}) | "
                f"{checks['DateTrainTestLeakageOverlap']['value']:.4f} ({truth.date_leakage}) | "
                f"{checks['NewCategoryTrainTest']['value']:.6f} ({truth.new_category_ratio}) | "
                f"{checks['DataDuplicates']['value']:.4f} |"
            )
        shutil.rmtree(lite.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["scenario", "clean", "speedup", "big", "sql"])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--before", default=BASE_COMMIT)
    parser.add_argument("--no-service", action="store_true", help="in-process only")
    parser.add_argument("--folder", type=Path, default=None, help="big: keep the files here")
    parser.add_argument(
        "--engines", default="before,after", help="before, after or both: one run each"
    )
    parser.add_argument(
        "--paths", default="database,stream,across", help="sql: database, stream and/or across"
    )
    args = parser.parse_args()
    if args.part == "scenario":
        scenario(
            args.rows or 1_000_000, args.before, tuple(args.engines.split(",")), not args.no_service
        )
    elif args.part == "big":
        big(args.rows or 10_000_000, args.folder)
    elif args.part == "clean":
        clean(args.rows or 1_000_000)
    elif args.part == "sql":
        sql(args.rows or 1_000_000, tuple(args.paths.split(",")))
    else:
        speedup(args.rows or 100_000)


if __name__ == "__main__":
    main()
