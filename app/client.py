"""Python client of the datagate service (sync and async, over httpx), returning `Report` models.

Errors are typed; idempotent calls are retried with backoff, a POST only when it never reached
the service or the service refused it before doing any work (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

from app import __version__
from app.reports.failing_rows import RowsFormat, checks_with_rows
from app.reports.model import Report

DataSource = str | os.PathLike[str] | Any  # Any: a pandas DataFrame, serialised as Parquet
UploadProgress = Callable[[int, int | None], None]
WaitProgress = Callable[["Job", float], None]

# `conn:table`: a table read by the server through a connection it is configured with.
_CONNECTION_TABLE = re.compile(r"^(?P<connection>[A-Za-z_][\w-]*):(?P<table>[^/\\:]+)$")
_RETRY_STATUSES_IDEMPOTENT = (502, 503, 504)
_MAX_RETRY_AFTER_S = 60.0
ROLE_NAMES = ("label", "datetime", "index")
# Where `make serve` (and `datagate serve` with default settings) listens.
DEFAULT_URL = "http://127.0.0.1:8000"


class DatagateClientError(Exception):
    """Base of every error the client raises; `code` is the service's stable error code."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id


class NotFound(DatagateClientError):
    """404: no such report, job or suite."""


class ValidationRejected(DatagateClientError):
    """Any other 4xx: the request or the data was refused; `code` and `message` say why."""


class ServiceUnavailable(DatagateClientError):
    """503 after the retries, or the service could not be reached at all."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(DatagateClientError):
    """A 5xx other than 503 (500, 502 upstream, 504 timeouts)."""


class WaitTimeout(DatagateClientError):
    """`wait_for` gave up before the job ended; the job goes on on the server."""


@dataclass(frozen=True)
class LocalFile:
    path: Path


@dataclass(frozen=True)
class Reference:
    """A dataset the server reads itself: a URI, or a table through a named connection."""

    uri: str | None = None
    connection: str | None = None
    table: str | None = None

    def body(self) -> dict[str, str]:
        if self.uri is not None:
            return {"uri": self.uri}
        return {"connection": str(self.connection), "table": str(self.table)}


@dataclass(frozen=True)
class InMemory:
    """A DataFrame, sent as Parquet so dtypes survive the trip."""

    frame: Any
    name: str


def source_of(value: DataSource, *, name: str = "dataframe") -> LocalFile | Reference | InMemory:
    """What `value` is: a local file (uploaded), a reference (read by the server) or a frame."""
    if not isinstance(value, str | os.PathLike):
        if hasattr(value, "to_parquet"):
            return InMemory(frame=value, name=name)
        raise TypeError(f"cannot send a {type(value).__name__}: give a path, a URI or a DataFrame")
    text = os.fspath(value)
    if isinstance(value, os.PathLike) or Path(text).is_file():
        return LocalFile(Path(text))
    if "://" in text:
        return Reference(uri=text)
    match = _CONNECTION_TABLE.match(text)
    if match:
        return Reference(connection=match["connection"], table=match["table"])
    raise FileNotFoundError(
        f"{text!r} is not a file here, nor a URI (s3://..., file://...) nor connection:table"
    )


@dataclass(frozen=True)
class Job:
    """A validation job; `report` is set once it is done."""

    id: str
    status: Literal["queued", "running", "done", "error"]
    status_url: str
    report_url: str
    error: str | None = None
    report: Report | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error")

    @classmethod
    def from_json(cls, body: Mapping[str, Any], called: httpx.URL | None = None) -> Job:
        """`called`: the URL the body came from, which relative links are resolved against."""
        report = Report.model_validate(body["report"]) if body.get("report") else None
        return cls(
            id=body["id"],
            status=body["status"],
            status_url=_absolute(body["status_url"], called),
            report_url=_absolute(body["report_url"], called),
            error=body.get("error"),
            report=_linked(report, called) if report else None,
        )


@dataclass
class ValidationRequest:
    """Everything `validate` and `submit` send; built once, sent by either client."""

    data: DataSource
    suite: str
    reference: DataSource | None = None
    label: str | None = None
    datetime: str | None = None
    index: str | None = None
    categorical: list[str] | None = None
    features: list[str] | None = None
    thresholds: dict[str, float] | None = None
    # Severity and thresholds per check and per column, e.g.
    # {"DataDuplicates": {"severity": "critical"}} (docs/severity.md).
    per_check: dict[str, Any] | None = None
    dataset_name: str | None = None
    format: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {"suite": self.suite}
        for key in ROLE_NAMES:
            if getattr(self, key):
                values[key] = getattr(self, key)
        for key in ("categorical", "features"):
            if getattr(self, key):
                values[key] = list(getattr(self, key))
        if self.thresholds:
            values["thresholds"] = dict(self.thresholds)
        if self.per_check:
            values["per_check"] = dict(self.per_check)
        if self.dataset_name:
            values["dataset_name"] = self.dataset_name
        if self.format:
            values["format"] = self.format
        values.update(self.extra)
        return values


class _ProgressReader(io.RawIOBase):
    """A file whose reads report how far the upload got."""

    def __init__(self, handle: IO[bytes], total: int | None, report: UploadProgress) -> None:
        self._handle, self._total, self._report = handle, total, report

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._report(self._handle.tell(), self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def fileno(self) -> int:
        return self._handle.fileno()


@contextlib.contextmanager
def request_body(
    request: ValidationRequest, *, wait: bool, on_upload: UploadProgress | None = None
) -> Iterator[dict[str, Any]]:
    """httpx keyword arguments for POST /v1/validations: a multipart upload of local files and
    frames, or a JSON body when the datasets are references the server reads itself."""
    data = source_of(request.data, name=request.dataset_name or "dataframe")
    reference = (
        source_of(request.reference, name="reference") if request.reference is not None else None
    )
    sources = [s for s in (data, reference) if s is not None]
    if any(isinstance(s, Reference) for s in sources):
        if not all(isinstance(s, Reference) for s in sources):
            raise ValueError(
                "data and reference must both be references (URIs, connection:table) or both "
                "be local: the service takes either an upload or a JSON body"
            )
        body: dict[str, Any] = {**request.fields(), "wait": wait}
        body["data"] = data.body()  # type: ignore[union-attr]
        if reference is not None:
            body["reference"] = reference.body()  # type: ignore[union-attr]
        yield {"json": body}
        return
    with contextlib.ExitStack() as stack:
        files: dict[str, tuple[str, IO[bytes], str | None]] = {}
        for role, source in (("data", data), ("reference", reference)):
            if source is None:
                continue
            files[role] = _upload(source, stack, on_upload if role == "data" else None)
        form: dict[str, str] = {"wait": "true" if wait else "false"}
        for key, value in request.fields().items():
            if isinstance(value, list):
                form[key] = ",".join(value)
            elif isinstance(value, dict):
                form[key] = json.dumps(value)
            else:
                form[key] = str(value)
        yield {"files": files, "data": form}


def _upload(
    source: LocalFile | Reference | InMemory,
    stack: contextlib.ExitStack,
    on_upload: UploadProgress | None,
) -> tuple[str, IO[bytes], str | None]:
    if isinstance(source, InMemory):
        buffer = io.BytesIO()
        source.frame.to_parquet(buffer, index=False)
        buffer.seek(0)
        return (f"{source.name}.parquet", buffer, "application/vnd.apache.parquet")
    assert isinstance(source, LocalFile)
    handle: IO[bytes] = stack.enter_context(source.path.open("rb"))
    if on_upload is not None:
        total = source.path.stat().st_size
        handle = _ProgressReader(handle, total, on_upload)  # type: ignore[assignment]
    return (source.path.name, handle, None)


def _error_from(response: httpx.Response) -> DatagateClientError:
    code, message, request_id = None, response.text[:500] or response.reason_phrase, None
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        error = response.json()["error"]
        code, message, request_id = error["code"], error["message"], error.get("request_id")
    status = response.status_code
    kw: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id}
    text = f"{status} {code or response.reason_phrase}: {message}"
    if status == 404:
        return NotFound(text, **kw)
    if status == 503:
        return ServiceUnavailable(text, retry_after=retry_after(response), **kw)
    if 400 <= status < 500:
        return ValidationRejected(text, **kw)
    return ServerError(text, **kw)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header in the delta-seconds form, capped; None if absent."""
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; `backoff` doubles after each attempt."""

    attempts: int = 4
    backoff: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and (after := retry_after(response)) is not None:
            return after
        return float(min(self.backoff * 2**attempt, self.max_delay))

    def should_retry(
        self, method: str, response: httpx.Response | None, error: Exception | None
    ) -> bool:
        idempotent = method in ("GET", "PUT", "HEAD")
        if error is not None:
            # A connect failure means nothing was sent: safe to resend anything.
            return idempotent or isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        assert response is not None
        if response.status_code == 503:
            return True  # the service refused before doing any work (queue full, starting)
        return idempotent and response.status_code in _RETRY_STATUSES_IDEMPOTENT


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"datagate-client/{__version__}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def server_url(base_url: str | None = None) -> str:
    """The service to call: base_url, else DATAGATE_URL, else the local `make serve` address."""
    url = base_url or os.environ.get("DATAGATE_URL") or DEFAULT_URL
    return url.rstrip("/")


def _absolute(url: str, called: httpx.URL | None) -> str:
    # The service links with relative paths unless it knows its public URL (it never trusts
    # the Host header): the address this client called is where they lead.
    return str(called.join(url)) if called is not None else url


def _linked(report: Report, called: httpx.URL | None) -> Report:
    if report.report_url:
        report.report_url = _absolute(report.report_url, called)
    report.artifacts = {name: _absolute(url, called) for name, url in report.artifacts.items()}
    return report


def _report(response: httpx.Response) -> Report:
    return _linked(Report.model_validate(response.json()), response.url)


def _accepted(response: httpx.Response) -> Job:
    return Job.from_json(response.json(), response.url)


def _job(response: httpx.Response) -> Job:
    return Job.from_json(response.json(), response.url)


def _finished_report(job: Job) -> Report:
    if job.report is not None:
        return job.report
    raise ServerError(f"job {job.id} ended in error without a report: {job.error}", code="job")


class DatagateClient:
    """Blocking client. `DatagateClient()` reads DATAGATE_URL (default http://127.0.0.1:8000)
    and DATAGATE_API_KEY."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 3600,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=server_url(base_url),
            headers=_headers(api_key or os.environ.get("DATAGATE_API_KEY")),
            timeout=httpx.Timeout(timeout, connect=10),
            transport=transport,
        )

    def __enter__(self) -> DatagateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the retry policy; raise the typed error of a 4xx or 5xx answer."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            attempt += 1
            if attempt >= self.retry.attempts or not self.retry.should_retry(
                method, response, error
            ):
                if response is not None:
                    raise _error_from(response)
                raise ServiceUnavailable(
                    f"cannot reach {self._http.base_url}: {error}", code="unreachable"
                ) from error
            time.sleep(self.retry.delay(attempt - 1, response))

    def validate(
        self,
        data: DataSource,
        *,
        suite: str,
        on_upload: UploadProgress | None = None,
        mlflow: bool = False,
        **options: Any,
    ) -> Report:
        """Validate and wait for the report (the service's synchronous path). `mlflow=True`
        also logs the report to the active MLflow run (docs/integrations/mlflow.md)."""
        _mlflow_ready(mlflow)
        request = ValidationRequest(data=data, suite=suite, **options)
        with request_body(request, wait=True, on_upload=on_upload) as body:
            report = _report(self.request("POST", "/v1/validations", **body))
        return _to_mlflow(report) if mlflow else report

    def submit(
        self,
        data: DataSource,
        *,
        suite: str,
        on_upload: UploadProgress | None = None,
        **options: Any,
    ) -> Job:
        """Queue a validation (202); follow it with `wait_for(job.id)`."""
        request = ValidationRequest(data=data, suite=suite, **options)
        with request_body(request, wait=False, on_upload=on_upload) as body:
            return _accepted(self.request("POST", "/v1/validations", **body))

    def get_job(self, job_id: str) -> Job:
        return _job(self.request("GET", f"/v1/validations/{job_id}"))

    def get_report(self, report_id: str) -> Report:
        return _report(self.request("GET", f"/v1/reports/{report_id}"))

    def get_failing_rows(
        self, report_id: str, check: str, *, format: RowsFormat = "parquet"
    ) -> bytes:
        """One check's failing rows as Parquet or CSV bytes (docs/failing-rows.md); `check` is
        the key in the check row's `details.failing_rows.check`."""
        response = self.request(
            "GET",
            f"/v1/reports/{quote(report_id, safe='')}/failing-rows",
            params={"check": check, "format": format},
        )
        return response.content

    def save_failing_rows(
        self, report: Report, folder: str | os.PathLike[str], *, format: RowsFormat = "parquet"
    ) -> list[Path]:
        """Write every failed check's failing rows into `folder` (created if needed) as
        `failing-rows-<check>.<format>`; the files written, in report order."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for _, info in checks_with_rows(report):
            path = target / f"failing-rows-{info['check']}.{format}"
            path.write_bytes(self.get_failing_rows(report.id, info["check"], format=format))
            written.append(path)
        return written

    def wait_for(
        self,
        job_id: str,
        *,
        timeout: float = 3600,
        poll: float = 0.5,
        on_wait: WaitProgress | None = None,
        mlflow: bool = False,
    ) -> Report:
        """Poll the job until it ends; its report (status `error` if the run failed).
        `mlflow=True` also logs the report to the active MLflow run."""
        _mlflow_ready(mlflow)
        started = time.monotonic()
        interval = poll
        while True:
            job = self.get_job(job_id)
            elapsed = time.monotonic() - started
            if on_wait is not None:
                on_wait(job, elapsed)
            if job.finished:
                report = _finished_report(job)
                return _to_mlflow(report) if mlflow else report
            if elapsed + interval > timeout:
                raise WaitTimeout(f"job {job_id} still {job.status} after {elapsed:.0f} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)

    def list_suites(self) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", "/v1/suites").json()
        return body

    def get_suite(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.request("GET", f"/v1/suites/{name}").json()
        return body

    def put_suite(self, name: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.request("PUT", f"/v1/suites/{name}", json=definition).json()
        return body

    def delete_suite(self, name: str) -> None:
        self.request("DELETE", f"/v1/suites/{name}")

    def infer_suite(
        self,
        data: str | os.PathLike[str],
        *,
        name: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A proposed suite for a reference dataset (not saved: `put_suite` keeps it).

        `options` are InferenceOptions' fields (docs/pipelines.md), e.g.
        `{"false_alarm_rate": 0.001, "row_count": False}`.
        """
        path = Path(data)
        fields = {key: _form_text(value) for key, value in (options or {}).items()}
        if name:
            fields["name"] = name
        with path.open("rb") as handle:
            response = self.request(
                "POST", "/v1/suites/infer", files={"data": (path.name, handle)}, data=fields
            )
        body: dict[str, Any] = response.json()
        return body


def _mlflow_ready(wanted: bool) -> None:
    """With `mlflow=True`, fail before any upload when the mlflow extra is missing."""
    if wanted:
        from app.reports.mlflow_run import import_mlflow

        import_mlflow()


def _to_mlflow(report: Report, run_id: str | None = None) -> Report:
    from app.reports.mlflow_run import log_report

    log_report(report, run_id=run_id)
    return report


async def _to_mlflow_async(report: Report) -> Report:
    """`_to_mlflow` off the event loop (MLflow's client blocks), to the run active here: MLflow's
    active run is per thread, so it is read before the hand-over."""
    from app.reports.mlflow_run import current_run_id

    return await asyncio.to_thread(_to_mlflow, report, current_run_id())


def _form_text(value: Any) -> str:
    # Form fields are text: booleans as the words the server parses, None as empty.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class AsyncDatagateClient:
    """The same calls as `DatagateClient`, awaitable."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 3600,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=server_url(base_url),
            headers=_headers(api_key or os.environ.get("DATAGATE_API_KEY")),
            timeout=httpx.Timeout(timeout, connect=10),
            transport=transport,
        )

    async def __aenter__(self) -> AsyncDatagateClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the retry policy; raise the typed error of a 4xx or 5xx answer."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            attempt += 1
            if attempt >= self.retry.attempts or not self.retry.should_retry(
                method, response, error
            ):
                if response is not None:
                    raise _error_from(response)
                raise ServiceUnavailable(
                    f"cannot reach {self._http.base_url}: {error}", code="unreachable"
                ) from error
            await asyncio.sleep(self.retry.delay(attempt - 1, response))

    async def validate(
        self,
        data: DataSource,
        *,
        suite: str,
        on_upload: UploadProgress | None = None,
        mlflow: bool = False,
        **options: Any,
    ) -> Report:
        _mlflow_ready(mlflow)
        request = ValidationRequest(data=data, suite=suite, **options)
        with request_body(request, wait=True, on_upload=on_upload) as body:
            report = _report(await self.request("POST", "/v1/validations", **body))
        return await _to_mlflow_async(report) if mlflow else report

    async def submit(
        self,
        data: DataSource,
        *,
        suite: str,
        on_upload: UploadProgress | None = None,
        **options: Any,
    ) -> Job:
        request = ValidationRequest(data=data, suite=suite, **options)
        with request_body(request, wait=False, on_upload=on_upload) as body:
            return _accepted(await self.request("POST", "/v1/validations", **body))

    async def get_job(self, job_id: str) -> Job:
        return _job(await self.request("GET", f"/v1/validations/{job_id}"))

    async def get_report(self, report_id: str) -> Report:
        return _report(await self.request("GET", f"/v1/reports/{report_id}"))

    async def wait_for(
        self,
        job_id: str,
        *,
        # The same signature as the blocking client's, rather than asyncio.timeout() around it.
        timeout: float = 3600,  # noqa: ASYNC109
        poll: float = 0.5,
        on_wait: WaitProgress | None = None,
        mlflow: bool = False,
    ) -> Report:
        _mlflow_ready(mlflow)
        started = time.monotonic()
        interval = poll
        while True:
            job = await self.get_job(job_id)
            elapsed = time.monotonic() - started
            if on_wait is not None:
                on_wait(job, elapsed)
            if job.finished:
                report = _finished_report(job)
                return await _to_mlflow_async(report) if mlflow else report
            if elapsed + interval > timeout:
                raise WaitTimeout(f"job {job_id} still {job.status} after {elapsed:.0f} s")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 5.0)
