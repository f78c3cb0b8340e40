"""Great Expectations in-process against the whole service path (upload, parse, validate, store).

Usage: uv run python -m bench.service_path [--sizes 10000,100000,1000000]
Prints one Markdown table row per measurement, for bench/RESULTS.md.

Three timings on the same frame and suite:
- "GE": plain Great Expectations 1.x as a pipeline would call it in-process: an ephemeral
  context (progress bars off), a pandas data source, one whole-dataframe batch,
  `batch.validate(suite)` with the SUMMARY result format. No datagate code.
- "engine": datagate's `run_suite` in-process, the GE engine as the service's worker runs it
  (column expectations on their own columns, no batch fingerprint).
- "service": one HTTP request to a real `datagate serve`: upload, parse, validate, store, respond.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
from great_expectations.execution_engine import pandas_execution_engine

from app.checks.expectations import parse_suite, run_suite
from bench.common import (
    own_peak_rss_mib,
    peak_rss_parts_mib,
    running_server,
    suite_for,
    synthetic_frame,
)

# GE's own default, read before datagate's engine sets it to 0 in this process.
GE_HASH_THRESHOLD = pandas_execution_engine.HASH_THRESHOLD


def plain_great_expectations(frame: pd.DataFrame, suite_json: dict) -> float:  # type: ignore[type-arg]
    """Seconds for plain GE 1.x to validate `frame` in-process, after a warm-up on 100 rows."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    saved = pandas_execution_engine.HASH_THRESHOLD
    pandas_execution_engine.HASH_THRESHOLD = GE_HASH_THRESHOLD
    try:
        context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            ),
        )
        batches = (
            context.data_sources.add_pandas("plain")
            .add_dataframe_asset("frame")
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = gx.ExpectationSuite(name="plain", expectations=suite_json["expectations"])
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
        batches.get_batch(batch_parameters={"dataframe": frame.head(100)}).validate(
            suite, result_format=result_format
        )
        started = time.perf_counter()
        batch = batches.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format=result_format)
        elapsed = time.perf_counter() - started
    finally:
        pandas_execution_engine.HASH_THRESHOLD = saved
    assert result.success, [r.expectation_config.type for r in result.results if not r.success]
    return elapsed


def in_process(frame: pd.DataFrame, suite_json: dict) -> float:  # type: ignore[type-arg]
    suite = parse_suite("bench", json.dumps(suite_json), origin="inline")
    run_suite(frame.head(100), suite, sample_values=20)  # warm-up: imports, context
    started = time.perf_counter()
    rows = run_suite(frame, suite, sample_values=20)
    elapsed = time.perf_counter() - started
    assert all(r.success for r in rows), [r for r in rows if not r.success]
    return elapsed


def service(
    path: Path,
    workdir: Path,
    suite_json: dict,  # type: ignore[type-arg]
) -> tuple[float, tuple[float, float]]:
    (workdir / "expectations").mkdir(parents=True, exist_ok=True)
    (workdir / "expectations" / "bench.json").write_text(json.dumps(suite_json))
    warm = workdir / f"warm{path.suffix}"
    if path.suffix == ".parquet":
        pd.read_parquet(path).head(100).to_parquet(warm)
    else:
        pd.read_csv(path, nrows=100).to_csv(warm, index=False)
    with running_server(workdir, DATAGATE_WORKERS="1") as (url, process):
        # One small request first: the timed one then measures the path, not the first call.
        warm_up = httpx.post(
            f"{url}/v1/validations",
            files={"data": (warm.name, warm.read_bytes())},
            data={"suite": "bench"},
            timeout=600,
        )
        assert warm_up.status_code == 200, warm_up.text[:500]
        started = time.perf_counter()
        with path.open("rb") as handle:
            response = httpx.post(
                f"{url}/v1/validations",
                files={"data": (path.name, handle)},
                data={"suite": "bench"},
                timeout=3600,
            )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text[:500]
        assert response.json()["status"] == "passed", response.text[:2000]
        memory = peak_rss_parts_mib(process.pid)
    return elapsed, memory


def small_csv_latency(workdir: Path, requests: int = 60) -> float:
    frame = synthetic_frame(1000)
    suite = suite_for(frame, size=10)
    (workdir / "expectations").mkdir(parents=True, exist_ok=True)
    (workdir / "expectations" / "small.json").write_text(json.dumps(suite))
    body = frame.to_csv(index=False).encode()
    timings = []
    with running_server(workdir) as (url, _), httpx.Client(timeout=60) as client:
        for i in range(requests + 10):
            started = time.perf_counter()
            response = client.post(
                f"{url}/v1/validations", files={"data": ("s.csv", body)}, data={"suite": "small"}
            )
            assert response.status_code == 200, response.text[:300]
            if i >= 10:  # the first ten warm up the workers
                timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--formats", default="parquet,csv")
    args = parser.parse_args()
    print(
        "| rows | format | file MiB | frame MiB | GE s | engine s | service s | service / GE | "
        "service rows/s | service peak MiB (API + worker) | peak / frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for rows in [int(s) for s in args.sizes.split(",")]:
        frame = synthetic_frame(rows)
        suite = suite_for(frame)
        frame_mib = frame.memory_usage(deep=True).sum() / 2**20
        ge_seconds = plain_great_expectations(frame, suite)
        engine_seconds = in_process(frame, suite)
        for fmt in args.formats.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                workdir = Path(tmp)
                path = workdir / f"data.{fmt}"
                if fmt == "parquet":
                    frame.to_parquet(path)
                else:
                    frame.to_csv(path, index=False)
                seconds, (api, workers) = service(path, workdir, suite)
                peak = api + workers
                print(
                    f"| {rows:,} | {fmt} | {path.stat().st_size / 2**20:.1f} | {frame_mib:.0f} | "
                    f"{ge_seconds:.2f} | {engine_seconds:.2f} | {seconds:.2f} | "
                    f"{seconds / ge_seconds:.2f} | {rows / seconds:,.0f} | "
                    f"{peak:.0f} ({api:.0f} + {workers:.0f}) | {peak / frame_mib:.1f} |",
                    flush=True,
                )
    with tempfile.TemporaryDirectory() as tmp:
        median = small_csv_latency(Path(tmp))
    print(f"\n1,000-row CSV, 10 expectations, median of 60 after warm-up: {median * 1000:.0f} ms")
    print(f"(bench process peak {own_peak_rss_mib():.0f} MiB)")


if __name__ == "__main__":
    main()
