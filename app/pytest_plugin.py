"""pytest plugin (entry point `datagate`): check a project's DataFrames against a datagate suite
in its own tests, in this process or on a server, with a failure that lists the failed checks."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from app.reports.model import Report

DataLike = Any  # a pandas DataFrame, or the path of a dataset file


class DatagateCheckFailed(AssertionError):
    """The data did not pass the suite; the message is the CLI's summary of the failed checks."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def _as_file(data: DataLike, folder: Path, name: str) -> str:
    if isinstance(data, str | os.PathLike):
        return os.fspath(data)
    # Parquet keeps the dtypes, and is what the client uploads for a frame: the local and the
    # server run read the same bytes.
    path = folder / f"{name}.parquet"
    data.to_parquet(path, index=False)
    return str(path)


def validate_data(
    df: DataLike,
    suite: str,
    reference: DataLike | None = None,
    *,
    server: str | None = None,
    api_key: str | None = None,
    expectations: str | os.PathLike[str] | None = None,
    dataset_name: str | None = None,
    mlflow: bool = False,
    **roles: Any,
) -> Report:
    """The report for `df` (and `reference`) against `suite`: on `server`, or in this process
    with the suites in `expectations` (default DATAGATE_EXPECTATIONS_DIR or ./expectations).
    `mlflow=True` also logs it to the active MLflow run (or a new one)."""
    if server:
        from app.client import DatagateClient

        options = dict(roles, dataset_name=dataset_name) if dataset_name else dict(roles)
        with DatagateClient(server, api_key=api_key) as client:
            return client.validate(df, suite=suite, reference=reference, mlflow=mlflow, **options)

    from app.cli import validate_locally

    if mlflow:
        from app.reports.mlflow_run import import_mlflow

        import_mlflow()  # a missing extra fails before the validation runs
    with tempfile.TemporaryDirectory(prefix="datagate-") as folder:
        data_path = _as_file(df, Path(folder), dataset_name or "dataframe")
        reference_path = (
            _as_file(reference, Path(folder), "reference") if reference is not None else None
        )
        report = validate_locally(
            data_path,
            suite=suite,
            reference=reference_path,
            expectations_dir=Path(expectations) if expectations else None,
            options={**roles, **({"dataset_name": dataset_name} if dataset_name else {})},
        )
    if mlflow:
        from app.reports.mlflow_run import log_report

        log_report(report)
    return report


def assert_valid(
    df: DataLike,
    suite: str,
    reference: DataLike | None = None,
    *,
    server: str | None = None,
    api_key: str | None = None,
    expectations: str | os.PathLike[str] | None = None,
    fail_on: str = "failure",
    dataset_name: str | None = None,
    mlflow: bool = False,
    **roles: Any,
) -> Report:
    """Fail the test unless `df` passes `suite`; the message lists each failed check with its
    column, what was expected and what was observed. Returns the report when it passes.
    `mlflow=True` logs the report to MLflow first, failed or not."""
    from app.cli import gate_exit_code, summary_text

    __tracebackhide__ = True
    report = validate_data(
        df,
        suite,
        reference,
        server=server,
        api_key=api_key,
        expectations=expectations,
        dataset_name=dataset_name,
        mlflow=mlflow,
        **roles,
    )
    if gate_exit_code(report, fail_on) != 0:
        raise DatagateCheckFailed(summary_text(report, fail_on), report)
    return report


class Datagate:
    """The `datagate` fixture: `assert_valid` and `validate` with the session's settings."""

    def __init__(
        self,
        server: str | None,
        api_key: str | None,
        expectations: str | None,
        mlflow: bool = False,
    ) -> None:
        self.server = server
        self.api_key = api_key
        self.expectations = expectations
        self.mlflow = mlflow

    def validate(
        self, df: DataLike, suite: str, reference: DataLike | None = None, **options: Any
    ) -> Report:
        return validate_data(df, suite, reference, **self._defaults(options))

    def assert_valid(
        self, df: DataLike, suite: str, reference: DataLike | None = None, **options: Any
    ) -> Report:
        __tracebackhide__ = True
        return assert_valid(df, suite, reference, **self._defaults(options))

    def _defaults(self, options: dict[str, Any]) -> dict[str, Any]:
        return {
            "server": self.server,
            "api_key": self.api_key,
            "expectations": self.expectations,
            "mlflow": self.mlflow,
            **options,
        }


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("datagate", "data validation with datagate")
    group.addoption(
        "--datagate-server",
        help="validate on this datagate server instead of in-process (ini: datagate_server)",
    )
    group.addoption(
        "--datagate-expectations",
        help="suites folder for in-process validation (ini: datagate_expectations)",
    )
    group.addoption(
        "--datagate-mlflow",
        action="store_true",
        default=None,
        help="log every report of the datagate fixture to MLflow (ini: datagate_mlflow)",
    )
    parser.addini("datagate_server", "datagate server URL; empty: validate in-process")
    parser.addini("datagate_expectations", "suites folder for in-process validation")
    parser.addini(
        "datagate_mlflow",
        "log the datagate fixture's reports to MLflow",
        type="bool",
        default=False,
    )


@pytest.fixture
def datagate(request: pytest.FixtureRequest) -> Datagate:
    """Validate DataFrames with datagate: `datagate.assert_valid(df, suite="name")`."""
    config = request.config
    server = config.getoption("datagate_server") or config.getini("datagate_server") or None
    expectations = (
        config.getoption("datagate_expectations") or config.getini("datagate_expectations") or None
    )
    if expectations and not Path(expectations).is_absolute():
        expectations = str(config.rootpath / expectations)
    mlflow = config.getoption("datagate_mlflow") or config.getini("datagate_mlflow")
    return Datagate(server, os.environ.get("DATAGATE_API_KEY"), expectations, bool(mlflow))
