"""POST /v1/validations: upload a dataset (and a reference), run the checks, get the report.

Synchronous by default; `wait=false` or `Prefer: respond-async` queues a durable job (202).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
)

from app.api.deps import JobsDep, ReadAccess, SettingsDep, StoreDep, ValidationsDep, WriteAccess
from app.checks.runner import DataInput, ValidationJob
from app.checks.service import ValidationService
from app.core.config import Settings
from app.core.errors import InvalidRequest, PayloadTooLarge
from app.core.text import StoredText, check_storable
from app.ingest.formats import detect_format
from app.ingest.references import BatchReference, resolve_reference
from app.ingest.upload import ReceivedFile, ReceivedForm, receive_form
from app.reports.model import Report

router = APIRouter(prefix="/v1/validations", tags=["validations"])

FILE_FIELDS = ("data", "reference")
THRESHOLD_PREFIX = "max_"
# The one threshold that is not a maximum: the family-wise level of the drift checks.
THRESHOLD_FIELDS = ("drift_alpha",)
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
    "per_check",
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
        "thresholds": {
            **text,
            "description": 'JSON object, e.g. {"max_feature_drift": 0.3}; or send each as a '
            "max_* field",
        },
        "drift_alpha": {
            "type": "number",
            "description": "FeatureDrift and LabelDrift: family-wise significance level (Holm)",
        },
        "per_check": {
            **text,
            "description": "JSON object: severity and thresholds per check and per column, e.g. "
            '{"DataDuplicates": {"severity": "critical"}, '
            '"FeatureDrift": {"columns": {"income": {"max_feature_drift": 0.5}}}}',
        },
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


def _is_threshold_field(name: str) -> bool:
    return name.startswith(THRESHOLD_PREFIX) or name in THRESHOLD_FIELDS


def _check_fields(form: ReceivedForm) -> None:
    text_fields = {f for f in form.fields if not _is_threshold_field(f)}
    unknown = sorted((text_fields - set(TEXT_FIELDS)) | (set(form.files) - set(FILE_FIELDS)))
    if unknown:
        raise InvalidRequest(
            f"unknown form field(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(FILE_FIELDS + TEXT_FIELDS + THRESHOLD_FIELDS)}, and thresholds as "
            "max_* fields"
        )
    if "data" not in form.files:
        raise InvalidRequest("form field 'data' (the dataset file) is required")
    if not form.fields.get("suite"):
        raise InvalidRequest("form field 'suite' (the name of a suite) is required")
    # Every text may end up in a stored job or report: NUL or non-UTF-8 would poison both.
    check_storable({name: value for name, value in form.fields.items()})
    check_storable({f"{name} (its file name)": f.filename for name, f in form.files.items()})


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


def request_thresholds(raw: str | None, fields: dict[str, str]) -> dict[str, Any]:
    """Thresholds from a `thresholds` JSON object and from `max_*` and `drift_alpha` fields
    (those win)."""
    thresholds = _thresholds_json(raw)
    for key, value in fields.items():
        if _is_threshold_field(key):
            try:
                thresholds[key] = float(value)
            except ValueError as exc:
                raise InvalidRequest(f"field {key!r} must be a number, got {value[:40]!r}") from exc
    return thresholds


def _json_field(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"field {name!r} is not valid JSON: {exc.msg}") from exc


def _thresholds_json(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    thresholds = _json_field("thresholds", raw)
    if not isinstance(thresholds, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in thresholds.values()
    ):
        raise InvalidRequest(
            "field 'thresholds' must be a JSON object of numbers, e.g. {\"max_feature_drift\": 0.3}"
        )
    return thresholds


def request_per_check(raw: str | None) -> dict[str, Any]:
    """The `per_check` field: a JSON object, checked in full by the engine's settings."""
    if not raw:
        return {}
    per_check = _json_field("per_check", raw)
    if not isinstance(per_check, dict):
        raise InvalidRequest(
            "field 'per_check' must be a JSON object of checks, e.g. "
            '{"DataDuplicates": {"severity": "critical"}}'
        )
    return per_check


def wants_async(request: Request, wait_query: bool | None, wait_field: bool | None) -> bool:
    if "respond-async" in request.headers.get("prefer", "").lower():
        return True
    for wait in (wait_field, wait_query):
        if wait is not None:
            return not wait
    return False


async def _disconnected(request: Request) -> None:
    """Return once the client has gone. The body was read whole, so the next message the
    server has for this request is its disconnect."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def base_url(public_url: str | None) -> str:
    """Links start with DATAGATE_PUBLIC_URL, or are relative paths: never the request's Host
    header, which a client chooses and every later reader of the report would follow."""
    return (public_url or "").rstrip("/")


# --- batch references: a JSON body names where the data lives ----------------------------------

MAX_JSON_BODY_BYTES = 1024 * 1024


class ValidationRequest(BaseModel):
    """The JSON body of POST /v1/validations: references instead of uploaded files."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # References refuse NUL and non-UTF-8 in their own fields (they are stored with the job).
    data: BatchReference
    reference: BatchReference | None = None
    suite: StoredText
    label: StoredText | None = None
    datetime_column: StoredText | None = Field(default=None, alias="datetime")
    index: StoredText | None = None
    categorical: list[StoredText] | None = None
    features: list[StoredText] | None = None
    thresholds: dict[StoredText, StrictInt | StrictFloat] | None = None
    # Checked in full (checks, options, values, column names) when the job is built.
    per_check: dict[StoredText, dict[StoredText, Any]] | None = None
    wait: bool | None = None
    callback_url: StoredText | None = None

    def roles(self) -> dict[str, Any]:
        fields = {"label": self.label, "datetime": self.datetime_column, "index": self.index}
        roles: dict[str, Any] = {k: v.strip() for k, v in fields.items() if v and v.strip()}
        for key, values in (("categorical", self.categorical), ("features", self.features)):
            if values:
                roles[key] = [v.strip() for v in values if v.strip()]
        return roles


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    # openapi_extra is copied into the document as is: its "$defs" references would dangle.
    defs = schema.pop("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return expand(defs[ref.removeprefix("#/$defs/")])
            return {key: expand(value) for key, value in node.items()}
        if isinstance(node, list):
            return [expand(item) for item in node]
        return node

    return dict(expand(schema))


def _request_schema() -> dict[str, Any]:
    schema = _upload_schema()
    body = _inline_refs(ValidationRequest.model_json_schema(by_alias=True))
    schema["requestBody"]["content"]["application/json"] = {"schema": body}
    return schema


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


async def _json_body(request: Request) -> ValidationRequest:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"the JSON body is over {MAX_JSON_BODY_BYTES} bytes")
    try:
        return ValidationRequest.model_validate_json(bytes(body))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: "
            f"{str(error['msg']).removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise InvalidRequest(f"invalid JSON body: {problems}") from exc


async def _reference_input(reference: BatchReference, settings: Settings, field: str) -> DataInput:
    # Checked here, before any work is queued, so that a forbidden or missing batch answers
    # 403/404 at once; the worker checks again when it reads.
    resolved = await asyncio.to_thread(resolve_reference, reference, settings, field=field)
    return DataInput(
        format=resolved.format,
        name=resolved.name,
        bytes=resolved.bytes,
        source=resolved.source,
        location=reference,
    )


async def _create_from_references(
    request: Request, settings: Settings, service: ValidationService, wait: bool | None
) -> Any:
    body = await _json_body(request)
    data = await _reference_input(body.data, settings, "data")
    reference = None
    if body.reference is not None:
        reference = await _reference_input(body.reference, settings, "reference")
    job = service.build_job(
        data,
        suite_name=body.suite,
        reference=reference,
        roles=body.roles(),
        thresholds=dict(body.thresholds or {}),
        per_check=dict(body.per_check or {}),
    )
    return await _run_or_queue(
        request,
        settings,
        service,
        job,
        asynchronous=wants_async(request, wait, body.wait),
        callback_url=body.callback_url,
    )


async def _run_or_queue(
    request: Request,
    settings: Settings,
    service: ValidationService,
    job: ValidationJob,
    *,
    asynchronous: bool,
    callback_url: str | None,
) -> Any:
    """The report now (200), or a durable job (202) whose status and report can be fetched."""
    base = base_url(settings.public_url)
    if not asynchronous:
        if callback_url:
            raise InvalidRequest("callback_url needs an asynchronous request (wait=false)")
        return await service.run(job, base_url=base, abandoned=lambda: _disconnected(request))
    if callback_url:
        request.app.state.callbacks.check(callback_url)
    await service.submit(job, callback_url=callback_url)
    accepted = JobAccepted(
        id=job.id,
        status="queued",
        status_url=f"{base}/v1/validations/{job.id}",
        report_url=f"{base}/reports/{job.id}",
    )
    return JSONResponse(
        accepted.model_dump(), status_code=202, headers={"Location": accepted.status_url}
    )


@router.post(
    "",
    response_model=Report,
    summary="Validate an uploaded dataset against a suite (and a reference)",
    openapi_extra=_request_schema(),
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
    if _is_json(request):
        return await _create_from_references(request, settings, service, wait)
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
            thresholds=request_thresholds(fields.get("thresholds"), fields),
            per_check=request_per_check(fields.get("per_check")),
        )
        return await _run_or_queue(
            request,
            settings,
            service,
            job,
            asynchronous=wants_async(request, wait, parse_bool(fields.get("wait"), "wait")),
            callback_url=fields.get("callback_url"),
        )


@router.get(
    "/{job_id}",
    response_model=JobState,
    summary="State of a validation job; the report once it is done",
    dependencies=[ReadAccess],
    responses={404: {"description": "No job with this id"}},
)
def get_validation(
    job_id: StoredText, settings: SettingsDep, jobs: JobsDep, store: StoreDep
) -> JobState:
    job = jobs.get(job_id)
    base = base_url(settings.public_url)
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
