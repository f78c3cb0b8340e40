"""`datagate validate --failing-rows DIR`: each failed check's rows saved beside the pipeline,
downloaded from the server or kept by a --local run; the client saves them as CSV too."""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from app.cli import main
from app.client import DatagateClient
from app.reports.model import Report
from tests.conftest import EXPECTATIONS
from tests.test_cli import PENGUINS_BAD, datagate

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]


@dataclass(frozen=True)
class Saved:
    run: subprocess.CompletedProcess[str]
    report: Report
    folder: Path


@pytest.fixture(scope="module")
def served(datagate_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """One `validate --failing-rows` of the planted defects through the server."""
    root = tmp_path_factory.mktemp("cli-rows")
    run = datagate(
        "validate", PENGUINS_BAD, "--suite", "penguins", "--output", str(root / "r.json"),
        "--failing-rows", str(root / "rows"), env=datagate_server.env(),
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    report = Report.model_validate_json((root / "r.json").read_text())
    return Saved(run, report, root / "rows")


def kept(report: Report) -> dict[str, dict[str, object]]:
    return {
        info["check"]: info
        for check in report.checks
        if "artifact" in (info := check.details.get("failing_rows") or {})
    }


def test_failing_rows_are_saved_from_the_server_one_file_per_check(served: Saved) -> None:
    infos = kept(served.report)
    assert infos, "penguins_bad.csv fails a row-level expectation"
    assert sorted(p.name for p in served.folder.iterdir()) == sorted(
        f"failing-rows-{key}.parquet" for key in infos
    )
    for key, info in infos.items():
        path = served.folder / f"failing-rows-{key}.parquet"
        rows = pd.read_parquet(path)
        assert len(rows) == info["rows"]
        assert rows.columns[0] == "row"
        assert f"failing rows in {path}" in served.run.stderr


def test_the_client_saves_the_same_rows_as_csv(
    datagate_server: Server, served: Saved, tmp_path: Path
) -> None:
    with DatagateClient(datagate_server.url, api_key=datagate_server.read_key) as client:
        written = client.save_failing_rows(served.report, tmp_path, format="csv")
    assert [p.suffix for p in written] == [".csv"] * len(kept(served.report))
    for path in written:
        parquet = pd.read_parquet(served.folder / f"{path.stem}.parquet")
        table = list(csv.reader(io.StringIO(path.read_text())))
        assert table[0] == list(parquet.columns)
        assert [int(r[0]) for r in table[1:]] == parquet["row"].tolist()


def test_local_run_saves_the_same_rows_as_the_server(
    served: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In this process (the engines are loaded already): the same code path as the command.
    monkeypatch.setenv("DATAGATE_DATA_DIR", str(tmp_path / "data"))
    code = main(
        [
            "validate", PENGUINS_BAD, "--suite", "penguins", "--local",
            "--expectations", str(EXPECTATIONS), "--failing-rows", str(tmp_path / "local"),
        ]
    )  # fmt: skip
    assert code == 1
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names and names == sorted(p.name for p in served.folder.iterdir())
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "local" / name), pd.read_parquet(served.folder / name)
        )
    # The local run kept its files in a temporary folder, not in the data folder.
    assert not (tmp_path / "data" / "artifacts").exists()
