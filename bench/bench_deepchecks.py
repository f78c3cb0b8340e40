"""Time the deepchecks engine on synthetic reference + data frames, check by check.

Usage: uv run python -m bench.bench_deepchecks [--sizes 10000,100000,1000000] [--html]
Prints one Markdown table row per size: total seconds, sampled rows, the slowest checks.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.checks.deepchecks_engine import DeepchecksSettings, run_deepchecks
from app.checks.roles import ColumnRoles


def synthetic_pair(rows: int, *, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and data of `rows` each: 12 numeric, 4 categorical, a label, a date, an id."""
    rng = np.random.default_rng(seed)

    def frame(offset: int, start: str) -> pd.DataFrame:
        cols: dict[str, Any] = {f"num_{i}": rng.normal(i, 1 + i / 10, rows) for i in range(12)}
        cols.update({f"cat_{i}": rng.choice(list("abcde"), rows) for i in range(4)})
        cols["label"] = rng.choice(["yes", "no"], rows)
        cols["day"] = pd.date_range(start, periods=rows, freq="min")
        cols["id"] = np.arange(offset, offset + rows)
        return pd.DataFrame(cols)

    return frame(0, "2024-01-01"), frame(rows, "2025-01-01")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--html", action="store_true", help="also write the HTML view")
    args = parser.parse_args()
    roles = ColumnRoles(label="label", datetime="day", index="id")
    settings = DeepchecksSettings()

    warm_ref, warm_data = synthetic_pair(500)
    run_deepchecks(warm_data, warm_ref, roles, settings)  # imports and first-fit costs

    print("| rows | seconds | data sample | reference sample | slowest checks (ms) | RSS MiB |")
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        reference, data = synthetic_pair(size)
        with tempfile.TemporaryDirectory() as folder:
            html = Path(folder) / "view.html" if args.html else None
            started = time.perf_counter()
            outcome = run_deepchecks(data, reference, roles, settings, html_path=html)
            elapsed = time.perf_counter() - started
        slowest = sorted(outcome.durations_ms.items(), key=lambda kv: kv[1], reverse=True)[:4]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"| {size:,} | {elapsed:.1f} | {outcome.data_sample_rows} | "
            f"{outcome.reference_sample_rows} | "
            f"{', '.join(f'{name} {ms}' for name, ms in slowest)} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
