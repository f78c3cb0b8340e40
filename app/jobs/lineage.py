"""OpenLineage run events for stored reports: the validated dataset as an input that carries the
`dataQualityAssertions` and `dataQualityMetrics` facets, for Marquez or any collector."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from app import __version__
from app.core.config import Settings
from app.reports.model import Report

PRODUCER = f"urn:datagate:{__version__}"
SPEC = "https://openlineage.io/spec"
RUN_EVENT_SCHEMA = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
ASSERTIONS_SCHEMA = (
    f"{SPEC}/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"
    "#/$defs/DataQualityAssertionsDatasetFacet"
)
METRICS_SCHEMA = (
    f"{SPEC}/facets/1-0-3/DataQualityMetricsInputDatasetFacet.json"
    "#/$defs/DataQualityMetricsInputDatasetFacet"
)
ERROR_SCHEMA = f"{SPEC}/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
# A report's id is a uuid4 hex; any other id still maps to one stable run id.
_RUN_NAMESPACE = uuid.UUID("0b5d2c51-5f0e-4c4e-9a57-6f1f3c7a9d21")
# OpenLineage's severities for a failed assertion: `error` blocks the pipeline, `warn` does not.
_SEVERITY = {"critical": "error", "warning": "warn", "info": "warn"}


@dataclass(frozen=True)
class LineageTarget:
    """The operator's collector: where events go, the key sent with them, the job namespace."""

    url: str
    namespace: str
    api_key: SecretStr | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LineageTarget | None:
        url = settings.openlineage_events_url
        if url is None:
            return None
        return cls(url, settings.openlineage_namespace, settings.openlineage_api_key)

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers


def run_id(report: Report) -> str:
    """The event's runId, a UUID: the report id itself when it is one, else derived from it,
    so that a retried delivery names the same run."""
    try:
        return str(uuid.UUID(report.id))
    except ValueError:
        return str(uuid.uuid5(_RUN_NAMESPACE, report.id))


def dataset_identity(report: Report, namespace: str) -> tuple[str, str]:
    """(namespace, name) of the validated dataset after OpenLineage's naming: a file or object
    read by reference is `scheme://bucket` + path (`file` + path for local files); a table read
    through a named connection, and an upload, live in datagate's namespace."""
    source = report.dataset.source or {}
    uri = source.get("uri")
    if isinstance(uri, str) and "://" in uri:
        parts = urlsplit(uri)
        if parts.scheme == "file":
            return "file", parts.path
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or parts.netloc
    connection = source.get("connection")
    if isinstance(connection, str):
        table = ".".join(str(source[k]) for k in ("schema", "table") if source.get(k))
        return f"{namespace}.connection.{connection}", table or report.dataset.name
    return namespace, report.dataset.name


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **fields}


def assertions_facet(report: Report) -> dict[str, Any]:
    """One assertion per check that ran (a skipped check asserted nothing): its name, whether it
    passed, its column, and its severity as OpenLineage words it."""
    assertions = []
    for check in report.checks:
        if check.outcome == "skipped":
            continue
        assertion: dict[str, Any] = {
            "assertion": check.name,
            "success": check.outcome == "passed",
            "severity": _SEVERITY[check.severity],
        }
        if check.column:
            assertion["column"] = check.column
        assertions.append(assertion)
    return _facet(ASSERTIONS_SCHEMA, assertions=assertions)


def metrics_facet(report: Report) -> dict[str, Any]:
    """Rows read, bytes when known, and each column's null count."""
    fields: dict[str, Any] = {
        "rowCount": report.dataset.rows,
        "columnMetrics": {c.name: {"nullCount": c.null_count} for c in report.dataset.columns},
    }
    if report.dataset.bytes is not None:
        fields["bytes"] = report.dataset.bytes
    return _facet(METRICS_SCHEMA, **fields)


def job_name(report: Report) -> str:
    """One job per suite: its runs are the suite's validations, whatever dataset they read."""
    return f"validate.{report.suite.name}" if report.suite else "validate"


def run_event(report: Report, namespace: str) -> dict[str, Any]:
    """The RunEvent of a stored report: COMPLETE with its facets, FAIL (with the error) for a
    report whose checks could not run. A failed data check is a completed run that found
    problems: the assertions say so, not the event type."""
    run: dict[str, Any] = {"runId": run_id(report)}
    if report.status == "error":
        run["facets"] = {
            "errorMessage": _facet(
                ERROR_SCHEMA,
                message=report.error or "checks could not run",
                programmingLanguage="python",
            )
        }
    dataset_namespace, dataset_name = dataset_identity(report, namespace)
    # Stored times are UTC; one read back without its zone is still UTC.
    ended = report.created_at.replace(tzinfo=report.created_at.tzinfo or UTC)
    return {
        "eventType": "FAIL" if report.status == "error" else "COMPLETE",
        "eventTime": ended.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": run,
        "job": {"namespace": namespace, "name": job_name(report), "facets": {}},
        "inputs": [
            {
                "namespace": dataset_namespace,
                "name": dataset_name,
                "facets": {},
                "inputFacets": {
                    "dataQualityAssertions": assertions_facet(report),
                    "dataQualityMetrics": metrics_facet(report),
                },
            }
        ],
        "outputs": [],
    }


def event_body(report: Report, namespace: str) -> bytes:
    return json.dumps(run_event(report, namespace), separators=(",", ":")).encode()
