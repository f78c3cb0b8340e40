"""POST /v1/validations: upload a dataset, run a suite on it, get the stored report back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.api.deps import SettingsDep
from app.checks.runner import DataInput
from app.checks.service import ValidationService
from app.core.errors import InvalidRequest
from app.ingest.formats import detect_format
from app.ingest.upload import ReceivedFile, ReceivedForm, receive_form
from app.reports.model import Report

router = APIRouter(prefix="/v1/validations", tags=["validations"])

FILE_FIELDS = ("data",)
TEXT_FIELDS = ("suite", "format", "dataset_name")

_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["data", "suite"],
                    "properties": {
                        "data": {
                            "type": "string",
                            "format": "binary",
                            "description": "The dataset: CSV, TSV, Parquet, JSON (array of "
                            "records), NDJSON, Arrow IPC / Feather.",
                        },
                        "suite": {"type": "string", "description": "Name of the suite to run"},
                        "format": {
                            "type": "string",
                            "enum": ["csv", "tsv", "parquet", "json", "ndjson", "arrow"],
                            "description": "Overrides the format guessed from the file name",
                        },
                        "dataset_name": {
                            "type": "string",
                            "description": "Name shown in the report; default the file name",
                        },
                    },
                }
            }
        },
    }
}


def _data_input(received: ReceivedFile, *, fmt: str | None, name: str | None) -> DataInput:
    data_format = detect_format(received.filename, received.content_type, fmt)
    return DataInput(
        path=received.path,
        format=data_format,
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


@router.post(
    "",
    response_model=Report,
    summary="Validate an uploaded dataset against a suite",
    openapi_extra=_UPLOAD_SCHEMA,
    responses={
        404: {"description": "Unknown suite"},
        413: {"description": "Upload over the byte or row limit"},
        415: {"description": "Format not recognised"},
        422: {"description": "Unreadable data or bad request fields"},
    },
)
async def create_validation(request: Request, settings: SettingsDep) -> Report:
    service: ValidationService = request.app.state.validations
    with await receive_form(
        request, max_bytes=settings.max_upload_bytes, spool_dir=settings.uploads_dir
    ) as form:
        _check_fields(form)
        data = _data_input(
            form.files["data"], fmt=form.fields.get("format"), name=form.fields.get("dataset_name")
        )
        job = service.build_job(data, suite_name=form.fields["suite"])
        return await service.run(job)
