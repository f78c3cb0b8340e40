"""Prefect: a flow that validates a dataset with the Python client before training on it.

A failed gate raises, so the flow run is marked failed with the failed checks in its log.
"""

from prefect import flow, get_run_logger, task

from app.client import DatagateClient
from app.reports.model import Report


class DataGateFailed(RuntimeError):
    pass


@task(retries=2, retry_delay_seconds=30)
def validate(data: str, suite: str) -> Report:
    # DATAGATE_URL and DATAGATE_API_KEY from the environment (a Prefect block works too).
    with DatagateClient() as client:
        return client.validate(data, suite=suite)


@task
def gate(report: Report) -> None:
    logger = get_run_logger()
    failed = [c for c in report.checks if c.outcome == "failed"]
    for check in failed:
        logger.error(
            "%s on %s: expected %s, observed %s",
            check.name,
            check.column,
            check.expected,
            check.observed,
        )
    if report.status != "passed":
        raise DataGateFailed(f"{report.dataset.name}: {report.status}; see {report.report_url}")
    logger.info("datagate passed: %s", report.report_url)


@flow(name="penguins-training")
def training_flow(data: str = "data/penguins.csv", suite: str = "penguins") -> str:
    report = validate(data, suite)
    gate(report)
    return report.id  # the training step would follow here


if __name__ == "__main__":
    training_flow()
