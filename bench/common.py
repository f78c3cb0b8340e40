"""What the benchmarks share: synthetic data, a real server process, peak memory readings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def synthetic_frame(rows: int, *, seed: int = 7) -> pd.DataFrame:
    """20 columns: 12 numeric, 4 categorical, 2 integer ids/counts, 1 boolean, 1 with nulls."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(12):
        data[f"num_{i}"] = rng.normal(loc=i, scale=1.0 + i / 10, size=rows)
    for i in range(4):
        data[f"cat_{i}"] = rng.choice(["a", "b", "c", "d", "e"], size=rows)
    data["id"] = np.arange(rows, dtype=np.int64)
    data["count"] = rng.integers(0, 100, size=rows)
    data["flag"] = rng.random(rows) < 0.5
    with_nulls = rng.normal(size=rows)
    with_nulls[rng.random(rows) < 0.01] = np.nan
    data["maybe"] = with_nulls
    return pd.DataFrame(data)


def suite_for(frame: pd.DataFrame, *, size: int = 20) -> dict[str, Any]:
    """A suite of `size` expectations over the synthetic frame (schema, ranges, nulls, sets)."""
    expectations: list[dict[str, Any]] = [
        {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": list(frame)}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]
    for i in range(12):
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": f"num_{i}", "min_value": -100, "max_value": 100},
            }
        )
    for i in range(4):
        expectations.append(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": f"cat_{i}", "value_set": list("abcde")},
            }
        )
    expectations.append(
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "maybe", "mostly": 0.95},
        }
    )
    expectations.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}})
    return {"name": "bench", "expectations": expectations[:size], "meta": {}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, in MiB."""
    return sum(peak_rss_parts_mib(pid))


def peak_rss_parts_mib(pid: int) -> tuple[float, float]:
    """Peak resident memory (VmHWM) in MiB of a process, and of its children summed."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return _vm_hwm_mib(pid), sum(_vm_hwm_mib(p) for p in pids)


def _vm_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def own_peak_rss_mib() -> float:
    return peak_rss_mib(os.getpid())


@contextmanager
def running_server(
    workdir: Path, *, ready_within_s: float = 90, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`datagate serve` as a real process on a free loopback port; stopped with SIGTERM."""
    port = free_port()
    environment = {
        **os.environ,
        "DATAGATE_DATA_DIR": str(workdir / "data"),
        "DATAGATE_EXPECTATIONS_DIR": str(workdir / "expectations"),
        "DATAGATE_PORT": str(port),
        "DATAGATE_LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=environment
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server did not become ready in {ready_within_s} s")
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
