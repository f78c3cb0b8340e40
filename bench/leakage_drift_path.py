"""deepchecks in-process against the whole service path with a reference (upload both, parse,
run the suite-less leakage/drift checks, store, respond).

Usage: uv run python -m bench.leakage_drift_path [--sizes 10000,100000,1000000]
Prints Markdown table rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import httpx

from app.checks.deepchecks_engine import DeepchecksSettings, run_deepchecks
from app.checks.roles import ColumnRoles
from bench.bench_deepchecks import synthetic_pair
from bench.common import peak_rss_mib, running_server

ROLES = {"label": "label", "datetime": "day", "index": "id"}
EMPTY_SUITE = {"name": "empty", "expectations": [], "meta": {}}


def in_process(reference, data) -> float:  # type: ignore[no-untyped-def]
    roles = ColumnRoles(**ROLES)
    settings = DeepchecksSettings()
    run_deepchecks(data.head(500), reference.head(500), roles, settings)  # warm-up
    started = time.perf_counter()
    run_deepchecks(data, reference, roles, settings)
    return time.perf_counter() - started


def service(workdir: Path, reference, data) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    (workdir / "expectations").mkdir(parents=True, exist_ok=True)
    (workdir / "expectations" / "empty.json").write_text(json.dumps(EMPTY_SUITE))
    ref_path, data_path = workdir / "reference.parquet", workdir / "data.parquet"
    reference.to_parquet(ref_path, index=False)
    data.to_parquet(data_path, index=False)
    fields = {"suite": "empty", **ROLES}
    with (
        running_server(workdir, DATAGATE_WORKERS="1") as (url, process),
        httpx.Client(timeout=3600) as client,
    ):
        warm = client.post(
            f"{url}/v1/validations",
            files={
                "data": ("d.csv", data.head(500).to_csv(index=False)),
                "reference": ("r.csv", reference.head(500).to_csv(index=False)),
            },
            data=fields,
        )
        assert warm.status_code == 200, warm.text[:300]
        started = time.perf_counter()
        with data_path.open("rb") as d, ref_path.open("rb") as r:
            response = client.post(
                f"{url}/v1/validations",
                files={"data": ("data.parquet", d), "reference": ("reference.parquet", r)},
                data=fields,
            )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text[:500]
        memory = peak_rss_mib(process.pid)
    return elapsed, memory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    print(
        "| rows (each) | in-process deepchecks s | service s | ratio | service peak MiB "
        "(server + worker) |"
    )
    print("|---|---|---|---|---|")
    for rows in [int(s) for s in args.sizes.split(",")]:
        reference, data = synthetic_pair(rows)
        engine = in_process(reference, data)
        with tempfile.TemporaryDirectory() as tmp:
            seconds, peak = service(Path(tmp), reference, data)
        print(
            f"| {rows:,} | {engine:.1f} | {seconds:.1f} | {seconds / engine:.2f} | {peak:.0f} |",
            flush=True,
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(bench process peak, in-process runs: {own:.0f} MiB)")


if __name__ == "__main__":
    main()
