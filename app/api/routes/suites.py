"""Suites: list and show the suites the service knows; create, replace and delete API suites;
propose a suite from a reference dataset."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from app.api.deps import SettingsDep, SuitesDep, WriteAccess
from app.checks.expectations import (
    SUITE_NAME,
    LoadedSuite,
    SuiteRegistry,
    check_suite_name,
    parse_suite,
)
from app.checks.inference import InferenceOptions, inference_options
from app.checks.suite_safety import has_free_sql, suite_limits
from app.checks.suite_store import SuiteCatalog, infer_suite_from_file
from app.core.errors import InvalidRequest, PayloadTooLarge, SuiteInvalid, UnsupportedFormat
from app.ingest.formats import DecodeLimits, detect_format
from app.ingest.upload import receive_form

router = APIRouter(prefix="/v1/suites", tags=["suites"])

# The same rule the registry applies, declared so that the OpenAPI schema states it.
SuiteName = Annotated[str, PathParam(pattern=SUITE_NAME.pattern, description="Suite name")]

# The options are InferenceOptions' own fields, sent as form fields (text).
INFER_OPTIONS = tuple(InferenceOptions.model_fields)
INFER_FIELDS = ("name", "format", *INFER_OPTIONS)


class SuiteListing(BaseModel):
    name: str
    origin: str
    sha256: str
    expectations: int
    # A suite file changed on disk but its new version was refused: this version still runs.
    not_reloaded: str | None = None


class BrokenSuite(BaseModel):
    name: str
    error: str


class SuiteList(BaseModel):
    items: list[SuiteListing]
    broken: list[BrokenSuite]


class SuiteDetail(SuiteListing):
    definition: dict[str, Any]


def _detail(suite: LoadedSuite) -> SuiteDetail:
    return SuiteDetail(
        name=suite.name,
        origin=suite.origin,
        sha256=suite.sha256,
        expectations=suite.expectation_count,
        definition=suite.definition,
    )


def _catalog(suites: SuiteRegistry) -> SuiteCatalog:
    if not isinstance(suites, SuiteCatalog):
        # Only an app built without a database (never by create_app) lands here.
        raise InvalidRequest("this service has no suite store: suites are read-only")
    return suites


@router.get("", response_model=SuiteList, summary="Suites the service can run")
def list_suites(suites: SuitesDep) -> SuiteList:
    if isinstance(suites, SuiteCatalog):
        # Another replica may have added or deleted API suites since the last look.
        suites.refresh()
    return SuiteList(
        items=[
            SuiteListing(
                name=s.name,
                origin=s.origin,
                sha256=s.sha256,
                expectations=s.expectation_count,
                not_reloaded=suites.not_reloaded.get(s.name),
            )
            for s in suites.list()
        ],
        broken=[BrokenSuite(name=n, error=e) for n, e in sorted(suites.errors.items())],
    )


@router.post(
    "/infer",
    summary="Propose a suite from a reference dataset (not saved: PUT it to keep it)",
    dependencies=[WriteAccess],
    responses={
        413: {"description": "Upload over the byte or row limit"},
        415: {"description": "Not a multipart upload, or a format not recognised"},
        422: {"description": "Unreadable data or bad request fields"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "data": {"type": "string", "format": "binary"},
                            "name": {"type": "string", "description": "Suite name"},
                            "format": {"type": "string"},
                            **{
                                option: {
                                    "type": "string",
                                    "description": field.description or option,
                                }
                                for option, field in InferenceOptions.model_fields.items()
                            },
                        },
                    }
                }
            },
        }
    },
)
async def infer(request: Request, settings: SettingsDep) -> dict[str, Any]:
    with await receive_form(
        request, max_bytes=settings.max_upload_bytes, spool_dir=settings.uploads_dir, max_files=1
    ) as form:
        unknown = sorted((set(form.fields) - set(INFER_FIELDS)) | (set(form.files) - {"data"}))
        if unknown:
            raise InvalidRequest(
                f"unknown form field(s) {', '.join(unknown)}; accepted: data, "
                f"{', '.join(INFER_FIELDS)}"
            )
        if "data" not in form.files:
            raise InvalidRequest("form field 'data' (the reference dataset file) is required")
        received = form.files["data"]
        name = check_suite_name(form.fields.get("name") or _name_from(received.filename))
        fmt = detect_format(received.filename, received.content_type, form.fields.get("format"))
        options = inference_options({k: v for k, v in form.fields.items() if k in INFER_OPTIONS})
        # Reading and profiling a dataset is CPU work: it runs in a worker, not on the loop.
        proposed: dict[str, Any] = await request.app.state.pool.run(
            infer_suite_from_file,
            received.path,
            fmt,
            name,
            settings.max_rows,
            DecodeLimits.from_settings(settings),
            received.filename,
            options,
            time_limit=settings.job_timeout_s,
        )
        return proposed


def _name_from(filename: str | None) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(filename or "").stem).lstrip("_.-")[:128]
    return stem or "inferred"


@router.get("/{name}", response_model=SuiteDetail, summary="One suite's definition")
def get_suite(name: SuiteName, suites: SuitesDep) -> SuiteDetail:
    return _detail(suites.get(name))


@router.put(
    "/{name}",
    response_model=SuiteDetail,
    summary="Create or replace an API suite (201 created, 200 replaced)",
    dependencies=[WriteAccess],
    responses={
        201: {"model": SuiteDetail, "description": "Created"},
        409: {"description": "The name belongs to a suite file from version control"},
        422: {"description": "The suite is invalid; the message names the problem"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "A Great Expectations 1.x ExpectationSuite",
                        "required": ["expectations"],
                        "properties": {
                            "name": {"type": "string"},
                            "expectations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["type", "kwargs"],
                                    "properties": {
                                        "type": {"type": "string"},
                                        "kwargs": {"type": "object"},
                                        "meta": {"type": ["object", "null"]},
                                        "severity": {
                                            "type": "string",
                                            "enum": ["critical", "warning", "info"],
                                        },
                                    },
                                },
                            },
                            "meta": {"type": ["object", "null"]},
                        },
                    }
                }
            },
        }
    },
)
async def put_suite(
    name: SuiteName, request: Request, response: Response, settings: SettingsDep
) -> SuiteDetail:
    catalog = _catalog(request.app.state.suites)
    limits = suite_limits(settings)
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";", 1)[0].strip().lower() not in ("application/json", ""):
        raise UnsupportedFormat(f"a suite is sent as application/json, got {content_type!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise PayloadTooLarge(f"a suite is at most {limits.max_bytes} bytes; got {declared}")
    body = await request.body()
    if len(body) > limits.max_bytes:
        raise PayloadTooLarge(f"a suite is at most {limits.max_bytes} bytes; got {len(body)}")
    check_suite_name(name)
    catalog.check_writable(name)
    suite = parse_suite(name, body, "api", check=False, limits=limits)
    free_sql = [
        f"expectations[{index}] ({e['type']})"
        for index, e in enumerate(suite.definition["expectations"])
        if has_free_sql(e)
    ]
    if free_sql and not settings.suite_sql_connections:
        raise SuiteInvalid(
            f'suite "{name}": {", ".join(free_sql)} runs its own SQL, which no connection allows '
            "(DATAGATE_SUITE_SQL_CONNECTIONS is empty)"
        )
    # Great Expectations lives in the workers only: one of them checks the expectations.
    await request.app.state.validations.check_suite(suite)
    created = await asyncio.to_thread(catalog.put, suite)
    response.status_code = 201 if created else 200
    return _detail(suite)


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete an API suite",
    dependencies=[WriteAccess],
    responses={409: {"description": "The suite comes from version control"}},
)
def delete_suite(name: SuiteName, request: Request) -> Response:
    _catalog(request.app.state.suites).delete(name)
    return Response(status_code=204)
