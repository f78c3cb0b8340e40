"""POST /v1/validations: upload a dataset (and a reference), run the checks, get the report.

Synchronous by default; `wait=false` or `Prefer: respond-async` queues a durable job (202).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import JobsDep, ReadAccess, SettingsDep, StoreDep, ValidationsDep, WriteAccess
from app.checks.runner import DataInput
from app.core.errors import InvalidRequest
from app.ingest.formats import detect_format
from app.ingest.upload import ReceivedFile, ReceivedForm, receive_form
from app.reports.model import Report

router = APIRouter(prefix="/v1/validations", tags=["validations"])

FILE_FIELDS = ("data", "reference")
ROLE_FIELDS = ("label", "datetime", "index")
LIST_FIELDS = ("categorical", "features")
TEXT_FIELDS = (
    "suite",
    "format",
    "dataset_name",
    "reference_format",
    *ROLE_FIELDS,
    *LIST_FIELDS,
    "thresholds",
    "wait",
    "callback_url",
)


def _upload_schema() -> dict[str, Any]:
    text = {"type": "string"}
    properties: dict[str, Any] = {
        "data": {
            "type": "string",
            "format": "binary",
            "description": "The dataset: CSV, TSV, Parquet, JSON (array of records), NDJSON, "
            "Arrow IPC / Feather.",
        },
        "reference": {
            "type": "string",
            "format": "binary",
            "description": "Optional reference (training) dataset for leakage and drift checks",
        },
        "suite": {**text, "minLength": 1, "description": "Name of the suite to run"},
        "format": {
            "type": "string",
            "enum": ["csv", "tsv", "parquet", "json", "ndjson", "arrow"],
            "description": "Overrides the format guessed from the file name",
        },
        "reference_format": {
            "type": "string",
            "enum": ["csv", "tsv", "parquet", "json", "ndjson", "arrow"],
        },
        "dataset_name": {**text, "description": "Name shown in the report; default file name"},
        "label": {**text, "description": "Label column"},
        "datetime": {**text, "description": "Datetime column (date leakage checks)"},
        "index": {**text, "description": "Index column (index leakage check)"},
        "categorical": {**text, "description": "Comma-separated categorical columns"},
        "features": {**text, "description": "Comma-separated feature columns"},
        "thresholds": {**text, "description": 'JSON object, e.g. {"max_feature_drift": 0.3}'},
        "wait": {"type": "boolean", "description": "false: answer 202 at once with a job"},
        "callback_url": {**text, "description": "POSTed the signed summary when a job ends"},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["data", "suite"],
                        "properties": properties,
                    }
                }
            },
        }
    }


class JobAccepted(BaseModel):
    id: str
    status: Literal["queued"]
    status_url: str
    report_url: str


class JobState(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "error"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: str | None
    status_url: str
    report_url: str
    report: Report | None = None


def _data_input(received: ReceivedFile, *, fmt: str | None, name: str | None) -> DataInput:
    return DataInput(
        path=received.path,
        format=detect_format(received.filename, received.content_type, fmt),
        name=name or received.filename or received.field,
        sha256=received.sha256,
        bytes=received.size,
    )


def _check_fields(form: ReceivedForm) -> None:
    unknown = sorted((set(form.fields) - set(TEXT_FIELDS)) | (set(form.files) - set(FILE_FIELDS)))
    if unknown:
        raise InvalidRequest(
            f"unknown form field(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(FILE_FIELDS + TEXT_FIELDS)}"
        )
    if "data" not in form.files:
        raise InvalidRequest("form field 'data' (the dataset file) is required")
    if not form.fields.get("suite"):
        raise InvalidRequest("form field 'suite' (the name of a suite) is required")


def parse_bool(value: str | None, field: str) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"field {field!r} must be true or false, got {value[:40]!r}")


def request_roles(fields: dict[str, str]) -> dict[str, Any]:
    roles: dict[str, Any] = {k: fields[k].strip() for k in ROLE_FIELDS if fields.get(k)}
    for key in LIST_FIELDS:
        if fields.get(key):
            roles[key] = [c.strip() for c in fields[key].split(",") if c.strip()]
    return roles


def request_thresholds(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        thresholds = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"field 'thresholds' is not valid JSON: {exc.msg}") from exc
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in thresholds.values()
    ):
        raise InvalidRequest(
            "field 'thresholds' must be a JSON object of numbers, e.g. {\"max_feature_drift\": 0.3}"
        )
    return thresholds


def wants_async(request: Request, wait_query: bool | None, wait_field: bool | None) -> bool:
    if "respond-async" in request.headers.get("prefer", "").lower():
        return True
    for wait in (wait_field, wait_query):
        if wait is not None:
            return not wait
    return False


def base_url(request: Request, public_url: str | None) -> str:
    return (public_url or str(request.base_url)).rstrip("/")


@router.post(
    "",
    response_model=Report,
    summary="Validate an uploaded dataset against a suite (and a reference)",
    openapi_extra=_upload_schema(),
    dependencies=[WriteAccess],
    responses={
        202: {"model": JobAccepted, "description": "Queued (wait=false or Prefer: respond-async)"},
        404: {"description": "Unknown suite"},
        413: {"description": "Upload over the byte or row limit"},
        415: {"description": "Format not recognised"},
        422: {"description": "Unreadable data or bad request fields"},
        503: {"description": "Queue full; see Retry-After"},
    },
)
async def create_validation(
    request: Request,
    settings: SettingsDep,
    service: ValidationsDep,
    wait: Annotated[bool | None, Query(description="false: queue a job, answer 202")] = None,
) -> Any:
    with await receive_form(
        request, max_bytes=settings.max_upload_bytes, spool_dir=settings.uploads_dir
    ) as form:
        _check_fields(form)
        fields = form.fields
        data = _data_input(
            form.files["data"], fmt=fields.get("format"), name=fields.get("dataset_name")
        )
        reference = None
        if "reference" in form.files:
            reference = _data_input(
                form.files["reference"], fmt=fields.get("reference_format"), name=None
            )
        job = service.build_job(
            data,
            suite_name=fields["suite"],
            reference=reference,
            roles=request_roles(fields),
            thresholds=request_thresholds(fields.get("thresholds")),
        )
        base = base_url(request, settings.public_url)
        if wants_async(request, wait, parse_bool(fields.get("wait"), "wait")):
            callback = fields.get("callback_url")
            if callback:
                request.app.state.callbacks.check(callback)
            await service.submit(job, callback_url=callback)
            accepted = JobAccepted(
                id=job.id,
                status="queued",
                status_url=f"{base}/v1/validations/{job.id}",
                report_url=f"{base}/reports/{job.id}",
            )
            return JSONResponse(
                accepted.model_dump(),
                status_code=202,
                headers={"Location": accepted.status_url},
            )
        if fields.get("callback_url"):
            raise InvalidRequest("callback_url needs an asynchronous request (wait=false)")
        return await service.run(job, base_url=base)


@router.get(
    "/{job_id}",
    response_model=JobState,
    summary="State of a validation job; the report once it is done",
    dependencies=[ReadAccess],
    responses={404: {"description": "No job with this id"}},
)
def get_validation(
    job_id: str, request: Request, settings: SettingsDep, jobs: JobsDep, store: StoreDep
) -> JobState:
    job = jobs.get(job_id)
    base = base_url(request, settings.public_url)
    report = store.get(job_id) if job.status in ("done", "error") and store.exists(job_id) else None
    return JobState(
        id=job.id,
        status=job.status,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempts,
        error=job.error,
        status_url=f"{base}/v1/validations/{job.id}",
        report_url=f"{base}/reports/{job.id}",
        report=report,
    )
