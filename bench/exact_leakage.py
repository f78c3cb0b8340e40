"""Exact set-based leakage checks (issue 12): what they cost, and what sampling hid.

Usage (by hand; each part stays under ~5 minutes on the 2-core machine):
  uv run python -m bench.exact_leakage scenario [--rows 1000000] [--before <commit>]
  uv run python -m bench.exact_leakage clean [--rows 1000000]
  uv run python -m bench.exact_leakage speedup [--rows 100000]

`scenario`: the issue's contaminated pair (12 columns; 10% copied rows, 5% shared ids, 1%
look-ahead dates, 20 rows of a new category), every deepchecks check, timed in-process and
through the service (both files uploaded as Parquet), once with the engine of `--before` (default:
the commit this branch started from, exported with `git archive` into a temporary folder) and once
with this tree. `speedup`: the exact TrainTestSamplesMix against deepchecks' own check run on every
row. `clean`: the clean pair with rare reference categories, exact checks only: nothing may
fail. Prints Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
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
service_seconds, peak = service(folder / "service", reference, data)
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


def _measure(tree: Path, folder: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(folder)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def scenario(rows: int, before: str) -> None:
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
        results = {
            f"before ({before})": _measure(baseline, folder),
            "after (exact)": _measure(REPO, folder),
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["scenario", "clean", "speedup"])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--before", default=BASE_COMMIT)
    args = parser.parse_args()
    if args.part == "scenario":
        scenario(args.rows or 1_000_000, args.before)
    elif args.part == "clean":
        clean(args.rows or 1_000_000)
    else:
        speedup(args.rows or 100_000)


if __name__ == "__main__":
    main()
